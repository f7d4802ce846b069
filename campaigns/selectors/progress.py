"""Progress, delivery report, failures in words and exports of a campaign (the admin and the API)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import timedelta

from django.db.models import Case, CharField, Count, F, Func, Q, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from campaigns.models import NOT_SENT, OUTCOME_UNKNOWN, Campaign, Frame, Message, MessageStatus, closed_unsent
from campaigns.selectors.records import messages_of_campaign
from providers.backends import BACKENDS, base
from providers.backends.base import FINAL_STATUSES, SUCCESS_FINAL_STATUSES, Status


def campaign_stats(*, campaign: Campaign, not_sent_failures: bool = True) -> dict:
    """Progress for the admin's live view and the API: counters, rate, recent errors, failures by reason, and the
    delivery funnel. What each number means is documented once, in campaigns.api.StatsSerializer (the OpenAPI
    schema), and the admin's progress panel shows these same numbers. Without `not_sent_failures`, the failures by
    reason leave out the messages closed before they were sent (the admin's page counts them apart, as not sent)."""
    counters = {k: int(v) for k, v in (campaign.counters or {}).items()}
    total = sum(counters.values())
    final = sum(n for s, n in counters.items() if s not in IN_FLIGHT_STATUSES)
    frames = Frame.objects.filter(campaign=campaign)
    frame_states = dict(frames.values_list("state").annotate(n=Count("id")).order_by())
    errors = list(
        frames.exclude(error="").order_by("-id").values("seq", "state", "attempts", "error", "error_code")[:5]
    )
    failed = Message.objects.filter(campaign=campaign, is_failure=True)
    if not not_sent_failures:
        failed = failed.exclude(error_code=NOT_SENT)
    failures = list(failed.values("status", "error_code", "reason").annotate(count=Count("id")).order_by("-count")[:20])
    funnel = campaign_funnel(counters=counters, **_failures_after_sending(campaign, counters))
    sent = next(stage["count"] for stage in funnel if stage["stage"] == "sent")
    return {
        "state": campaign.state,
        "state_reason": campaign.state_reason,
        "counters": counters,
        "total": total,
        "final": final,
        "progress": round(100 * final / total, 1) if total else 0.0,
        "sent": sent,
        "sent_progress": round(100 * sent / total, 1) if total else 0.0,
        "in_flight": _in_flight(campaign, counters, frame_states),
        "funnel": funnel,
        "frames_per_minute": _frames_per_minute(campaign, frames),
        "not_sent": campaign.not_sent,
        "frames": frame_states,
        "last_errors": errors,
        "failures": failures,
        "cost_estimate": str(campaign.cost_estimate) if campaign.cost_estimate is not None else None,
        "cost_actual": str(campaign.cost_actual),
        "currency": campaign.account.currency,
    }


def _frames_per_minute(campaign: Campaign, frames) -> float:
    """Requests to the provider answered per minute, over the last 5 minutes or since the launch if that is more
    recent (a send a minute old read a fifth of its rate); 0 while the campaign is not sending. The frames a cancel
    or a deadline closed unsent are no requests."""
    if campaign.state != Campaign.State.SENDING:
        return 0.0
    now = timezone.now()
    since = max(now - RATE_WINDOW, campaign.launched_at or now - RATE_WINDOW)
    answered = frames.filter(finished_at__gte=since).exclude(state=Frame.State.CANCELLED).count()
    return round(answered / max((now - since).total_seconds(), 30) * 60, 1)


def delivery_rate(delivered: int, failed: int) -> float | None:
    """Delivered as a percentage of the messages with an outcome (delivered or failed); None while none has one."""
    return round(100 * delivered / (delivered + failed), 1) if delivered + failed > 0 else None


def delivery_rate_of(*, counters: dict[str, int], not_sent: int = 0) -> float | None:
    """A campaign's delivery_rate from its counters, the messages closed before they were sent left out
    (Campaign.not_sent: no provider had them)."""
    delivered = sum(counters.get(s, 0) for s in DELIVERED_STATUSES)
    return delivery_rate(delivered, sum(counters.get(s, 0) for s in FAILURE_STATUSES) - not_sent)


def _failures_after_sending(campaign: Campaign, counters: dict[str, int]) -> dict[str, int]:
    """Of the failed messages, how many the provider had taken (`submitted_at` is set when the vendor accepts a
    message, or when a report proves it had it) and how many of those it or the operator then rejected. Failed
    messages only, through their own index: no query when there are none."""
    if not any(counters.get(s) for s in FAILURE_STATUSES):
        return {"failed_after_sending": 0, "rejected_after_sending": 0}
    return Message.objects.filter(campaign=campaign, is_failure=True, submitted_at__isnull=False).aggregate(
        failed_after_sending=Count("id"), rejected_after_sending=Count("id", filter=Q(status=Status.REJECTED))
    )


def _in_flight(campaign: Campaign, counters: dict[str, int], frame_states: dict[str, int]) -> int:
    """The pending messages whose frame is being sent right now (the message list shows them as `sending`): read
    from the campaign's frames being sent (a partial index holds them), then their messages by the frame index,
    at most a few frames' worth; no query while no frame is being sent. Counters stay as dispatch writes them
    (a message once, with its outcome), so these are among counters["pending"]."""
    if not frame_states.get(Frame.State.SENDING) or not counters.get(Status.PENDING):
        return 0
    sending = Frame.objects.filter(campaign=campaign, state=Frame.State.SENDING).values("id")
    count = Message.objects.filter(frame_id__in=sending, status=Status.PENDING).count()
    return min(count, counters[Status.PENDING])


# The statuses in their order of DESIGN §2 (providers.backends.base.Status), grouped for counting and display.
IN_FLIGHT_STATUSES = tuple(s.value for s in Status if s not in FINAL_STATUSES)  # pending, queued, submitted, sent
DELIVERED_STATUSES = tuple(s.value for s in Status if s in SUCCESS_FINAL_STATUSES)
FAILURE_STATUSES = tuple(s.value for s in Status if s in base.FAILURE_STATUSES)
LIVE_STATES = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED)
RATE_WINDOW = timedelta(minutes=5)

