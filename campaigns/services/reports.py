"""Delivery reports and opt-outs: stored as received, then applied in batches by one function.

Webhooks and polls both end in `status_events_store` (one COPY, so a webhook answers fast; the
events are queued in PendingStatusEvent) and `status_events_apply`, which matches a batch of
events to messages, records opt-outs, moves each message to its best reported status (never
backwards: herald_status_rank), keeps the campaign counters current, and marks every event with
its outcome. Duplicates and
out-of-order reports are therefore harmless. An event that matches no message yet (a report
faster than our record of the send) is retried a few times before it is marked unmatched.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns import ratelimit
from campaigns.models import NO_REPORT, OUTCOME_UNKNOWN, Frame, Message, StatusEvent
from campaigns.services.counters import frames_reopen_sql, moved_counters_sql
from campaigns.services.deadlocks import retry_on_deadlock
from campaigns.services.side_by_side import on_own_connections
from providers.backends import get_backend
from providers.backends.base import (
    FINAL_STATUSES,
    BackendError,
    MessageRef,
    PollQuery,
    StatusUpdate,
    is_account_problem,
)
from providers.models import ProviderAccount

logger = logging.getLogger("herald.reports")

APPLY_LOCK = 0x48455250  # "HERP": applier slot n takes (APPLY_LOCK, n); apart from dispatch's frame locks ("HERA")
MATCH_ATTEMPTS = 5  # an unmatched event is retried this many times (10 s apart, growing) before giving up
FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES))
UUID_RE = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


EVENT_COLUMNS = (
    "account_id", "source", "kind", "provider_message_id", "external_ref", "address", "ticket", "raw_status",
    "status", "error_code", "error_text", "optout_scope", "optout_value", "payload", "occurred_at", "outcome",
    "match_attempts",
)  # fmt: skip


def status_events_store(*, account: ProviderAccount, updates: list[StatusUpdate], source: str) -> int:
    """Store reports as received, in one COPY, and queue them (PendingStatusEvent); `status_events_apply` applies them.

    COPY, not an INSERT: Django's bulk INSERT quotes every value into the statement in Python, which cost
    0.9 ms a report, ten times parsing the webhook (bench/bench_dlr.py)."""
    if not updates:
        return 0
    columns = ", ".join(EVENT_COLUMNS)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # The events' ids first, queued as they are taken (due now), then the events under those ids.
        cursor.execute(
            """INSERT INTO campaigns_pendingstatusevent (event_id, due_at)
               SELECT nextval(pg_get_serial_sequence('campaigns_statusevent', 'id')), now()
               FROM generate_series(1, %s)
               RETURNING event_id""",
            [len(updates)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY campaigns_statusevent (id, {columns}) FROM STDIN") as copy:
            for event_id, u in zip(ids, updates, strict=True):
                row = (
                    event_id, account.pk, source, str(u.kind), u.provider_message_id[:100], u.external_ref[:100],
                    u.address[:254], u.ticket[:100], u.raw_status[:64], str(u.status) if u.status else "", u.code[:32],
                    u.text[:255], u.optout_scope[:10], u.optout_value[:150], json.dumps(u.payload), _storable_time(u.occurred_at), "", 0,
                )  # fmt: skip
                if "\x00" in "".join(row[3:14]) or "\\u0000" in row[14]:
                    row = _without_nul(row)
                copy.write_row(row)
    return len(updates)


def _storable_time(moment: datetime | None) -> datetime | None:
    """A report's time in UTC, or None (unknown) when it has none that PostgreSQL can hold: a vendor's date with
    an offset past ±15:59 ("…-23:00"), or one at the edge of the calendar that is no date in UTC, failed the whole
    COPY, and its webhook answered 500 (and the vendor sent the reports again, and again)."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")  # \u0000 in JSON text, not \\u0000 (a backslash, then text)


def _without_nul(row: tuple) -> tuple:
    """An event's row without NUL characters, which PostgreSQL's text and jsonb cannot hold: a report carrying one
    (in its text, or anywhere in its payload) failed the whole COPY, and its webhook answered 500. Rows are
    checked first with two scans in C; this runs only for a row that has one."""
    texts = tuple(value.replace("\x00", "") for value in row[3:14])
    return (*row[:3], *texts, _ESCAPED_NUL.sub(r"\1", row[14]), *row[15:])


