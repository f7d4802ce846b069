"""Which column of a file feeds which field: the mapping given, else header synonyms; the rest become attributes.

A mapping is `{column: target}`: the column by its header text (case and punctuation ignored) or by
its position ("1" is the first column); the target a field of the importer, "attributes.<key>", or
"" to leave the column out. Columns that neither the mapping nor a synonym claims become attributes
(for importers that keep attributes), under their header text as a lower-case identifier.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError

ATTRIBUTE_PREFIX = "attributes."
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _latin_base(char: str) -> str:
    """ "é" -> "e", "Œ" -> "OE"; a letter of another script ("й", "न") as it is."""
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base.isascii() else char


def canonical(name: str) -> str:
    """ "Phone_Number" and "phone-number " -> "phone number"; "Téléphone" -> "telephone"; "Имя" -> "имя"."""
    text = str(name).casefold()
    if text.isascii():
        return _NOT_ALNUM.sub(" ", text).strip()
    text = "".join(map(_latin_base, text))  # then letters, digits and marks (a vowel sign of "नाम") of any script
    return " ".join("".join(c if c.isalnum() or unicodedata.category(c)[0] == "M" else " " for c in text).split())


_TEXT_VARIABLE = re.compile(r"[\w.-]+")  # a name texts can use as {{name}} (campaigns.rendering.VARIABLE_RE)


def attribute_key(name: str) -> str:
    """ "Date of Birth" -> "date_of_birth", "Prénom" -> "prenom", "Город" -> "город", usable in texts as
    {{date_of_birth}}; "" for a name a text could not use ("नाम": a vowel sign is no word character)."""
    key = canonical(name).replace(" ", "_")
    return key if _TEXT_VARIABLE.fullmatch(key) else ""


# Files have tens of columns, spreadsheets at most 16,384. A file of thousands is a list written on one line (opt-out
# numbers separated by commas): it was read as one row of as many columns, its upload taking minutes of a web server
# (a layout's description compared every title with every other), and would have kept only its first number.
COLUMNS_MAX = 1000


def looks_like_data(cell: str) -> bool:
    """A cell that reads as a value (a phone number, an id, an e-mail) rather than a column title."""
    return "@" in cell or sum(ch.isdigit() for ch in cell) >= 5


@dataclass(frozen=True)
class Layout:
    """The file's columns: their names (header text, or "column N"), field -> index, attribute key -> index."""

    has_header: bool
    names: list[str]
    fields: dict[str, int]
    attributes: list[tuple[str, int]]

    def describe(self) -> dict[str, str]:
        """Column name -> target, as stored on the import for the user to see what was understood."""
        targets = {index: field for field, index in self.fields.items()}
        targets.update({index: ATTRIBUTE_PREFIX + key for key, index in self.attributes})
        repeated = {name for name, count in Counter(map(canonical, self.names)).items() if count > 1}
        # A repeated name, or one of digits (which a mapping reads as a position), is given by its position.
        return {
            str(index + 1) if canonical(name) in repeated or is_position(name) else name: targets.get(
                index, ""
            )  # a repeated name by position
            for index, name in enumerate(self.names)
        }


def is_position(key: str) -> bool:
    """Whether a mapping's key is a column's position ("3"), not its name: ASCII digits only ("²" is a digit to
    str.isdigit(), not a number to int())."""
    return key.isascii() and key.isdigit()


