"""Dispatch: claim frames, send each in one provider request within the account's rate limit, and
record its outcome in one statement.

Claiming takes the frame row with `FOR UPDATE SKIP LOCKED` and a session advisory lock on the
frame that is held for the whole HTTP call. The lock dies with the worker's database connection,
so a frame found in state `sending` whose lock can be taken was abandoned mid-request by a dead
worker: it is reconciled with the vendor (services/recovery.py), never blindly resent. The same
goes for a frame whose last answer was lost (timeout, dropped connection: `uncertain`).

Retryable failures (429, 5xx, timeouts) put the frame back with backoff and jitter and the
same idempotency key; permanent ones fail its messages with the vendor's reason; account-level
ones (bad credentials) pause the campaign, as do N consecutive failures.
"""

from __future__ import annotations

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import ratelimit
from campaigns.models import IN_DOUBT, OUTCOME_UNKNOWN, Campaign, Frame
from campaigns.rendering import compile_text, contact_values
from campaigns.selectors import promotional_window_closed_until, suppression_services
from campaigns.services.counters import frames_reopen_sql, messages_close, moved_counters_sql
from campaigns.services.lifecycle import (
    campaign_expire,
    campaign_hold_for_window,
    campaign_pause_on_trouble,
    frames_close_after_stop,
    frames_pace_catch_up,
)
from campaigns.services.recipient_window import campaign_note_recipient_wait, frames_hold_for_recipient_zones
from campaigns.services.reports import status_events_rematch
from contacts.audience import SUPPRESSION_REASON_SQL, AudienceSpec, suppression_match_sql
from providers.backends import get_backend
from providers.backends.base import (
    Backend,
    BackendError,
    ConnectionFailed,
    OutboundFrame,
    PaceRefused,
    Recipient,
    RecipientResult,
    SendResult,
    Status,
    Throttled,
    is_account_problem,
)
from providers.models import ProviderAccount
from providers.sms import sms_parts

logger = logging.getLogger("herald.dispatch")

ADVISORY_NAMESPACE = 0x48455241  # "HERA": frame locks, (namespace, frame id)
# The two-key advisory lock takes 32-bit keys; frame ids are 64-bit. Past 2^31 frames, ids 2^31 apart share a
# lock: a frame then looks held while the other is in flight, and waits its turn (never sent by two workers).
FRAME_LOCK_KEY = "(id & 2147483647)::int"
DLT_VARIABLE_MAX = 30


def dlt_variables_too_long(variables: dict[str, str]) -> list[str]:
    """The variables whose value DLT refuses (over 30 characters): their recipient is failed before sending."""
    return [name for name, value in variables.items() if len(value) > DLT_VARIABLE_MAX]


# --- What a frame is sent with ---------------------------------------------------------------------


@dataclass
class SendContext:
    """Everything about a campaign (or a transactional send) that its frames share, loaded once."""

    account: ProviderAccount
    backend: Backend
    campaign: Campaign | None = None
    sender: str = ""
    text: str = ""
    purpose: str = "transactional"
    service: str = ""
    dlt_entity_id: str = ""
    dlt_template_id: str = ""
    dlt_checked: bool = False
    spec: AudienceSpec = field(default_factory=AudienceSpec)
    campaign_name: str = ""  # Octopush's list_name, Hyber's tag: a campaign's, or the one a test send tries

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> SendContext:
        sender, template = campaign.sender, campaign.template
        return cls(
            account=campaign.account,
            backend=get_backend(campaign.account.kind),
            campaign=campaign,
            sender=sender.name if sender else "",
            text=campaign.text,
            purpose=campaign.purpose,
            service=(sender.service if sender else "") or "",
            dlt_entity_id=(sender.dlt_entity_id if sender else "") or "",
            dlt_template_id=template.dlt_template_id if template else "",
            dlt_checked=template is not None,
            campaign_name=campaign.name,
            spec=AudienceSpec(
                channel=campaign.channel,
                sender_name=sender.name if sender else "",
                services=suppression_services(
                    campaign.account, purpose=campaign.purpose, service=sender.service if sender else ""
                ),
            ),
        )

    @classmethod
    def for_frame(cls, frame: Frame) -> SendContext:
        """Transactional frames carry their settings in the frame's response field (set at creation)."""
        account = frame.account
        meta = frame.response.get("transactional", {})
        return cls(
            account=account,
            backend=get_backend(account.kind),
            sender=meta.get("sender", ""),
            purpose=meta.get("purpose", "transactional"),
            service=meta.get("service", ""),
            dlt_entity_id=meta.get("dlt_entity_id", ""),
            dlt_template_id=meta.get("dlt_template_id", ""),
            campaign_name=meta.get("campaign_name", ""),
            spec=AudienceSpec(
                channel=meta.get("channel", "sms"),
                sender_name=meta.get("sender", ""),
                services=suppression_services(
                    account, purpose=meta.get("purpose", "transactional"), service=meta.get("service", "")
                ),
            ),
        )


