"""Periodic work: launching due and recurring campaigns, restarting stalled dispatchers, deadlines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.locks import debounce, slot_taken
from campaigns.models import RECURRENCE_STEP, Campaign, Frame
from campaigns.selectors import promotional_window_closed_until
from campaigns.services.dispatch import frames_claim, frames_unlock
from campaigns.services.editing import campaign_relations_copy, scheduled_reason
from campaigns.services.lifecycle import (
    EXPIRABLE_STATES,
    WINDOW_HOLD,
    _locked,
    _save_state,
    campaign_expire,
    campaign_fail,
    campaign_hold_for_window,
    campaign_launch,
    dispatchers_start,
    frames_close_after_stop,
)

logger = logging.getLogger("herald.schedule")


def campaign_run_create(*, parent: Campaign, at: datetime) -> Campaign:
    """A run of a recurring campaign: a copy of it, launched as its own campaign."""
    when = f" — {timezone.localtime(at):%Y-%m-%d %H:%M}"
    most = Campaign._meta.get_field("name").max_length - len(when)  # a long name is cut, its run's time kept
    run = Campaign.objects.create(
        name=f"{parent.name[:most]}{when}", channel=parent.channel, account=parent.account,
        sender=parent.sender, template=parent.template, text=parent.text, purpose=parent.purpose,
        tags_operator=parent.tags_operator, parent=parent, smooth_minutes=parent.smooth_minutes,
        send_by=at + (parent.send_by - parent.send_at) if parent.send_by and parent.send_at else None,
        frame_size=parent.frame_size, created_by=parent.created_by,
    )  # fmt: skip
    campaign_relations_copy(source=parent, target=run)
    return run


def recurrence_wall(*, at: datetime, time_of_day: time | None = None) -> datetime:
    """The send time `at` as it reads on TIME_ZONE's clock (naive), at `time_of_day` (Campaign.recurrence_time, the time
    the runs keep) when `at` is that time on its day: a daily 02:30 sent at 03:30 on the night the clocks go forward
    (when 02:30 does not exist) reads 02:30. A send time moved since is read as it is."""
    local = timezone.localtime(at)
    wall = local.replace(tzinfo=None)
    if time_of_day is not None and time_of_day != wall.time():
        kept = datetime.combine(wall.date(), time_of_day)
        # (compared in UTC: Python never finds a time in a gap or a fold equal to one in another zone, PEP 495)
        if timezone.make_aware(kept, local.tzinfo).astimezone(UTC) == at.astimezone(UTC):
            return kept
    return wall


def recurrence_next(*, at: datetime, recurrence: str, after: datetime, time_of_day: time | None = None) -> datetime:
    """The first time after `after` that a campaign recurring from `at` runs: the same time of day on the clock of
    TIME_ZONE, so a daily 09:00 stays at 09:00 when the clocks change (a time the change skips moves on by it, and
    the next run is back at it: recurrence_wall)."""
    step = RECURRENCE_STEP[recurrence]
    wall, zone = recurrence_wall(at=at, time_of_day=time_of_day), timezone.get_current_timezone()
    next_at = at
    while next_at <= after:
        wall += step
        next_at = timezone.make_aware(wall, zone)
    return next_at


def campaigns_launch_due(*, now: datetime | None = None) -> list[int]:
    """Launch scheduled campaigns whose time has come; recurring ones spawn a run and move to the next time."""
    now = now or timezone.now()
    launched = []
    for campaign_id in Campaign.objects.filter(state=Campaign.State.SCHEDULED, send_at__lte=now).values_list(
        "pk", flat=True
    ):
        try:
            if (target_id := _campaign_launch_due(campaign_id, now)) is not None:
                launched.append(target_id)
        except Exception:  # one campaign's trouble (rolled back) must not hold every other due campaign each minute
            logger.exception("launching the due campaign %s failed", campaign_id)
    return launched


@transaction.atomic
def _campaign_launch_due(campaign_id: int, now: datetime) -> int | None:
    """Launch one due campaign, or a run of a recurring one (which moves on to its next time), under the lock that
    found it due: a person launching or cancelling it meanwhile waits for this, and sees it launched, and a run
    is never committed without its launch. Returns what was launched, or None."""
    campaign = _locked(campaign_id)
    if campaign.state != Campaign.State.SCHEDULED or not campaign.send_at or campaign.send_at > now:
        return None
    target = campaign
    if campaign.recurrence:
        kept = recurrence_wall(at=campaign.send_at, time_of_day=campaign.recurrence_time).time()
        # One run, for the latest send time that has come: after beat was down for days, not one for the first time
        # it missed (named for it, and failed at once when its send-by deadline had passed with it, while the run of
        # the time that came last was still within its own).
        slot = campaign.send_at
        while (
            following := recurrence_next(at=slot, recurrence=campaign.recurrence, after=slot, time_of_day=kept)
        ) <= now:
            slot = following
        target = campaign_run_create(parent=campaign, at=slot)
        next_at = recurrence_next(at=slot, recurrence=campaign.recurrence, after=now, time_of_day=kept)
        # Each run has the time to its send-by deadline the first had: the deadline moves with the send time (left
        # behind, it would pass while the campaign waits for its next run, and fail it).
        send_by = campaign.send_by + (next_at - campaign.send_at) if campaign.send_by else None
        _save_state(
            campaign, Campaign.State.SCHEDULED, scheduled_reason(at=next_at, recurring=True), send_at=next_at,
            send_by=send_by, recurrence_time=kept,
        )  # fmt: skip
        target.send_at = None
    try:
        campaign_launch(campaign_id=target.pk, now=now)
    except ValidationError as exc:
        reason = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        campaign_fail(campaign_id=target.pk, reason=f"Could not launch at its scheduled time: {reason}")
        return None
    return target.pk


# A campaign left `preparing` is given a new prepare task at most this often (seconds): one may still wait in a busy
# queue, and a second one is harmless (it finds the campaign prepared, or waits for the first), but not a pile of them.
PREPARE_REQUEUE_EVERY = 120.0


def dispatchers_watchdog(*, stale_after: float = 20.0) -> list[int]:
    """Restart dispatchers where due frames wait and no dispatcher holds a slot (after a worker died), and prepares
    that were lost (campaigns_prepare_lost)."""
    from campaigns.tasks import frame_send_task

    campaigns_prepare_lost(stale_after=stale_after)

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT f.campaign_id FROM campaigns_frame f JOIN campaigns_campaign c ON c.id = f.campaign_id
               WHERE c.state = 'sending' AND f.state IN ('pending', 'sending')
                 AND f.next_attempt_at < now() - make_interval(secs => %s)""",
            [stale_after],
        )
        stalled = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """SELECT id FROM campaigns_frame WHERE campaign_id IS NULL AND state IN ('pending', 'sending')
               AND next_attempt_at < now() - make_interval(secs => %s) LIMIT 500""",
            [stale_after],
        )
        transactional = [row[0] for row in cursor.fetchall()]
        # A worker that died with a frame in flight just as its campaign was cancelled: nothing else finds it.
        cursor.execute(
            """SELECT f.id, f.campaign_id FROM campaigns_frame f JOIN campaigns_campaign c ON c.id = f.campaign_id
               WHERE c.state IN ('cancelled', 'failed') AND f.state = 'sending'
                 AND f.next_attempt_at < now() - make_interval(secs => %s) LIMIT 500""",
            [stale_after],
        )
        abandoned = cursor.fetchall()
    for frame_id, campaign_id in abandoned:
        frames_abandoned_close(frame_id=frame_id, campaign_id=campaign_id)
    restarted = []
    for campaign_id in stalled:
        if not any(slot_taken(campaign_id, slot) for slot in range(settings.DISPATCHERS_PER_CAMPAIGN)):
            dispatchers_start(campaign_id=campaign_id)
            restarted.append(campaign_id)
    for frame_id in transactional:
        frame_send_task.delay(frame_id)
    return restarted


