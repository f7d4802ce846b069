"""Personalised texts: `{{first_name}}`, `{{city}}` … filled from a contact's fields and attributes.

A variable the contact does not have renders as an empty string (the estimate counts how many
recipients lack each variable, so staff can see it before launching).
"""

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from providers.dlt import CONTACT_VARIABLE_RE

VARIABLE_RE = CONTACT_VARIABLE_RE  # {{first_name}}; one pattern, which a DLT template check knows too
DLT_PLACEHOLDER_RE = re.compile(r"\{#\w*#\}")
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "identity", "country", "language", "timezone")


def text_variables(text: str) -> list[str]:
    """The variable names a text uses, in order of first use."""
    return list(dict.fromkeys(VARIABLE_RE.findall(text or "")))


def contact_values(row: dict, names: Iterable[str] | None = None) -> dict[str, str]:
    """Variables available for one contact: its fields, then its attributes (fields win on a clash).

    With `names`, only those (dispatch fills a template's few variables for 500 recipients a frame; its
    attributes are parsed only when the template uses one)."""
    if names is not None:
        wanted = tuple(names)
        if all(name in CONTACT_FIELDS and name in row for name in wanted):
            return {name: str(row[name] or "") for name in wanted}
        values = contact_values(row)
        return {name: values[name] for name in wanted if name in values}
    attributes = row.get("attributes") or {}
    if isinstance(attributes, str):  # raw SQL hands jsonb over as text
        attributes = json.loads(attributes)
    if not isinstance(attributes, dict):  # stored before contacts.validators.validate_attributes: no names
        attributes = {}
    values = {str(k): "" if v is None else str(v) for k, v in attributes.items()}
    values.update({name: str(row.get(name) or "") for name in CONTACT_FIELDS if name in row})
    return values


@dataclass(frozen=True)
class CompiledText:
    """A text split once into its literal pieces and variable names, so that filling it for each recipient
    is a join rather than a regular-expression pass."""

    pieces: tuple[str, ...]  # literal, name, literal, name, …, literal

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.pieces[1::2]))

    @property
    def uses_attributes(self) -> bool:
        return any(name not in CONTACT_FIELDS for name in self.pieces[1::2])

    def fill(self, values: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The text with its variables filled, and the values used."""
        if len(self.pieces) == 1:
            return self.pieces[0], {}
        used = {name: values.get(name, "") for name in self.pieces[1::2]}
        pieces = list(self.pieces)
        pieces[1::2] = [used[name] for name in self.pieces[1::2]]
        return "".join(pieces), used


@functools.lru_cache(maxsize=256)
def compile_text(text: str) -> CompiledText:
    return CompiledText(tuple(VARIABLE_RE.split(text)))


def render(text: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The text with its variables filled, and the values used."""
    return compile_text(text).fill(values)