def status_events_receive(*, account: ProviderAccount, updates: list[StatusUpdate]) -> int:
    """A webhook's reports: store them, note when the account last reported, apply them soon."""
    from campaigns.tasks import status_events_apply_soon

    with transaction.atomic():
        stored = status_events_store(account=account, updates=updates, source=StatusEvent.Source.WEBHOOK)
        if time.monotonic() - _last_dlr_noted.get(account.pk, -60.0) > 5:  # one UPDATE per account every 5 s
            _last_dlr_noted[account.pk] = time.monotonic()
            ProviderAccount.objects.filter(pk=account.pk).update(last_dlr_at=timezone.now())
        if stored:
            transaction.on_commit(status_events_apply_soon)
    return stored


_last_dlr_noted: dict[int, float] = {}


@dataclass
class ApplyResult:
    events: int = 0
    applied: int = 0
    opt_outs: int = 0
    campaigns: tuple[int, ...] = ()
    doubted_frames: tuple[int, ...] = ()  # frames given up in doubt that reports which found no message may prove
    # Stopped with reports perhaps still waiting: every applier slot was taken, or the time ran out after a batch
    # that found some. Whoever applied should then come again soon (tasks.status_events_apply_task).
    unfinished: bool = False


def status_events_apply(*, limit: int | None = None) -> ApplyResult:
    """Apply one batch of stored events (at most `limit`); returns what happened.

    At most STATUS_APPLY_CONNECTIONS batches are applied at once (one advisory lock per applier slot); when every
    slot was taken the result is empty and `unfinished`. Appliers side by side take disjoint events (SKIP LOCKED)
    and lock what they share in one order (messages, then campaigns, each by id), so that they wait for each
    other rather than deadlock. A deadlock can still come from elsewhere (a dispatcher recording a frame
    whose reports are being applied, a cancel); the batch is then rolled back whole and tried again
    (services.deadlocks)."""
    result = _apply_batch(limit or settings.STATUS_APPLY_BATCH)
    if result.doubted_frames:
        from campaigns.services.recovery import frames_settle_by_late_reports

        frames_settle_by_late_reports(frame_ids=list(result.doubted_frames))
    for campaign_id in result.campaigns:
        from campaigns.services.lifecycle import campaign_complete_if_done

        campaign_complete_if_done(campaign_id=campaign_id)
    return result


def apply_connections() -> int:
    return max(1, settings.STATUS_APPLY_CONNECTIONS)


@retry_on_deadlock
@transaction.atomic
def _apply_batch(limit: int) -> ApplyResult:
    with connection.cursor() as cursor:
        for slot in range(apply_connections()):
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [APPLY_LOCK, slot])
            if cursor.fetchone()[0]:
                break
        else:
            return ApplyResult(unfinished=True)
        cursor.execute(APPLY_SQL, [limit])
        events, applied, campaigns, opt_outs, doubted_frames = cursor.fetchone()
    return ApplyResult(events, applied, opt_outs, tuple(campaigns), tuple(doubted_frames))