def campaigns_prepare_lost(*, stale_after: float) -> list[int]:
    """Enqueue the prepare again of campaigns left `preparing` for `stale_after` seconds that no prepare is writing.

    A prepare holds its campaign's row (FOR NO KEY UPDATE) while it writes; one whose row is free did not start or
    died: its worker was killed (the broker gives its task back only after the visibility timeout and the next sweep
    of unacknowledged tasks, minutes later), or Redis restarted and lost the task. Nothing else started it again, and
    the campaign stayed `preparing`, nothing sent, for good. Preparing again is safe: members already written are
    skipped, and the frames of a share that committed are kept (prepare.campaign_prepare). Returns those enqueued."""
    from campaigns.tasks import campaign_prepare_task

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """SELECT id FROM campaigns_campaign WHERE state = 'preparing'
                 AND updated_at < now() - make_interval(secs => %s)
               ORDER BY id FOR NO KEY UPDATE SKIP LOCKED""",
            [stale_after],
        )
        idle = [row[0] for row in cursor.fetchall()]
    lost = [campaign_id for campaign_id in idle if debounce(f"prepare:{campaign_id}", PREPARE_REQUEUE_EVERY)]
    for campaign_id in lost:
        logger.warning("campaign %s was left preparing with no prepare running: preparing it again", campaign_id)
        campaign_prepare_task.delay(campaign_id)
    return lost


def frames_abandoned_close(*, frame_id: int, campaign_id: int) -> None:
    """A frame left `sending` by a dead worker after its campaign stopped: taken (only if no live worker holds
    it), marked uncertain, and its messages closed saying the provider may have them."""
    if not frames_claim(frame_id=frame_id):
        return
    try:
        Frame.objects.filter(pk=frame_id).update(state=Frame.State.PENDING, uncertain=True)
    finally:
        frames_unlock([frame_id])
    frames_close_after_stop(campaign_id=campaign_id)


def campaigns_hold_outside_window(*, now: datetime | None = None) -> list[int]:
    """Promotional campaigns still sending when their account's promotional window closes wait for it to open
    again (campaign_hold_for_window); the dispatchers, which look again every half minute, send them then. The
    dispatchers also check before each frame; this tick holds a campaign none is running for. Returns the
    campaigns that wait."""
    now = now or timezone.now()
    waiting = []
    promotional = Campaign.objects.filter(state=Campaign.State.SENDING, purpose=Campaign.Purpose.PROMOTIONAL)
    for campaign in promotional.select_related("account"):
        opening = promotional_window_closed_until(campaign=campaign, at=now)
        if opening is None:
            if campaign.state_reason.startswith(WINDOW_HOLD):  # it opened: say nothing more
                Campaign.objects.filter(
                    pk=campaign.pk, state=Campaign.State.SENDING, state_reason=campaign.state_reason
                ).update(state_reason="", updated_at=now)
            continue
        if campaign_hold_for_window(campaign_id=campaign.pk, opening=opening):
            waiting.append(campaign.pk)
    return waiting


def campaigns_expire_overdue(*, now: datetime | None = None) -> list[int]:
    """Past their send-by deadline, unsent messages expire; a campaign not yet launched fails (campaign_expire)."""
    now = now or timezone.now()
    overdue = Campaign.objects.filter(send_by__lte=now, state__in=EXPIRABLE_STATES).values_list("pk", flat=True)
    return [campaign_id for campaign_id in overdue if campaign_expire(campaign_id=campaign_id, now=now)]
