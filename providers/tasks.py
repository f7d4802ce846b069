"""Celery tasks of the providers app (thin: call a service)."""

from celery import shared_task

from providers.sync import registries_sync, registries_sync_all


@shared_task
def registries_sync_task() -> dict[str, int]:
    """Sync MOBtexting accounts' sender IDs, DLT templates and opt-outs (beat, hourly). Safe to run twice: a sync
    matches what it finds before it pushes, and two syncs of one account wait for each other."""
    return registries_sync_all()


@shared_task
def registries_sync_account_task(account_id: int) -> bool:
    """Sync one account's registries (the account page's button); whether it worked, as its page then says."""
    return registries_sync(account_id=account_id).ok