@dataclass
class ClaimedFrame:
    id: int
    campaign_id: int | None
    seq: int
    key: str
    attempts: int
    reclaimed: bool  # found abandoned (`sending`) or `uncertain`: reconcile before resending
    response: dict
    claimed_at: str  # this attempt's start (ISO 8601): the messages' `queued_at` once their outcome is recorded
    due: datetime | None = None  # when it was due before this claim (smooth sending's place for it)


@dataclass
class PreparedFrame:
    frame: ClaimedFrame
    outbound: OutboundFrame
    message_ids: dict[str, int]  # external_ref → message id
    texts: dict[str, str]  # external_ref → text sent
    local_failures: list[tuple[int, str]]  # (message id, reason) refused before sending (DLT variable length)
    checked_at: float = field(default_factory=time.monotonic)  # when its recipients' opt-outs were checked


# --- Claiming -------------------------------------------------------------------------------------


def frames_unlock(frame_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_unlock(%s, {FRAME_LOCK_KEY}) FROM unnest(%s::bigint[]) id",
            [ADVISORY_NAMESPACE, frame_ids],
        )


def frames_claim(*, campaign_id: int | None = None, frame_id: int | None = None, limit: int = 1) -> list[ClaimedFrame]:
    """Claim up to `limit` due frames of a campaign (or one given frame) for this connection.

    A campaign's frames only while it is sending, read in the claiming statement: a dispatcher checks the state
    before it claims, and a pause or cancel that committed in between would otherwise not stop the frames claimed
    after it (ratelimit.campaign_stopped_mark stops those claimed before)."""
    where = (
        "id = %s"
        if frame_id is not None
        else "campaign_id = %s AND EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = campaign_id AND c.state = 'sending')"
    )
    claimed: list[int] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT id FROM campaigns_frame
                    WHERE {where} AND state IN ('pending', 'sending') AND next_attempt_at <= now()
                    ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED""",
                [frame_id if frame_id is not None else campaign_id, limit + settings.DISPATCHERS_PER_CAMPAIGN * 8],
            )
            candidates = [row[0] for row in cursor.fetchall()]
            # A frame whose lock a live sender holds is skipped; LIMIT stops taking locks once enough are held.
            cursor.execute(
                f"SELECT id FROM unnest(%s::bigint[]) id WHERE pg_try_advisory_lock(%s, {FRAME_LOCK_KEY}) LIMIT %s",
                [candidates, ADVISORY_NAMESPACE, limit],
            )
            claimed = [row[0] for row in cursor.fetchall()]
            if not claimed:
                return []
            cursor.execute(
                """UPDATE campaigns_frame f SET attempts = f.attempts + 1, started_at = now(), next_attempt_at = now(),
                          state = 'sending',
                          response = CASE WHEN old.state <> 'sending' THEN old.response
                                          WHEN NOT old.response ? 'uncertain_since'
                                          THEN jsonb_set(old.response, '{uncertain_since}', to_jsonb(old.started_at))
                                          ELSE old.response - 'in_doubt' END
                   FROM campaigns_frame old WHERE old.id = f.id AND f.id = ANY(%s)
                   RETURNING f.id, f.campaign_id, f.seq, f.key, f.attempts, old.state = 'sending' OR old.uncertain,
                             f.response, f.started_at, old.next_attempt_at""",
                [claimed],
            )
            rows = cursor.fetchall()
    except Exception:
        # Session advisory locks outlive a rolled-back transaction: give them back.
        frames_unlock(claimed)
        raise
    return [
        ClaimedFrame(r[0], r[1], r[2], str(r[3]), r[4], r[5], _json(r[6]), r[7].isoformat(), r[8])
        for r in sorted(rows, key=lambda r: r[2])
    ]


def _json(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value or "{}")


# --- Preparing: suppression re-check, reading, rendering -----------------------------------------


def frames_prepare(frames: list[ClaimedFrame], context: SendContext) -> list[PreparedFrame]:
    """Suppress whoever unsubscribed since launch (or whose contact was deleted or deactivated) and render the
    others' texts: two statements for all the claimed frames together.

    The messages are not written here: they stay `pending` while their frame is `sending` (the frame's state
    and advisory lock are what mark them in flight, for cancel and for recovery), and move once, when their
    outcome is recorded. Each message row written is a new version in every one of the table's indexes, so
    a separate `queued` write cost a second such update of all 500 rows a frame (docs/BENCHMARKS.md, run 15)."""
    frame_ids = [f.id for f in frames]
    lateral_sql, lateral_params = suppression_match_sql("locked.address", "locked.contact_id", context.spec)
    with connection.cursor() as cursor:
        # Rows are locked (for their old status) only where an address is listed at all: usually none.
        cursor.execute(
            f"""
            WITH locked AS (
                SELECT id, status, address, contact_id FROM campaigns_message m
                WHERE frame_id = ANY(%s) AND status IN ('pending', 'queued')
                  AND EXISTS (SELECT 1 FROM contacts_unsubscriber u WHERE u.address = m.address)
                ORDER BY id FOR UPDATE
            ), moved AS (
                UPDATE campaigns_message m SET status = 'suppressed', reason = {SUPPRESSION_REASON_SQL},
                    final_at = now(), updated_at = now()
                FROM locked CROSS JOIN LATERAL ({lateral_sql}) u
                WHERE m.id = locked.id
                RETURNING m.campaign_id, locked.status AS old_status, m.status AS new_status
            ) {moved_counters_sql("moved")}
            SELECT count(*) FROM moved
            """,
            [frame_ids, *lateral_params],
        )
        # `queued`: what earlier versions of Herald marked a claimed frame's messages; one left in flight by an
        # upgrade is read here when reclaimed, and recorded by the locked statement in messages_record.
        # Attributes are read (and parsed) only for a text that uses one.
        attributes = "c.attributes" if compile_text(context.text).uses_attributes else "NULL"
        cursor.execute(
            f"""
            SELECT m.id, m.frame_id, m.address, m.external_ref::text, m.text,
                   c.first_name, c.last_name, c.email, c.phone, c.identity, c.country, c.language, c.timezone,
                   {attributes},
                   CASE WHEN m.campaign_id IS NULL THEN '' WHEN c.id IS NULL THEN 'contact deleted'
                        WHEN NOT c.is_active THEN 'inactive contact' ELSE '' END
            FROM campaigns_message m LEFT JOIN contacts_contact c ON c.id = m.contact_id
            WHERE m.frame_id = ANY(%s) AND m.status IN ('pending', 'queued') ORDER BY m.id
            """,
            [frame_ids],
        )
        rows = cursor.fetchall()
        # (Not a message of a reclaimed frame that the vendor may have: it may be on its way already.)
        doubt = {f.id: (set(f.response[IN_DOUBT]) if IN_DOUBT in f.response else None) for f in frames if f.reclaimed}
        if gone := {
            row[0]: row[-1]
            for row in rows
            if row[-1] and (row[1] not in doubt or (doubt[row[1]] is not None and row[3] not in doubt[row[1]]))
        }:
            # Contacts deleted or deactivated since launch (as materialising suppresses an inactive contact):
            # nobody is messaged after staff took them out. Rare: one statement then.
            messages_close(cursor, gone, status="suppressed")
            rows = [row for row in rows if row[0] not in gone]
    by_frame: dict[int, list[tuple]] = {f.id: [] for f in frames}
    for row in rows:
        by_frame[row[1]].append(row)
    return [_prepared(frame, by_frame[frame.id], context) for frame in frames]


def _prepared(frame: ClaimedFrame, rows: list[tuple], context: SendContext) -> PreparedFrame:
    """Render one frame's recipients (no database access)."""
    names = ("first_name", "last_name", "email", "phone", "identity", "country", "language", "timezone", "attributes")
    template = compile_text(context.text)
    variables_used = template.names
    recipients, message_ids, texts, local_failures = [], {}, {}, []
    for row in rows:
        message_id, address, ref, stored_text = row[0], row[2], row[3], row[4]
        if stored_text and context.campaign is None:  # transactional: the text was given at creation
            text, variables = stored_text, {}
        else:
            text, variables = template.fill(contact_values(dict(zip(names, row[5:14], strict=True)), variables_used))
        too_long = dlt_variables_too_long(variables) if context.dlt_checked else []
        if too_long:
            local_failures.append((message_id, f"DLT variable {too_long[0]} is over {DLT_VARIABLE_MAX} characters"))
            continue
        message_ids[ref] = message_id
        texts[ref] = text
        recipients.append(Recipient(external_ref=ref, address=address, text=text, variables=variables))
    outbound = OutboundFrame(
        key=frame.key,
        channel=context.spec.channel,
        sender=context.sender,
        text=context.text or (recipients[0].text if recipients else ""),
        recipients=recipients,
        purpose=context.purpose,
        dlt_entity_id=context.dlt_entity_id,
        dlt_template_id=context.dlt_template_id,
        service=context.service,
        campaign_name=context.campaign_name,
    )
    return PreparedFrame(frame, outbound, message_ids, texts, local_failures)


