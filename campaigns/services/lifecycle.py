"""Campaign state transitions: one function each, guarded by a row lock, work enqueued after commit.

draft ──launch──▶ preparing ──▶ sending ──▶ completed
  │                  ▲             │ ▲
  └─schedule─▶ scheduled           pause/resume ▶ paused
scheduled ──send now──▶ preparing;  scheduled ──unschedule──▶ draft
(any unfinished state) ──cancel──▶ cancelled;  preparing/sending ──▶ failed
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import ratelimit
from campaigns.models import NOT_SENT, OUTCOME_UNKNOWN, UNFINISHED_STATES, Campaign, Frame
from campaigns.selectors import (
    IN_FLIGHT_STATUSES,
    campaign_preflight,
    message_id_last,
    promotional_window_closed_until,
    promotional_window_opening,
)
from campaigns.services.deadlocks import retry_on_deadlock
from campaigns.services.editing import deferred_reason, scheduled_reason
from campaigns.services.recipient_window import OPENING_KEY, ZONES_KEY
from config.times import zoned_time_shown

State = Campaign.State
logger = logging.getLogger("herald.lifecycle")


def _locked(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


# A person's pause or cancel waits this long for the campaign's row (seconds), then, if a prepare holds it, says so
# rather than wait for the whole prepare (_locked_unless_preparing).
PREPARING_WAIT = 2.0
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error when lock_timeout passes


def _locked_unless_preparing(campaign_id: int, action: str) -> Campaign:
    """The campaign, locked, for a person's pause or cancel. A prepare holds the campaign's row while it writes the
    messages (about 9 s a million recipients, longer on a busy database): waiting for it, the admin's page or the
    API call hung, and a web request could time out, leaving the operator unsure whether the pause or cancel took.
    After PREPARING_WAIT, a campaign still preparing is refused with a clear answer instead (nothing recorded, so
    nothing is lost: it is not paused or cancelled, and the operator knows); any other holder (the engine's brief
    locks) is waited for as before."""
    try:
        with transaction.atomic():  # a savepoint: a lock timeout rolls back to here, and its setting with it
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    [f"{int(PREPARING_WAIT * 1000)}ms"],
                )
                (previous, _) = cursor.fetchone()
            campaign = _locked(campaign_id)
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            return campaign
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
    if Campaign.objects.filter(pk=campaign_id, state=State.PREPARING).exists():
        raise ValidationError(
            {
                "state": f"The campaign is still preparing (writing a message per recipient), so it cannot be {action} "
                "yet: nothing has been sent. Try again in a few seconds."
            }
        )
    return _locked(campaign_id)


# ENQUEUE_ROBUSTLY: a launch or resume is committed before its task is enqueued. With the broker unreachable (Redis
# restarting), the enqueue raised after the commit: the person saw an error (a 500) for a launch that had taken, and
# the campaign waited with no task. The failure is logged instead, and beat's watchdog starts what was committed
# once the broker is back (schedule.dispatchers_watchdog: lost prepares, stalled dispatchers, unsent frames).


def _save_state(campaign: Campaign, state: str, reason: str = "", **fields) -> None:
    campaign.state = state
    campaign.state_reason = reason
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=["state", "state_reason", "updated_at", *fields])


def _message_ids_from(campaign: Campaign) -> dict:
    """As a campaign is launched, the least id its messages can have (Campaign.message_ids_from): it has none yet
    (a draft or a scheduled one), and they are written after this commits, so with greater ids than any message
    has now. Set here only: a prepare run again after one that failed part-way keeps the first run's."""
    if campaign.message_ids_from is not None:
        return {}
    return {"message_ids_from": message_id_last() + 1}


def _stopped(campaign_id: int) -> None:
    """Once the stop commits, the requests of frames claimed before it and still waiting for a token are not made
    (ratelimit.campaign_stopped_mark: on the database's clock, which times the claims).

    The stop is timed once committed, not by its transaction's `now()` (its start): until it commits, dispatchers
    read the campaign sending and claim frames, and a stop that waited for the campaign's row (a report's applier
    holds it a moment) or closed many messages (a cancel) let the frames claimed meanwhile go out after it."""
    transaction.on_commit(lambda: _stopped_mark(campaign_id))


def _stopped_mark(campaign_id: int) -> None:
    try:
        with connection.cursor() as cursor:  # the database's time now, not its transaction's start (`now()`)
            cursor.execute("SELECT extract(epoch FROM clock_timestamp())")
            (at,) = cursor.fetchone()
    except DatabaseError as exc:  # the stop itself is committed; dispatchers still stop between frames
        logger.warning("could not time campaign %s's stop for the requests waiting for a token: %s", campaign_id, exc)
        return
    ratelimit.campaign_stopped_mark(campaign_id, float(at))


