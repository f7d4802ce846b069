"""Celery tasks of the providers app (thin: call a service).

The registry syncs are acknowledged when a worker takes them, not when they end (as every other task is): a sync
reads MOBtexting's lists at the vendor's pace, minutes for a long opt-out list, past the broker's visibility timeout
(`CELERY_VISIBILITY_TIMEOUT`, 300 s), after which Redis would hand the unfinished sync to the other worker process,
to wait on the first one's lock and then do it all again. A sync lost with its worker is the next hour's to do.
"""

from celery import shared_task

from providers.sync import registries_sync, registries_sync_all


@shared_task(acks_late=False)
def registries_sync_task() -> dict[str, int]:
    """Sync MOBtexting accounts' sender IDs, DLT templates and opt-outs (beat, hourly). Safe to run twice: a sync
    matches what it finds before it pushes, and an account already syncing is left to the sync that runs."""
    return registries_sync_all()


@shared_task(acks_late=False)
def registries_sync_account_task(account_id: int) -> bool | None:
    """Sync one account's registries (the account page's button); whether it worked, as its page then says (None:
    a sync of the account was running already, and its page says how that one went)."""
    return registries_sync(account_id=account_id).ok
