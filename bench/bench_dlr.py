"""Delivery reports: N reports stored and applied, half arriving as webhook batches, half as poll pages.

    .venv/bin/python -m bench.bench_dlr --rows 1000000

Two campaigns of messages waiting for reports (status `submitted`), half on a Devino account, half on a
MOBtexting account, written directly in SQL. Then, each timed on its own:

1. webhook ingestion — Devino's callback shape (a JSON array of statuses, 100 per call, carrying our ref in
   callbackData) posted by 8 concurrent clients to Herald's real webhook view in gunicorn (2 workers × 8
   threads): authenticate, `parse_callback`, `status_events_store` (one COPY, queued), acknowledge;
2. poll ingestion — `status_poll`, the poll task's service, over every frame: MOBtexting's `sms/status`
   pages (100 rows a page, by the frame's group_id) pulled from the sandbox through `backend.poll`, then
   `status_events_store`;
3. apply — `status_events_apply_all`: batch after batch (STATUS_APPLY_BATCH events each: match to messages,
   opt-outs, move each message forward, counters, mark the events) until none is left, in this process on
   STATUS_APPLY_CONNECTIONS appliers side by side (each a thread with its own connection, as in the worker):
   first the webhook events, then the poll events.

Floor (for the apply): the same reports COPYed into a bare table and applied to the same messages with one
bare `UPDATE … FROM` join on our reference: what moving that many message rows costs PostgreSQL alone.
Target: applying at least 50,000 updates/s.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid

from bench.common import (
    Result,
    Timer,
    WebServer,
    account_create,
    add_scale_arguments,
    process_env,
    running,
    sandbox,
    sql,
    standalone,
    vacuum_analyze,
)

FULL = 1_000_000
TARGET_RATE = 50_000
WEBHOOK_BATCH = 100
CLIENTS = 8
FRAME = 500
OUTCOMES = [("delivered", 0.92, None), ("undeliverable", 0.04, "1"), ("expired", 0.02, "2"), ("rejected", 0.02, "3")]


def campaign_with_messages(account, count: int, first_contact: int, prefix: str):
    """A sending campaign with `count` submitted messages in frames of 500 (and their contacts), in SQL."""
    from campaigns.models import Campaign
    from campaigns.services.counters import counters_recount

    campaign = Campaign.objects.create(name=f"{account.kind} reports", account=account, sender=account.senders.get(),
                                       text="Your parcel is on its way. - Herald", state="sending")  # fmt: skip
    sql(
        """INSERT INTO contacts_contact (phone, first_name)
           SELECT '+9196' || lpad(n::text, 8, '0'), 'Guest' FROM generate_series(%s, %s) n""",
        [first_contact, first_contact + count - 1],
    )
    sql(
        """INSERT INTO campaigns_frame (campaign_id, account_id, seq, size, key, state, attempts, uncertain,
                                        next_attempt_at, ticket, response, error, error_code, created_at, started_at,
                                        finished_at, reports_open)
           SELECT %s, %s, n, %s, gen_random_uuid(), 'sent', 1, false, now(), %s || n, '{}', '', '', now(), now(), now(),
                  true
           FROM generate_series(0, (%s - 1) / %s) n""",
        [campaign.pk, account.pk, FRAME, prefix, count, FRAME],
    )
    sql(
        """INSERT INTO campaigns_message (campaign_id, contact_id, account_id, channel, address, status, frame_id,
                                          provider_message_id, text, parts, encoding, queued_at, submitted_at)
           SELECT %s, c.id, %s, 'sms', c.phone, 'submitted', f.id, %s || c.id, 'Your parcel is on its way. - Herald',
                  1, 'GSM-7', now(), now()
           FROM contacts_contact c
           JOIN campaigns_frame f ON f.campaign_id = %s AND f.seq = (c.id - %s) / %s
           WHERE c.phone BETWEEN '+9196' || lpad(%s::text, 8, '0') AND '+9196' || lpad(%s::text, 8, '0')
           ORDER BY c.id""",
        [campaign.pk, account.pk, prefix, campaign.pk, first_contact_id(first_contact), FRAME, first_contact,
         first_contact + count - 1],
    )  # fmt: skip
    counters_recount(campaign_id=campaign.pk)
    return campaign


def first_contact_id(first_contact: int) -> int:
    (row,) = sql("SELECT id FROM contacts_contact WHERE phone = '+9196' || lpad(%s::text, 8, '0')", [first_contact])
    return row[0]


def messages_of(campaign_id: int) -> list[tuple[str, str, str]]:
    return sql(
        "SELECT external_ref::text, address, provider_message_id FROM campaigns_message WHERE campaign_id = %s "
        "ORDER BY id",
        [campaign_id],
    )


# --- Webhooks ---------------------------------------------------------------------------------------


def devino_bodies(messages: list[tuple[str, str, str]], account, seed: int) -> list[bytes]:
    """Devino status callbacks as the vendor posts them: JSON arrays, our ref and address in callbackData."""
    rng = random.Random(seed)
    words = [o[0] for o in OUTCOMES]
    weights = [o[1] for o in OUTCOMES]
    codes = {o[0]: o[2] for o in OUTCOMES}
    task, trigger = account.options.get("task_id", 1), account.options.get("trigger_id", "1")
    now_ms = int(time.time() * 1000)
    bodies = []
    for start in range(0, len(messages), WEBHOOK_BATCH):
        batch = []
        for ref, address, provider_id in messages[start : start + WEBHOOK_BATCH]:
            status = rng.choices(words, weights)[0]
            report = {
                "messageId": provider_id, "ts": now_ms, "status": status,
                "callbackData": {"ref": ref, "address": address}, "contactId": f"3111e47182ca9c11-{uuid.uuid4().hex[:16]}",
                "taskId": str(task), "triggerId": str(trigger),
            }  # fmt: skip
            if codes[status]:
                report["errorCode"] = codes[status]
            batch.append(report)
        bodies.append(json.dumps(batch).encode())
    return bodies


def post_all(url: str, bodies: list[bytes], clients: int) -> tuple[float, int]:
    """POST every body with `clients` keep-alive connections at once; (seconds, failures)."""
    import requests

    cursor = iter(range(len(bodies)))
    lock = threading.Lock()
    failures = [0]

    def client():
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            response = session.post(url, data=bodies[index], headers=headers, timeout=60)
            if response.status_code != 200:
                with lock:
                    failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    with Timer() as timer:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return timer.seconds, failures[0]


# --- Polls ------------------------------------------------------------------------------------------


def mobtexting_send_all(account, messages: list[tuple[str, str, str]]) -> list[str]:
    """Give the sandbox the messages (as the engine sent them), so that its pull API reports on them; the
    group ids."""
    from providers.backends import get_backend
    from providers.backends.base import OutboundFrame, Recipient

    backend, config = get_backend("mobtexting"), account.as_backend_account()
    groups = []
    for start in range(0, len(messages), FRAME):
        recipients = [Recipient(ref, address) for ref, address, _ in messages[start : start + FRAME]]
        frame = OutboundFrame(
            key=str(uuid.uuid4()), channel="sms", sender="HERALD", text="Your parcel is on its way. - Herald",
            recipients=recipients, dlt_entity_id="1101234567890123456", dlt_template_id="1107000000000000001",
            service="T",
        )  # fmt: skip
        result = backend.send(config, frame)
        assert all(r.accepted for r in result.results), "the sandbox refused a message"
        groups.append(result.ticket)
    return groups


def poll_all(account, campaign, groups: list[str]) -> int:
    """The poll task's work: `status_poll` over every frame (its group's pages), reports stored."""
    from django.conf import settings

    from campaigns.services.reports import status_poll

    sql(
        """UPDATE campaigns_frame f SET ticket = g.ticket FROM unnest(%s::int[], %s::text[]) g(seq, ticket)
           WHERE f.campaign_id = %s AND f.seq = g.seq""",
        [list(range(len(groups))), groups, campaign.pk],
    )
    poll_after, settings.POLL_AFTER = settings.POLL_AFTER, 0.0  # the frames were sent just now
    try:
        return status_poll(account_id=account.pk, max_frames=len(groups))
    finally:
        settings.POLL_AFTER = poll_after


# --- Apply and its floor ---------------------------------------------------------------------------


def apply_all() -> tuple[float, int, int]:
    """status_events_apply_all (STATUS_APPLY_CONNECTIONS appliers) until no event is left;
    (seconds, events, messages moved)."""
    from campaigns.services.reports import status_events_apply_all

    sql("CHECKPOINT")
    with Timer() as timer:
        result = status_events_apply_all(budget=float("inf"))
    return timer.seconds, result.events, result.applied


def floor_apply() -> tuple[float, int]:
    """COPY (ref, status) of every stored report into a bare table, then one UPDATE … FROM join."""
    from django.db import connection

    rows = sql("SELECT external_ref, status FROM campaigns_statusevent WHERE kind = 'status' ORDER BY id")
    assert rows, "no reports stored"
    data = "".join(f"{ref}\tread\n" for ref, _status in rows)  # a new status for every message, as applying gives
    sql("CREATE TABLE bench_floor_reports (ref text, status text)")
    sql("CHECKPOINT")
    with Timer() as timer, connection.cursor() as cursor:
        with cursor.cursor.copy("COPY bench_floor_reports FROM STDIN") as copy:
            copy.write(data)
        cursor.execute(
            """UPDATE campaigns_message m SET status = r.status, updated_at = now()
               FROM bench_floor_reports r WHERE m.external_ref = r.ref::uuid"""
        )
        moved = cursor.rowcount
    sql("DROP TABLE bench_floor_reports")
    return timer.seconds, moved


def run(*, rows: int, scale: float, args=None) -> Result:
    from django.db import connection

    from campaigns.services.reports import apply_connections

    result = Result("dlr", "Delivery reports: webhook batches and poll pages, stored then applied", rows, scale)
    web_count = rows // 2
    poll_count = rows - web_count
    with sandbox(callbacks=False, dlr_delay=0.0, dlr_jitter=0.0) as server:
        # MOBtexting allows 1,000 GETs a minute per token (100,000 reports a minute by pages of 100): lifted here,
        # so that Herald's side of polling is what is measured.
        server.vendors["mobtexting"].control("limits", {"get_per_minute": 0})
        with Timer() as setup:
            devino = account_create("devino", server)
            mobtexting = account_create("mobtexting", server, setup=False)
            web_campaign = campaign_with_messages(devino, web_count, 1, "dv-")
            poll_campaign = campaign_with_messages(mobtexting, poll_count, web_count + 1, "mt-")
            vacuum_analyze("contacts_contact", "campaigns_message", "campaigns_frame")
            web_bodies = devino_bodies(messages_of(web_campaign.pk), devino, seed=42)
            groups = mobtexting_send_all(mobtexting, messages_of(poll_campaign.pk))

        with running(WebServer(process_env())) as (web,):
            url = f"{web.url}/hooks/devino/{devino.uuid}/?secret={devino.webhook_secret}"
            web_seconds, failures = post_all(url, web_bodies, CLIENTS)
        assert failures == 0, f"{failures} webhook calls failed; see {web.log_path}"
        stored_web = sql("SELECT count(*) FROM campaigns_statusevent WHERE source = 'webhook'")[0][0]
        assert stored_web == web_count, f"{stored_web} webhook reports stored of {web_count}"
        sql("VACUUM ANALYZE campaigns_statusevent, campaigns_pendingstatusevent")
        apply_web_seconds, events_web, applied_web = apply_all()

        with Timer() as poll_timer:
            stored_poll = poll_all(mobtexting, poll_campaign, groups)
        assert stored_poll == poll_count, f"{stored_poll} reports pulled of {poll_count}"
        sql("VACUUM ANALYZE campaigns_statusevent, campaigns_pendingstatusevent")
        apply_poll_seconds, events_poll, applied_poll = apply_all()

    unapplied = sql("SELECT count(*) FROM campaigns_statusevent WHERE applied_at IS NULL")[0][0]
    outcomes = dict(sql("SELECT outcome, count(*) FROM campaigns_statusevent GROUP BY 1"))
    assert unapplied == 0 and outcomes.get("applied") == rows, f"outcomes {outcomes}, {unapplied} unapplied"
    queued = sql("SELECT count(*) FROM campaigns_pendingstatusevent")[0][0]
    assert queued == 0, f"{queued} events still queued"
    # (the appliers' sessions have ended, so their statistics are in)
    ((events_marked, events_marked_in_place),) = sql(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'campaigns_statusevent'"
    )
    open_messages = sql("SELECT count(*) FROM campaigns_message WHERE status IN ('submitted', 'sent')")[0][0]
    assert open_messages == 0, f"{open_messages} messages still wait for a report"
    connection.close()
    floor_seconds, floor_moved = floor_apply()

    apply_seconds = apply_web_seconds + apply_poll_seconds
    appliers = apply_connections()
    rate = rows / apply_seconds
    floor_rate = floor_moved / floor_seconds
    label = f"apply: status_events_apply_all, {appliers} applier{'s' * (appliers > 1)}, all reports"
    result.add(label, rate, "updates/s", floor_rate, rate / floor_rate, f"≥ {TARGET_RATE:,}/s", rate >= TARGET_RATE,
               headline=True)  # fmt: skip
    result.add("  apply: webhook reports (Devino)", web_count / apply_web_seconds, "updates/s", floor_rate,
               web_count / apply_web_seconds / floor_rate)  # fmt: skip
    result.add("  apply: poll reports (MOBtexting)", poll_count / apply_poll_seconds, "updates/s", floor_rate,
               poll_count / apply_poll_seconds / floor_rate)  # fmt: skip
    result.add(f"ingest: webhook HTTP, arrays of {WEBHOOK_BATCH}, {CLIENTS} clients", web_count / web_seconds,
               "reports/s")  # fmt: skip
    result.add("ingest: status_poll, pages of 100 (HTTP + store)", poll_count / poll_timer.seconds, "reports/s")
    result.details = {
        "webhook_reports": web_count,
        "poll_reports": poll_count,
        "webhook_calls": len(web_bodies),
        "poll_groups": len(groups),
        "webhook_seconds": web_seconds,
        "poll_seconds": poll_timer.seconds,
        "apply_webhook_seconds": apply_web_seconds,
        "apply_poll_seconds": apply_poll_seconds,
        "floor_seconds": floor_seconds,
        "appliers": appliers,
        "outcomes": outcomes,
        "events_marked": events_marked,
        "events_marked_heap_only": events_marked_in_place,
        "setup_seconds": setup.seconds,
    }
    result.notes.append(
        f"{rows:,} reports, every one applied; {len(web_bodies):,} webhook calls, {len(groups):,} poll groups "
        f"({-(-poll_count // 100):,} pages); apply batches of STATUS_APPLY_BATCH events; "
        f"{events_marked_in_place / max(events_marked, 1):.0%} of the events marked applied in place (heap-only)"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "delivery reports")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL, minimum=40)