# A run launched at once (a promotional one may then wait for its hours); beat's tick then names the next run.
FIRST_RUN_NOW = "Recurring; its first run is launched now."


@transaction.atomic
def campaign_launch(*, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Launch a draft or scheduled campaign: check it, then prepare now, or defer it to its send time
    or to the next opening of the promotional window."""
    from campaigns.tasks import campaign_prepare_task

    now = now or timezone.now()
    campaign = _locked(campaign_id)
    if campaign.state not in (State.DRAFT, State.SCHEDULED):
        raise ValidationError({"state": f"A {campaign.get_state_display()} campaign cannot be launched."})
    if errors := campaign_preflight(campaign=campaign, at=now).errors():
        raise ValidationError(errors)
    if campaign.recurrence:
        # Never sent itself: at each send time beat's tick sends a run of it (schedule.campaigns_launch_due), the
        # first at once when it has no send time or one already past.
        from campaigns.tasks import campaigns_tick_task

        first = campaign.send_at or now
        reason = FIRST_RUN_NOW if first <= now else scheduled_reason(at=first, recurring=True)
        _save_state(campaign, State.SCHEDULED, reason, send_at=first)
        if first <= now:
            transaction.on_commit(campaigns_tick_task.delay, robust=True)  # else beat's next tick (ENQUEUE_ROBUSTLY)
        return campaign
    if campaign.send_at and campaign.send_at > now:
        _save_state(campaign, State.SCHEDULED, scheduled_reason(at=campaign.send_at))
        return campaign
    opening = promotional_window_opening(campaign=campaign, at=now)
    if opening is not None:
        _save_state(campaign, State.SCHEDULED, deferred_reason(opening=opening), send_at=opening)
        return campaign
    _save_state(campaign, State.PREPARING, "", launched_at=now, consecutive_failures=0, **_message_ids_from(campaign))
    transaction.on_commit(lambda: campaign_prepare_task.delay(campaign.id), robust=True)  # ENQUEUE_ROBUSTLY
    return campaign


SEND_NOW_RECURRING = (
    "A recurring campaign sends a run at each of its send times: to send a run now, set its send time to now "
    "(the next runs follow from then)."
)


def send_now_refusal(campaign: Campaign) -> dict[str, str]:
    """Why a campaign cannot be sent now, on its field ({} if it can): only a scheduled one, not a recurring one."""
    if campaign.state != State.SCHEDULED:
        advice = ": launch it" if campaign.state == State.DRAFT else ""
        return {"state": f"A {campaign.get_state_display()} campaign cannot be sent now{advice}."}
    if campaign.recurrence:
        return {"recurrence": SEND_NOW_RECURRING}
    return {}


@transaction.atomic
def campaign_send_now(*, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Launch a scheduled campaign now instead of at its send time: its send time is cleared and it is launched
    (campaign_launch: the same checks, and a promotional one still waits for its window). Refused, nothing
    changed, when the launch refuses it."""
    campaign = _locked(campaign_id)
    if refusal := send_now_refusal(campaign):
        raise ValidationError(refusal)
    campaign.send_at = None
    campaign.save(update_fields=["send_at", "updated_at"])
    return campaign_launch(campaign_id=campaign_id, now=now)  # a refusal rolls the cleared send time back


UNSCHEDULED_BY_USER = "Unscheduled by a user: nothing is sent until you launch it."


@transaction.atomic
def campaign_unschedule(*, campaign_id: int) -> Campaign:
    """A scheduled campaign back to draft: beat no longer launches it. Its send time is kept, so that launching it
    again schedules it for that time (or sends it now, once that time has passed)."""
    campaign = _locked(campaign_id)
    if campaign.state != State.SCHEDULED:
        raise ValidationError({"state": f"A {campaign.get_state_display()} campaign cannot be unscheduled."})
    _save_state(campaign, State.DRAFT, UNSCHEDULED_BY_USER)
    return campaign


@transaction.atomic
def campaign_pause(*, campaign_id: int, reason: str = "Paused by a user.", by_user: bool = True) -> Campaign:
    """Stop sending between frames; frames in flight finish. A person's pause of a campaign still preparing may be
    refused (_locked_unless_preparing); the engine's (`by_user=False`) waits for the prepare."""
    campaign = _locked_unless_preparing(campaign_id, "paused") if by_user else _locked(campaign_id)
    if campaign.state not in (State.SENDING, State.PREPARING):
        raise ValidationError({"state": f"A {campaign.get_state_display()} campaign cannot be paused."})
    _save_state(campaign, State.PAUSED, reason)
    _stopped(campaign.id)
    return campaign


def campaign_pause_on_trouble(*, campaign_id: int, reason: str) -> None:
    """Pause on the engine's behalf, saying why; a campaign someone already paused or cancelled stays as it is."""
    with contextlib.suppress(ValidationError):
        campaign_pause(campaign_id=campaign_id, reason=reason[:500], by_user=False)


@transaction.atomic
def campaign_resume(*, campaign_id: int) -> Campaign:
    """Send again from where it stopped; with smooth sending, at its pace: the frames left keep their spacing, the
    first of them due now, rather than all those that fell due during the pause going out at once. A promotional
    campaign resumed while its window is closed waits for it to open (frames_hold_until)."""
    from campaigns.tasks import campaign_prepare_task

    campaign = _locked(campaign_id)
    if campaign.state != State.PAUSED:
        raise ValidationError({"state": f"A {campaign.get_state_display()} campaign cannot be resumed."})
    if not campaign.account.is_active:
        raise ValidationError(
            {"account": f"The provider account {campaign.account.name} is not active: activate it to resume."}
        )
    prepared = campaign.audience_size is not None
    reason = ""
    if prepared:
        now = timezone.now()
        opening = promotional_window_closed_until(campaign=campaign, at=now)
        if opening is not None and frames_hold_until(campaign_id=campaign.id, opening=opening):
            reason = window_hold_reason(opening)
        elif campaign.smooth_minutes:
            _frames_pace_from_now(campaign_id=campaign.id)
    _save_state(campaign, State.SENDING if prepared else State.PREPARING, reason, consecutive_failures=0)
    if prepared:
        transaction.on_commit(lambda: dispatchers_start(campaign_id=campaign.id), robust=True)  # ENQUEUE_ROBUSTLY
    else:
        transaction.on_commit(lambda: campaign_prepare_task.delay(campaign.id), robust=True)
    return campaign


WINDOW_HOLD = "Outside the promotional window"


def window_hold_reason(opening: datetime) -> str:
    return f"{WINDOW_HOLD}: sending resumes at {zoned_time_shown(opening)}."


def frames_hold_until(*, campaign_id: int, opening: datetime) -> bool:
    """Move a campaign's frames still to send on together, so that the first is due at `opening` (when its
    promotional window opens): they keep their order and smooth sending's spacing. Frames in doubt too, and one a
    dead worker left `sending`: recovery may send them again (Octopush), and does so at the opening (past the
    vendor's de-duplication window, it does not send again; recovery.py). A frame in flight that comes back for a
    retry is held again by its dispatcher's check before the next frame. Returns whether any frame waits."""
    with connection.cursor() as cursor:
        # Frames held for their recipients' own window are due when it opens, the account's open then too: they
        # keep their time (recipient_window.py).
        cursor.execute(
            """UPDATE campaigns_frame f SET next_attempt_at = f.next_attempt_at + (%s - waiting.first_due)
               FROM (SELECT min(next_attempt_at) AS first_due FROM campaigns_frame
                     WHERE campaign_id = %s AND state IN ('pending', 'sending') AND NOT response ? %s) waiting
               WHERE f.campaign_id = %s AND f.state IN ('pending', 'sending') AND waiting.first_due < %s
                 AND NOT f.response ? %s""",
            [opening, campaign_id, ZONES_KEY, campaign_id, opening, ZONES_KEY],
        )
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM campaigns_frame WHERE campaign_id = %s AND state IN ('pending', 'sending'))",
            [campaign_id],
        )
        return cursor.fetchone()[0]