# One statement applies a batch, so that each event row is written once (matching it in a statement of its own
# wrote every event twice: bench/bench_dlr.py), and heap-only (models.StatusEvent). Its parts, in order:
#   claimed  the next events due in the queue, oldest first, whose queue row no other session holds (SKIP
#            LOCKED): another applier, or a rematch (below), which locks an event's queue row before the event.
#   batch    their events, unless already applied, locked (no rematch holds one whose queue row is claimed).
#   matched  each event's message: by our ref; else by the vendor's id and the number; else by the vendor's id;
#            else, after a lost ticket (Octopush 120), the newest message to that number still waiting for a
#            report without a vendor id. Each lookup runs only when the ones before it found nothing. `retry`:
#            a status report that found no message is tried again, MATCH_ATTEMPTS times (10 s apart, growing).
#   dequeued, requeued  the claimed events leave the queue, except those tried again, due again later.
#   opt_outs the opt-outs, as suppressions (the message's address when the report names none).
#   ev … moved  each message moved to its best reported status if that is forward (herald_status_rank);
#            the counters follow (moved_counters_sql), and the frame of a message that waits again (a guessed
#            failure overturned) is open again (frames_reopen_sql).
#   marked   every event marked with its message and outcome (unmatched, but not applied, while tried again).
#   and the frames given up in doubt that a status report which found no message may belong to (a message on its
#   number failed "outcome unknown" without a vendor id): status_events_apply hands them to recovery, whose
#   reports may now prove them (recovery.frames_settle_by_late_reports).
APPLY_SQL = f"""
    WITH claimed AS MATERIALIZED (
        SELECT q.event_id FROM campaigns_pendingstatusevent q
        WHERE q.due_at <= now()
        ORDER BY q.event_id LIMIT %s FOR UPDATE SKIP LOCKED
    ), batch AS MATERIALIZED (
        SELECT e.id, e.account_id, e.kind, e.message_id, e.provider_message_id, e.external_ref, e.address, e.ticket,
               e.raw_status, e.status, e.error_code, e.error_text, e.optout_scope, e.optout_value, e.occurred_at,
               e.received_at, e.match_attempts, e.external_ref ~ '{UUID_RE}' AS ref_is_uuid
        FROM campaigns_statusevent e
        -- (a lookup by id each: a join read the events' primary key from the first event ever stored)
        WHERE e.id = ANY(ARRAY(SELECT event_id FROM claimed)) AND e.applied_at IS NULL
        FOR NO KEY UPDATE OF e  -- (read as a rematch that committed since this statement began left it)
    ), matched AS (
        SELECT *, (kind = 'status' AND mid IS NULL AND match_attempts + 1 < {MATCH_ATTEMPTS}) AS retry FROM (
        SELECT b.*, coalesce(b.message_id, by_ref.id, by_vendor_id.id, by_ticket.id, by_number.id) AS mid
        FROM batch b
        LEFT JOIN LATERAL (
            SELECT m.id FROM campaigns_message m
            WHERE b.message_id IS NULL AND b.ref_is_uuid AND m.account_id = b.account_id
              AND m.external_ref = CASE WHEN b.ref_is_uuid THEN b.external_ref::uuid END
            LIMIT 1  -- (a lookup per event by the unique index, never a join over every message)
        ) by_ref ON true
        LEFT JOIN LATERAL (
            SELECT m.id FROM campaigns_message m
            WHERE b.message_id IS NULL AND by_ref.id IS NULL AND b.provider_message_id <> '' AND b.address <> ''
              AND m.account_id = b.account_id AND m.provider_message_id = b.provider_message_id
              AND m.address = b.address
            LIMIT 1
        ) by_vendor_id ON true
        LEFT JOIN LATERAL (
            SELECT m.id FROM campaigns_message m
            WHERE b.message_id IS NULL AND by_ref.id IS NULL AND b.provider_message_id <> '' AND b.address = ''
              AND m.account_id = b.account_id AND m.provider_message_id = b.provider_message_id
              AND m.provider_message_id <> ''  -- (lets the partial index on vendor ids serve)
            LIMIT 1
        ) by_ticket ON true
        LEFT JOIN LATERAL (
            SELECT m.id FROM campaigns_message m
            WHERE b.message_id IS NULL AND by_ref.id IS NULL AND by_vendor_id.id IS NULL AND by_ticket.id IS NULL
              AND b.kind = 'status' AND b.address <> '' AND b.ticket <> ''
              AND m.account_id = b.account_id AND m.address = b.address AND m.provider_message_id = ''
              AND m.status IN ('submitted', 'sent')
            ORDER BY m.id DESC LIMIT 1
        ) by_number ON true
        ) found
    ), dequeued AS (
        DELETE FROM campaigns_pendingstatusevent q
        WHERE q.event_id = ANY(ARRAY(SELECT event_id FROM claimed EXCEPT SELECT id FROM matched WHERE retry))
    ), requeued AS (
        UPDATE campaigns_pendingstatusevent q
        SET due_at = b.received_at + make_interval(secs => 10 * (b.match_attempts + 1))
        FROM matched b WHERE q.event_id = b.id AND b.retry
    ), opt_outs AS (
        INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
        SELECT DISTINCT ON (address, scope, value) address, scope, value, 'provider', reason, now() FROM (
            -- (an e-mail in lower case, as Herald stores and compares them: "Asha@Example.com" suppressed no one)
            SELECT CASE WHEN b.address LIKE '%%@%%' THEN lower(b.address)
                        ELSE coalesce(nullif(b.address, ''), m.address) END AS address,
                   CASE WHEN b.optout_scope IN ('channel', 'sender', 'tag', 'service') AND b.optout_value <> ''
                        THEN b.optout_scope ELSE 'all' END AS scope,
                   CASE WHEN b.optout_scope IN ('channel', 'sender', 'tag', 'service') AND b.optout_value <> ''
                        THEN b.optout_value ELSE '' END AS value,
                   left('opt-out reported by ' || a.name || coalesce(': ' || nullif(b.raw_status, ''), ''), 255)
                       AS reason
            FROM matched b
            JOIN providers_provideraccount a ON a.id = b.account_id
            LEFT JOIN campaigns_message m ON m.id = b.mid
            WHERE b.kind = 'opt_out'
        ) o WHERE address IS NOT NULL AND address <> ''
        ON CONFLICT (address, scope, value) DO NOTHING
        RETURNING 1
    ), ev AS (
        SELECT DISTINCT ON (b.mid) b.id AS event_id, b.mid AS message_id, b.status, b.provider_message_id, b.ticket,
               b.error_code, b.error_text, b.raw_status, b.occurred_at
        FROM matched b
        WHERE b.kind = 'status' AND b.mid IS NOT NULL AND b.status <> ''
        ORDER BY b.mid, herald_status_rank(b.status) DESC, b.occurred_at DESC NULLS LAST, b.id DESC
    ), locked AS (
        -- Each message locked with its report in one row: joining two CTEs (no index between them) made
        -- PostgreSQL compare every pair when it misjudged their sizes (5,000 reports: 25 M pairs, 9 s).
        SELECT m.id, m.status AS old_status, m.error_code = '{OUTCOME_UNKNOWN}' AS guessed,
               (m.status = 'expired' AND m.error_code = '{NO_REPORT}' AND ev.status IN ({FINAL_SQL})) AS unreported,
               ev.*
        FROM campaigns_message m JOIN ev ON ev.message_id = m.id
        ORDER BY m.id FOR UPDATE OF m
    ), moved AS (
        UPDATE campaigns_message m SET
            status = ev.status,
            provider_message_id = CASE WHEN m.provider_message_id = ''
                                       THEN left(coalesce(nullif(ev.provider_message_id, ''), ev.ticket), 100)
                                       ELSE m.provider_message_id END,
            error_code = CASE WHEN ev.error_code <> '' OR ev.guessed OR ev.unreported THEN ev.error_code
                              ELSE m.error_code END,
            reason = CASE WHEN ev.status IN ('rejected', 'undelivered', 'expired', 'failed')
                          THEN left(coalesce(nullif(ev.error_text, ''), ev.raw_status), 255)
                          WHEN ev.guessed OR ev.unreported THEN '' ELSE m.reason END,
            final_at = CASE WHEN ev.unreported THEN coalesce(ev.occurred_at, now())
                            WHEN ev.status IN ({FINAL_SQL}) THEN coalesce(m.final_at, ev.occurred_at, now())
                            ELSE m.final_at END,
            -- (a failure Herald had only guessed was never recorded as accepted; expiry counts from this)
            submitted_at = coalesce(m.submitted_at, ev.occurred_at, now()),
            updated_at = now()
        FROM locked ev
        WHERE m.id = ev.id
          AND (herald_status_rank(ev.status) > herald_status_rank(ev.old_status) OR ev.guessed OR ev.unreported)
        RETURNING ev.event_id, m.campaign_id, m.frame_id, ev.old_status, m.status AS new_status
    ) {moved_counters_sql("moved")}
    {frames_reopen_sql("moved")}
    , marked AS (
        UPDATE campaigns_statusevent e SET
            message_id = b.mid,
            match_attempts = e.match_attempts + (b.mid IS NULL AND e.kind = 'status')::int,
            applied_at = CASE WHEN b.retry THEN NULL ELSE now() END,
            outcome = CASE WHEN e.kind = 'opt_out' THEN 'opt_out'
                           WHEN e.kind <> 'status' OR e.status = '' THEN 'unknown'
                           WHEN b.mid IS NULL THEN 'unmatched'
                           WHEN e.id IN (SELECT event_id FROM moved) THEN 'applied' ELSE 'ignored' END
        FROM matched b WHERE e.id = b.id
        RETURNING e.id
    )
    SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM moved),
           coalesce((SELECT array_agg(DISTINCT campaign_id) FROM moved WHERE campaign_id IS NOT NULL), '{{}}'),
           (SELECT count(*) FROM opt_outs),
           -- The frames given up in doubt (OUTCOME_UNKNOWN, no vendor id) to which a report that found no message
           -- may belong: by its number, one lookup each (the account's numbers index), for the reports missed only.
           coalesce((SELECT array_agg(DISTINCT doubted.frame_id) FROM matched b
                     CROSS JOIN LATERAL (
                         SELECT m.frame_id FROM campaigns_message m
                         WHERE m.account_id = b.account_id AND m.address = b.address AND m.provider_message_id = ''
                           AND m.status = 'failed' AND m.error_code = '{OUTCOME_UNKNOWN}' AND m.frame_id IS NOT NULL
                     ) doubted
                     WHERE b.mid IS NULL AND b.kind = 'status' AND b.ticket <> '' AND b.address <> ''), '{{}}')
"""


