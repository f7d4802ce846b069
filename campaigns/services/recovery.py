"""Reconcile a frame whose answer was lost (timeout, dropped connection, dead worker): find out what
the vendor already has, and send again only what it never got (DESIGN §3.6).

- "resend" (Octopush): the same request_id again; the vendor answers 120 for a frame it has. Only within the
  vendor's de-duplication window (`resend_window`, 24 h for Octopush) less RESEND_MARGIN: later (a campaign
  paused with a frame in doubt and resumed days after), the vendor would take the same key as a new request,
  so the frame is settled as "callbacks" instead, its reports found by the vendor's ticket and the numbers
  (Octopush's carry no ref of ours).
- "lookup" (MOBtexting by cid, Hyber by extra_id): ask the vendor about each of our refs; what it does not
  know is resent, but only LOOKUP_SETTLE after the answer was lost (a slow vendor may still be taking the
  request after our client gave up). "Not ready yet" (NotReadyYet) means the vendor holds the message but
  cannot report on it: wait and ask again, and once the settle window has passed, count it as received
  rather than wait for ever.
- "callbacks" (Devino, no lookup API): refs whose delivery reports arrived were received; the rest
  are resent once the settle window has passed, if the account accepts at-least-once delivery,
  and otherwise failed as "outcome unknown". A frame sent in several requests (Devino: one per text) knows
  which requests' answers were lost (Frame.response["in_doubt"]): its recipients that no request carried
  were never sent, and are sent at once, while those in doubt wait for their reports.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import IN_DOUBT, OUTCOME_UNKNOWN, Campaign, Frame, Message, StatusEvent
from campaigns.services.counters import frames_reopen_sql, moved_counters_sql
from campaigns.services.deadlocks import retry_on_deadlock
from campaigns.services.reports import status_events_rematch, status_reports_ticket_of_frame
from providers.backends import get_backend
from providers.backends.base import (
    Account,
    Backend,
    BackendError,
    NotReadyYet,
    RecipientResult,
    SendResult,
    Status,
    is_account_problem,
)

# A resend is trusted to be de-duplicated until this long before the vendor's window ends: the window runs from
# when the vendor took the first request, which may be up to a request's timeout before the answer was lost.
RESEND_MARGIN = 3600.0


def frame_reconcile(prepared, context, account: Account):
    """Settle a reclaimed frame; returns the dispatch CallOutcome. Runs without database writes. `account` is
    paced (campaigns.ratelimit.paced): lookups and resends wait for the rate limit as sends do."""
    from campaigns.services.dispatch import CallOutcome

    backend, outbound = context.backend, prepared.outbound
    mode = recovery_mode(backend, _waited(prepared))
    if mode == "resend":
        result = backend.send(account, outbound)
        summary = {**result.summary, "reconciled": "resend", "vendor_had_it": result.already_accepted}
        return CallOutcome(replace(result, summary=summary))

    try:
        known = None if mode == "callbacks" else backend.recover(account, outbound)
    except NotReadyYet as exc:  # e.g. Hyber's reports exist only some seconds after the send: wait, no failure
        waited = _waited(prepared)
        if waited < settings.CALLBACK_SETTLE:
            return CallOutcome(deferred_until=exc.retry_after)
        # "Not ready" is an answer about messages the vendor holds (one it never got is "not found"), so
        # they were received: recorded as submitted, never resent, their reports still match by our ref.
        received = [RecipientResult(r.external_ref, r.address, True, Status.SUBMITTED) for r in outbound.recipients]
        return CallOutcome(SendResult(received, summary={"reconciled": "lookup", "not_ready_after": int(waited)}))
    never_sent = []
    if known is None:
        known = _known_from_reports(context.account.pk, outbound)
        if backend.recovery == "resend" and not known:  # past the window: reports name its ticket, not our ref
            known = _known_from_frame_ticket(context.account.pk, outbound, in_doubt_since(prepared))
        remaining = [r for r in outbound.recipients if r.external_ref not in {k.external_ref for k in known}]
        if (doubted := prepared.frame.response.get(IN_DOUBT)) is not None and mode == "callbacks":
            doubted = set(doubted)
            never_sent = [r for r in remaining if r.external_ref not in doubted]
            remaining = [r for r in remaining if r.external_ref in doubted]
        if remaining:
            waited = _waited(prepared)
            if waited < settings.CALLBACK_SETTLE:
                if not never_sent:
                    return CallOutcome(deferred_until=settings.CALLBACK_SETTLE - waited)
                # Send those now; the frame waits for the others' reports.
                sent = _send_never_sent(backend, account, outbound, never_sent)
                return CallOutcome(sent, deferred_until=settings.CALLBACK_SETTLE - waited)
            if not context.account.options.get("at_least_once"):
                if backend.recovery == "resend":  # past the vendor's de-duplication window
                    why = (
                        f"no answer from {backend.label}, and its {_hours(backend.resend_window)} h "
                        f"de-duplication window has passed, so it was not sent again"
                    )
                else:
                    why = f"no answer and no delivery report from {backend.label} within {int(settings.CALLBACK_SETTLE)} s"
                unknown = [
                    RecipientResult(r.external_ref, r.address, False, Status.FAILED, code=OUTCOME_UNKNOWN,
                                    text=f"outcome unknown: {why}")
                    for r in remaining
                ]  # fmt: skip
                if not never_sent:
                    return CallOutcome(SendResult([*known, *unknown], summary={"reconciled": "callbacks"}))
                known, remaining = [*known, *unknown], []
        remaining = [*remaining, *never_sent]
    else:
        remaining = [r for r in outbound.recipients if r.external_ref not in {k.external_ref for k in known}]
        if remaining and (waited := _waited(prepared)) < settings.LOOKUP_SETTLE:
            return CallOutcome(deferred_until=settings.LOOKUP_SETTLE - waited)  # the vendor may still be taking it
    results = list(known)
    # A resend backend's frame proven by its reports has the vendor's one ticket (Octopush: one per request).
    ticket = next((k.provider_message_id for k in known), "") if backend.recovery == "resend" else ""
    unsent_error = None
    if remaining:
        resent = backend.send(account, replace(outbound, recipients=remaining))
        results += resent.results
        ticket, unsent_error = resent.ticket, resent.unsent_error  # a resend that stopped part-way: retry the rest
    summary = {"reconciled": mode, "resent": len(remaining)}
    return CallOutcome(SendResult(results, ticket=ticket, summary=summary, unsent_error=unsent_error))


def frame_known_in_doubt(prepared, context) -> tuple[list[RecipientResult], str]:
    """What the vendor's reports prove it received of a frame in doubt that is given up on (its retries ran out
    after an answer was lost): the recipients whose reports carry our ref, or, for a vendor whose reports name
    its ticket instead (a "resend" backend), every recipient when the reports prove the frame's one request.
    Returns them (as submitted) and the vendor's ticket for the frame ("" when unknown)."""
    outbound = prepared.outbound
    known = _known_from_reports(context.account.pk, outbound)
    if context.backend.recovery == "resend" and not known:
        known = _known_from_frame_ticket(context.account.pk, outbound, in_doubt_since(prepared))
    ticket = next((k.provider_message_id for k in known), "") if context.backend.recovery == "resend" else ""
    return known, ticket