def campaign_hold_for_window(*, campaign_id: int, opening: datetime) -> bool:
    """A sending campaign whose promotional window has closed waits for `opening`: its waiting frames move on to
    it (frames_hold_until) and it says when it resumes. False when it no longer sends or nothing waits."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state != State.SENDING:
            return False
        if not frames_hold_until(campaign_id=campaign_id, opening=opening):
            return False  # nothing waits to be sent: what is left is reports
        if campaign.state_reason != window_hold_reason(opening):
            _save_state(campaign, State.SENDING, window_hold_reason(opening))
    return True


# The frames a smoothly sent campaign paces: its own, and those held for their recipients' own window, each opening's
# at its own pace from that opening (recipient_window._paced_dues); `pace` names which (its own: '').
_PACED_FRAMES = f"""
    SELECT id, next_attempt_at, coalesce(response ->> '{OPENING_KEY}', '') AS pace FROM campaigns_frame
    WHERE campaign_id = %(campaign)s AND state = 'pending' AND NOT uncertain
      AND (NOT response ? '{ZONES_KEY}' OR response ? '{OPENING_KEY}')"""


def _frames_pace_from_now(*, campaign_id: int, late_after: float = 0.0) -> int:
    """Move a campaign's waiting frames on together, so that the first is due now, if it was due more than
    `late_after` seconds before; the frames held for one opening of their recipients' window likewise, apart from
    the others (they keep their own pace, from when they were due). A frame in doubt is left to recovery, whose
    timings it carries. Returns the number of frames moved."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH paced AS ({_PACED_FRAMES}), waiting AS (
                    SELECT pace, min(next_attempt_at) AS first_due FROM paced GROUP BY pace
                )
                UPDATE campaigns_frame f SET next_attempt_at = f.next_attempt_at + (now() - waiting.first_due)
                FROM paced JOIN waiting ON waiting.pace = paced.pace
                WHERE f.id = paced.id AND waiting.first_due < now() - make_interval(secs => %(late)s)""",
            {"campaign": campaign_id, "late": late_after},
        )
        return cursor.rowcount


# A smoothly sent campaign whose next frame is this late (seconds) fell behind its pace: no worker ran (a worker or
# the broker was down, the watchdog restarted it), or a long prepare committed its frames late.
SMOOTH_LATE_AFTER = 60.0


def frames_pace_catch_up(*, campaign_id: int, late_after: float = SMOOTH_LATE_AFTER) -> bool:
    """A smoothly sent campaign whose frames fell behind goes on at its pace from now, as after a pause (resume):
    not in one burst of every frame that fell due while nothing sent. Its dispatchers ask before each frame; the
    campaign's row lock keeps two from both moving the frames on. Returns whether they were moved."""
    with connection.cursor() as cursor:  # asked without a lock: it is seldom late
        cursor.execute(
            f"SELECT min(next_attempt_at) < now() - make_interval(secs => %(late)s) FROM ({_PACED_FRAMES}) paced",
            {"campaign": campaign_id, "late": late_after},
        )
        (late,) = cursor.fetchone()
    if not late:
        return False
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state != State.SENDING or not campaign.smooth_minutes:
            return False
        return _frames_pace_from_now(campaign_id=campaign_id, late_after=late_after) > 0