def status_events_apply_all(*, budget: float = 20.0) -> ApplyResult:
    """Apply batches until none is left or `budget` seconds pass, on STATUS_APPLY_CONNECTIONS connections.

    One batch is one statement, which PostgreSQL runs on one core; appliers side by side keep more cores busy
    (bench/bench_dlr.py). Inside a transaction (tests) batches run one after another on its connection."""
    deadline = time.monotonic() + budget
    appliers = 1 if connection.in_atomic_block else apply_connections()
    if appliers == 1:
        return _apply_until_done(deadline)
    return _sum_results(on_own_connections(_apply_until_done, [(deadline,)] * appliers, name="apply"))


def _apply_until_done(deadline: float) -> ApplyResult:
    results = []
    while time.monotonic() < deadline:
        result = status_events_apply()
        results.append(result)
        # Until a batch comes back empty, not merely short: a webhook's trigger that found every applier at work
        # (slots taken) gave up, and its reports, stored 0.5 s before, are left for this loop to see.
        if not result.events:
            return _sum_results(results)
    return replace(_sum_results(results), unfinished=True)  # the time ran out with reports perhaps still waiting


def _sum_results(results: list[ApplyResult]) -> ApplyResult:
    return ApplyResult(
        sum(r.events for r in results),
        sum(r.applied for r in results),
        sum(r.opt_outs for r in results),
        tuple(sorted({c for r in results for c in r.campaigns})),
        unfinished=any(r.unfinished for r in results),
    )


