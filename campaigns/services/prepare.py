"""Materialise a campaign's audience into messages and group them into frames, in SQL.

One INSERT … SELECT writes a Message per audience member (pending, or suppressed with its
reason) and, in the same statement, the frames of the backend's size that the pending ones go
in, so that each message row is written once (linking them afterwards rewrote every row and all
its index entries: bench/bench_audience.py). `frames_build` groups pending messages still
without a frame. Both are safe to run twice: members already materialised are skipped, and the
"not yet in a frame" condition makes a second framing a no-op.

A statement runs on one core, so a large audience is materialised in shares (ranges of contact
ids) side by side, each on its own connection and in its own transaction, while the coordinator
holds the campaign; each share frames only its whole frames, and the coordinator frames the
shares' last, partial ones together once every share is in, so the frames come out as one
statement would have made them (bench/bench_audience.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Frame
from campaigns.rendering import CONTACT_FIELDS, contact_values, render, text_variables
from campaigns.selectors import (
    campaign_audience_spec,
    campaign_frame_size,
    message_id_last,
    parts_spread_of,
    promotional_window_closed_until,
)
from campaigns.services.counters import counters_recount
from campaigns.services.lifecycle import (
    _save_state,
    campaign_pause_on_trouble,
    dispatchers_start,
    frames_hold_until,
    window_hold_reason,
)
from campaigns.services.side_by_side import on_own_connections
from contacts.audience import audience_rows_sql
from providers.sms import SmsParts, sms_parts

logger = logging.getLogger("herald.prepare")


@dataclass(frozen=True)
class AudienceShare:
    """One of `count` shares of an audience materialised side by side: the members with low <= contact id <
    high (None: unbounded). Its n-th frame is numbered first_seq + n × count + index, so that shares never
    collide on a number, and it frames whole frames only: its last, partial one is left to `frames_build`."""

    index: int
    count: int
    low: int | None
    high: int | None
    first_seq: int


def messages_materialise(
    *, campaign: Campaign, frame_size: int | None = None, share: AudienceShare | None = None
) -> int:
    """Write a Message for every audience member not yet materialised; returns how many were written.

    With `frame_size`, the new pending messages are written straight into new frames of that size
    (numbered by contact, after the campaign's existing frames), as `frames_build` would group them.
    With `share` too, only that share's members are written (see AudienceShare)."""
    sql, params = audience_rows_sql(campaign_audience_spec(campaign))
    in_share, share_params = "", []
    if share is not None:
        bounds = [("a.contact_id >= %s", share.low), ("a.contact_id < %s", share.high)]
        in_share = "".join(f" AND {condition}" for condition, bound in bounds if bound is not None)
        share_params = [bound for _, bound in bounds if bound is not None]
    with connection.cursor() as cursor:
        if frame_size is None:
            cursor.execute(
                f"""
                INSERT INTO campaigns_message (campaign_id, contact_id, account_id, channel, address, status, reason,
                                               final_at)
                SELECT %s, a.contact_id, %s, %s, a.address, a.status, a.reason,
                       CASE WHEN a.status = 'suppressed' THEN now() END
                FROM ({sql}) a WHERE true{in_share}
                ON CONFLICT (campaign_id, contact_id) DO NOTHING
                """,
                [campaign.pk, campaign.account_id, campaign.channel, *params, *share_params],
            )
            return cursor.rowcount
        if share is None:
            base_sql, base_params = "SELECT coalesce(max(seq) + 1, 0) AS first_seq FROM campaigns_frame WHERE campaign_id = %s", [campaign.pk]  # fmt: skip
            seq_step, seq_offset, whole_frames_only = 1, 0, False
        else:
            base_sql, base_params = "SELECT %s::int AS first_seq", [share.first_seq]
            seq_step, seq_offset, whole_frames_only = share.count, share.index, True
        # The frames CTE inserts the frames and hands back their ids; the messages are written with theirs, the
        # n-th frame's id taken from an array by position (a message of a partial frame left out: past its end,
        # so NULL). (A join of the messages to the frames was planned from a guess of their numbers; as a nested
        # loop it compared every message with every frame: 12 s instead of 0.5 s for 10,000 one-recipient
        # frames, and a test run once took 9.7 s here.)
        # `audience` is stored in the window's order, so messages are written frame by frame.
        # No ON CONFLICT: members already materialised are left out (NOT EXISTS), and nothing else writes this
        # campaign's messages meanwhile (the campaign is held; shares take disjoint contacts). The unique index
        # still refuses a second message for a member, failing the statement rather than doubling it; a speculative
        # insert per row cost 11 % of materialising a million (bench/bench_audience.py).
        cursor.execute(
            f"""
            WITH audience AS MATERIALIZED (
                SELECT a.contact_id, a.address, a.status, a.reason,
                       CASE WHEN a.status = 'pending'
                            THEN (row_number() OVER (PARTITION BY a.status = 'pending' ORDER BY a.contact_id) - 1) / %s
                       END AS n
                FROM ({sql}) a
                WHERE NOT EXISTS (SELECT 1 FROM campaigns_message m WHERE m.campaign_id = %s AND m.contact_id = a.contact_id)
                      {in_share}
            ), base AS (
                {base_sql}
            ), sizes AS (
                SELECT n, count(*) AS size, max(n) OVER () + 1 AS total FROM audience WHERE n IS NOT NULL GROUP BY n
                HAVING NOT %s OR count(*) = %s
            ), frames AS (
                INSERT INTO campaigns_frame (campaign_id, account_id, seq, size, key, state, attempts, uncertain,
                                             next_attempt_at, ticket, response, error, error_code, created_at)
                SELECT %s, %s, base.first_seq + sizes.n * %s + %s, sizes.size, gen_random_uuid(), 'pending', 0, false,
                       now() + make_interval(secs => %s * sizes.n::float / sizes.total), '', '{{}}'::jsonb, '', '', now()
                FROM sizes, base
                RETURNING id, seq
            ), frame_ids AS (
                SELECT array_agg(id ORDER BY seq) AS ids FROM frames
            )
            INSERT INTO campaigns_message (campaign_id, contact_id, account_id, channel, address, status, reason,
                                           final_at, frame_id)
            SELECT %s, a.contact_id, %s, %s, a.address, a.status, a.reason,
                   CASE WHEN a.status = 'suppressed' THEN now() END, (SELECT ids FROM frame_ids)[a.n + 1]
            FROM audience a
            """,
            [frame_size, *params, campaign.pk, *share_params, *base_params, whole_frames_only, frame_size,
             campaign.pk, campaign.account_id, seq_step, seq_offset,
             (campaign.smooth_minutes or 0) * 60, campaign.pk, campaign.account_id, campaign.channel],
        )  # fmt: skip
        return cursor.rowcount


def prepare_connections() -> int:
    return max(1, settings.PREPARE_CONNECTIONS)


def audience_shares(*, first_seq: int, count: int) -> list[AudienceShare]:
    """Contact ids cut into `count` ranges of equal width, or one share of everything when there are fewer than
    PREPARE_SPLIT_MIN_CONTACTS ids to cut (a small audience is not worth the connections)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM contacts_contact")
        lowest, highest = cursor.fetchone()
    if count <= 1 or lowest is None or highest - lowest + 1 < max(settings.PREPARE_SPLIT_MIN_CONTACTS, count):
        return [AudienceShare(0, 1, None, None, first_seq)]
    width = (highest - lowest + 1) // count
    cuts = [None, *(lowest + width * k for k in range(1, count)), None]
    return [AudienceShare(k, count, cuts[k], cuts[k + 1], first_seq) for k in range(count)]


# A share waits on no lock in normal work: its members and frame numbers are its own, and the coordinator's
# FOR NO KEY UPDATE on the campaign lets its frames' foreign-key checks through. A wait this long means a
# lock cycle PostgreSQL cannot see (the coordinator waits for its shares in Python): fail, and so pause
# the campaign saying why, rather than hang a worker.
SHARE_LOCK_TIMEOUT = "60s"


def _materialise_share(campaign: Campaign, frame_size: int, share: AudienceShare) -> int:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [SHARE_LOCK_TIMEOUT])
        return messages_materialise(campaign=campaign, frame_size=frame_size, share=share)


def messages_materialise_side_by_side(*, campaign: Campaign, frame_size: int, count: int) -> int:
    """Materialise the audience in `count` shares on their own connections, then frame their partial frames
    together; returns how many messages were written.

    Each share commits on its own. If one fails, what the others wrote stays: a second run skips those
    members, and `frames_build` frames what was left without a frame."""
    if count <= 1:
        return messages_materialise(campaign=campaign, frame_size=frame_size)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(seq) + 1, 0) FROM campaigns_frame WHERE campaign_id = %s", [campaign.pk])
        first_seq = cursor.fetchone()[0]
    shares = audience_shares(first_seq=first_seq, count=count)
    if len(shares) == 1:
        return messages_materialise(campaign=campaign, frame_size=frame_size)
    written = sum(on_own_connections(_materialise_share, [(campaign, frame_size, s) for s in shares], name="prepare"))
    frames_build(campaign=campaign, frame_size=frame_size)
    return written


def frames_build(*, campaign: Campaign, frame_size: int) -> int:
    """Group pending messages without a frame into frames of `frame_size`; returns the number of frames.

    With smooth sending, frame k of n may not be sent before launch + k/n × the window.
    """
    window_seconds = (campaign.smooth_minutes or 0) * 60
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH numbered AS (
                SELECT id, (row_number() OVER (ORDER BY id) - 1) / %(size)s AS n
                FROM campaigns_message
                WHERE campaign_id = %(campaign)s AND status = 'pending' AND frame_id IS NULL
            ), base AS (
                SELECT coalesce(max(seq) + 1, 0) AS first_seq FROM campaigns_frame WHERE campaign_id = %(campaign)s
            ), sizes AS (
                SELECT n, count(*) AS size, max(n) OVER () + 1 AS total FROM numbered GROUP BY n
            ), frames AS (
                INSERT INTO campaigns_frame (campaign_id, account_id, seq, size, key, state, attempts, uncertain,
                                             next_attempt_at, ticket, response, error, error_code, created_at)
                SELECT %(campaign)s, %(account)s, base.first_seq + sizes.n, sizes.size, gen_random_uuid(),
                       'pending', 0, false,
                       now() + make_interval(secs => %(window)s * sizes.n::float / sizes.total),
                       '', '{}'::jsonb, '', '', now()
                FROM sizes, base
                RETURNING id, seq
            ), frame_ids AS (
                SELECT array_agg(id ORDER BY seq) AS ids FROM frames
            )
            UPDATE campaigns_message m SET frame_id = (SELECT ids FROM frame_ids)[numbered.n + 1]
            FROM numbered
            WHERE m.id = numbered.id
            """,
            {"size": frame_size, "campaign": campaign.pk, "account": campaign.account_id, "window": window_seconds},
        )
        cursor.execute("SELECT count(*) FROM campaigns_frame WHERE campaign_id = %s", [campaign.pk])
        return cursor.fetchone()[0]


