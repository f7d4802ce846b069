"""The promotional window on the recipient's own clock.

The account's window (its zone: often the regulator's, TRAI's 09:00-21:00 IST) holds a promotional campaign as a
whole (lifecycle.campaign_hold_for_window). In addition, a recipient whose contact has a time zone gets a promotion
only while the same hours and days are open in their zone: a contact in Réunion of a French account, in Dubai of an
Indian one, is not woken at night. A contact without a zone keeps to the account's window alone.

This is decided when a frame is first claimed, and only then: a frame retried, reclaimed or in doubt may have been
seen by the vendor, and its idempotency key must keep naming the same request, so its recipients never change. The
recipients whose zone is closed move, set-based, to new frames of the campaign due when both windows next open
together (one per frame and opening); those whose zone never meets the account's window within about a week fail,
saying so. A frame left with no one is closed as sent without a request (dispatch's empty frame).

With smooth sending, the frames held for one opening keep the campaign's pace from it rather than all going at the
opening in one burst: each goes after the one held before it for that opening by as long as the campaign's pace put
between the frames they came from (_paced_dues), so a zone's recipients are spread over the smooth window from
their own opening as the campaign is from its launch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from campaigns.models import Campaign
from campaigns.selectors import account_promotional_window, recipient_window_opening
from campaigns.services.counters import messages_close
from config.times import zoned_time_shown

ZONES_KEY = "recipient_zones"  # in a held frame's response: the zones its recipients wait for
OPENING_KEY = "recipient_opening"  # with smooth sending, in a held frame's response: the opening it waits for (UTC)
PACED_FROM_KEY = "paced_from"  # and when the frame its recipients came from was due in the campaign's pace
ZONE_WAIT = "Waiting for"


def frames_hold_for_recipient_zones(frames: list, *, campaign: Campaign, now: datetime) -> None:
    """Move the recipients of newly claimed `frames` (dispatch.ClaimedFrame, of a promotional `campaign`) whose own
    zone is outside the window at `now` to frames due at their common opening, or fail them when there is none.
    One statement reads the frames' recipients by zone; the moving takes three more, only when someone moves."""
    fresh = [f.id for f in frames if not f.reclaimed and f.attempts == 1]  # never a frame the vendor may have seen
    if not fresh:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT m.frame_id, c.timezone, array_agg(m.id ORDER BY m.id)
               FROM campaigns_message m JOIN contacts_contact c ON c.id = m.contact_id
               WHERE m.frame_id = ANY(%s) AND m.status IN ('pending', 'queued') AND c.timezone <> ''
               GROUP BY 1, 2""",
            [fresh],
        )
        rows = cursor.fetchall()
    openings: dict[str, datetime | None] = {}
    moves: dict[tuple[int, datetime], tuple[list[str], list[int]]] = {}  # (frame, opening) → zones, messages
    never: dict[str, list[int]] = {}  # zone → messages
    for frame_id, zone, message_ids in rows:
        if zone not in openings:
            try:
                openings[zone] = recipient_window_opening(account=campaign.account, zone=zone, at=now)
            except ValueError:  # the account's window cannot be read: the launch said so, nothing can hold to it
                return
        opening = openings[zone]
        if opening == now:
            continue
        if opening is None:
            never.setdefault(zone, []).extend(message_ids)
        else:
            zones, ids = moves.setdefault((frame_id, opening), ([], []))
            zones.append(zone)
            ids.extend(message_ids)
    if moves or never:
        _move(campaign, moves, never, {f.id: f.due for f in frames})


@transaction.atomic
def _move(campaign: Campaign, moves: dict, never: dict, came_due: dict[int, datetime | None]) -> None:
    account_zone = ""
    with connection.cursor() as cursor:
        # The campaign's row lock: two dispatchers adding frames at once would take the same seq (once a frame, at
        # most); prepare numbers its frames under the same lock.
        cursor.execute("SELECT state FROM campaigns_campaign WHERE id = %s FOR UPDATE", [campaign.pk])
        if cursor.fetchone()[0] not in (Campaign.State.SENDING, Campaign.State.PAUSED):
            return  # cancelled or failed since the claim: no new frame that nothing would close
        if moves:
            keys = list(moves)
            dues = _paced_dues(cursor, campaign, keys, came_due)
            news = []
            for n, key in enumerate(keys):
                (zones, ids), (due, notes) = moves[key], dues[key]
                news.append([n, ids, due.isoformat(), json.dumps({ZONES_KEY: sorted(set(zones)), **notes})])
            cursor.execute(
                """
                WITH v AS (
                    SELECT (r->>0)::int AS n, (r->1) AS ids, (r->>2)::timestamptz AS due, (r->>3)::jsonb AS response
                    FROM jsonb_array_elements(%s::jsonb) r
                ), base AS (
                    SELECT coalesce(max(seq) + 1, 0) AS first_seq FROM campaigns_frame WHERE campaign_id = %s
                ), frames AS (
                    INSERT INTO campaigns_frame (campaign_id, account_id, seq, size, key, state, attempts, uncertain,
                                                 next_attempt_at, ticket, response, error, error_code, created_at)
                    SELECT %s, %s, base.first_seq + v.n, jsonb_array_length(v.ids), gen_random_uuid(), 'pending', 0,
                           false, v.due, '', v.response, '', '', now()
                    FROM v, base
                    RETURNING id, seq - (SELECT first_seq FROM base) AS n
                ), moved AS (
                    UPDATE campaigns_message m SET frame_id = frames.id, updated_at = now()
                    FROM v JOIN frames ON frames.n = v.n, jsonb_array_elements_text(v.ids) AS e(message_id)
                    WHERE m.id = e.message_id::bigint AND m.status IN ('pending', 'queued')
                    RETURNING m.id
                )
                SELECT count(*) FROM moved
                """,
                [json.dumps(news), campaign.pk, campaign.pk, campaign.account_id],
            )
            # The frames they left are smaller by as many.
            left = {}
            for (frame_id, _), (_, ids) in moves.items():
                left[frame_id] = left.get(frame_id, 0) + len(ids)
            cursor.execute(
                """UPDATE campaigns_frame f SET size = greatest(f.size - v.moved, 0)
                   FROM unnest(%s::bigint[], %s::int[]) v(id, moved) WHERE f.id = v.id""",
                [list(left), list(left.values())],
            )
        if never:
            account_zone = account_promotional_window(campaign.account).get("tz", "UTC")
            reasons = {
                message_id: f"no hour is inside the promotional window both in the account's zone ({account_zone}) "
                f"and in the recipient's ({zone})"[:255]
                for zone, message_ids in never.items()
                for message_id in message_ids
            }
            messages_close(cursor, reasons, status="failed")


def _paced_dues(cursor, campaign: Campaign, keys: list, came_due: dict) -> dict:
    """When each new held frame ((frame, opening) in `keys`) is due, and what its response notes for the next ones:
    at its opening; with smooth sending, after the frame held before it for the same opening (this round's, or one
    waiting already, read in one statement under the campaign's lock) by as long as the campaign's pace put between
    the frames they came from (`came_due`: frame → when it was due before its claim), at most the smooth window."""
    window = (campaign.smooth_minutes or 0) * 60
    if not window:
        return {key: (key[1], {}) for key in keys}
    names = {key: key[1].astimezone(UTC).isoformat() for key in keys}
    cursor.execute(
        """SELECT DISTINCT ON (response ->> %(opening)s) response ->> %(opening)s, next_attempt_at,
                  (response ->> %(paced)s)::timestamptz
           FROM campaigns_frame
           WHERE campaign_id = %(campaign)s AND state IN ('pending', 'sending') AND response ->> %(opening)s = ANY(%(names)s)
           ORDER BY response ->> %(opening)s, next_attempt_at DESC""",
        {"opening": OPENING_KEY, "paced": PACED_FROM_KEY, "campaign": campaign.pk, "names": sorted(set(names.values()))},
    )  # fmt: skip
    last = {name: (due, paced_from) for name, due, paced_from in cursor.fetchall()}
    dues = {}
    for key in sorted(keys, key=lambda k: (came_due.get(k[0]) or k[1], k[0])):
        opening, name = key[1], names[key]
        paced_from = came_due.get(key[0]) or opening
        due = opening
        if name in last:
            previous_due, previous_from = last[name]
            gap = min(max((paced_from - (previous_from or paced_from)).total_seconds(), 0.0), window)
            due = max(opening, previous_due + timedelta(seconds=gap))
        last[name] = (due, paced_from)
        dues[key] = (due, {OPENING_KEY: name, PACED_FROM_KEY: paced_from.isoformat()})
    return dues


def recipient_wait_reason(*, campaign_id: int, now: datetime) -> str:
    """What a promotional campaign waits for when all it has left to send are frames held for their recipients' own
    window (one statement); "" otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce(sum(size), 0), min(next_attempt_at), coalesce(bool_and(response ? %s), false),
                       (array_agg(response -> %s ->> 0 ORDER BY next_attempt_at))[1]
                FROM campaigns_frame WHERE campaign_id = %s AND state IN ('pending', 'sending')""",
            [ZONES_KEY, ZONES_KEY, campaign_id],
        )
        recipients, due, held_only, zone = cursor.fetchone()
    if not held_only or due is None or due <= now or not zone:
        return ""
    whose = f"{recipients} recipients'" if recipients != 1 else "1 recipient's"
    # In their zone with the site's beside it, as every wait for a window is said (it read "09:00 Pacific/Tahiti").
    when = zoned_time_shown(due.astimezone(ZoneInfo(zone)))
    return f"{ZONE_WAIT} {whose} promotional window (their own time zone), next at {when}."


def campaign_note_recipient_wait(*, campaign_id: int, now: datetime) -> None:
    """Say why a sending campaign waits, when only frames held for their recipients' own window are left; a reason
    said before and no longer true is taken back."""
    reason = recipient_wait_reason(campaign_id=campaign_id, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE campaigns_campaign SET state_reason = %s, updated_at = now()
               WHERE id = %s AND state = 'sending' AND state_reason <> %s
                 AND (state_reason = '' OR state_reason LIKE %s)""",
            [reason, campaign_id, reason, f"{ZONE_WAIT} %"],
        )