# --- Sending --------------------------------------------------------------------------------------


@dataclass
class CallOutcome:
    result: SendResult | None = None
    error: BackendError | None = None
    deferred_until: float | None = None  # recovery must wait (seconds from now)


def frame_call(prepared: PreparedFrame, context: SendContext) -> CallOutcome:
    """The provider request (no database access: safe to run in a thread)."""
    from campaigns.services.recovery import frame_reconcile

    if not prepared.outbound.recipients:
        # Nothing left to send. For a reclaimed frame, the vendor's reports (carrying our refs) settled it.
        return CallOutcome(SendResult([], summary={"reconciled": "reports"} if prepared.frame.reclaimed else {}))
    frame = prepared.frame
    stop = (
        None if frame.campaign_id is None else (frame.campaign_id, datetime.fromisoformat(frame.claimed_at).timestamp())
    )
    send_by = context.campaign.send_by if context.campaign is not None else None
    account = ratelimit.paced(
        context.account,
        stop=stop,
        not_after=send_by.timestamp() if send_by else None,
        recheck=None if frame.reclaimed else _opt_outs_recheck(prepared, context),
    )
    try:
        if prepared.frame.reclaimed:
            return frame_reconcile(prepared, context, account)
        return CallOutcome(context.backend.send(account, prepared.outbound))
    except BackendError as exc:
        return CallOutcome(error=exc)


