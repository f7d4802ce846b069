"""Audience materialisation: a campaign on a tag + a segment, 5 % of its members opted out, prepared in SQL.

    .venv/bin/python -m bench.bench_audience --rows 1000000

Generates the contacts (bench.common.audience_create: tag `news` on 7 in 10 members, segment "vip, not
churned" for the rest, 5 % of members unsubscribed in every scope), launches a campaign on them and runs
`campaign_prepare` in this process: the messages and their frames (Octopush, 500 a frame) written by
PREPARE_CONNECTIONS shares side by side, one INSERT … SELECT each, then the counters. Each phase is timed.

Floor: a bare `INSERT … SELECT` of the same number of rows (same columns, read from the same contacts) into a
table with no index or constraint: what writing the rows costs PostgreSQL alone. Best of two runs, one before
and one after Herald's. Target: preparing takes at most 2× the floor.

Also shown, for where the time goes: the same audience rows chosen by Herald's own SELECT (the rules: tags,
segment, suppressions) and inserted into such a bare table. Herald's prepare adds to it the frames, the
message table's indexes and the shares.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

from bench.common import (
    Result,
    Timer,
    account_create,
    add_scale_arguments,
    audience_create,
    campaign_create,
    sandbox,
    sql,
    standalone,
)

FULL = 1_000_000
TARGET_RATIO = 2.0


def bare_insert_seconds(select_sql: str, params: list) -> tuple[float, int]:
    """(seconds, rows) of `INSERT … SELECT` of message-shaped rows (campaign, contact, account, channel, address,
    status, reason) into a table like the message table, with its defaults but no index or constraint."""
    sql("DROP TABLE IF EXISTS bench_floor_message")
    sql("CREATE TABLE bench_floor_message (LIKE campaigns_message INCLUDING DEFAULTS INCLUDING IDENTITY)")
    sql("CHECKPOINT")
    with Timer() as timer:
        sql(
            "INSERT INTO bench_floor_message (campaign_id, contact_id, account_id, channel, address, status, reason) "
            + select_sql,
            params,
        )
    written = sql("SELECT count(*) FROM bench_floor_message")[0][0]
    sql("DROP TABLE bench_floor_message")
    return timer.seconds, written


def floor_seconds(members: int) -> float:
    """The floor: `members` contacts read by id, written bare."""
    seconds, _ = bare_insert_seconds(
        "SELECT 0, c.id, 0, 'sms', c.phone, 'pending', '' FROM contacts_contact c WHERE c.id BETWEEN 1 AND %s",
        [members],
    )
    return seconds


def rules_floor_seconds(campaign) -> float:
    """The same audience rows, chosen by Herald's own SELECT (tags, segment, suppressions), written bare: what the
    audience rules cost before anything is written the way Herald writes it."""
    from campaigns.selectors import campaign_audience_spec
    from contacts.audience import audience_rows_sql

    rows_sql, params = audience_rows_sql(campaign_audience_spec(campaign))
    seconds, written = bare_insert_seconds(
        f"SELECT %s, a.contact_id, %s, 'sms', a.address, a.status, a.reason FROM ({rows_sql}) a",
        [campaign.pk, campaign.account_id, *params],
    )
    assert written == campaign.messages.count(), f"the rules chose {written} rows"
    return seconds


class PhaseTimer:
    """Wraps functions of a module so that each call is timed under a name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed


def prepare_timed(campaign_id: int) -> tuple[float, dict[str, float]]:
    """campaign_prepare in this process (dispatchers not started), with its phases timed."""
    from campaigns.services import prepare

    phases = PhaseTimer()
    patches = [
        mock.patch.object(prepare, name, phases.wrap(label, getattr(prepare, name)))
        for name, label in (
            ("campaign_estimate", "estimate (audience counts, sample)"),
            ("messages_materialise_side_by_side", "messages and frames: INSERT … SELECT in shares"),
            ("counters_recount", "counters"),
            ("_parts_and_cost", "parts and cost (a sample of the texts)"),
        )
        if hasattr(prepare, name)
    ]
    patches.append(mock.patch.object(prepare, "dispatchers_start", lambda **kw: None))
    for patch in patches:
        patch.start()
    try:
        sql("CHECKPOINT")
        with Timer() as timer:
            prepare.campaign_prepare(campaign_id=campaign_id)
    finally:
        for patch in patches:
            patch.stop()
    return timer.seconds, phases.seconds


def run(*, rows: int, scale: float, args=None) -> Result:
    from campaigns.models import Campaign, Frame, Message
    from campaigns.services import campaign_launch, prepare

    result = Result("audience", "Audience materialisation (tags + segment, 5 % opted out)", rows, scale)
    with Timer() as setup:
        audience = audience_create(rows)
    with sandbox(callbacks=False) as server:
        account = account_create("octopush", server)
    campaign = campaign_create(account, audience)
    first_floor = floor_seconds(audience.members)

    with Timer() as launch:
        campaign_launch(campaign_id=campaign.pk)  # pre-flight checks; the prepare task is run here instead
    total, phases = prepare_timed(campaign.pk)
    campaign.refresh_from_db()
    floor = min(first_floor, floor_seconds(audience.members))
    rules_floor = rules_floor_seconds(campaign)

    messages = Message.objects.filter(campaign=campaign).count()
    pending = Message.objects.filter(campaign=campaign, status="pending").count()
    frames = Frame.objects.filter(campaign=campaign).count()
    assert campaign.state == Campaign.State.SENDING, campaign.state_reason
    assert messages == audience.members, f"{messages} messages for {audience.members} members"
    assert pending == audience.sendable, f"{pending} pending, expected {audience.sendable}"
    assert frames == -(-pending // 500), f"{frames} frames for {pending} pending: one partial frame at most"
    shares = len(prepare.audience_shares(first_seq=0, count=prepare.prepare_connections()))

    ratio = total / floor
    result.add("prepare (messages, frames, counters, commit)", total, "s", floor, ratio,
               f"≤ {TARGET_RATIO:g}× floor", ratio <= TARGET_RATIO)  # fmt: skip
    result.add("prepare rate", messages / total, "rows/s", audience.members / floor, (messages / total) / (audience.members / floor),
               headline=True)  # fmt: skip
    rest = total - sum(phases.values())
    for label, seconds in [*phases.items(), ("commit, locks, state", rest)]:
        result.add(f"  {label}", seconds, "s", floor, seconds / floor)
    result.add(
        "the rules' rows inserted bare (Herald's SELECT, no index)", rules_floor, "s", floor, rules_floor / floor
    )
    result.add("launch (pre-flight checks, before prepare)", launch.seconds, "s")
    result.details = {
        "members": audience.members,
        "opted_out": audience.opted_out,
        "messages": messages,
        "pending": pending,
        "frames": frames,
        "shares": shares,
        "floor_seconds": floor,
        "rules_floor_seconds": rules_floor,
        "prepare_seconds": total,
        "phases": phases,
        "launch_seconds": launch.seconds,
        "setup_seconds": setup.seconds,
    }
    result.notes.append(
        f"{audience.members:,} members, {audience.members - pending:,} suppressed, {frames:,} frames of 500, "
        f"written {f'in {shares} shares side by side' if shares > 1 else 'by one statement'}; "
        f"data generated in {setup.seconds:.1f} s"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "recipients")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL)
