"""Which importer handles which kind of ContactImport.

contacts registers its own (contacts, unsubscribers) in `contacts.imports`; another app plugs in
its kind from its AppConfig.ready() (providers: DLT templates), so that contacts never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from contacts.imports.base import Importer

IMPORTERS: dict[str, type[Importer]] = {}


def register_importer(kind: str, cls: type[Importer]) -> None:
    """Make `cls` the importer of ContactImport rows of this kind (registering the same class twice is harmless)."""
    kind = str(kind)
    if IMPORTERS.get(kind, cls) is not cls:
        raise ValueError(f"Kind {kind!r} already has importer {IMPORTERS[kind].__name__}.")
    cls.kind = kind
    IMPORTERS[kind] = cls


def import_name(kind: str) -> str:
    """What an import of this kind is called ("contacts import", "DLT template import"), wherever one is named: its
    page's title, and the import's own name (ContactImport.__str__: "DLT template import #1")."""
    importer = IMPORTERS.get(str(kind))
    return importer.import_name if importer else f"{kind} import"


def get_importer(kind: str) -> type[Importer]:
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise ValidationError({"kind": f"No importer for {kind!r}; known kinds: {', '.join(IMPORTERS)}."}) from None
