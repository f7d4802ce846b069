"""Whether the background work runs: the heartbeat that beat sends and a worker runs (services.background), read
for the admin's dashboard and campaign pages and for /healthz?background=1. Two Redis commands, no `celery inspect`
(which waits seconds for workers to answer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from campaigns.ratelimit import redis_client

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "herald:background"  # a hash: beat_at, worker_at (Redis's clock, epoch seconds), worker (node name)

WORKER_COMMAND = "celery -A config worker"
BEAT_COMMAND = "celery -A config beat --scheduler django_celery_beat.schedulers:DatabaseScheduler"
CONSEQUENCE = "scheduled campaigns will not start and running ones will not send"


@dataclass(frozen=True)
class BackgroundStatus:
    """`ok` (both ran lately), `waiting` (nothing recorded yet, Redis started recently: a fresh start), `stale` (the
    worker or beat has not run for BACKGROUND_STALE_AFTER seconds) or `unknown` (Redis does not answer)."""

    state: str
    message: str
    worker_age: float | None = None
    beat_age: float | None = None
    worker: str = ""

    @property
    def alarm(self) -> bool:
        return self.state in ("stale", "unknown")


def redis_time(client) -> float:
    """Now by Redis's clock, the one every heartbeat is recorded by."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


def duration_words(seconds: float) -> str:
    """45 seconds, 1 minute, 7 minutes, 2 hours, 3 days: how long, as staff say it."""
    seconds = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def background_status() -> BackgroundStatus:
    """How long ago beat sent and a worker ran the heartbeat task, and what that means for campaigns.

    Nothing recorded counts from Redis's start (the records live there): right after `make run`, or after Redis
    restarted, the worker and beat have BACKGROUND_STALE_AFTER seconds to report before it is an alarm."""
    stale_after = settings.BACKGROUND_STALE_AFTER
    try:
        client = redis_client()
        record = {key.decode(): value.decode() for key, value in client.hgetall(HEARTBEAT_KEY).items()}
        now = redis_time(client)
        redis_age = float(client.info("server")["uptime_in_seconds"])
    except Exception:
        logger.exception("Background status: Redis does not answer.")
        return BackgroundStatus(
            "unknown",
            "Cannot tell whether background work runs: Redis, the workers' broker, does not answer. "
            f"Until it does, {CONSEQUENCE}.",
        )
    worker_age = now - float(record["worker_at"]) if "worker_at" in record else None
    beat_age = now - float(record["beat_at"]) if "beat_at" in record else None
    worker = record.get("worker", "")

    def stale(age: float | None) -> bool:
        return redis_age >= stale_after if age is None else age > stale_after

    worker_stale, beat_stale = stale(worker_age), stale(beat_age)
    found = dict(worker_age=worker_age, beat_age=beat_age, worker=worker)
    if worker_stale and beat_stale:
        since = min((age for age in (worker_age, beat_age) if age is not None), default=redis_age)
        return BackgroundStatus(
            "stale",
            f"No worker or beat has run for {duration_words(since)}: {CONSEQUENCE}. Start them with "
            f"`{WORKER_COMMAND}` and `{BEAT_COMMAND}` (exactly one beat; `make run` starts both).",
            **found,
        )
    if worker_stale:
        return BackgroundStatus(
            "stale",
            f"No worker has run for {duration_words(worker_age if worker_age is not None else redis_age)}, though "
            f"beat is queueing work: {CONSEQUENCE}. Start a worker with `{WORKER_COMMAND}`; if one runs, its log "
            "says why it takes nothing (stuck, or on another broker).",
            **found,
        )
    if beat_stale:
        return BackgroundStatus(
            "stale",
            f"Celery beat has not run for {duration_words(beat_age if beat_age is not None else redis_age)}: "
            "scheduled campaigns will not start, and stalled sends are not restarted. Start exactly one beat with "
            f"`{BEAT_COMMAND}`.",
            **found,
        )
    if worker_age is None:
        return BackgroundStatus(
            "waiting",
            f"Background work: waiting for a worker and beat to report (Redis started {duration_words(redis_age)} "
            "ago; they report within a minute of starting).",
            **found,
        )
    return BackgroundStatus(
        "ok", f"Background work: last ran {duration_words(worker_age)} ago ({worker or 'a worker'}).", **found
    )