# --- Reports that found no message: a frame settled late ---------------------------------------------
#
# A vendor whose reports name only its own ticket and the number (Octopush: one ticket per request) reports a
# frame whose answer was lost while its messages are still `pending`: those reports find no message, retry, and
# give up (`unmatched`). The frame is settled later (a resend answered 120, past the vendor's de-duplication
# window, or when its reports come after it was given up in doubt); these two functions find its reports again
# among those that gave up, by number, from when the frame was in doubt.

_UNMATCHED_FOR_NUMBERS = """
    SELECT e.id FROM campaigns_statusevent e
    WHERE e.match_attempts > 0 AND e.outcome = 'unmatched' AND e.account_id = %(account)s
      AND e.address = ANY(%(numbers)s)
      AND e.kind = 'status' AND e.message_id IS NULL AND e.ticket <> '' AND e.received_at >= %(since)s"""


def status_reports_ticket_of_frame(*, account_id: int, numbers: list[str], since, list_name: str) -> str:
    """The vendor's ticket for a frame whose answer was lost, proven by reports that gave up matching: the one
    ticket among the reports on the frame's numbers since `since`, with the frame's list name (Octopush echoes
    it; none for none), that no message of Herald's has and whose unmatched reports name no other number.
    "" when no ticket, or more than one, qualifies."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT e.ticket FROM campaigns_statusevent e
                WHERE e.id IN ({_UNMATCHED_FOR_NUMBERS})
                  AND coalesce(e.payload->>'list_name', '') = %(list_name)s
                  AND NOT EXISTS (SELECT 1 FROM campaigns_message m WHERE m.account_id = e.account_id
                                  AND m.provider_message_id = e.ticket AND m.provider_message_id <> '')
                  AND NOT EXISTS (SELECT 1 FROM campaigns_statusevent o
                                  WHERE o.match_attempts > 0 AND o.outcome = 'unmatched'
                                    AND o.account_id = e.account_id
                                    AND o.ticket = e.ticket AND NOT o.address = ANY(%(numbers)s))
                LIMIT 2""",
            {"account": account_id, "numbers": numbers, "since": since, "list_name": list_name},
        )
        tickets = [row[0] for row in cursor.fetchall()]
    return tickets[0] if len(tickets) == 1 else ""


