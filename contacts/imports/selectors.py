"""Reads about imports: how far one has got, for the admin's progress bar and the API; its error report."""

from __future__ import annotations

from django.contrib.auth import get_permission_codename
from django.core.files import File

from contacts.imports.registry import get_importer
from contacts.models import ContactImport
from contacts.selectors import suppression_names_no_one

COUNTERS = ("rows_total", "rows_read", "created", "updated", "unchanged", "invalid", "duplicates")


def contact_import_warnings(contact_import: ContactImport) -> list[str]:
    """What staff or the client should know of an import's settings: opt-outs for a sender or tag that no sender or
    tag is named suppress nobody (a typo'd name), so an opt-out import whose options name one says so. (A row whose
    own value names no sender or tag is said in the error report instead: UnsubscriberImporter.names_no_one.)"""
    if contact_import.kind != ContactImport.Kind.UNSUBSCRIBERS or not isinstance(contact_import.options, dict):
        return []
    scope, value = str(contact_import.options.get("scope") or ""), str(contact_import.options.get("value") or "")
    if not value or not suppression_names_no_one(scope, value):
        return []
    return [
        f"No {scope} is named {value!r}: the opt-outs this import records for it (every row without a scope of its "
        "own) suppress nothing until one is. Check the spelling."
    ]


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
        **_error_report_flags(contact_import_error_report_status(contact_import)),
    }


class ErrorReportStatus:
    """Whether an import's error report can be downloaded: `none` (no bad or left-out rows, or not finished yet), `available`,
    or `removed` (its file is gone from the media storage: the directory cleaned, or a web server that does not
    share the workers' media)."""

    NONE, AVAILABLE, REMOVED = "none", "available", "removed"
    choices = [(NONE, "none"), (AVAILABLE, "available"), (REMOVED, "removed")]


REPORT_REMOVED = (
    "The error report of this import is no longer available: its file is gone from the server's media storage."
)


def contact_import_error_report_status(contact_import: ContactImport) -> str:
    """ErrorReportStatus of the import's report: one look at the storage (a stat on the local disk)."""
    report = contact_import.error_report
    if not report:
        return ErrorReportStatus.NONE
    return ErrorReportStatus.AVAILABLE if report.storage.exists(report.name) else ErrorReportStatus.REMOVED


def _error_report_flags(status: str) -> dict:
    return {
        "has_error_report": status == ErrorReportStatus.AVAILABLE,
        "error_report_removed": status == ErrorReportStatus.REMOVED,
    }


REPORT_NEEDS = (
    "The error report shows the file's bad rows as they were written: reading it needs the permission to view {what}."
)


def contact_import_error_report_permission(contact_import: ContactImport) -> tuple[str, str]:
    """The permission reading the import's error report takes besides viewing imports, and what it is about in words:
    ("contacts.view_contact", "contacts").

    The report holds the bad rows' cells as the file wrote them (people's numbers, names, addresses), so it takes the
    permission to view what the import writes (`Importer.model`): contacts, unsubscribers, DLT templates."""
    opts = get_importer(contact_import.kind).model._meta
    return f"{opts.app_label}.{get_permission_codename('view', opts)}", str(opts.verbose_name_plural)


def contact_import_error_report_refusal(*, user, contact_import: ContactImport) -> str:
    """Why `user` may not read the import's error report, for the user; "" when they may. The admin and the API
    both ask this."""
    permission, what = contact_import_error_report_permission(contact_import)
    return "" if user.has_perm(permission) else REPORT_NEEDS.format(what=what)


class ErrorReportUnavailable(Exception):
    """An import's error report cannot be served; the message says why, for the user."""


def contact_import_error_report(contact_import: ContactImport) -> File:
    """The import's error report, open for reading; ErrorReportUnavailable when it has none or its file is gone
    (the media directory cleaned, or a web server that does not share the workers' media)."""
    if not contact_import.error_report:
        raise ErrorReportUnavailable("This import has no error report: no bad rows, or not finished yet.")
    try:
        return contact_import.error_report.open("rb")
    except FileNotFoundError:
        raise ErrorReportUnavailable(REPORT_REMOVED) from None
