"""Memory: peak resident memory of the worker and the web processes for a 100k and a 1M-recipient campaign.

    .venv/bin/python -m bench.bench_memory --rows 1000000        (the small run is a tenth of --rows)

For each size, on fresh processes: a Celery worker (2 processes) and gunicorn (2 workers × 8 threads). The
worker prepares and sends the campaign of bench_dispatch (Octopush, frames of 500, to the sandbox); then this
process plays the vendor and posts a delivery report for every message to Herald's Octopush webhook (arrays
of 100, 8 connections), which stores them and has the worker apply them; a beat stand-in enqueues the periodic
apply every 10 s, as celery beat would. Meanwhile a staff member's browser is played too: the campaign's
stats and detail in the API, once a second. The run ends when the campaign is completed.

Every 0.1 s the resident memory of every process of each tree is sampled (psutil). The figure is the largest
single process (a pool child, a gunicorn worker); the tree's sum is kept too (it counts pages shared after
fork more than once). Target: from the small to the large campaign, at most 1.2× growth.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from bench.bench_dispatch import send_campaign
from bench.bench_dlr import post_all
from bench.common import (
    Result,
    RssSampler,
    Timer,
    WebServer,
    WorkerProcess,
    account_create,
    add_scale_arguments,
    audience_create,
    campaign_create,
    process_env,
    purge_queues,
    reset_data,
    sandbox,
    sql,
    standalone,
)
from config.processes import wait_until

FULL = 1_000_000
TARGET_GROWTH = 1.2
REPORT_BATCH = 100


def octopush_reports(campaign_id: int) -> list[bytes]:
    """Octopush delivery reports (ticket + number, Paris time) for every sent message, as JSON arrays."""
    rows = sql(
        "SELECT provider_message_id, address FROM campaigns_message WHERE campaign_id = %s AND status = 'submitted' "
        "ORDER BY id",
        [campaign_id],
    )
    bodies = []
    for start in range(0, len(rows), REPORT_BATCH):
        batch = [
            {
                "channel": "sms",
                "message_id": ticket,
                "list_name": "bench",
                "number": number,
                "status": "DELIVERED",
                "unit_price": 0.065,
                "delivery_date": "2025-01-15 10:00:00",
                "meta_data": {},
            }  # fmt: skip
            for ticket, number in rows[start : start + REPORT_BATCH]
        ]
        bodies.append(json.dumps(batch).encode())
    return bodies


class Staff(threading.Thread):
    """Someone watching the campaign: its stats and detail from the API once a second."""

    def __init__(self, base: str, campaign_id: int, token: str):
        super().__init__(daemon=True)
        self.urls = [f"{base}/api/v1/campaigns/{campaign_id}/stats/", f"{base}/api/v1/campaigns/{campaign_id}/"]
        self.headers = {"Authorization": f"Token {token}"}
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        import requests

        session = requests.Session()
        while not self.stop.wait(1.0):
            for url in self.urls:
                try:
                    session.get(url, headers=self.headers, timeout=30).raise_for_status()
                except requests.RequestException:
                    self.errors += 1


def staff_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        "bench", "bench@herald.local", "bench-password-not-used"
    )
    return Token.objects.get_or_create(user=user)[0].key


def measure(recipients: int) -> dict:
    """One campaign of `recipients` through fresh worker and web processes, sampled all along."""
    from django.conf import settings

    from campaigns.models import Campaign
    from campaigns.tasks import status_events_apply_task

    reset_data()
    audience = audience_create(recipients)
    token = staff_token()
    with sandbox(callbacks=False) as server:
        account = account_create("octopush", server, rate_limit=1000)
        campaign = campaign_create(account, audience)
        purge_queues()
        web = WebServer(process_env()).start()
        try:
            settings.HERALD_PUBLIC_URL = web.url
            worker = WorkerProcess(process_env(HERALD_PUBLIC_URL=web.url), concurrency=2).start()
            staff = Staff(web.url, campaign.pk, token)
            try:
                with RssSampler({"worker": worker.pid, "web": web.pid}) as sampler, Timer() as timer:
                    staff.start()
                    sent = send_campaign(campaign.pk, timeout=600 + recipients / 1000)
                    bodies = octopush_reports(campaign.pk)
                    url = f"{web.url}/hooks/octopush/{account.uuid}/?secret={account.webhook_secret}"
                    seconds, failures = post_all(url, bodies, 8)
                    assert failures == 0, f"{failures} webhook calls failed; see {web.log_path}"
                    last_tick = [time.monotonic()]

                    def beat():  # celery beat's periodic apply, every 10 s
                        if time.monotonic() - last_tick[0] >= 10:
                            last_tick[0] = time.monotonic()
                            status_events_apply_task.delay()

                    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "completed",
                               timeout=600 + recipients / 500, what="the campaign to complete", every=0.5, tick=beat)  # fmt: skip
                    staff.stop.set()
            finally:
                staff.stop.set()
                worker.stop()
        finally:
            web.stop()
    counters = Campaign.objects.get(pk=campaign.pk).counters
    return {
        "recipients": recipients,
        "sendable": audience.sendable,
        "counters": counters,
        "worker_peak_mb": sampler.peak_process["worker"],
        "worker_tree_peak_mb": sampler.peak_tree["worker"],
        "web_peak_mb": sampler.peak_process["web"],
        "web_tree_peak_mb": sampler.peak_tree["web"],
        "seconds": timer.seconds,
        "sending_seconds": sent["sending_seconds"],
        "webhook_seconds": seconds,
        "webhook_calls": len(bodies),
        "staff_errors": staff.errors,
    }


def run(*, rows: int, scale: float, args=None) -> Result:
    small_rows = max(10, rows // 10)
    result = Result("memory", "Memory: peak RSS of worker and web, small vs large campaign", rows, scale)
    small = measure(small_rows)
    large = measure(rows)
    for role in ("worker", "web"):
        growth = large[f"{role}_peak_mb"] / small[f"{role}_peak_mb"]
        result.add(f"{role}: largest process, {small_rows:,} → {rows:,} recipients", large[f"{role}_peak_mb"], "MB",
                   small[f"{role}_peak_mb"], growth, f"≤ {TARGET_GROWTH:g}× growth", growth <= TARGET_GROWTH,
                   headline=role == "worker")  # fmt: skip
    for role in ("worker", "web"):
        result.add(f"{role}: whole process tree", large[f"{role}_tree_peak_mb"], "MB", small[f"{role}_tree_peak_mb"],
                   large[f"{role}_tree_peak_mb"] / small[f"{role}_tree_peak_mb"])  # fmt: skip
    result.details = {"small": small, "large": large}
    result.notes.append(
        "floor column = the small campaign's figure; worker: prepare, dispatch and applying the reports; web: "
        f"{large['webhook_calls']:,} webhook calls of {REPORT_BATCH} reports and the API polled each second"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "recipients in the large campaign")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL, minimum=100)