def status_events_rematch(*, account_id: int, numbers: list[str], since) -> int:
    """Give the reports on these numbers that gave up matching since `since` another go, now that the frame in
    doubt is being recorded; returns how many. Run first in the recording transaction, locking by id their queue
    rows, then the events: queue rows, events, messages, then campaigns is the appliers' order too, so neither
    waits on the other in a cycle."""
    from campaigns.tasks import status_events_apply_soon

    with connection.cursor() as cursor:
        # Queued (due now) first, which locks their queue rows; an applier holding one is waited for. Then the
        # events, which no applier can hold now, made unmatched no longer, unless an applier matched one meanwhile
        # (its queue row is then one too many, and dropped by the next applier that claims it).
        cursor.execute(
            f"""INSERT INTO campaigns_pendingstatusevent (event_id, due_at)
                SELECT id, now() FROM ({_UNMATCHED_FOR_NUMBERS} ORDER BY e.id) missed
                ON CONFLICT (event_id) DO UPDATE SET due_at = now()
                RETURNING event_id""",
            {"account": account_id, "numbers": numbers, "since": since},
        )
        queued = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            """UPDATE campaigns_statusevent e SET applied_at = NULL, match_attempts = 0, outcome = ''
               WHERE e.id = ANY(%s) AND e.outcome = 'unmatched' AND e.message_id IS NULL""",
            [queued],
        )
        count = cursor.rowcount
    if count:
        transaction.on_commit(status_events_apply_soon, robust=True)  # an applier's next run finds them anyway
    return count


# --- Polling --------------------------------------------------------------------------------------


def status_poll(*, account_id: int, max_frames: int = 50) -> int:
    """Ask a vendor's pull API about frames sent a while ago whose messages still wait for a report (an account
    deactivated since sends nothing more, but what it sent is still followed, as its webhooks still are)."""
    account = ProviderAccount.objects.get(pk=account_id)
    backend = get_backend(account.kind)
    if not backend.supports_polling:
        return 0
    now = timezone.now()
    waiting = Message.objects.filter(frame=OuterRef("pk"), status__in=["submitted", "sent"])
    frames = list(
        Frame.objects.filter(
            account=account,
            reports_open=True,
            state=Frame.State.SENT,
            finished_at__lte=now - timedelta(seconds=settings.POLL_AFTER),
        )
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=now - timedelta(seconds=settings.POLL_INTERVAL)))
        .filter(Exists(waiting))
        .order_by("finished_at")[:max_frames]
    )
    stored = 0
    config = ratelimit.paced(account)  # each page asked for counts against the account's rate limit
    for frame in frames:
        refs = [
            MessageRef(str(ref), address, provider_id)
            for ref, address, provider_id in Message.objects.filter(
                frame=frame, status__in=["submitted", "sent"]
            ).values_list("external_ref", "address", "provider_message_id")
        ]
        updates, stop = [], False
        try:
            # The frame's ticket first (MOBtexting: its whole send, 100 reports a page); then, one by one, only
            # the messages its pages did not mention (settled from an earlier attempt's request). Asking about
            # every message as well cost a request per recipient and stored each report twice.
            if frame.ticket:
                updates += backend.poll(config, PollQuery(tickets=[frame.ticket]))
            mentioned = {u.external_ref for u in updates if u.external_ref}
            missing = [ref for ref in refs if ref.external_ref not in mentioned]
            if missing:
                updates += backend.poll(config, PollQuery(messages=missing))
        except BackendError as exc:
            logger.info("polling %s for frame %s failed: %s", account.name, frame.pk, exc)
            # Throttled, unreachable, refused: so would the next frames be; they wait for the next round (this one
            # is asked again after POLL_INTERVAL). What its ticket's pages brought is kept.
            stop = exc.retryable or is_account_problem(exc)
        finally:
            Frame.objects.filter(pk=frame.pk).update(last_polled_at=timezone.now())
        stored += status_events_store(account=account, updates=updates, source=StatusEvent.Source.POLL)
        if stop:
            break
    return stored


