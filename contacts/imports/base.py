"""What an importer is: the fields it reads, how it cleans one row, and how it merges a staged chunk.

The machinery in `contacts.imports.engine` reads the file, calls `clean()` on every row, drops the rows
whose key (the first value) an earlier row had (showing each to `duplicate()`), COPYs the rest of a chunk
into the staging table `STAGE` (its `key` column first, then `stage_columns`), then calls `merge()`,
`link()` and, with what `duplicate()` kept, `merge_duplicates()`. An
importer only knows its own table; each kind registers its class with
`contacts.imports.register_importer`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from contacts.models import ContactImport

if TYPE_CHECKING:
    from contacts.imports.columns import Layout

STAGE = "pg_temp.herald_import_stage"  # this chunk's rows, one per key, key first


class RowError(Exception):
    """One row cannot be imported: which column, its value, and why (one line of the error report).

    With `kept` (what clean() would have returned), part of the row only is refused: it is reported all the same, but
    its values are staged as any row's and it is counted as they are (created, updated, unchanged or a duplicate), not
    invalid, so that an import's counts add up to its rows (a DLT template whose header names a sender it may not
    carry is imported, and that sender alone not linked)."""

    def __init__(self, column: str, value: str, reason: str, *, kept: list[str] | None = None):
        super().__init__(reason)
        self.column, self.value, self.reason, self.kept = column, value, reason, kept


def option_error(option: str, message: str) -> ValidationError:
    """An error about one of an import's options: on `options`, as the API takes them, with the option's name as its
    code, so that the upload page shows it on that option's field (ContactImportUploadForm.add_service_errors)."""
    return ValidationError({"options": ValidationError(message, code=option)})


class Importer:
    """One kind of import. Subclasses declare their fields and implement clean(), merge() and link()."""

    kind = ""  # set by register_importer
    label = ""  # what one row is, for messages: "contact", "suppression"
    import_name = ""  # what an import of the kind is called, as its page and its name say: "contacts import"
    model: type[models.Model]  # the table it writes: starting an import takes that model's permissions
    fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    key_field = ""  # the field a headerless file's first data column is taken for
    key_words = "key"  # what rows that share a key have the same, for the error report: "phone number"
    synonyms: dict[str, tuple[str, ...]] = {}
    keeps_attributes = False  # unclaimed columns become `attributes` (else they are ignored)
    takes_tags = False  # the import's tags are applied to its rows (else giving tags is refused)
    reads_phones = True  # it reads phone numbers, those without a country code in the import's default_region
    has_mode = True  # "create and update" and "create only" differ (else rows are only ever added: no mode to choose)
    mode_help = ""  # what the mode does to an import of the kind, under the upload page's mode when the kind is chosen
    mapping_help = ""  # how to map the kind's columns, under the upload page's mapping when the kind is chosen
    stage_columns: tuple[tuple[str, str], ...] = ()  # (name, SQL type) after "key text"

    def __init__(self, contact_import: ContactImport, layout: Layout):
        self.contact_import = contact_import
        self.layout = layout
        self.region = contact_import.default_region or settings.DEFAULT_PHONE_REGION
        self.options = contact_import.options or {}

    @classmethod
    def clean_options(cls, options: dict) -> dict:
        """The kind's options, checked and completed; raise ValidationError({"options": ...}), option_error() for one
        option's problem."""
        if options:
            raise ValidationError({"options": f"A {cls.kind} import takes no options."})
        return {}

    @classmethod
    def changes_existing(cls, mode: str, tagged: bool) -> tuple[str, str] | None:
        """Whether an import in `mode` (with tags, if `tagged`) may change rows the table has already, so that
        starting it takes the change permission as well as add: (the upload's field that makes it so, the end of
        "You need permission to change …"), or None."""
        if mode == ContactImport.Mode.CREATE_UPDATE:
            return "mode", f"to import in '{ContactImport.Mode.CREATE_UPDATE.label}' mode"
        return None

    @classmethod
    def check_layout(cls, options: dict, layout: Layout) -> None:
        """Refuse options the file's columns cannot work with (every row would fail); raise ValidationError, as
        clean_options() does."""

    @classmethod
    def option_fields(cls) -> dict[str, forms.Field]:
        """Form fields for the options, shown on the admin's upload page; their cleaned values go through clean_options.
        A required one is marked so, and asked for with its field's "required" message when its kind is chosen."""
        return {}

    def column(self, field: str) -> tuple[int | None, str]:
        """The index and name of the column that feeds `field`, or (None, field) if none does."""
        index = self.layout.fields.get(field)
        return index, (self.layout.names[index] if index is not None else field)

    def clean(self, cells: list[str]) -> list[str]:
        """The staged values of one row, its key first; raise RowError for a bad row."""
        raise NotImplementedError

    @staticmethod
    def key_number(key: str) -> int:
        """The key as a non-zero 63-bit number, to recognise duplicates; here a hash of it (a 64-bit BLAKE2b, so two
        different keys of a million-row file collide with a chance of 3 in 100 million). Exact where keys allow."""
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) >> 1 or 1

    def merge(self, cursor) -> tuple[int, int]:
        """Merge the staged rows (one per key, none seen in an earlier chunk) into the table: (created, updated).

        Other chunks of the file merge at the same time on other connections: write only rows of the staged
        keys, so that no two chunks lock the same row (`contacts.imports.engine` says why)."""
        raise NotImplementedError

    def link(self, cursor) -> None:
        """After the merge, in the same transaction: relations of the staged rows (tags, senders)."""

    def duplicate(self, values: list[str]):
        """A row whose key an earlier row had, as clean() gave it. It is dropped (the first row wins): return None,
        and the error report names it and the row kept ("same phone number as row 2, which is kept"), or what to
        keep of it for merge_duplicates()."""
        return None

    def merge_duplicates(self, cursor, kept: list) -> None:
        """What duplicate() kept of a chunk's rows (a DLT template's headers listed on several rows), in that
        chunk's transaction once every earlier chunk is committed, so the rows they belong to are there whichever
        chunk merged them. It may touch rows of keys of earlier chunks: only to add what is missing (no locks held
        by a chunk still merging)."""
