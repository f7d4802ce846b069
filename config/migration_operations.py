"""Migration operations that build indexes CONCURRENTLY and can be run again after a failed build.

A `CREATE INDEX CONCURRENTLY` that fails or is interrupted (a uniqueness violation, a cancelled deploy, a lost
connection) leaves an INVALID index of that name behind: queries do not use it, writes still maintain it, and
the next `migrate` stops on "relation already exists" (or, with IF NOT EXISTS, keeps the broken index for good).
These operations drop such a leftover first, so re-running `migrate` finishes the build.
"""

from __future__ import annotations

from django.contrib.postgres import operations as postgres_operations
from django.db import migrations


def drop_invalid_index(schema_editor, name: str) -> bool:
    """Drop the index `name` if a failed CONCURRENTLY build left it INVALID; True if one was dropped."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid",
            [name],
        )
        if cursor.fetchone() is None:
            return False
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")
    return True


class AddIndexConcurrently(postgres_operations.AddIndexConcurrently):
    """Django's, after dropping what a failed earlier build of this index left (see the module)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        drop_invalid_index(schema_editor, self.index.name)
        super().database_forwards(app_label, schema_editor, from_state, to_state)


class DropInvalidIndex(migrations.RunPython):
    """For an index built by hand-written SQL (RunSQL): drop a failed earlier build of it first."""

    def __init__(self, index_name: str):
        self.index_name = index_name
        super().__init__(self._drop, migrations.RunPython.noop, elidable=True)

    def _drop(self, apps, schema_editor) -> None:
        drop_invalid_index(schema_editor, self.index_name)