def _parts_and_cost(campaign: Campaign, *, sendable: int) -> tuple[SmsParts, Decimal]:
    """The first pending recipient's parts (the campaign's `parts` and `encoding`, as `campaign_estimate` shows them)
    and the cost of every recipient's text, reckoned as `campaign_estimate` does (parts_spread_of), but from the
    messages just written: evaluating the audience again for the estimate cost as much as a third of materialising
    it. A text without variables is the same for all, and costs no more reading. A personalised one is measured
    over each pending message's contact up to PREPARE_COST_SAMPLE of them, and beyond that over a sample of as many,
    spread over the contact ids, scaled to all: measuring each of a million cost ~2.5 s more (bench_audience), for
    a figure the composer's estimate has already shown exactly before launch.

    The first pending message comes off the one-per-contact index (campaign, contact), before any contact is
    read: the planner has no statistics for rows not yet committed, and joining first read every one."""
    names = (*CONTACT_FIELDS, "attributes")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {", ".join(f"c.{name}" for name in names)} FROM contacts_contact c
                WHERE c.id = (SELECT m.contact_id FROM campaigns_message m WHERE m.campaign_id = %s AND m.status = 'pending'
                              ORDER BY m.campaign_id, m.contact_id LIMIT 1)""",
            [campaign.pk],
        )
        sample = cursor.fetchone()
    text = campaign.text or ""
    measured = (render(text, contact_values(dict(zip(names, sample, strict=True))))[0] if sample else text) or text
    parts = sms_parts(measured)
    if not sendable:
        return parts, Decimal(0)
    if text_variables(text):
        billed = _personalised_parts(campaign, text=text, sendable=sendable)
    else:
        billed = sendable * max(parts.parts, 1)
    return parts, Decimal(billed) * Decimal(str(campaign.account.price_per_part))


COST_SAMPLE_SLICES = 20


def _personalised_parts(campaign: Campaign, *, text: str, sendable: int) -> int:
    """The parts of every pending recipient's text: measured for each up to settings.PREPARE_COST_SAMPLE of them;
    beyond, for the first ones of COST_SAMPLE_SLICES equal ranges of their contact ids (each slice a short range
    scan of the (campaign, contact) index), scaled to `sendable`."""
    pending = "FROM campaigns_message m WHERE m.campaign_id = %s AND m.status = 'pending'"
    sample_size = max(settings.PREPARE_COST_SAMPLE, 1)  # 0 would measure no one and store a cost of 0
    if sendable <= sample_size:
        contacts_sql, params = f"contacts_contact c WHERE c.id IN (SELECT m.contact_id {pending})", [campaign.pk]
    else:
        contacts_sql = f"""contacts_contact c WHERE c.id IN (
            SELECT s.contact_id FROM (SELECT min(m.contact_id) AS low, max(m.contact_id) + 1 AS high {pending}) r,
                 generate_series(0, %s - 1) n,
                 LATERAL (SELECT m.contact_id {pending}
                          AND m.contact_id >= r.low + (r.high - r.low) * n / %s
                          AND m.contact_id < r.low + (r.high - r.low) * (n + 1) / %s
                          ORDER BY m.contact_id LIMIT %s) s)"""
        slices = COST_SAMPLE_SLICES
        params = [campaign.pk, slices, campaign.pk, slices, slices, -(-sample_size // slices)]
    spread = parts_spread_of(text=text, contacts_sql=contacts_sql, params=params)
    if not spread.recipients or spread.recipients >= sendable:
        return spread.total
    return round(spread.total * sendable / spread.recipients)


def _pause_after_failure(campaign_id: int, error: Exception) -> None:
    """A prepare that raised leaves its campaign paused and saying why, rather than `preparing` with no word
    and nothing left to finish it. Resuming prepares it again (members already written are skipped, and
    frames_build frames what a failed share left); cancelling closes what was written."""
    summary = (str(error).strip().splitlines() or [""])[0]
    reason = f"Preparing stopped ({type(error).__name__}: {summary}). Resume to try again, or cancel."
    try:
        campaign_pause_on_trouble(campaign_id=campaign_id, reason=reason)
    except Exception:
        logger.exception("campaign %s: preparing failed, and so did pausing it", campaign_id)


def campaign_prepare(*, campaign_id: int) -> Campaign:
    """preparing → sending: materialise the audience, build frames, start the dispatchers.

    Safe to run twice (a redelivered task): it acts only on a campaign still `preparing`. If it fails, the
    campaign is paused with the error as its reason, and the error is raised.
    Inside a transaction (tests) the audience is materialised in one statement on its connection."""
    shares = 1 if connection.in_atomic_block else prepare_connections()
    try:
        with transaction.atomic():
            # FOR NO KEY UPDATE: pause, cancel (FOR UPDATE) and a second prepare still wait for this one, but the
            # shares' frames, whose foreign key takes a KEY SHARE lock on this row, are not blocked.
            campaign = Campaign.objects.select_for_update(no_key=True).get(pk=campaign_id)
            if campaign.state != Campaign.State.PREPARING:
                return campaign
            frame_size = campaign_frame_size(campaign)
            frames_build(campaign=campaign, frame_size=frame_size)  # messages of an earlier, failed run, if any
            messages_materialise_side_by_side(campaign=campaign, frame_size=frame_size, count=shares)
            frames = Frame.objects.filter(campaign=campaign).count()
            counters = counters_recount(campaign_id=campaign.pk)
            audience = sum(counters.values())
            parts, cost = _parts_and_cost(campaign, sendable=counters.get("pending", 0))
            reason = "" if frames else "Nothing to send: every recipient is suppressed."
            opening = (
                promotional_window_closed_until(campaign=campaign, at=timezone.now()) if frames else None
            )  # it closed while the audience was written
            if opening and frames_hold_until(campaign_id=campaign.pk, opening=opening):
                reason = window_hold_reason(opening)
            _save_state(
                campaign, Campaign.State.SENDING, reason,
                counters=counters, audience_size=audience, cost_estimate=cost, parts=parts.parts,
                encoding=parts.encoding, launched_at=campaign.launched_at or timezone.now(),
                message_ids_to=message_id_last(),  # its messages are all written (the shares have committed)
            )  # fmt: skip
    except Exception as error:
        _pause_after_failure(campaign_id, error)
        raise
    if frames:
        dispatchers_start(campaign_id=campaign.pk)
    else:
        from campaigns.services.lifecycle import campaign_complete_if_done

        campaign_complete_if_done(campaign_id=campaign.pk)
    return campaign