@retry_on_deadlock  # against a report's applier: messages_close_unsent
@transaction.atomic
def campaign_cancel(*, campaign_id: int) -> Campaign:
    """Stop for good: unsent messages fail with reason "cancelled"; frames in flight finish. Refused, saying so, while
    a prepare still writes the messages for longer than PREPARING_WAIT (_locked_unless_preparing)."""
    campaign = _locked_unless_preparing(campaign_id, "cancelled")
    if campaign.state not in UNFINISHED_STATES:
        raise ValidationError({"state": f"A {campaign.get_state_display()} campaign cannot be cancelled."})
    messages_close_unsent(campaign_id=campaign.id, status="failed", reason="cancelled before sending")
    _save_state(campaign, State.CANCELLED, "Cancelled by a user.", completed_at=timezone.now())
    _stopped(campaign.id)
    return campaign


@retry_on_deadlock  # against a report's applier: messages_close_unsent
@transaction.atomic
def campaign_fail(*, campaign_id: int, reason: str) -> Campaign:
    """Stop because something is wrong that a person must fix (said in `reason`)."""
    campaign = _locked(campaign_id)
    if campaign.state in UNFINISHED_STATES:
        messages_close_unsent(campaign_id=campaign.id, status="failed", reason=reason[:255])
        _save_state(campaign, State.FAILED, reason[:500], completed_at=timezone.now())
        _stopped(campaign.id)
    return campaign


EXPIRABLE_STATES = (State.SCHEDULED, State.PREPARING, State.SENDING, State.PAUSED)