class OptedOutMeanwhile(PaceRefused):
    """A frame's request not made: a recipient opted out after the frame was prepared, while it waited for its
    token. The frame waits again, its attempt not counted, and the claim that takes it next suppresses them."""


def _opt_outs_recheck(prepared: PreparedFrame, context: SendContext):
    """What the frame's pace calls once its token is there: if the opt-outs were checked more than
    OPT_OUT_RECHECK_AFTER seconds ago (a wait for the rate limit lasts up to RATE_LIMIT_MAX_WAIT), check them again.
    Once a frame: a backend that sends a frame in several requests has sent part of it by its second one."""
    asked = False

    def recheck() -> None:
        nonlocal asked
        if asked or time.monotonic() - prepared.checked_at < settings.OPT_OUT_RECHECK_AFTER:
            return
        asked = True
        if opted_out := messages_opted_out(list(prepared.message_ids.values()), context.spec):
            raise OptedOutMeanwhile(
                f"{opted_out} of its recipients opted out while it waited for the rate limit; it goes again without them"
            )

    return recheck


def messages_opted_out(message_ids: list[int], spec: AudienceSpec) -> int:
    """How many of these messages an opt-out now applies to (their frame's claim suppresses them)."""
    lateral_sql, lateral_params = suppression_match_sql("m.address", "m.contact_id", spec)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FROM campaigns_message m CROSS JOIN LATERAL ({lateral_sql}) u
                WHERE m.id = ANY(%s) AND EXISTS (SELECT 1 FROM contacts_unsubscriber x WHERE x.address = m.address)""",
            [*lateral_params, message_ids],
        )
        return cursor.fetchone()[0]


# --- Recording ------------------------------------------------------------------------------------


def _results_rows(prepared: PreparedFrame, results: list[RecipientResult], context: SendContext) -> list[tuple]:
    """The rows `messages_record` writes for a frame: its recipients' results, then its local failures
    (so: once a frame)."""
    rows = []
    price = Decimal(str(context.account.price_per_part or 0))
    for r in results:
        message_id = prepared.message_ids.get(r.external_ref)
        if message_id is None:
            continue
        text = prepared.texts.get(r.external_ref, "")
        measured = sms_parts(text)
        parts = r.parts or measured.parts
        cost = None
        if r.accepted:
            # The vendor's own figure where it is money in the account's currency; else Herald's price list.
            vendor_cost = r.cost is not None and context.backend.reports_cost_in_currency
            cost = Decimal(str(r.cost)) if vendor_cost else price * (parts or 1)
        reason = "" if r.accepted else (r.text or "refused by the provider")[:255]
        rows.append((message_id, str(r.status), r.provider_message_id[:100], r.code[:32], reason, text, parts,
                     measured.encoding, cost, r.accepted, prepared.frame.claimed_at))  # fmt: skip
    for message_id, reason in prepared.local_failures:
        rows.append((message_id, "failed", "", "783", reason, "", None, "", None, False, prepared.frame.claimed_at))
    return rows


_RECORD_ROWS = """
    v(id, status, pid, code, reason, text, parts, encoding, cost, accepted, queued_at) AS (
        SELECT (r->>0)::bigint, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::smallint, r->>7, (r->>8)::numeric,
               (r->>9)::boolean, (r->>10)::timestamptz
        FROM jsonb_array_elements(%s::jsonb) r
    )"""

_RECORD_SET = """
    provider_message_id = CASE WHEN v.pid <> '' THEN v.pid ELSE m.provider_message_id END,
    error_code = v.code, reason = CASE WHEN v.accepted THEN m.reason ELSE v.reason END,
    text = v.text, parts = v.parts, encoding = v.encoding, cost = v.cost,
    queued_at = coalesce(m.queued_at, v.queued_at),
    submitted_at = CASE WHEN v.accepted THEN now() ELSE m.submitted_at END,
    final_at = CASE WHEN v.accepted THEN m.final_at ELSE now() END, updated_at = now()"""


def messages_record(rows: list[tuple]) -> None:
    """Write a frame's per-recipient outcomes; counters follow in the same statement.

    The status moves only forward (a delivery report may have arrived first). Messages still `pending`, as
    nearly all are, are written by one statement that knows their old status from its WHERE (re-checked
    on the row's latest version), without locking them first; any others (a report came first) by a
    second one that locks them to read it. The rows travel as one JSON document: a VALUES list of 500 rows
    × 10 parameters cost more to build, parse and plan than the update, and arrays cost the worker more to
    quote (psycopg adapts them in Python) than the statement took."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH {_RECORD_ROWS}, moved AS (
                UPDATE campaigns_message m SET
                    status = CASE WHEN herald_status_rank(v.status) > herald_status_rank('pending')
                                  THEN v.status ELSE 'pending' END, {_RECORD_SET}
                FROM v WHERE m.id = v.id AND m.status = 'pending'
                RETURNING m.id, m.campaign_id, m.frame_id, 'pending'::varchar AS old_status, m.status AS new_status
            ) {moved_counters_sql("moved")} {frames_reopen_sql("moved")}
            SELECT id FROM moved
            """,
            [_record_document(rows)],
        )
        written = {row[0] for row in cursor.fetchall()}
        rest = [row for row in rows if row[0] not in written]
        if not rest:
            return
        cursor.execute(
            f"""
            WITH {_RECORD_ROWS}, locked AS (
                SELECT m.id, m.status FROM campaigns_message m WHERE m.id IN (SELECT id FROM v) ORDER BY m.id FOR UPDATE
            ), moved AS (
                UPDATE campaigns_message m SET
                    status = CASE WHEN herald_status_rank(v.status) > herald_status_rank(locked.status)
                                  THEN v.status ELSE locked.status END, {_RECORD_SET}
                FROM v JOIN locked ON locked.id = v.id WHERE m.id = v.id
                RETURNING m.campaign_id, m.frame_id, locked.status AS old_status, m.status AS new_status
            ) {moved_counters_sql("moved")} {frames_reopen_sql("moved")}
            SELECT count(*) FROM moved
            """,
            [_record_document(rest)],
        )


def _accepted_cost(rows: list[tuple]) -> Decimal:
    """What the accepted messages of `messages_record` rows cost."""
    return sum((row[8] or Decimal(0) for row in rows if row[9]), Decimal(0))


def _record_document(rows: list[tuple]) -> str:
    return json.dumps([[*row[:8], None if row[8] is None else str(row[8]), *row[9:]] for row in rows])


def frames_record_success(successes: list[tuple[PreparedFrame, SendResult]], context: SendContext) -> None:
    """Record the outcomes of frames the vendor answered: one statement for all their messages, one for the
    frames, one for the campaign."""
    rows, frame_rows = [], []
    for prepared, result in successes:
        # A recipient the vendor did not mention in its answer was not accepted.
        answered = {r.external_ref for r in result.results}
        missing = [
            RecipientResult(ref, "", False, Status.FAILED, text="the provider's answer did not mention this recipient")
            for ref in prepared.message_ids
            if ref not in answered
        ]
        rows += _results_rows(prepared, [*result.results, *missing], context)
        summary = {
            "ticket": result.ticket,
            **result.summary,
            **({"already_accepted": True} if result.already_accepted else {}),
        }
        frame_rows.append((prepared.frame.id, result.ticket[:100], json.dumps(summary)))
    campaign_ids = {prepared.frame.campaign_id for prepared, _ in successes} - {None}
    cost = _accepted_cost(rows)
    values = ", ".join(["(%s::bigint, %s, %s::jsonb)"] * len(frame_rows))
    with transaction.atomic():
        if context.backend.recovery == "resend":  # first: events before messages and campaigns, as appliers lock
            _reports_rematch([prepared for prepared, _ in successes if prepared.frame.reclaimed], context)
        messages_record(rows)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE campaigns_frame f SET state = 'sent', finished_at = now(), ticket = v.ticket, uncertain = false,
                           response = v.summary, error = '', error_code = ''
                    FROM (VALUES {values}) v(id, ticket, summary) WHERE f.id = v.id""",
                [value for row in frame_rows for value in row],
            )
        for campaign_id in campaign_ids:  # one campaign per dispatcher
            Campaign.objects.filter(pk=campaign_id).update(consecutive_failures=0, cost_actual=F("cost_actual") + cost)


