"""Materialise a campaign's audience into messages and group them into frames, in SQL.

One INSERT … SELECT writes a Message per audience member (pending, or suppressed with its
reason); one statement numbers the pending messages into frames of the backend's size and
links them. Both are safe to run twice: the (campaign, contact) unique constraint and the
"not yet in a frame" condition make a second run a no-op.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import campaign_audience_spec, campaign_estimate, campaign_frame_size
from campaigns.services.counters import counters_recount
from campaigns.services.lifecycle import _locked, _save_state, dispatchers_start
from contacts.audience import audience_rows_sql


def messages_materialise(*, campaign: Campaign) -> int:
    """Write a Message for every audience member not yet materialised; returns how many were written."""
    sql, params = audience_rows_sql(campaign_audience_spec(campaign))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO campaigns_message (campaign_id, contact_id, account_id, channel, address, status, reason,
                                           final_at)
            SELECT %s, a.contact_id, %s, %s, a.address, a.status, a.reason,
                   CASE WHEN a.status = 'suppressed' THEN now() END
            FROM ({sql}) a
            ON CONFLICT (campaign_id, contact_id) DO NOTHING
            """,
            [campaign.pk, campaign.account_id, campaign.channel, *params],
        )
        return cursor.rowcount


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
            )
            UPDATE campaigns_message m SET frame_id = f.id
            FROM numbered, frames f, base
            WHERE m.id = numbered.id AND f.seq = base.first_seq + numbered.n
            """,
            {"size": frame_size, "campaign": campaign.pk, "account": campaign.account_id, "window": window_seconds},
        )
        cursor.execute("SELECT count(*) FROM campaigns_frame WHERE campaign_id = %s", [campaign.pk])
        return cursor.fetchone()[0]


def campaign_prepare(*, campaign_id: int) -> Campaign:
    """preparing → sending: materialise the audience, build frames, start the dispatchers.

    Safe to run twice (a redelivered task): it acts only on a campaign still `preparing`."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state != Campaign.State.PREPARING:
            return campaign
        estimate = campaign_estimate(campaign=campaign)
        messages_materialise(campaign=campaign)
        frames = frames_build(campaign=campaign, frame_size=campaign_frame_size(campaign))
        counters = counters_recount(campaign_id=campaign.pk)
        audience = sum(counters.values())
        cost = estimate.cost if estimate.sendable else 0
        _save_state(
            campaign, Campaign.State.SENDING, "" if frames else "Nothing to send: every recipient is suppressed.",
            counters=counters, audience_size=audience, cost_estimate=cost, parts=estimate.parts.parts,
            encoding=estimate.parts.encoding, launched_at=campaign.launched_at or timezone.now(),
        )  # fmt: skip
    if frames:
        dispatchers_start(campaign_id=campaign.pk)
    else:
        from campaigns.services.lifecycle import campaign_complete_if_done

        campaign_complete_if_done(campaign_id=campaign.pk)
    return campaign
