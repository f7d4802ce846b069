"""Delivery reports and opt-outs: stored as received, then applied in batches by one function.

Webhooks and polls both end in `status_events_store` (one INSERT, so a webhook answers fast)
and `status_events_apply`, which matches a batch of events to messages, records opt-outs,
moves each message to its best reported status (never backwards: herald_status_rank), keeps
the campaign counters current, and marks every event with its outcome. Duplicates and
out-of-order reports are therefore harmless. An event that matches no message yet (a report
faster than our record of the send) is retried a few times before it is marked unmatched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Frame, Message, StatusEvent
from campaigns.services.counters import moved_counters_sql
from providers.backends import get_backend
from providers.backends.base import FINAL_STATUSES, BackendError, MessageRef, PollQuery, StatusUpdate
from providers.models import ProviderAccount

logger = logging.getLogger("herald.reports")

APPLY_LOCK = (0x48455241, 0)  # one applier at a time: counters of several campaigns move together
MATCH_ATTEMPTS = 5  # an unmatched event is retried this many times (10 s apart, growing) before giving up
FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES))
UUID_RE = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def status_events_store(*, account: ProviderAccount, updates: list[StatusUpdate], source: str) -> int:
    """Store reports as received, in one INSERT; `status_events_apply` applies them."""
    if not updates:
        return 0
    StatusEvent.objects.bulk_create(
        [
            StatusEvent(
                account=account,
                source=source,
                kind=str(u.kind),
                provider_message_id=u.provider_message_id[:100],
                external_ref=u.external_ref[:100],
                address=u.address[:254],
                ticket=u.ticket[:100],
                raw_status=u.raw_status[:64],
                status=str(u.status) if u.status else "",
                error_code=u.code[:32],
                error_text=u.text[:255],
                optout_scope=u.optout_scope[:10],
                optout_value=u.optout_value[:150],
                payload=u.payload,
                occurred_at=u.occurred_at,
            )  # fmt: skip
            for u in updates
        ],
        batch_size=2000,
    )
    return len(updates)


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


def status_events_apply(*, limit: int | None = None) -> ApplyResult:
    """Apply one batch of stored events (at most `limit`); returns what happened. One applier at a time."""
    limit = limit or settings.STATUS_APPLY_BATCH
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", APPLY_LOCK)
        if not cursor.fetchone()[0]:
            return ApplyResult()
        cursor.execute(
            """SELECT id FROM campaigns_statusevent
               WHERE applied_at IS NULL
                 AND (match_attempts = 0 OR received_at < now() - make_interval(secs => 10 * match_attempts))
               ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
            [limit],
        )
        batch = [row[0] for row in cursor.fetchall()]
        if not batch:
            return ApplyResult()
        _match(cursor, batch)
        opt_outs = _record_opt_outs(cursor, batch)
        applied_ids, campaigns = _apply_statuses(cursor, batch)
        cursor.execute(
            f"""UPDATE campaigns_statusevent e SET
                    match_attempts = match_attempts + (message_id IS NULL AND kind = 'status')::int,
                    applied_at = CASE WHEN kind = 'status' AND message_id IS NULL AND match_attempts + 1 < {MATCH_ATTEMPTS}
                                      THEN NULL ELSE now() END,
                    outcome = CASE WHEN kind = 'opt_out' THEN 'opt_out'
                                   WHEN kind <> 'status' OR status = '' THEN 'unknown'
                                   WHEN message_id IS NULL THEN 'unmatched'
                                   WHEN id = ANY(%s) THEN 'applied' ELSE 'ignored' END
                WHERE id = ANY(%s)""",
            [applied_ids, batch],
        )
    for campaign_id in campaigns:
        from campaigns.services.lifecycle import campaign_complete_if_done

        campaign_complete_if_done(campaign_id=campaign_id)
    return ApplyResult(len(batch), len(applied_ids), opt_outs, tuple(campaigns))


