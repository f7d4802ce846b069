"""Celery tasks: thin wrappers that take ids and call one service. Every task is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import before_task_publish

from django.conf import settings

from campaigns.locks import debounce, dispatch_slot, run_once

logger = logging.getLogger("herald.tasks")


@shared_task
def campaign_prepare_task(campaign_id: int) -> None:
    """Materialise the audience and start dispatching."""
    from campaigns.services import campaign_prepare

    campaign_prepare(campaign_id=campaign_id)


@shared_task
def campaign_dispatch_task(campaign_id: int, slot: int) -> str:
    """Send frames for a while in dispatcher slot `slot`, then hand over to a fresh task.

    A slot is a Redis lock with a time to live: a second task for a busy slot exits at once, and
    the slot of a dispatcher killed mid-frame frees itself (the watchdog then restarts it)."""
    from campaigns.services import campaign_dispatch

    lock = dispatch_slot(campaign_id, slot, settings.DISPATCH_LOCK_TTL)
    if not lock.acquire():
        return "slot busy"
    try:
        next_due = campaign_dispatch(campaign_id=campaign_id, heartbeat=lock.refresh)
    finally:
        lock.release()
    if next_due is not None:
        campaign_dispatch_task.apply_async((campaign_id, slot), countdown=min(next_due, 30.0))
        return f"continues in {next_due:.1f}s"
    return "done"


@shared_task
def frame_send_task(frame_id: int) -> None:
    """Send one frame (transactional sends); retries come back here after their delay."""
    from campaigns.services import frame_dispatch

    next_due = frame_dispatch(frame_id=frame_id)
    if next_due is not None:
        frame_send_task.apply_async((frame_id,), countdown=min(next_due, 60.0))


@shared_task
def status_events_apply_task() -> int:
    """Apply stored delivery reports in batches. Stopped with some perhaps left (every applier busy, or the time
    up), it comes again soon: the reports of a webhook whose trigger found the appliers busy, stored after their
    last look, otherwise waited for beat's next run, and a test without beat forever."""
    from campaigns.services import status_events_apply_all

    result = status_events_apply_all()
    if result.unfinished:
        status_events_apply_soon()
    return result.events


def status_events_apply_soon() -> None:
    """Coalesce the apply work triggered by many webhook calls into one task every half second."""
    if debounce("apply", 0.5):
        status_events_apply_task.apply_async(countdown=0.5)


# --- Periodic (celery beat); each takes a non-blocking lock so runs never overlap ------------------


@shared_task(bind=True)
def background_heartbeat_task(self) -> None:
    """Every 30 seconds: a worker records that it ran beat's heartbeat, for the admin's "Background work" line (no
    lock: it is one Redis write, and two at once are harmless)."""
    from campaigns.services.background import background_heartbeat_record

    background_heartbeat_record(worker=self.request.hostname or "")


@before_task_publish.connect
def _heartbeat_sent(sender=None, **kwargs) -> None:
    """Beat sends the heartbeat: record that beat runs, even when no worker takes the task (the admin then says
    which of the two is missing)."""
    if sender == background_heartbeat_task.name:
        from campaigns.services.background import background_beat_record

        background_beat_record()


@shared_task
def campaigns_tick_task() -> None:
    """Every minute: launch due and recurring campaigns; hold promotional ones outside their window; expire those
    past their send-by deadline."""
    from campaigns.services import campaigns_expire_overdue, campaigns_hold_outside_window, campaigns_launch_due

    with run_once("campaigns_tick", ttl=300) as held:
        if held:
            campaigns_launch_due()
            campaigns_hold_outside_window()
            campaigns_expire_overdue()


@shared_task
def dispatchers_watchdog_task() -> None:
    """Restart dispatchers of campaigns with due frames and no live dispatcher (a worker died)."""
    from campaigns.services import dispatchers_watchdog

    with run_once("watchdog", ttl=60) as held:
        if held:
            dispatchers_watchdog()


@shared_task
def status_poll_task() -> None:
    """Pull delivery reports for messages still waiting, from vendors that have a pull API."""
    from campaigns.services import status_poll
    from providers.backends import BACKENDS
    from providers.models import ProviderAccount

    pollable = [kind for kind, cls in BACKENDS.items() if cls.supports_polling]
    with run_once("status_poll", ttl=600) as held:
        if held:
            for account_id in ProviderAccount.objects.filter(kind__in=pollable).values_list("pk", flat=True):
                status_poll(account_id=account_id)
            status_events_apply_soon()


@shared_task
def messages_expire_unreported_task() -> None:
    """Messages with no final report after the report window expire, so campaigns complete."""
    from campaigns.services import messages_expire_unreported

    with run_once("expire_unreported", ttl=600) as held:
        if held:
            messages_expire_unreported()


@shared_task
def idempotency_keys_expire_task() -> int:
    """Forget transactional Idempotency-Keys past IDEMPOTENCY_KEY_RETENTION_HOURS, so that they can be used again."""
    from campaigns.services import idempotency_keys_expire

    with run_once("idempotency_keys_expire", ttl=600) as held:
        return idempotency_keys_expire() if held else 0


@shared_task
def campaign_purge_task(campaign_id: int) -> bool:
    """Delete a campaign marked `deleting` with its messages and frames, in batches (campaign_purge)."""
    from campaigns.services.editing import campaign_purge

    return campaign_purge(campaign_id=campaign_id)


@shared_task
def campaigns_purge_deleting_task() -> int:
    """Finish deleting campaigns whose purge task was lost (a broker failure): every 10 minutes."""
    from campaigns.services.editing import campaigns_purge_deleting

    with run_once("campaigns_purge_deleting", ttl=3600) as held:
        return campaigns_purge_deleting() if held else 0
