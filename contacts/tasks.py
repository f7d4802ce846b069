"""Celery tasks of the contacts app (thin: take ids, call a service)."""

import logging

from celery import shared_task

from contacts.models import ContactImport

logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 60


@shared_task(bind=True, max_retries=None)
def contact_import_run_task(self, import_id: int) -> None:
    """Run an import. If another worker holds it (a redelivered message), look again later in case that worker dies."""
    from contacts.imports.services import contact_import_run

    try:
        contact_import = contact_import_run(import_id=import_id)
    except ContactImport.DoesNotExist:
        logger.info("Import %s was deleted before it ran", import_id)
        return
    if contact_import.status in (ContactImport.Status.PENDING, ContactImport.Status.RUNNING):  # held elsewhere
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