def _reports_rematch(reclaimed: list[PreparedFrame], context: SendContext) -> None:
    """A frame in doubt of a vendor whose reports name no ref of ours (Octopush: its ticket and the number) is
    recorded only now; the reports that came while its messages were pending gave up matching, and get another
    go once this transaction commits (those still retrying match on their next try)."""
    from campaigns.services.recovery import in_doubt_since

    for prepared in reclaimed:
        status_events_rematch(
            account_id=context.account.pk,
            numbers=[r.address for r in prepared.outbound.recipients],
            since=in_doubt_since(prepared),
        )


def _record_results(prepared: PreparedFrame, results: list[RecipientResult], context: SendContext) -> None:
    """Record some of a frame's recipients (the frame goes on): their messages, and the campaign's cost."""
    rows = _results_rows(prepared, results, context)
    messages_record(rows)
    if (cost := _accepted_cost(rows)) and prepared.frame.campaign_id is not None:
        Campaign.objects.filter(pk=prepared.frame.campaign_id).update(cost_actual=F("cost_actual") + cost)


def frame_record_partial(prepared: PreparedFrame, result: SendResult, context: SendContext) -> None:
    """A frame sent in several requests that stopped part-way: record the recipients the vendor answered, then
    treat the rest as the frame's failure (retried as the error says, or failed), so that a retry sends only
    the messages still pending."""
    _record_results(prepared, result.results, context)
    answered = {r.external_ref for r in result.results}
    rest = replace(
        prepared,
        message_ids={ref: mid for ref, mid in prepared.message_ids.items() if ref not in answered},
        local_failures=[],  # recorded with the answered ones
    )
    frame_record_failure(rest, context, result.unsent_error)