def frames_settle_by_late_reports(*, frame_ids: list[int]) -> int:
    """Settle frames given up in doubt whose reports came only afterwards; returns how many were settled.

    A frame of a vendor whose reports name its ticket and the number, not our ref (Octopush), that was given up in
    doubt (its answer lost, then its retries ran out: dispatch.frame_give_up_in_doubt; or past the vendor's
    de-duplication window with no report yet) failed its recipients as "outcome unknown" without ever learning its
    ticket, so a report that came later matched no message, and a message Octopush delivered stayed failed. The
    report's applier hands such frames here (`frame_ids`: those with an "outcome unknown" message on a number a
    report found no message for). The same proof as at the give-up is asked for again: one ticket among the
    reports that found no message on the frame's numbers since it was in doubt, with its list name, that no other
    message has and no other number's report names (reports.status_reports_ticket_of_frame). Proven, the frame was
    sent: its messages become `submitted` with that ticket (counters and cost follow), and its reports are matched
    again, moving them on to what they say. Not proven (no such report, or two tickets), nothing changes."""
    settled = 0
    frames = Frame.objects.filter(pk__in=frame_ids, ticket="").select_related("account", "campaign")
    for frame in frames:
        if get_backend(frame.account.kind).recovery != "resend":
            continue  # the others' reports carry our ref, which matches the message and overturns the guess
        settled += _frame_settle_by_late_reports(frame)
    return settled