def _match(cursor, batch: list[int]) -> None:
    """Find each event's message: by our ref, by the vendor's id (+ number), or by number after a lost ticket."""
    cursor.execute(
        f"""UPDATE campaigns_statusevent e SET message_id = m.id FROM campaigns_message m
            WHERE e.id = ANY(%s) AND e.message_id IS NULL AND e.external_ref ~ '{UUID_RE}'
              AND m.external_ref = e.external_ref::uuid AND m.account_id = e.account_id""",
        [batch],
    )
    cursor.execute(
        """UPDATE campaigns_statusevent e SET message_id = m.id FROM campaigns_message m
           WHERE e.id = ANY(%s) AND e.message_id IS NULL AND e.provider_message_id <> '' AND e.address <> ''
             AND m.account_id = e.account_id AND m.provider_message_id = e.provider_message_id
             AND m.address = e.address""",
        [batch],
    )
    cursor.execute(
        """UPDATE campaigns_statusevent e SET message_id = m.id FROM campaigns_message m
           WHERE e.id = ANY(%s) AND e.message_id IS NULL AND e.provider_message_id <> '' AND e.address = ''
             AND m.account_id = e.account_id AND m.provider_message_id = e.provider_message_id""",
        [batch],
    )
    # The vendor had the frame but its ticket never reached us (Octopush 120 after a lost answer):
    # the newest message to that number still waiting for a report, without a vendor id.
    cursor.execute(
        """UPDATE campaigns_statusevent e SET message_id = (
               SELECT m.id FROM campaigns_message m
               WHERE m.account_id = e.account_id AND m.address = e.address AND m.provider_message_id = ''
                 AND m.status IN ('submitted', 'sent') ORDER BY m.id DESC LIMIT 1)
           WHERE e.id = ANY(%s) AND e.message_id IS NULL AND e.kind = 'status' AND e.address <> ''
             AND e.ticket <> ''""",
        [batch],
    )


def _record_opt_outs(cursor, batch: list[int]) -> int:
    cursor.execute(
        """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
           SELECT DISTINCT ON (address, scope, value) address, scope, value, 'provider', reason, now() FROM (
               SELECT coalesce(nullif(e.address, ''), m.address) AS address,
                      CASE WHEN e.optout_scope IN ('channel', 'sender', 'tag', 'service') AND e.optout_value <> ''
                           THEN e.optout_scope ELSE 'all' END AS scope,
                      CASE WHEN e.optout_scope IN ('channel', 'sender', 'tag', 'service') AND e.optout_value <> ''
                           THEN e.optout_value ELSE '' END AS value,
                      left('opt-out reported by ' || a.name || coalesce(': ' || nullif(e.raw_status, ''), ''), 255)
                          AS reason
               FROM campaigns_statusevent e
               JOIN providers_provideraccount a ON a.id = e.account_id
               LEFT JOIN campaigns_message m ON m.id = e.message_id
               WHERE e.id = ANY(%s) AND e.kind = 'opt_out'
           ) o WHERE address IS NOT NULL AND address <> ''
           ON CONFLICT (address, scope, value) DO NOTHING""",
        [batch],
    )
    return cursor.rowcount


def _apply_statuses(cursor, batch: list[int]) -> tuple[list[int], list[int]]:
    """Move each message to its best reported status if that is forward; returns (event ids applied, campaigns)."""
    cursor.execute(
        f"""
        WITH ev AS (
            SELECT DISTINCT ON (e.message_id) e.id AS event_id, e.message_id, e.status, e.provider_message_id,
                   e.ticket, e.error_code, e.error_text, e.raw_status, e.occurred_at
            FROM campaigns_statusevent e
            WHERE e.id = ANY(%s) AND e.kind = 'status' AND e.message_id IS NOT NULL AND e.status <> ''
            ORDER BY e.message_id, herald_status_rank(e.status) DESC, e.occurred_at DESC NULLS LAST, e.id DESC
        ), locked AS (
            SELECT m.id, m.status FROM campaigns_message m WHERE m.id IN (SELECT message_id FROM ev)
            ORDER BY m.id FOR UPDATE
        ), moved AS (
            UPDATE campaigns_message m SET
                status = ev.status,
                provider_message_id = CASE WHEN m.provider_message_id = ''
                                           THEN left(coalesce(nullif(ev.provider_message_id, ''), ev.ticket), 100)
                                           ELSE m.provider_message_id END,
                error_code = CASE WHEN ev.error_code <> '' THEN ev.error_code ELSE m.error_code END,
                reason = CASE WHEN ev.status IN ('rejected', 'undelivered', 'expired', 'failed')
                              THEN left(coalesce(nullif(ev.error_text, ''), ev.raw_status), 255) ELSE m.reason END,
                final_at = CASE WHEN ev.status IN ({FINAL_SQL}) THEN coalesce(m.final_at, ev.occurred_at, now())
                                ELSE m.final_at END,
                updated_at = now()
            FROM ev JOIN locked ON locked.id = ev.message_id
            WHERE m.id = ev.message_id AND herald_status_rank(ev.status) > herald_status_rank(locked.status)
            RETURNING ev.event_id, m.campaign_id, locked.status AS old_status, m.status AS new_status
        ) {moved_counters_sql("moved")}
        SELECT coalesce(array_agg(event_id), '{{}}'), coalesce(array_agg(DISTINCT campaign_id)
               FILTER (WHERE campaign_id IS NOT NULL), '{{}}') FROM moved
        """,
        [batch],
    )
    applied, campaigns = cursor.fetchone()
    return list(applied), list(campaigns)