def _backoff(attempts: int, error: BackendError) -> float:
    delay = min(settings.FRAME_RETRY_MAX, settings.FRAME_RETRY_BASE * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.5, 1.5)
    if isinstance(error, Throttled) and error.retry_after:
        delay = max(delay, error.retry_after)
    return delay


def frame_record_failure(prepared: PreparedFrame, context: SendContext, error: BackendError) -> str:
    """Retry the frame later or fail its messages, as the error says; returns the error as staff read it.

    An account-level error (bad credentials) also pauses the campaign: no frame can pass until it is fixed.
    A transactional frame has no campaign to pause: it fails, as other permanent errors do."""
    frame = prepared.frame
    if isinstance(error.__cause__, ratelimit.CampaignStopped):
        _frame_release(frame)
        return ""
    if isinstance(error.__cause__, ratelimit.NoToken):  # not sent: a request beyond the limit would earn a 429
        _frame_release(frame, after=random.uniform(0.5, 1.5))
        return ""
    if isinstance(error.__cause__, OptedOutMeanwhile):
        logger.info("frame %s not sent: %s", frame.id, error.__cause__)
        _frame_release(frame)
        return ""
    vendor = context.backend.label or context.account.kind
    message = f"{vendor}: {error.message}"[:1000]
    lost_answer = answer_lost(error)
    pause = is_account_problem(error) and frame.campaign_id is not None
    with transaction.atomic():
        if pause:
            # A reclaimed frame stays uncertain: once the account is fixed, it is reconciled, not sent afresh.
            Frame.objects.filter(pk=frame.id).update(
                state=Frame.State.PENDING,
                error=message,
                error_code=error.code[:32],
                next_attempt_at=timezone.now(),
                **({"uncertain": True} if frame.reclaimed else {}),
            )
        elif error.retryable and frame.attempts < settings.FRAME_MAX_ATTEMPTS:
            response = dict(frame.response)
            if lost_answer and not frame.reclaimed:
                response["uncertain_since"] = timezone.now().isoformat()
                response.pop(IN_DOUBT, None)
            if lost_answer:
                _note_in_doubt(response, error.attempted, fresh=not frame.reclaimed)
            Frame.objects.filter(pk=frame.id).update(
                state=Frame.State.PENDING, error=message, error_code=error.code[:32], uncertain=lost_answer or frame.reclaimed,
                next_attempt_at=timezone.now() + timedelta(seconds=_backoff(frame.attempts, error)), response=response,
            )  # fmt: skip
        else:
            if error.retryable:
                message = f"Gave up after {frame.attempts} attempts: {message}"[:1000]
            if error.retryable and (frame.reclaimed or lost_answer):
                # An answer was lost: the vendor may have the frame, and a 503 to a retry does not say it has not.
                frame_give_up_in_doubt(prepared, context, message, error)
            else:
                failed = [
                    RecipientResult(ref, "", False, Status.FAILED, code=error.code, text=message)
                    for ref in prepared.message_ids
                ]
                messages_record(_results_rows(prepared, failed, context))
                Frame.objects.filter(pk=frame.id).update(
                    state=Frame.State.FAILED, finished_at=timezone.now(), error=message, error_code=error.code[:32]
                )
    logger.info("frame %s attempt %s failed: %s", frame.id, frame.attempts, error)
    if pause:
        campaign_pause_on_trouble(
            campaign_id=frame.campaign_id, reason=f"Paused: the provider account needs attention ({message})"
        )
    if frame.campaign_id is not None:
        frames_close_after_stop(campaign_id=frame.campaign_id)  # cancelled while this frame was in flight
    return message


