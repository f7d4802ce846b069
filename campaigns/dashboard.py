"""The figures of the admin index's dashboard: today's messages by status, delivery rate per provider account
over the last 7 days, campaigns under way or scheduled, and accounts whose last connection check failed.

The message table has no index on created_at (it is written by bulk statements and kept lean), but ids grow
with time: each figure first finds the last message id created well before its period by walking the primary key
backwards from the newest row, then reads the rows after it, by id range, that belong to the period. A figure
costs in proportion to the messages of its period (plus the margin), never a scan of the whole table. The margin
covers rows whose transaction began before the period but drew their ids after rows of the period (a long
materialisation running over midnight).

The page refreshes every 15 seconds, and the week's figures read every message of the week (1.9 s for a million):
the days before today are read once and kept in the cache for EARLIER_DAYS_KEPT seconds (shared by everyone who
has the page open); today's messages are read at each refresh, in one query for both of today's figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from campaigns.models import NOT_SENT, Campaign
from campaigns.selectors import (
    DELIVERED_STATUSES,
    FAILURE_STATUSES,
    IN_FLIGHT_STATUSES,
    LISTED_STATUS_CHOICES,
    SENDING,
    TAKEN_STATUSES,
    counts_listed,
    delivery_rate,
)
from providers.models import ProviderAccount

DAYS = 7
UNDER_WAY = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED, Campaign.State.SCHEDULED)
CAMPAIGNS_SHOWN = 20
EARLIER_DAYS_KEPT = 300  # seconds the figures of the days before today are kept (the dashboard says so)

# Messages created since %(since)s: the id range after the last row older than the margin, then the time itself.
SINCE_SQL = """
    m.id > coalesce((SELECT id FROM campaigns_message WHERE created_at < %(since)s - interval '1 hour'
                     ORDER BY id DESC LIMIT 1), 0)
    AND m.created_at >= %(since)s
