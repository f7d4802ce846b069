"""The figures of the admin index's dashboard: today's messages by status, delivery rate per provider account
over the last 7 days, campaigns under way or scheduled, and accounts whose last connection check failed.

The message table has no index on created_at (it is written by bulk statements and kept lean), but ids grow
with time: each figure first finds the last message id created well before its period by walking the primary key
backwards from the newest row, then reads the rows after it, by id range, that belong to the period. A figure
costs in proportion to the messages of its period (plus the margin), never a scan of the whole table. The margin
covers rows whose transaction began before the period but drew their ids after rows of the period (a long
materialisation running over midnight).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import (
    DELIVERED_STATUSES,
    FAILURE_STATUSES,
    IN_FLIGHT_STATUSES,
    SENDING,
    STATUS_ORDER,
    TAKEN_STATUSES,
)
from providers.models import ProviderAccount

DAYS = 7
UNDER_WAY = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED, Campaign.State.SCHEDULED)
CAMPAIGNS_SHOWN = 20

# Messages created since %(since)s: the id range after the last row older than the margin, then the time itself.
SINCE_SQL = """
    m.id > coalesce((SELECT id FROM campaigns_message WHERE created_at < %(since)s - interval '1 hour'
                     ORDER BY id DESC LIMIT 1), 0)
    AND m.created_at >= %(since)s
"""


def _messages_today(since: datetime) -> dict[str, int]:
    """Today's messages by the status the message list shows: a pending one whose frame is being sent reads
    `sending` (messages_shown), found by a hash join to the few frames being sent."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT CASE WHEN m.status = 'pending' AND f.id IS NOT NULL THEN %(sending)s ELSE m.status END, count(*)
                FROM campaigns_message m
                LEFT JOIN (SELECT id FROM campaigns_frame WHERE state = 'sending') f ON f.id = m.frame_id
                WHERE {SINCE_SQL} GROUP BY 1""",
            {"since": since, "sending": SENDING},
        )
        counts = dict(cursor.fetchall())
    return {status: counts[status] for status in STATUS_ORDER if counts.get(status)}


def _delivery_by_account(since: datetime, days: list, accounts: dict[int, ProviderAccount]) -> list[dict]:
    """Per account and day: messages sent to the provider (it took them: the meaning of `stats/` and the campaign
    funnel, campaigns.selectors.progress.TAKEN_STATUSES), delivered and failed ones (final outcomes only) and the
    delivery rate."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT m.account_id, (m.created_at AT TIME ZONE %(tz)s)::date AS day,
                       count(*) FILTER (WHERE m.status = ANY(%(delivered)s)) AS delivered,
                       count(*) FILTER (WHERE m.status = ANY(%(failed)s)) AS failed,
                       count(*) FILTER (
                           WHERE m.status = ANY(%(taken)s) OR (m.is_failure AND m.submitted_at IS NOT NULL)
                       ) AS sent
                FROM campaigns_message m WHERE {SINCE_SQL} GROUP BY 1, 2""",
            {
                "since": since,
                "tz": timezone.get_current_timezone_name(),
                "delivered": list(DELIVERED_STATUSES),
                "failed": list(FAILURE_STATUSES),
                "taken": list(TAKEN_STATUSES),
            },
        )
        rows = cursor.fetchall()
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
                "rate": _rate(delivered, failed),
                "daily": [_rate(*figures.get(day, (0, 0, 0))[:2]) for day in days],
            }
        )
    return sorted(result, key=lambda row: row["name"])


def _rate(delivered: int, failed: int) -> float | None:
    """Delivered as a percentage of the messages with an outcome; None when none has one yet."""
    return round(100 * delivered / (delivered + failed), 1) if delivered + failed else None


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
    """Everything the admin index shows, in four queries whatever the size of the message table."""
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today - timedelta(days=DAYS - 1)
    days = [(week_start + timedelta(days=n)).date() for n in range(DAYS)]
    accounts = {account.pk: account for account in ProviderAccount.objects.all()}
    today_counts = _messages_today(today)
    delivered = sum(today_counts.get(s, 0) for s in DELIVERED_STATUSES)
    failed = sum(today_counts.get(s, 0) for s in FAILURE_STATUSES)
    return {
        "today": {
            "counts": today_counts,
            "total": sum(today_counts.values()),
            "delivered": delivered,
            "failed": failed,
            "in_flight": sum(today_counts.get(s, 0) for s in (*IN_FLIGHT_STATUSES, SENDING)),
            "suppressed": today_counts.get("suppressed", 0),
            "rate": _rate(delivered, failed),
        },
        "days": [day.isoformat() for day in days],
        "delivery": _delivery_by_account(week_start, days, accounts),
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