def frame_give_up_in_doubt(prepared: PreparedFrame, context: SendContext, message: str, error: BackendError) -> None:
    """Give up on a frame whose answer was lost once and whose retries all failed since (the vendor down for longer
    than FRAME_MAX_ATTEMPTS cover). The vendor may well have taken it: such a frame's recipients failed with the
    last retry's error, as if refused, while the vendor delivered them, and their reports (Octopush's name its ticket,
    which Herald never learnt) matched nothing. As recovery settles a frame it cannot send again: the recipients
    the vendor's reports prove it has are recorded as submitted (their reports then match), the others fail as
    "outcome unknown", a guess that a report coming later overturns (Octopush's, by the same proof, late:
    recovery.frames_settle_by_late_reports); none is sent again."""
    from campaigns.services.recovery import frame_known_in_doubt

    known, ticket = frame_known_in_doubt(prepared, context)
    proven = {k.external_ref for k in known}
    vendor = context.backend.label or context.account.kind
    unknown = [
        RecipientResult(ref, "", False, Status.FAILED, code=OUTCOME_UNKNOWN,
                        text=f"outcome unknown: an answer was lost, so {vendor} may have it; {message}")
        for ref in prepared.message_ids
        if ref not in proven
    ]  # fmt: skip
    if known:
        summary = {"reconciled": "gave up", "proven_by_reports": len(known)}
        reclaimed = replace(prepared, frame=replace(prepared.frame, reclaimed=True))  # its reports are matched again
        frames_record_success([(reclaimed, SendResult([*known, *unknown], ticket=ticket, summary=summary))], context)
        return
    messages_record(_results_rows(prepared, unknown, context))
    Frame.objects.filter(pk=prepared.frame.id).update(
        state=Frame.State.FAILED, finished_at=timezone.now(), error=message, error_code=error.code[:32]
    )


def _frame_release(frame: ClaimedFrame, after: float = 0.0) -> None:
    """A frame whose request was not made: its campaign stopped meanwhile (`ratelimit.CampaignStopped`), or the
    account's rate limit gave no token in time (`ratelimit.NoToken`). It waits again as it was, the attempt not
    counted, to be sent on resume (or `after` seconds, with the others that wait for the limit) or closed by the
    cancel."""
    Frame.objects.filter(pk=frame.id).update(
        state=Frame.State.PENDING, attempts=F("attempts") - 1,
        next_attempt_at=timezone.now() + timedelta(seconds=after),
        **({"uncertain": True} if frame.reclaimed else {}),  # still to reconcile, not to send afresh
    )  # fmt: skip
    if frame.campaign_id is not None:
        frames_close_after_stop(campaign_id=frame.campaign_id)  # cancelled (or failed) while it waited


def answer_lost(error: BackendError) -> bool:
    """No answer, or a gateway's 502/504 in the vendor's place: the vendor may have the request (a 500 or 503
    is the vendor's own answer that it did not take it)."""
    return isinstance(error, ConnectionFailed) and error.status_code in (None, 502, 504)


def _note_in_doubt(response: dict, attempted: list[str] | None, *, fresh: bool) -> None:
    """Add to an uncertain frame's refs in doubt those of a request whose answer was lost: the frame's other
    unanswered recipients were never sent, so recovery sends them rather than wait for their reports. A frame
    already in doubt as a whole (no list) stays so."""
    if attempted is None:
        response.pop(IN_DOUBT, None)
    elif fresh or IN_DOUBT in response:
        response[IN_DOUBT] = sorted({*response.get(IN_DOUBT, ()), *attempted})
        if not fresh:  # the settle window counts from this answer lost, for all of them
            response["uncertain_since"] = timezone.now().isoformat()


def campaign_round_failed(*, campaign_id: int, last_error: str) -> None:
    """Count a round of requests that all failed; pause the campaign after N rounds in a row, saying why.

    A round is what one dispatcher sends at once (one frame, or a batch of one-recipient frames), so that
    concurrency does not make the threshold easier to reach."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_campaign SET consecutive_failures = consecutive_failures + 1 "
            "WHERE id = %s RETURNING consecutive_failures",
            [campaign_id],
        )
        (failures,) = cursor.fetchone()
    if failures >= settings.CAMPAIGN_MAX_CONSECUTIVE_FAILURES:
        campaign_pause_on_trouble(
            campaign_id=campaign_id,
            reason=f"Paused after {failures} failed rounds of requests in a row; the last error: {last_error}",
        )


def frame_defer(prepared: PreparedFrame, seconds: float, context: SendContext, sent: SendResult | None = None) -> None:
    """Recovery must wait (reports not in yet): try this frame again later, still uncertain. `sent`: what
    recovery sent meanwhile of the frame's recipients that were never sent, recorded now."""
    response = dict(prepared.frame.response)
    with transaction.atomic():
        if sent is not None:
            _record_results(prepared, sent.results, context)
            if sent.unsent_error is not None and answer_lost(sent.unsent_error):
                _note_in_doubt(response, sent.unsent_error.attempted, fresh=False)
        Frame.objects.filter(pk=prepared.frame.id).update(
            state=Frame.State.PENDING, uncertain=True, next_attempt_at=timezone.now() + timedelta(seconds=seconds),
            response=response,
        )  # fmt: skip
    if prepared.frame.campaign_id is not None:
        frames_close_after_stop(campaign_id=prepared.frame.campaign_id)  # cancelled while it was in flight