"""


def _today(since: datetime) -> tuple[dict[str, int], list[tuple], int]:
    """Today's messages by the status the message list shows (a pending one whose frame is being sent reads
    `sending`, messages_shown, found by a hash join to the few frames being sent; the failed ones closed before they
    were sent, NOT_SENT, read `not_sent`, counts_listed), today's delivery rows per account (_delivery_rows' shape)
    and how many were closed before they were sent (in no rate), from one read of today's messages."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT m.account_id, CASE WHEN m.status = 'pending' AND f.id IS NOT NULL THEN %(sending)s ELSE m.status END,
                       count(*), count(*) FILTER (WHERE m.is_failure AND m.submitted_at IS NOT NULL),
                       count(*) FILTER (WHERE m.is_failure AND m.error_code = %(not_sent)s)
                FROM campaigns_message m
                LEFT JOIN (SELECT id FROM campaigns_frame WHERE state = 'sending') f ON f.id = m.frame_id
                WHERE {SINCE_SQL} GROUP BY 1, 2""",
            {"since": since, "sending": SENDING, "not_sent": NOT_SENT},
        )
        rows = cursor.fetchall()
    counts: dict[str, int] = {}
    not_sent_by_status: dict[str, int] = {}
    per_account: dict[int, list[int]] = {}
    for account_id, status, n, failed_after_sending, not_sent in rows:
        counts[status] = counts.get(status, 0) + n
        not_sent_by_status[status] = not_sent_by_status.get(status, 0) + not_sent
        figures = per_account.setdefault(account_id, [0, 0, 0])
        figures[0] += n if status in DELIVERED_STATUSES else 0
        figures[1] += n - not_sent if status in FAILURE_STATUSES else 0
        figures[2] += n if status in TAKEN_STATUSES else failed_after_sending
    day = since.date()
    return (
        counts_listed(counts, not_sent_by_status),
        [(account_id, day, *figures) for account_id, figures in per_account.items()],
        sum(not_sent_by_status.values()),
    )


def _earlier_days(since: datetime, today: datetime) -> list[tuple]:
    """The delivery rows of the days from `since` to before `today`, kept in the cache for EARLIER_DAYS_KEPT seconds:
    a late delivery report changes them, but not every 15 seconds."""
    key = (
        f"herald:dashboard:earlier-days:{since.isoformat()}:{today.isoformat()}:{timezone.get_current_timezone_name()}"
    )
    rows = cache.get(key)
    if rows is None:
        rows = _delivery_rows(since, until=today)
        cache.set(key, rows, EARLIER_DAYS_KEPT)
    return rows


def _delivery_rows(since: datetime, *, until: datetime) -> list[tuple]:
    """Per account and day: messages sent to the provider (it took them: the meaning of `stats/` and the campaign
    funnel, campaigns.selectors.progress.TAKEN_STATUSES), delivered and failed ones (final outcomes only; not those
    closed before they were sent, NOT_SENT)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT m.account_id, (m.created_at AT TIME ZONE %(tz)s)::date AS day,
                       count(*) FILTER (WHERE m.status = ANY(%(delivered)s)) AS delivered,
                       count(*) FILTER (WHERE m.status = ANY(%(failed)s) AND m.error_code <> %(not_sent)s) AS failed,
                       count(*) FILTER (
                           WHERE m.status = ANY(%(taken)s) OR (m.is_failure AND m.submitted_at IS NOT NULL)
                       ) AS sent
                FROM campaigns_message m WHERE {SINCE_SQL} AND m.created_at < %(until)s GROUP BY 1, 2""",
            {
                "since": since,
                "until": until,
                "tz": timezone.get_current_timezone_name(),
                "delivered": list(DELIVERED_STATUSES),
                "failed": list(FAILURE_STATUSES),
                "not_sent": NOT_SENT,
                "taken": list(TAKEN_STATUSES),
            },
        )
        return cursor.fetchall()


def _delivery_by_account(rows: list[tuple], days: list, accounts: dict[int, ProviderAccount]) -> list[dict]:
    """Per account: its messages sent, delivered and failed over the days of `rows`, and its delivery rate, overall
    and per day."""
    per_account: dict[int, dict] = {}
    for account_id, day, delivered, failed, sent in rows:
        figures = per_account.setdefault(account_id, {})
        figures[day] = (delivered, failed, sent)
    result = []
    for account_id, figures in per_account.items():
        account = accounts.get(account_id)
        totals = [sum(values) for values in zip(*figures.values(), strict=True)]
        delivered, failed, sent = totals
        result.append(
            {
                "account_id": account_id,
                "name": account.name if account else f"account {account_id}",
                "kind": account.get_kind_display() if account else "",
                "sent": sent,
                "delivered": delivered,
                "failed": failed,
                "rate": delivery_rate(delivered, failed),
                "daily": [delivery_rate(*figures.get(day, (0, 0, 0))[:2]) for day in days],
            }
        )
    return sorted(result, key=lambda row: row["name"])


def _campaigns_under_way() -> list[dict]:
    campaigns = (
        Campaign.objects.filter(state__in=UNDER_WAY)
        .select_related("account")
        .only("id", "name", "state", "state_reason", "counters", "send_at", "launched_at", "account__name")
        .order_by("state", "send_at", "-id")[:CAMPAIGNS_SHOWN]
    )
    rows = []
    for campaign in campaigns:
        counters = {k: int(v) for k, v in (campaign.counters or {}).items()}
        total = sum(counters.values())
        open_ = sum(counters.get(s, 0) for s in IN_FLIGHT_STATUSES)
        rows.append(
            {
                "id": campaign.pk,
                "name": campaign.name,
                "state": campaign.state,
                "state_display": campaign.get_state_display(),
                "state_reason": campaign.state_reason,
                "account": campaign.account.name,
                "send_at": campaign.send_at,
                "total": total,
                "progress": round(100 * (total - open_) / total, 1) if total else 0.0,
            }
        )
    return rows


def dashboard_figures(*, now: datetime | None = None) -> dict:
    """Everything the admin index shows, in four queries whatever the size of the message table (three while the
    days before today are in the cache)."""
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today - timedelta(days=DAYS - 1)
    days = [(week_start + timedelta(days=n)).date() for n in range(DAYS)]
    accounts = {account.pk: account for account in ProviderAccount.objects.all()}
    today_counts, today_rows, not_sent = _today(today)
    delivered = sum(today_counts.get(s, 0) for s in DELIVERED_STATUSES)
    failed = sum(today_counts.get(s, 0) for s in FAILURE_STATUSES)  # the not sent are counted apart
    labels = dict(LISTED_STATUS_CHOICES)
    return {
        "today": {
            "counts": today_counts,
            "statuses": [
                {"status": status, "label": labels.get(status, status).lower(), "count": n}
                for status, n in today_counts.items()
            ],
            "total": sum(today_counts.values()),
            "delivered": delivered,
            "failed": failed,
            "not_sent": not_sent,
            "in_flight": sum(today_counts.get(s, 0) for s in (*IN_FLIGHT_STATUSES, SENDING)),
            "suppressed": today_counts.get("suppressed", 0),
            "rate": delivery_rate(delivered, failed),
        },
        "days": [day.isoformat() for day in days],
        "earlier_days_minutes": EARLIER_DAYS_KEPT // 60,
        "delivery": _delivery_by_account([*_earlier_days(week_start, today), *today_rows], days, accounts),
        "campaigns": _campaigns_under_way(),
        "failing_accounts": [
            {
                "id": account.pk,
                "name": account.name,
                "kind": account.get_kind_display(),
                "checked_at": account.last_check_at,
                "message": account.last_check_message,
            }
            for account in accounts.values()
            if account.last_check_ok is False and account.is_active
        ],
    }