@retry_on_deadlock
@transaction.atomic
def _frame_settle_by_late_reports(frame: Frame) -> int:
    numbers = list(Message.objects.filter(frame=frame).values_list("address", flat=True))
    lost = frame.response.get("uncertain_since")
    # (A frame given up at its first attempt never noted when its answer was lost: its creation bounds it.)
    since = (
        datetime.fromisoformat(lost) - timedelta(seconds=settings.PROVIDER_HTTP_TIMEOUT) if lost else frame.created_at
    )
    list_name = (
        frame.campaign.name if frame.campaign else frame.response.get("transactional", {}).get("campaign_name", "")
    )
    ticket = status_reports_ticket_of_frame(
        account_id=frame.account_id, numbers=numbers, since=since, list_name=list_name
    )
    if not ticket:
        return 0
    # Events first, then messages, campaigns and frames: the order the report appliers lock in.
    status_events_rematch(account_id=frame.account_id, numbers=numbers, since=since)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH locked AS (
                SELECT m.id, m.status FROM campaigns_message m
                WHERE m.frame_id = %(frame)s AND m.status = 'failed' AND m.error_code = %(unknown)s
                  AND m.provider_message_id = ''
                ORDER BY m.id FOR UPDATE
            ), moved AS (
                UPDATE campaigns_message m SET status = 'submitted', provider_message_id = %(ticket)s, error_code = '',
                    reason = '', final_at = NULL, submitted_at = coalesce(m.submitted_at, %(since)s),
                    cost = %(price)s * coalesce(m.parts, 1), updated_at = now()
                FROM locked WHERE m.id = locked.id
                RETURNING m.campaign_id, m.frame_id, locked.status AS old_status, m.status AS new_status, m.cost
            ) {moved_counters_sql("moved")} {frames_reopen_sql("moved")}
            SELECT count(*), coalesce(sum(cost), 0) FROM moved
            """,
            {"frame": frame.pk, "unknown": OUTCOME_UNKNOWN, "ticket": ticket, "since": since,
             "price": frame.account.price_per_part or 0},
        )  # fmt: skip
        moved, cost = cursor.fetchone()
    if not moved:
        return 0  # settled meanwhile by another applier
    response = {**frame.response, "ticket": ticket, "reconciled": "late reports", "proven_by_reports": moved}
    Frame.objects.filter(pk=frame.pk).update(
        state=Frame.State.SENT, ticket=ticket[:100], uncertain=False, error="", error_code="", response=response,
        finished_at=frame.finished_at or timezone.now(),
    )  # fmt: skip
    if frame.campaign_id is not None and cost:
        Campaign.objects.filter(pk=frame.campaign_id).update(cost_actual=F("cost_actual") + cost)
    return 1


def _send_never_sent(backend: Backend, account: Account, outbound, recipients) -> SendResult:
    """Send a waiting frame's recipients that were never sent. An error concerns them alone, never the frame's
    recipients in doubt: one the vendor refuses fails them; any other leaves them for the frame's next try."""
    try:
        return backend.send(account, replace(outbound, recipients=recipients))
    except BackendError as exc:
        if exc.retryable or is_account_problem(exc):
            return SendResult([], unsent_error=exc)
        refused = [
            RecipientResult(r.external_ref, r.address, False, Status.REJECTED, code=exc.code, text=exc.message)
            for r in recipients
        ]
        return SendResult(refused)


def recovery_mode(backend: Backend, waited: float) -> str:
    """How to settle a frame whose answer was lost `waited` seconds ago: the backend's `recovery`, except a
    "resend" past the vendor's de-duplication window (less RESEND_MARGIN), which is settled as "callbacks"."""
    window = backend.resend_window
    if backend.recovery == "resend" and window is not None and waited >= window - RESEND_MARGIN:
        return "callbacks"
    return backend.recovery


def _hours(seconds: float | None) -> str:
    return f"{(seconds or 0) / 3600:g}"


def _known_from_reports(account_id: int, outbound) -> list[RecipientResult]:
    """Recipients whose delivery reports (carrying our ref) prove the vendor received them."""
    refs = {r.external_ref: r for r in outbound.recipients}
    found = StatusEvent.objects.filter(account_id=account_id, external_ref__in=list(refs)).values_list(
        "external_ref", "provider_message_id"
    )
    seen: dict[str, str] = {}
    for ref, provider_id in found:
        seen.setdefault(ref, provider_id)
    return [
        RecipientResult(ref, refs[ref].address, True, Status.SUBMITTED, provider_message_id=provider_id)
        for ref, provider_id in seen.items()
    ]


def _known_from_frame_ticket(account_id: int, outbound, since: datetime) -> list[RecipientResult]:
    """Every recipient, when a report since the frame was in doubt proves the vendor took the frame's request (a
    ticket no message of ours has, on the frame's numbers only, with its list name): one request, one ticket, so
    the whole frame. Recorded with that ticket, so that the reports then match (dispatch re-matches them)."""
    ticket = status_reports_ticket_of_frame(
        account_id=account_id,
        numbers=[r.address for r in outbound.recipients],
        since=since,
        list_name=outbound.campaign_name,
    )
    if not ticket:
        return []
    return [
        RecipientResult(r.external_ref, r.address, True, Status.SUBMITTED, provider_message_id=ticket)
        for r in outbound.recipients
    ]


def _answer_lost_at(prepared) -> datetime:
    """When the frame's answer was first lost (now, for a frame that never recorded it)."""
    value = prepared.frame.response.get("uncertain_since")
    return datetime.fromisoformat(value) if value else timezone.now()


def in_doubt_since(prepared) -> datetime:
    """When the frame's answer was first lost, less a request's timeout (the vendor may have taken it then)."""
    return _answer_lost_at(prepared) - timedelta(seconds=settings.PROVIDER_HTTP_TIMEOUT)


def _waited(prepared) -> float:
    """Seconds since the frame's answer was first lost."""
    return (timezone.now() - _answer_lost_at(prepared)).total_seconds()
