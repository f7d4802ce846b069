"""Imports of contacts, suppressions and, registered by the providers app, DLT templates.

One machinery for all (engine.py: stream the file, clean rows, COPY chunks into a staging table,
merge set-based); one importer class per kind (base.py) says what a row is and how it merges.
Services: contact_import_create, contact_import_run, contact_import_cancel.
"""

from contacts.imports.contacts import ContactImporter
from contacts.imports.registry import get_importer, register_importer
from contacts.imports.services import contact_import_cancel, contact_import_create, contact_import_run
from contacts.imports.unsubscribers import UnsubscriberImporter
from contacts.models import ContactImport

register_importer(ContactImport.Kind.CONTACTS, ContactImporter)
register_importer(ContactImport.Kind.UNSUBSCRIBERS, UnsubscriberImporter)

__all__ = [
    "contact_import_cancel",
    "contact_import_create",
    "contact_import_run",
    "get_importer",
    "register_importer",
]
