"""Dispatch throughput: a prepared campaign sent through the real engine to the sandbox over HTTP.

    .venv/bin/python -m bench.bench_dispatch --rows 1000000

The campaign of bench_audience (tag + segment, 5 % opted out, a personalised text) on an Octopush account
in the sandbox (frames of 500, `{param1}` personalisation; delivery-report callbacks off, so that sending is
what is measured). `campaign_launch` here; everything after runs in a real Celery worker with 2 processes
(prepare, then DISPATCHERS_PER_CAMPAIGN dispatchers claiming frames with FOR UPDATE SKIP LOCKED and advisory
locks, the Redis rate limiter, one request per frame, one statement recording each frame's outcome). The
sandbox runs in this process and counts what it accepted: every recipient must be accepted exactly once.

Sending rate: recipients over the span from the first frame claimed to the last frame recorded (database
timestamps). Floor: the very same frames (same recipients and texts, fresh request ids) posted to the same
sandbox by the same backend code in a bare loop with no database, in 2 processes like the worker's.
Targets: at least 20,000 recipients/s, and at least half the floor's rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import (
    Result,
    Timer,
    WorkerProcess,
    account_create,
    add_scale_arguments,
    audience_create,
    campaign_create,
    process_env,
    purge_queues,
    running,
    sandbox,
    sql,
    standalone,
)
from config.processes import wait_until

FULL = 1_000_000
TARGET_RATE = 20_000
TARGET_SHARE = 0.5
PROCESSES = 2


def frames_done(campaign_id: int) -> bool:
    return not sql(
        "SELECT 1 FROM campaigns_frame WHERE campaign_id = %s AND state IN ('pending', 'sending') LIMIT 1",
        [campaign_id],
    )


def send_campaign(campaign_id: int, timeout: float) -> dict:
    """Launch the campaign and wait until every frame is sent (or failed); timings from the database."""
    from campaigns.models import Campaign
    from campaigns.services import campaign_launch

    with Timer() as launch:
        campaign_launch(campaign_id=campaign_id)
    started = time.monotonic()
    wait_until(lambda: Campaign.objects.get(pk=campaign_id).audience_size is not None, timeout=timeout,
               what="the campaign to be prepared", every=0.1)  # fmt: skip
    prepared = time.monotonic() - started
    wait_until(lambda: frames_done(campaign_id), timeout=timeout, what="every frame to be sent", every=0.1)
    end_to_end = time.monotonic() - started
    ((first_claim, last_record, frames, failed_frames),) = sql(
        """SELECT min(started_at), max(finished_at), count(*), count(*) FILTER (WHERE state <> 'sent')
           FROM campaigns_frame WHERE campaign_id = %s""",
        [campaign_id],
    )
    counts = dict(
        sql("SELECT status, count(*) FROM campaigns_message WHERE campaign_id = %s GROUP BY 1", [campaign_id])
    )
    return {
        "launch_seconds": launch.seconds,
        "prepared_after": prepared,
        "end_to_end_seconds": end_to_end,
        "sending_seconds": (last_record - first_claim).total_seconds(),
        "frames": frames,
        "failed_frames": failed_frames,
        "counts": counts,
        "sent": counts.get("submitted", 0) + counts.get("sent", 0) + counts.get("delivered", 0),
    }


# --- The floor: the same frames, no database --------------------------------------------------------


def floor_frames(campaign_id: int) -> list:
    """The campaign's frames as the engine sent them (recipients, rendered texts, variables), new keys."""
    from campaigns.models import Campaign
    from providers.backends.base import OutboundFrame, Recipient

    campaign = Campaign.objects.select_related("sender").get(pk=campaign_id)
    rows = sql(
        """SELECT m.frame_id, m.external_ref::text, m.address, m.text, c.first_name
           FROM campaigns_message m JOIN contacts_contact c ON c.id = m.contact_id
           WHERE m.campaign_id = %s AND m.frame_id IS NOT NULL ORDER BY m.frame_id, m.id""",
        [campaign_id],
    )
    frames, current, recipients = [], None, []

    def close():
        if recipients:
            frames.append(
                OutboundFrame(
                    key=str(uuid.uuid4()),
                    channel="sms",
                    sender=campaign.sender.name,
                    text=campaign.text,
                    recipients=list(recipients),
                    purpose=campaign.purpose,
                    campaign_name=campaign.name,
                )  # fmt: skip
            )

    for frame_id, ref, address, text, first_name in rows:
        if frame_id != current:
            close()
            current, recipients = frame_id, []
        recipients.append(Recipient(ref, address, text, {"first_name": first_name}))
    close()
    return frames


