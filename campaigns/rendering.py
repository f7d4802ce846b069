"""Personalised texts: `{{first_name}}`, `{{city}}` … filled from a contact's fields and attributes.

A variable the contact does not have renders as an empty string (the estimate counts how many
recipients lack each variable, so staff can see it before launching).
"""

import json
import re

VARIABLE_RE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")
DLT_PLACEHOLDER_RE = re.compile(r"\{#\w*#\}")
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "identity", "country", "language", "timezone")


def text_variables(text: str) -> list[str]:
    """The variable names a text uses, in order of first use."""
    return list(dict.fromkeys(VARIABLE_RE.findall(text or "")))


def contact_values(row: dict) -> dict[str, str]:
    """Variables available for one contact: its fields, then its attributes (fields win on a clash)."""
    attributes = row.get("attributes") or {}
    if isinstance(attributes, str):  # raw SQL hands jsonb over as text
        attributes = json.loads(attributes)
    values = {str(k): "" if v is None else str(v) for k, v in attributes.items()}
    values.update({name: str(row.get(name) or "") for name in CONTACT_FIELDS if name in row})
    return values


def render(text: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The text with its variables filled, and the values used."""
    used: dict[str, str] = {}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        used[name] = values.get(name, "")
        return used[name]

    return VARIABLE_RE.sub(fill, text), used