def resolve_layout(
    first_row: list[str], importer, mapping: dict | None, second_row: list[str] | None = None, *, complete: bool = True
) -> Layout:
    """The layout of a file whose first non-empty rows are `first_row` and `second_row` (None: not known); raises
    ValidationError({"mapping": ...}). With complete=False, a layout without a required field is returned too (the
    upload page shows it, for the user to map a column to that field); layout_missing() says what it lacks."""
    width = len(first_row)
    while width and not first_row[width - 1].strip():
        width -= 1
    if width > COLUMNS_MAX:
        raise ValidationError(
            {
                "file": f"The file's first row has {width:,} columns, more than the {COLUMNS_MAX:,} an import reads."
                " A list of numbers or addresses goes one a line."
            }
        )
    mapping = {str(key).strip(): (value or "").strip() for key, value in (mapping or {}).items()}
    known = {canonical(name) for field in importer.fields for name in (field, *importer.synonyms.get(field, ()))}
    cells = [cell.strip() for cell in first_row]
    named_keys = {canonical(key) for key in mapping if not is_position(key)}
    has_header = bool(
        named_keys & {canonical(cell) for cell in cells}
        or known & {canonical(cell) for cell in cells}
        or not any(looks_like_data(cell) for cell in cells)
    )
    if has_header:
        names = [cell or f"column {index + 1}" for index, cell in enumerate(cells)]
    elif len(cells) == 1:  # one value a line: it can only be the key
        names = [importer.key_field]
    else:
        names = [f"column {index + 1}" for index in range(len(cells))]
    fields: dict[str, int] = {}
    attributes: dict[int, str] = {}
    claimed: set[int] = set()

    by_name = {}
    for index, name in enumerate(names):
        by_name.setdefault(canonical(name), index)
    for key, target in mapping.items():
        index = int(key) - 1 if is_position(key) else by_name.get(canonical(key))
        if index is None or not 0 <= index < len(names):
            raise ValidationError({"mapping": f"The file has no column {key!r}; its columns are {_listing(names)}."})
        if index in claimed:
            raise ValidationError({"mapping": f"Column {names[index]!r} is mapped twice: map each column once."})
        claimed.add(index)
        if not target:
            continue
        if target.startswith(ATTRIBUTE_PREFIX) and importer.keeps_attributes and target[len(ATTRIBUTE_PREFIX) :]:
            key = attribute_key(target[len(ATTRIBUTE_PREFIX) :])
            if not key:
                raise ValidationError(
                    {"mapping": f"{target!r} could not be used in texts: name the attribute with letters and digits."}
                )
            if key in attributes.values():
                raise ValidationError({"mapping": f"Two columns are mapped to {ATTRIBUTE_PREFIX}{key}."})
            attributes[index] = key
        elif target in importer.fields:
            if target in fields:
                other = names[fields[target]]
                raise ValidationError(
                    {"mapping": f"Columns {other!r} and {names[index]!r} are both mapped to {target}."}
                )
            fields[target] = index
        else:
            choices = ", ".join(importer.fields) + (", attributes.<name>" if importer.keeps_attributes else "")
            raise ValidationError({"mapping": f"Unknown field {target!r} for column {key!r}; choose from {choices}."})

    for field in importer.fields:  # then synonyms, the field's own name first, left to right
        if field in fields:
            continue
        for synonym in (field, *importer.synonyms.get(field, ())):
            index = next(
                (i for i, n in enumerate(names) if i not in claimed and canonical(n) == canonical(synonym)), None
            )
            if has_header and index is not None:
                fields[field] = index
                claimed.add(index)
                break
    one_column = second_row is not None and sum(1 for cell in second_row if cell.strip()) <= 1
    if has_header and len(names) == 1 and one_column and not claimed:  # one column, whatever its title: the key
        fields[importer.key_field] = 0  # (a title in A1 above a wider header row is not that: see second_row)
        claimed.add(0)
    if not has_header and importer.key_field not in fields:  # headerless: the key is the first column with data
        index = next((i for i, cell in enumerate(cells) if i not in claimed and looks_like_data(cell)), None)
        if index is not None:
            fields[importer.key_field] = index
            claimed.add(index)

    missing = [field for field in importer.required if field not in fields]
    if missing and complete:
        wanted = " or ".join(repr(name) for name in (missing[0], *importer.synonyms.get(missing[0], ())[:4]))
        raise ValidationError(
            {
                "mapping": f"No {missing[0]} column: name one {wanted}, or map a column to it. Columns: {_listing(names)}."
            }
        )
    if importer.keeps_attributes:
        taken = set(attributes.values())
        for index, name in enumerate(names):
            if index in claimed:
                continue
            key = base = attribute_key(name) or f"column_{index + 1}"
            suffix = 1
            while key in taken:
                suffix += 1
                key = f"{base}_{suffix}"
            attributes[index] = key
            taken.add(key)
    return Layout(
        has_header, names, fields, sorted(((key, index) for index, key in attributes.items()), key=lambda a: a[1])
    )


TITLE_ROWS_MAX = 3  # rows of one cell (a report's title, its date) passed over above a header
HEAD_ROWS = TITLE_ROWS_MAX + 2  # the first non-empty rows locate_header is given: titles, header, first row


def locate_header(
    head: list[list[str]], importer, mapping: dict | None, *, complete: bool = True
) -> tuple[int, Layout]:
    """The layout of a file whose first non-empty rows are `head` (HEAD_ROWS of them, or all the file has), and how
    many title rows come before its header: (titles, layout).

    Exported reports often put a title above the header ("Customer list", "Exported on 31/05/2024"; a merged cell
    in a workbook). Rows of one cell of words, which is no field's title nor the mapping's, up to TITLE_ROWS_MAX of
    them, are titles when rows below them have several cells: the header is the row under them. Else the first row
    is the header (or data), as resolve_layout reads it; with complete=False, as resolve_layout's too."""
    mapping = mapping or {}
    names = {canonical(key) for key in mapping if not is_position(str(key))}
    names |= {canonical(name) for field in importer.fields for name in (field, *importer.synonyms.get(field, ()))}

    def filled(cells: list[str]) -> list[str]:
        return [cell for cell in cells if cell.strip()]

    def is_title(cells: list[str]) -> bool:
        cell = filled(cells)[0] if len(filled(cells)) == 1 else ""
        return any(c.isalpha() for c in cell) and "@" not in cell and canonical(cell) not in names

    def layout_at(index: int, complete: bool = True) -> Layout:
        below = head[index + 1] if index + 1 < len(head) else None
        return resolve_layout(head[index], importer, mapping, below, complete=complete)

    titles = 0
    while titles < min(TITLE_ROWS_MAX, len(head) - 1) and is_title(head[titles]):
        titles += 1
    if titles and any(len(filled(cells)) > 1 for cells in head[titles:]):
        return titles, layout_at(titles, complete)
    return 0, layout_at(0, complete)


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:12])
    return shown + (" …" if len(names) > 12 else "") if names else "(none)"
