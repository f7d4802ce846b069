"""Admin for contacts, tags, segments and suppressions."""

from contacts.imports import admin as _imports_admin  # noqa: F401  (registers the ContactImport admin)