def status_events_apply_all(*, budget: float = 20.0) -> ApplyResult:
    """Apply batches until none is left or `budget` seconds pass."""

    deadline = time.monotonic() + budget
    total = ApplyResult()
    while time.monotonic() < deadline:
        result = status_events_apply()
        total = ApplyResult(
            total.events + result.events, total.applied + result.applied, total.opt_outs + result.opt_outs,
            tuple(sorted(set(total.campaigns) | set(result.campaigns))),
        )  # fmt: skip
        if result.events < settings.STATUS_APPLY_BATCH:
            break
    return total


# --- Polling --------------------------------------------------------------------------------------


def status_poll(*, account_id: int, max_frames: int = 50) -> int:
    """Ask a vendor's pull API about frames sent a while ago whose messages still wait for a report."""
    account = ProviderAccount.objects.get(pk=account_id)
    backend = get_backend(account.kind)
    if not backend.supports_polling or not account.is_active:
        return 0
    now = timezone.now()
    waiting = Message.objects.filter(frame=OuterRef("pk"), status__in=["submitted", "sent"])
    frames = list(
        Frame.objects.filter(
            account=account, state=Frame.State.SENT, finished_at__lte=now - timedelta(seconds=settings.POLL_AFTER)
        )
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=now - timedelta(seconds=settings.POLL_INTERVAL)))
        .filter(Exists(waiting))
        .order_by("finished_at")[:max_frames]
    )
    stored = 0
    config = account.as_backend_account()
    for frame in frames:
        refs = [
            MessageRef(str(ref), address, provider_id)
            for ref, address, provider_id in Message.objects.filter(
                frame=frame, status__in=["submitted", "sent"]
            ).values_list("external_ref", "address", "provider_message_id")
        ]
        try:
            updates = backend.poll(config, PollQuery(tickets=[frame.ticket] if frame.ticket else [], messages=refs))
        except BackendError as exc:
            logger.info("polling %s for frame %s failed: %s", account.name, frame.pk, exc)
            continue
        finally:
            Frame.objects.filter(pk=frame.pk).update(last_polled_at=timezone.now())
        stored += status_events_store(account=account, updates=updates, source=StatusEvent.Source.POLL)
    return stored


def messages_expire_unreported() -> int:
    """Messages with no final report after the account's report window become `expired`, saying why.

    MOBtexting sends no delivery reports for promotional traffic since DLT, and any vendor may
    lose some: a campaign must still complete."""
    total = 0
    for account in ProviderAccount.objects.all():
        hours = float(account.options.get("report_window_hours") or settings.REPORT_WINDOW_HOURS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH locked AS (
                    SELECT id, status FROM campaigns_message
                    WHERE account_id = %s AND status IN ('submitted', 'sent')
                      AND submitted_at < now() - make_interval(secs => %s)
                    ORDER BY id FOR UPDATE SKIP LOCKED
                ), moved AS (
                    UPDATE campaigns_message m SET status = 'expired', final_at = now(), updated_at = now(),
                        reason = left(%s, 255)
                    FROM locked WHERE m.id = locked.id
                    RETURNING m.campaign_id, locked.status AS old_status, m.status AS new_status
                ) {moved_counters_sql("moved")}
                SELECT coalesce(array_agg(DISTINCT campaign_id) FILTER (WHERE campaign_id IS NOT NULL), '{{}}'),
                       count(*) FROM moved
                """,
                [account.pk, hours * 3600, f"no delivery report from {account.name} within {hours:g} h"],
            )
            campaigns, count = cursor.fetchone()
        total += count
        for campaign_id in campaigns:
            from campaigns.services.lifecycle import campaign_complete_if_done

            campaign_complete_if_done(campaign_id=campaign_id)
    return total