# What a failure means, in words a person acts on, where no vendor code says more (Backend.code_words). The vendor's
# own text stays beside it (Message.reason).
FAILURE_WORDS_BY_REASON = {
    "cancelled before sending": "The campaign was cancelled before this message was sent.",
    "send-by deadline passed": "The send-by deadline passed before this message could be sent.",
}
FAILURE_WORDS_BY_STATUS = {
    "rejected": "The provider or the operator refused the message.",
    "undelivered": "The operator could not deliver it: phone off or out of reach, or the number is not in service.",
    "expired": "No delivery report came before the message's validity (or Herald's report window) ran out.",
    "failed": "Herald could not send it, or the outcome is unknown.",
}


def _code_words(kind: str) -> Mapping[str, str]:
    backend = BACKENDS.get(kind)
    return backend.code_words if backend is not None else {}


def failure_words(*, kind: str, status: str, error_code: str = "", reason: str = "") -> str:
    """A failed message's reason in plain words: the vendor's code translated where Herald knows it."""
    if error_code == OUTCOME_UNKNOWN:
        return "The provider's answer was lost and nothing proved the message arrived; a report that comes later corrects it."
    return (
        _code_words(kind).get(error_code)
        or FAILURE_WORDS_BY_REASON.get(reason)
        or FAILURE_WORDS_BY_STATUS.get(status, "")
    )


STATUS_ORDER = (
    "pending", "sending", "queued", "submitted", "sent", "delivered", "read", "clicked",
    "rejected", "undelivered", "expired", "failed", "not_sent", "suppressed",
)  # fmt: skip


def _failure_fields(row: dict) -> dict:
    return {"status": row["status"], "error_code": row["error_code"] or "", "reason": row["reason"] or ""}


def _not_sent_by_status(campaign: Campaign) -> dict[str, int]:
    """The messages closed before they were sent per stored status (`failed` when cancelled or failed, `expired`
    when the send-by deadline passed), through the index of failed messages; no query while there are none."""
    if not campaign.not_sent:
        return {}
    closed = Message.objects.filter(campaign=campaign, is_failure=True, error_code=NOT_SENT)
    return dict(closed.values_list("status").annotate(n=Count("id")).order_by())