def campaign_expire(*, campaign_id: int, now: datetime | None = None) -> bool:
    """Past its send-by deadline, a campaign's unsent messages expire (frames in flight finish) and a campaign not yet
    launched fails; then it completes once nothing is open. Beat's tick asks each minute (schedule.py) and a
    dispatcher before each frame (dispatch.py), so nothing goes out after the deadline even between ticks. Returns
    whether it was past its deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state not in EXPIRABLE_STATES or not campaign.send_by or campaign.send_by > now:
            return False
        messages_close_unsent(campaign_id=campaign.pk, status="expired", reason="send-by deadline passed")
        if campaign.state == State.SCHEDULED:
            _save_state(campaign, State.FAILED, "The send-by deadline passed before it was launched.", completed_at=now)
        elif campaign.state == State.PAUSED:
            _save_state(campaign, State.SENDING, "Send-by deadline passed; finishing what was sent.")
    campaign_complete_if_done(campaign_id=campaign_id)
    return True


def frames_close_after_stop(*, campaign_id: int) -> int:
    """Close the frames that came back to `pending` after their campaign was cancelled or failed.

    Cancel and fail close only frames waiting to be sent, and leave one in flight to finish. If it comes back
    instead (a retry, a deferral, a dead worker), nothing would ever send it: its messages are closed here as
    the cancel would have, an uncertain frame's saying the provider may have it. The campaign's row lock
    orders this after a cancel that is still committing."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state == State.CANCELLED:
            reason = "cancelled before sending"
        elif campaign.state == State.FAILED:
            reason = campaign.state_reason[:255]
        else:
            return 0
        return messages_close_unsent(campaign_id=campaign.id, status="failed", reason=reason)


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign completed once no message can change any more (all final or expired)."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state != State.SENDING:
            return False
        open_count = sum(int(campaign.counters.get(s, 0)) for s in IN_FLIGHT_STATUSES)
        if open_count > 0 or Frame.objects.filter(campaign_id=campaign.id, state__in=["pending", "sending"]).exists():
            return False
        _save_state(campaign, State.COMPLETED, "", completed_at=timezone.now())
    return True


def messages_close_unsent(*, campaign_id: int, status: str, reason: str) -> int:
    """Finalise the messages of frames still waiting (frames in flight finish); those frames are cancelled. They
    were never sent: error code NOT_SENT, counted in the campaign's `not_sent`, in no delivery rate. Those of a
    frame whose earlier answer was lost may have reached the provider: OUTCOME_UNKNOWN, a failure like any other.

    A campaign not yet prepared (still preparing, or paused after a prepare failed) can hold messages only
    if a prepare failed half-way (its shares commit one by one: prepare.py), some pending without a frame;
    they are finalised too. Its counters are set when preparing ends, so those messages were never counted:
    they are counted afresh instead of moved."""
    from campaigns.services.counters import counters_recount, moved_counters_sql

    unprepared = Campaign.objects.filter(pk=campaign_id, audience_size__isnull=True).exists()
    # Once prepared, every pending message is in a frame, and the messages are found from the closed frames.
    frames_join = "LEFT JOIN" if unprepared else "JOIN"
    frameless = "OR m.frame_id IS NULL" if unprepared else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH closed_frames AS (
                UPDATE campaigns_frame SET state = 'cancelled', finished_at = now()
                WHERE campaign_id = %s AND state = 'pending' RETURNING id, uncertain
            ), moved AS (
                UPDATE campaigns_message m SET status = %s, updated_at = now(), final_at = now(),
                    error_code = CASE WHEN f.uncertain THEN %s ELSE %s END,
                    reason = CASE WHEN f.uncertain THEN left(%s || '; an earlier attempt''s answer was lost, '
                                  'so the provider may have it', 255) ELSE %s END
                FROM campaigns_message old {frames_join} closed_frames f ON f.id = old.frame_id
                WHERE old.id = m.id AND m.campaign_id = %s AND m.status IN ('pending', 'queued')
                  AND (f.id IS NOT NULL {frameless})
                RETURNING m.campaign_id, old.status AS old_status, m.status AS new_status, m.error_code
            ) {moved_counters_sql("moved")}
            SELECT count(*), count(*) FILTER (WHERE error_code = %s) FROM moved
            """,
            [campaign_id, status, OUTCOME_UNKNOWN, NOT_SENT, reason, reason, campaign_id, NOT_SENT],
        )
        closed, not_sent = cursor.fetchone()
    if unprepared:
        counters_recount(campaign_id=campaign_id)
    elif not_sent:  # (the statement's counters already moved this row: a second update of it must follow)
        Campaign.objects.filter(pk=campaign_id).update(not_sent=F("not_sent") + not_sent)
    return closed


def dispatchers_start(*, campaign_id: int) -> None:
    """Enqueue one dispatcher per slot; a slot already held by a live dispatcher makes the new one exit."""
    from django.conf import settings

    from campaigns.tasks import campaign_dispatch_task

    for slot in range(settings.DISPATCHERS_PER_CAMPAIGN):
        campaign_dispatch_task.delay(campaign_id, slot)
