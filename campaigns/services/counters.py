"""Per-campaign message counters, kept current by the statements that move messages.

Every statement that changes message statuses returns (campaign_id, old_status, new_status)
rows in a CTE; `moved_counters_sql` appends the CTEs that add those deltas to
`campaigns_campaign.counters` in the same statement, so counters never need a COUNT(*) over
a million rows.
"""

import json

from django.db import connection

from campaigns.models import NOT_SENT


def moved_counters_sql(moved_cte: str) -> str:
    """CTEs (to follow a `WITH … moved AS (…)`) adding the moved rows' deltas to the counters."""
    return f"""
        , counter_deltas AS (
            SELECT campaign_id, status, sum(delta)::int AS delta FROM (
                SELECT campaign_id, old_status AS status, -1 AS delta FROM {moved_cte}
                UNION ALL SELECT campaign_id, new_status, 1 FROM {moved_cte}
            ) d WHERE campaign_id IS NOT NULL AND status IS NOT NULL GROUP BY campaign_id, status
        ), counter_rows AS (
            -- Locked in id order, so that two statements moving counters of the same campaigns (two report
            -- appliers side by side) always wait for each other the same way round and never deadlock.
            SELECT c.id FROM campaigns_campaign c WHERE c.id IN (SELECT campaign_id FROM counter_deltas)
            ORDER BY c.id FOR NO KEY UPDATE OF c  -- the lock the UPDATE takes: inserts of frames are not blocked
        ), counters_updated AS (
            UPDATE campaigns_campaign c SET counters = (
                SELECT coalesce(jsonb_object_agg(key, total), '{{}}'::jsonb) FROM (
                    SELECT key, sum(value)::int AS total FROM (
                        SELECT key, value::int AS value FROM jsonb_each_text(c.counters)
                        UNION ALL SELECT status, delta FROM counter_deltas WHERE counter_deltas.campaign_id = c.id
                    ) parts GROUP BY key HAVING sum(value) <> 0
                ) totals
            ) WHERE c.id IN (SELECT id FROM counter_rows) RETURNING c.id
        )
    """


def frames_reopen_sql(moved_cte: str) -> str:
    """A CTE (to follow moved_counters_sql) opening the frames of messages the statement moved into waiting for a
    report (`submitted`, `sent`): expiry and polling find waiting messages only through open frames.

    Unconditional, so that it takes the frame's row lock even when the frame looks open: expiry locks a frame
    before closing it, and so either sees this statement's messages or is followed by its reopening."""
    return f"""
        , frames_opened AS (
            UPDATE campaigns_frame f SET reports_open = true
            WHERE f.id IN (SELECT frame_id FROM {moved_cte} WHERE new_status IN ('submitted', 'sent'))
            RETURNING f.id
        )
    """


def counters_recount(*, campaign_id: int) -> dict[str, int]:
    """Recompute a campaign's counters, and its messages closed before they were sent (`not_sent`, read through
    the index of failed messages), from its messages (after materialisation, or to repair)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_campaign SET counters = coalesce((
                SELECT jsonb_object_agg(status, n) FROM (
                    SELECT status, count(*) AS n FROM campaigns_message WHERE campaign_id = %s GROUP BY status
                ) s), '{}'::jsonb),
                not_sent = (SELECT count(*) FROM campaigns_message
                            WHERE campaign_id = %s AND is_failure AND error_code = %s)
            WHERE id = %s RETURNING counters
            """,
            [campaign_id, campaign_id, NOT_SENT, campaign_id],
        )
        row = cursor.fetchone()
    if not row:
        return {}
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]  # Django hands raw jsonb over as text


def messages_close(cursor, reasons: dict[int, str], *, status: str) -> None:
    """Give still-pending messages (id → reason) a final `status` with their reasons, their campaigns' counters
    moving with them, in one statement: those that moved on meanwhile are left as they are."""
    cursor.execute(
        f"""
        WITH v(id, reason) AS (SELECT * FROM unnest(%s::bigint[], %s::text[])), locked AS (
            SELECT m.id, m.status FROM campaigns_message m JOIN v ON v.id = m.id
            WHERE m.status IN ('pending', 'queued') ORDER BY m.id FOR UPDATE OF m
        ), moved AS (
            UPDATE campaigns_message m SET status = %s, reason = v.reason, final_at = now(), updated_at = now()
            FROM locked JOIN v ON v.id = locked.id WHERE m.id = locked.id
            RETURNING m.campaign_id, locked.status AS old_status, m.status AS new_status
        ) {moved_counters_sql("moved")}
        SELECT count(*) FROM moved
        """,
        [list(reasons), list(reasons.values()), status],
    )