def _counter_groups(counters: dict[str, int], in_flight: int = 0, not_sent: int = 0) -> dict[str, int]:
    """The counters as the panel's cards group them: failures are those of messages sent or refused, and the
    messages closed before they were sent (cancel, send-by deadline) are `not_sent`, apart."""

    def total(statuses):
        return sum(counters.get(s, 0) for s in statuses)

    return {
        "pending": total(("pending", "queued")) - in_flight,
        "sending": in_flight,
        "submitted": total(("submitted", "sent")),
        "delivered": total(DELIVERED_STATUSES),
        "failed": total(FAILURE_STATUSES) - not_sent,
        "not_sent": not_sent,
        "suppressed": counters.get("suppressed", 0),
    }


# Handed to the provider and not failed: every status past `queued` but the failures.
TAKEN_STATUSES = (Status.SUBMITTED.value, Status.SENT.value, *DELIVERED_STATUSES)

FUNNEL_STAGES = (
    ("audience", "Audience"),
    ("reachable", "Not suppressed"),
    ("sent", "Sent to the provider"),
    ("accepted", "Accepted"),
    ("delivered", "Delivered"),
)


def campaign_funnel(
    *, counters: dict[str, int], failed_after_sending: int = 0, rejected_after_sending: int = 0
) -> list[dict]:
    """Audience → not suppressed → sent to the provider → accepted → delivered, from the cached counters and, of
    the failed messages, those the provider had taken (`failed_after_sending`) and those of them it or the
    operator rejected afterwards (`rejected_after_sending`; see _failures_after_sending).

    Sent to the provider: the provider took it (submitted, sent, delivered, read, clicked, or a failure it
    reported after taking it: undelivered, expired, rejected later). Not sent: waiting, being sent, suppressed,
    refused when submitted, or failed before reaching it (cancelled, send-by deadline, outcome unknown).
    Accepted: sent, and not rejected afterwards. Each stage is part of the one before: the counts never go up."""
    total = sum(counters.values())
    counts = {
        "audience": total,
        "reachable": total - counters.get("suppressed", 0),
        "sent": sum(counters.get(s, 0) for s in TAKEN_STATUSES) + failed_after_sending,
        "accepted": sum(counters.get(s, 0) for s in TAKEN_STATUSES) + failed_after_sending - rejected_after_sending,
        "delivered": sum(counters.get(s, 0) for s in DELIVERED_STATUSES),
    }
    stages, previous = [], total
    for key, label in FUNNEL_STAGES:
        # (the counters and the failures are read a moment apart: a report in between may not skew the funnel)
        previous = max(min(counts[key], previous), 0)
        stages.append({"stage": key, "label": label, "count": previous})
    return stages


def campaign_progress(*, campaign: Campaign) -> dict:
    """Everything the admin's campaign page shows and refreshes: `campaign_stats`, the counters grouped as staff
    read them, the delivery funnel, failures by reason in plain words and the latest failed messages. The messages
    closed before they were sent are `not_sent` throughout, as the cards count them: a slice of the breakdown of
    their own (NOT_SENT_SHOWN), and in none of the failures by reason."""
    stats = campaign_stats(campaign=campaign, not_sent_failures=False)
    counters = stats["counters"]
    kind = campaign.account.kind
    for failure in stats["failures"]:
        failure["words"] = failure_words(kind=kind, **_failure_fields(failure))
    for error in stats["last_errors"]:
        error["words"] = failure_words(kind=kind, status="failed", error_code=error["error_code"])
    recent = []
    if sum(counters.get(s, 0) for s in FAILURE_STATUSES) > campaign.not_sent:
        recent = list(  # the latest failures of messages sent or refused: those closed unsent would hide them
            Message.objects.filter(campaign=campaign, is_failure=True)
            .exclude(error_code=NOT_SENT)
            .order_by("-id")
            .values("id", "address", "status", "error_code", "reason", "final_at")[:5]
        )
    for message in recent:
        message["words"] = failure_words(kind=kind, **_failure_fields(message))
        message["final_at"] = message["final_at"].isoformat() if message["final_at"] else None
    live = campaign.state in LIVE_STATES
    in_flight = stats["in_flight"]
    shown = {**counters, SENDING: in_flight, "pending": counters.get("pending", 0) - in_flight}  # as the list shows
    return {
        **stats,
        "id": campaign.pk,
        "state_display": campaign.get_state_display(),
        "state_reason_shown": state_reason_shown(campaign),
        "groups": _counter_groups(counters, in_flight, campaign.not_sent),
        "breakdown": [
            {"status": status, "count": n} for status, n in counts_listed(shown, _not_sent_by_status(campaign)).items()
        ],
        "recent_failures": recent,
        "audience_size": campaign.audience_size,
        "parts": campaign.parts,
        "encoding": campaign.encoding,
        "live": live,
        "finished": campaign.state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED, Campaign.State.FAILED),
    }


