"""The naive way: the same campaign sent one Celery task and one HTTP request per recipient (bench/naive.py),
against Herald's engine in the same run.

    .venv/bin/python -m bench.bench_naive --rows 100000

The audience of bench_audience (tag + segment, 5 % opted out) and the sandbox's Octopush. First Herald sends
it as bench_dispatch does (real worker, 2 processes, frames of 500); then, on the same recipients, a
tutorial-style implementation: a loop enqueues one task per sendable recipient and a worker with 2 processes
runs them (load contact and campaign, check the suppression list, fill in the text, one request, save a
Message). Each recipient must reach the sandbox exactly once in both runs. Rates are recipients per second
from the first request to the last recorded answer (for the naive run: from the first task enqueued).
"""

from __future__ import annotations

import argparse
import time

from bench.bench_dispatch import send_campaign
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

FULL = 100_000
PROCESSES = 2


def accepted_count(server) -> tuple[int, int]:
    """(recipients the sandbox's Octopush accepted, how many of them more than once)."""
    with server.state.lock:
        counts = [n for (vendor, _ref), n in server.state.accepted.items() if vendor == "octopush"]
    return len(counts), sum(1 for n in counts if n > 1)


def run(*, rows: int, scale: float, args=None) -> Result:
    from campaigns.models import Message

    result = Result("naive", "Naive: one Celery task + one HTTP request per recipient, vs Herald", rows, scale)
    audience = audience_create(rows)
    with sandbox(callbacks=False) as server:
        account = account_create("octopush", server, rate_limit=1000)
        herald_campaign = campaign_create(account, audience, name="herald")
        purge_queues()
        with running(WorkerProcess(process_env(), concurrency=PROCESSES)):
            sent = send_campaign(herald_campaign.pk, timeout=600 + rows / 1000)
        herald_accepted, herald_twice = accepted_count(server)
        assert herald_accepted == audience.sendable and not herald_twice, (herald_accepted, herald_twice)
        herald_rate = sent["sent"] / sent["sending_seconds"]

        # The tutorial's recipients: the same people Herald sent to.
        contact_ids = [
            row[0]
            for row in sql(
                "SELECT contact_id FROM campaigns_message WHERE campaign_id = %s AND status <> 'suppressed' "
                "ORDER BY contact_id",
                [herald_campaign.pk],
            )
        ]
        naive_campaign = campaign_create(account, audience, name="naive")
        server.reset()
        server.configure(callbacks=False)
        from bench import naive

        with running(WorkerProcess(process_env(), concurrency=PROCESSES, queues="naive", app="bench.naive")):
            started = time.perf_counter()
            with Timer() as enqueue:
                naive.send_campaign(naive_campaign.pk, contact_ids)
            wait_until(
                lambda: Message.objects.filter(campaign=naive_campaign).count() >= len(contact_ids),
                timeout=600 + rows / 50, what="the naive tasks to finish", every=0.5,
            )  # fmt: skip
            naive_seconds = time.perf_counter() - started
        naive_accepted, naive_twice = accepted_count(server)
        assert naive_accepted == len(contact_ids) and not naive_twice, (naive_accepted, naive_twice)

    naive_rate = len(contact_ids) / naive_seconds
    result.add("naive: task + request per recipient", naive_rate, "recipients/s", herald_rate, naive_rate / herald_rate,
               "(for comparison)", headline=True)  # fmt: skip
    result.add("Herald engine, same recipients", herald_rate, "recipients/s")
    result.add("Herald is faster by", herald_rate / naive_rate, "×")
    result.add("naive: enqueueing the tasks alone", len(contact_ids) / enqueue.seconds, "tasks/s")
    purge_queues()
    result.details = {"recipients": len(contact_ids), "naive_seconds": naive_seconds, "herald": sent,
                      "enqueue_seconds": enqueue.seconds}  # fmt: skip
    result.notes.append(
        f"{len(contact_ids):,} recipients sent exactly once by each; naive {naive_seconds:.1f} s, "
        f"Herald {sent['sending_seconds']:.1f} s of sending"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "recipients")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL)
