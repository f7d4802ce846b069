"""Celery tasks of the providers app (thin: call a service).

The registry syncs are acknowledged when they end, as every task is, so that one lost with its worker runs again. A
sync at the vendor's pace can outlast the broker's visibility timeout (`CELERY_VISIBILITY_TIMEOUT`, 300 s), after
which Redis hands it to another worker process as well: that copy finds the account syncing and ends at once
(`registries_sync`), rather than wait on the first and do it all again.
"""

from celery import shared_task

from providers.sync import registries_sync, registries_sync_all


@shared_task
def registries_sync_task() -> dict[str, int]:
    """Sync MOBtexting accounts' sender IDs, DLT templates and opt-outs (beat, hourly). Safe to run twice: a sync
    matches what it finds before it pushes, and an account already syncing is left to the sync that runs."""
    return registries_sync_all()


@shared_task
def registries_sync_account_task(account_id: int) -> bool | None:
    """Sync one account's registries (the account page's button); whether it worked, as its page then says (None:
    a sync of the account was running already, and its page says how that one went)."""
    return registries_sync(account_id=account_id).ok