def messages_expire_unreported() -> int:
    """Messages with no final report after the account's report window become `expired`, saying why.

    MOBtexting sends no delivery reports for promotional traffic since DLT, and any vendor may
    lose some: a campaign must still complete. Such a message is marked NO_REPORT: Herald's guess, which a
    final report that comes later (a webhook down for a while, a slow vendor) overturns (APPLY_SQL). Waiting messages are found through their frames, not by an
    index on status (which would make every report's update of a message write into every index: see
    Message); a frame past the window with no message left waiting is closed (`reports_open`), so that each
    run reads only the frames still open."""
    total = 0
    for account in ProviderAccount.objects.all():
        hours = float(account.options.get("report_window_hours") or settings.REPORT_WINDOW_HOURS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH frames AS (
                    SELECT id FROM campaigns_frame
                    WHERE account_id = %(account)s AND reports_open
                      AND finished_at < now() - make_interval(secs => %(window)s)
                ), locked AS (
                    SELECT id, status FROM campaigns_message
                    WHERE frame_id IN (SELECT id FROM frames) AND status IN ('submitted', 'sent')
                      AND submitted_at < now() - make_interval(secs => %(window)s)
                    ORDER BY id FOR UPDATE SKIP LOCKED
                ), moved AS (
                    UPDATE campaigns_message m SET status = 'expired', final_at = now(), updated_at = now(),
                        reason = left(%(reason)s, 255), error_code = %(code)s
                    FROM locked WHERE m.id = locked.id
                    RETURNING m.campaign_id, locked.status AS old_status, m.status AS new_status
                ) {moved_counters_sql("moved")}
                SELECT coalesce(array_agg(DISTINCT campaign_id) FILTER (WHERE campaign_id IS NOT NULL), '{{}}'),
                       count(*) FROM moved
                """,
                {"account": account.pk, "window": hours * 3600, "code": NO_REPORT,
                 "reason": f"no delivery report from {account.name} within {hours:g} h"},
            )  # fmt: skip
            campaigns, count = cursor.fetchone()
        frames_close_reported(account_id=account.pk, window=hours * 3600)
        total += count
        for campaign_id in campaigns:
            from campaigns.services.lifecycle import campaign_complete_if_done

            campaign_complete_if_done(campaign_id=campaign_id)
    return total


def frames_close_reported(*, account_id: int, window: float) -> int:
    """Close the account's frames past the report window none of whose messages waits for a report any more.

    The frames are locked first and checked in a second statement, which sees every write committed by then. A
    report or a recording that makes one of their messages wait also writes its frame (frames_reopen_sql): it
    either commits before the check, which then sees its message, or waits for this transaction and reopens."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """SELECT id FROM campaigns_frame
               WHERE account_id = %s AND reports_open AND finished_at < now() - make_interval(secs => %s)
               ORDER BY id FOR NO KEY UPDATE""",
            [account_id, window],
        )
        frame_ids = [row[0] for row in cursor.fetchall()]
        if not frame_ids:
            return 0
        cursor.execute(
            """UPDATE campaigns_frame f SET reports_open = false
               WHERE f.id = ANY(%s) AND NOT EXISTS (
                   SELECT 1 FROM campaigns_message m WHERE m.frame_id = f.id AND m.status IN ('submitted', 'sent'))""",
            [frame_ids],
        )
        return cursor.rowcount