def state_reason_shown(campaign: Campaign) -> str:
    """A campaign's reason as its pages say it after its state's badge, the state said once: without the state's own
    word when the reason starts with it ("paused Paused by a user." read "paused by a user."; "scheduled Scheduled
    for …", "scheduled for …"). Whole where it stands alone (the API, the list's tooltip)."""
    reason, state = campaign.state_reason, campaign.get_state_display()
    rest = reason[len(state) :]
    if not reason.lower().startswith(state.lower()) or rest[:1].isalnum():
        return reason
    if rest.startswith(" "):  # "by a user.": it goes on from the badge
        return rest.strip()
    rest = rest.lstrip(" :;,.")  # ": the provider account …": a sentence of its own
    return rest[:1].upper() + rest[1:]


MESSAGE_CSV_COLUMNS = (
    "id", "address", "contact_id", "status", "reason", "error_code", "provider_message_id", "external_ref",
    "parts", "encoding", "cost", "created_at", "submitted_at", "final_at", "text",
)  # fmt: skip
# The columns whose text comes from outside Herald (a contact, staff, a vendor): the ones a formula could hide in.
MESSAGE_CSV_OUTSIDE_TEXT = ("address", "reason", "error_code", "provider_message_id", "text")


class UtcText(Func):
    """A time as the export writes it, in UTC to the microsecond: `2026-11-26 09:30:00.250000+00:00`."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US\"+00:00\"')"
    output_field = CharField()


def campaign_message_rows(
    *, campaign: Campaign, statuses: Collection[str] = (), not_sent: str = "", chunk_size: int = 2000
) -> Iterator[tuple]:
    """Every message of a campaign (or those shown in one of `statuses`, as the message list's status filter
    finds them: messages_with_status; `not_sent` "exclude": none closed before it was sent, error code NOT_SENT: the
    failures the progress panel counts as failed; "only": those alone, the panel's not sent) as a row of MESSAGE_CSV_COLUMNS plus what a failure means, streamed from a
    server-side cursor `chunk_size` rows at a time: never the whole campaign in memory. The status is the one the
    message list shows (`sending` while its frame is on the wire, from the frames joined in the same query;
    `not_sent` for one closed before it was sent, listed_status). Times
    and the external reference come as text, written by PostgreSQL (UtcText, a cast): read as Python objects only
    to be printed, they took a third of a large export's time."""
    kind = campaign.account.kind
    as_text = {f"{name}_text": UtcText(name) for name in ("created_at", "submitted_at", "final_at")}
    as_text["external_ref_text"] = Cast("external_ref", CharField())
    columns = [
        "shown_status" if name == "status" else f"{name}_text" if f"{name}_text" in as_text else name
        for name in MESSAGE_CSV_COLUMNS
    ]
    messages = with_shown_status(messages_of_campaign(Message.objects.all(), campaign))
    rows = (
        messages_with_status(messages, list(statuses), not_sent)
        .annotate(**as_text)
        .order_by("id")
        .values_list(*columns)
        .iterator(chunk_size=chunk_size)
    )
    status_at, code_at, reason_at = (MESSAGE_CSV_COLUMNS.index(n) for n in ("status", "error_code", "reason"))
    for row in rows:
        meaning = ""
        status = row[status_at]
        if status in FAILURE_STATUSES:
            meaning = failure_words(kind=kind, status=status, error_code=row[code_at], reason=row[reason_at])
            if (listed := listed_status(status, row[code_at])) != status:
                row = (*row[:status_at], listed, *row[status_at + 1 :])
        yield (*row, meaning)


# A status shown, never stored: a pending message whose frame is on the wire. Dispatch writes a message once, with
# its outcome (services/dispatch.py), so while its frame is `sending` the row still says `pending`; the API and the
# admin show what it is, from the frame's state, through a join on the page (the frame's primary key).
SENDING = "sending"
SHOWN_STATUS_CHOICES = [MessageStatus.choices[0], (SENDING, "Sending"), *MessageStatus.choices[1:]]

# The admin's message list says what a campaign's page says: a failed message closed before it was sent (error code
# NOT_SENT: cancelled, failed campaign, send-by deadline) is "Not sent", in none of the failed statuses.
NOT_SENT_SHOWN = "not_sent"
# A choice of the list's status filter, no status of a message: every failed status but the not sent, what the
# campaign page's Failed card counts (_counter_groups), so that the card opens its list.
FAILURES_SHOWN = "failures"
LISTED_STATUS_CHOICES = [*SHOWN_STATUS_CHOICES, (NOT_SENT_SHOWN, "Not sent"), (FAILURES_SHOWN, "All failures")]


def listed_status(status: str, error_code: str) -> str:
    """A message's status as the admin's list shows it (LISTED_STATUS_CHOICES), from the status shown."""
    return NOT_SENT_SHOWN if closed_unsent(status, error_code) else status


def counts_listed(shown: Mapping[str, int], not_sent_by_status: Mapping[str, int]) -> dict[str, int]:
    """Counts by the status shown as the admin's list counts them (listed_status): the messages closed before they
    were sent (`not_sent_by_status`, per stored status) taken out of their failed status into NOT_SENT_SHOWN; in
    STATUS_ORDER, none of zero."""
    listed = dict(shown)
    for status, n in not_sent_by_status.items():
        listed[status] = listed.get(status, 0) - n
        listed[NOT_SENT_SHOWN] = listed.get(NOT_SENT_SHOWN, 0) + n
    return {status: listed[status] for status in STATUS_ORDER if listed.get(status, 0) > 0}


def listed_status_query(status: str) -> tuple[list[str], str]:
    """A status of the admin's list as messages_with_status (and the campaign export) asks for it: the statuses,
    and `not_sent`: "only" for Not sent, "exclude" for a failed status and All failures (the campaign's page counts
    those apart)."""
    if status == NOT_SENT_SHOWN:
        return [], "only"
    if status == FAILURES_SHOWN:
        return list(FAILURE_STATUSES), "exclude"
    return [status], "exclude" if status in FAILURE_STATUSES else ""


def message_shown_status() -> Case:
    """The status to show: `sending` for a pending message whose frame is being sent, else the stored one."""
    return Case(
        When(status=Status.PENDING, frame_state=Frame.State.SENDING, then=Value(SENDING)),
        default=F("status"),
        output_field=CharField(),
    )


def with_shown_status(queryset):
    """The messages with `shown_status` (message_shown_status), their frames' state read by one LEFT JOIN."""
    return queryset.alias(frame_state=F("frame__state")).annotate(shown_status=message_shown_status())


def messages_shown(queryset):
    """The messages as the API and the admin show them: with `shown_status` (with_shown_status), and none of a
    campaign being deleted (hidden with it until the worker purges them)."""
    return with_shown_status(queryset.exclude(campaign__state=Campaign.State.DELETING))


def messages_with_status(queryset, statuses, not_sent: str = ""):
    """Messages shown in any of `statuses` (SHOWN_STATUS_CHOICES: `sending` is a pending message whose frame is
    being sent, `pending` one whose frame is not). Only pending and sending look at the frame; `sending` alone starts
    from the frames being sent (a partial index holds them). Failures only also go by `is_failure`, so that a
    campaign's failed messages come from their own index (PostgreSQL cannot tell that a failed status implies it;
    no index holds status). `not_sent` "exclude": none closed before it was sent (error code NOT_SENT); "only":
    those alone, failed messages, from the same index."""
    if not_sent == "only":
        queryset = queryset.filter(is_failure=True, error_code=NOT_SENT)
    elif not_sent == "exclude":
        queryset = queryset.exclude(error_code=NOT_SENT)
    if not statuses:
        return queryset
    wanted = set(statuses)
    pending, sending = Status.PENDING.value, SENDING
    if not wanted & {pending, sending}:
        queryset = queryset.filter(status__in=sorted(wanted))
        return queryset.filter(is_failure=True) if wanted <= set(FAILURE_STATUSES) else queryset
    found = Q(status__in=sorted(wanted - {pending, sending}))
    if {pending, sending} <= wanted:
        found |= Q(status=pending)
    elif sending in wanted:
        found |= Q(status=pending, frame__state=Frame.State.SENDING)
    else:
        found |= Q(status=pending) & ~Q(frame__state=Frame.State.SENDING)
    return queryset.filter(found)