def frames_finish(prepared: list[PreparedFrame], outcomes: list[CallOutcome], context: SendContext) -> None:
    """Record what the vendor said: successes together, failures and deferrals one by one (they are rare).
    A round without any success counts towards pausing the campaign."""
    successes, last_error = [], ""
    for frame, outcome in zip(prepared, outcomes, strict=True):
        if outcome.deferred_until is not None:
            frame_defer(frame, outcome.deferred_until, context, sent=outcome.result)
        elif outcome.error is not None:
            last_error = frame_record_failure(frame, context, outcome.error) or last_error
        elif outcome.result.unsent_error is not None:
            frame_record_partial(frame, outcome.result, context)
        else:
            successes.append((frame, outcome.result))
    if successes:
        frames_record_success(successes, context)  # also resets the campaign's run of failures
    elif last_error and context.campaign is not None:
        campaign_round_failed(campaign_id=context.campaign.pk, last_error=last_error)


def frames_send(frames: list[ClaimedFrame], context: SendContext) -> None:
    """Prepare, send and record claimed frames; several at once for one-recipient backends."""
    try:
        prepared = frames_prepare(frames, context)
        if len(prepared) == 1:
            outcomes = [frame_call(prepared[0], context)]
        else:
            with ThreadPoolExecutor(max_workers=len(prepared)) as pool:
                outcomes = list(pool.map(lambda p: _in_thread(frame_call, p, context), prepared))
        frames_finish(prepared, outcomes, context)
    finally:
        frames_unlock([f.id for f in frames])


def _in_thread(call, *args):
    """Run `call` in a pool thread, closing the database connection it may have opened there (a frame's opt-out
    recheck): a thread's connection is its own, and the pool's threads end with the batch."""
    try:
        return call(*args)
    finally:
        connection.close()


def campaign_dispatch(*, campaign_id: int, budget: float | None = None, heartbeat=None) -> float | None:
    """Send a campaign's due frames for up to `budget` seconds, between frames checking that it is
    still sending (pause and cancel take effect here).

    Returns the seconds until more work is due, or None when this campaign needs no dispatcher now."""
    budget = settings.DISPATCH_TASK_BUDGET if budget is None else budget
    campaign = Campaign.objects.select_related("account", "sender", "template").get(pk=campaign_id)
    context = SendContext.for_campaign(campaign)
    batch = settings.SINGLE_RECIPIENT_CONCURRENCY if context.backend.max_recipients == 1 else 1
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        state, account_active, send_by = Campaign.objects.filter(pk=campaign_id).values_list(
            "state", "account__is_active", "send_by"
        ).first() or (None, None, None)
        if state != Campaign.State.SENDING:
            return None
        now = timezone.now()
        if send_by is not None and send_by <= now:  # not one more frame: beat's tick may be a minute away, or down
            campaign_expire(campaign_id=campaign_id, now=now)
            return None
        if not account_active:  # staff switched the account off: it sends nothing more until switched on
            if _next_due(campaign_id) is None:  # nothing left to send (and the completion check is made)
                return None
            reason = f"Paused: the provider account {campaign.account.name} was deactivated; activate it to resume."
            campaign_pause_on_trouble(campaign_id=campaign_id, reason=reason)
            return None
        if (opening := promotional_window_closed_until(campaign=campaign, at=now)) is not None:
            campaign_hold_for_window(campaign_id=campaign_id, opening=opening)  # not one more frame
        elif campaign.smooth_minutes:
            frames_pace_catch_up(campaign_id=campaign_id)  # fallen behind its pace (no worker ran): not in a burst
        frames = frames_claim(campaign_id=campaign_id, limit=batch)  # (held frames are not due)
        promotional = campaign.purpose == Campaign.Purpose.PROMOTIONAL
        if not frames:
            if promotional and opening is None:  # (while the account's window is closed, that is why it waits)
                campaign_note_recipient_wait(campaign_id=campaign_id, now=now)
            return _next_due(campaign_id)
        if promotional:
            try:  # recipients whose own zone is outside the window wait for it in frames of their own
                frames_hold_for_recipient_zones(frames, campaign=campaign, now=now)
            except BaseException:
                frames_unlock([f.id for f in frames])
                raise
        frames_send(frames, context)
        if heartbeat:
            heartbeat()
    return 0.0


def _next_due(campaign_id: int) -> float | None:
    """Seconds until the campaign's next open frame is due; None (and a completion check) when none is open."""
    from campaigns.services.lifecycle import campaign_complete_if_done

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM campaigns_frame "
            "WHERE campaign_id = %s AND state IN ('pending', 'sending')",
            [campaign_id],
        )
        (seconds,) = cursor.fetchone()
    if seconds is None:
        campaign_complete_if_done(campaign_id=campaign_id)
        return None
    return max(0.5, float(seconds))


def frame_dispatch(*, frame_id: int) -> float | None:
    """Send one frame by id (transactional sends). Returns seconds until a retry is due, or None."""
    frames = frames_claim(frame_id=frame_id)
    if frames:
        frame = Frame.objects.select_related("account", "campaign").get(pk=frame_id)
        context = SendContext.for_campaign(frame.campaign) if frame.campaign else SendContext.for_frame(frame)
        frames_send(frames, context)
    due = (
        Frame.objects.filter(pk=frame_id, state__in=["pending", "sending"])
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return None if due is None else max(0.5, (due - timezone.now()).total_seconds())