def _floor_loop(path: str, ready, start, results) -> None:
    """One bare sending loop (a spawned process): post each frame with the backend, nothing else."""
    from providers.backends.octopush import OctopushBackend

    with open(path, "rb") as fh:
        account, frames = pickle.load(fh)
    backend = OctopushBackend()
    ready.release()
    start.wait()
    began = time.perf_counter()
    accepted = sum(sum(r.accepted for r in backend.send(account, frame).results) for frame in frames)
    results.put((accepted, began, time.perf_counter()))


def floor_rate(account, frames: list) -> tuple[float, int, float]:
    """(recipients/s, recipients accepted, seconds) for the frames posted by PROCESSES bare loops."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        processes = []
        for n in range(PROCESSES):
            path = str(Path(tmp) / f"frames-{n}.pickle")
            with open(path, "wb") as fh:
                pickle.dump((account, frames[n::PROCESSES]), fh)
            process = context.Process(target=_floor_loop, args=(path, ready, start, results), daemon=True)
            process.start()
            processes.append(process)
        for _ in processes:  # each has imported and loaded its frames
            if not ready.acquire(timeout=120):
                raise RuntimeError("a floor process did not start")
        began = time.perf_counter()
        start.set()
        outcomes = [results.get(timeout=3600) for _ in processes]
        seconds = time.perf_counter() - began
        for process in processes:
            process.join(30)
    accepted = sum(o[0] for o in outcomes)
    return accepted / seconds, accepted, seconds


def run(*, rows: int, scale: float, args=None) -> Result:
    from campaigns.models import Message

    result = Result(
        "dispatch", "Dispatch: engine → sandbox over HTTP (Octopush, frames of 500, 2 processes)", rows, scale
    )
    with Timer() as setup:
        audience = audience_create(rows)
    with sandbox(callbacks=False) as server:
        account = account_create("octopush", server, rate_limit=1000)
        campaign = campaign_create(account, audience)
        purge_queues()
        with running(WorkerProcess(process_env(), concurrency=PROCESSES)):
            sent = send_campaign(campaign.pk, timeout=600 + rows / 1000)
        with server.state.lock:
            accepted = {ref: n for (vendor, ref), n in server.state.accepted.items() if vendor == "octopush"}
        pending_expected = audience.sendable
        assert sent["failed_frames"] == 0, f"{sent['failed_frames']} frames failed"
        assert len(accepted) == pending_expected, f"{len(accepted)} recipients accepted, {pending_expected} expected"
        assert set(accepted.values()) == {1}, "a recipient was sent twice"

        frames = floor_frames(campaign.pk)
        server.reset()
        server.configure(callbacks=False)
        floor, floor_accepted, floor_seconds = floor_rate(account.as_backend_account(), frames)
        assert floor_accepted == pending_expected, f"the floor sent {floor_accepted}"

    rate = sent["sent"] / sent["sending_seconds"]
    share = rate / floor
    result.add("sending rate (first claim → last frame recorded)", rate, "recipients/s", floor, share,
               f"≥ {TARGET_RATE:,}/s and ≥ {TARGET_SHARE:.0%} of floor", rate >= TARGET_RATE and share >= TARGET_SHARE,
               headline=True)  # fmt: skip
    result.add("end to end (launch → last frame, incl. prepare)", sent["sent"] / sent["end_to_end_seconds"],
               "recipients/s", floor, sent["sent"] / sent["end_to_end_seconds"] / floor)  # fmt: skip
    result.add("sending time", sent["sending_seconds"], "s", floor_seconds)
    result.add("prepare in the worker (launch → prepared)", sent["prepared_after"], "s")
    result.add("launch (pre-flight checks)", sent["launch_seconds"], "s")
    result.details = {**sent, "floor_rate": floor, "floor_seconds": floor_seconds, "setup_seconds": setup.seconds,
                      "suppressed": Message.objects.filter(campaign=campaign, status="suppressed").count()}  # fmt: skip
    result.notes.append(
        f"{sent['sent']:,} recipients accepted exactly once in {sent['frames']:,} frames; "
        f"{audience.members - audience.sendable:,} suppressed"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "recipients")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL)
