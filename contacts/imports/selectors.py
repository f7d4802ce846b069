"""Reads about imports: how far one has got, for the admin's progress bar and the API."""

from __future__ import annotations

from contacts.models import ContactImport

COUNTERS = ("rows_total", "rows_read", "created", "updated", "unchanged", "invalid", "duplicates")


def contact_import_percent(contact_import: ContactImport) -> int | None:
    """Percent of the file's rows read; None while the size is unknown."""
    if contact_import.status == ContactImport.Status.COMPLETED:
        return 100
    if not contact_import.rows_total:
        return None
    return min(99, contact_import.rows_read * 100 // contact_import.rows_total)


def contact_import_progress(contact_import: ContactImport) -> dict:
    """Status, counters and percent of an import, as the admin page polls them."""
    return {
        "id": contact_import.pk,
        "status": contact_import.status,
        "status_display": contact_import.get_status_display(),
        "finished": contact_import.status
        in (ContactImport.Status.COMPLETED, ContactImport.Status.FAILED, ContactImport.Status.CANCELLED),
        "cancel_requested": contact_import.cancel_requested,
        "percent": contact_import_percent(contact_import),
        **{name: getattr(contact_import, name) for name in COUNTERS},
        "error_message": contact_import.error_message,
        "has_error_report": bool(contact_import.error_report),
    }
