"""The background work's heartbeat: beat's heartbeat task records when beat sent it and when a worker ran it, in
Redis (its clock, so that web, worker and beat machines need not agree on the time). selectors.background reads it
for the admin and /healthz?background=1."""

from __future__ import annotations

from campaigns.ratelimit import redis_client
from campaigns.selectors.background import HEARTBEAT_KEY, redis_time


def background_beat_record() -> None:
    """Beat sent the heartbeat task now (called as it publishes it: beat is alive, whether or not a worker is)."""
    client = redis_client()
    client.hset(HEARTBEAT_KEY, "beat_at", redis_time(client))


def background_heartbeat_record(*, worker: str) -> None:
    """A worker (`worker`, its Celery node name) ran the heartbeat task now: beat and that worker are alive."""
    client = redis_client()
    client.hset(HEARTBEAT_KEY, mapping={"worker_at": redis_time(client), "worker": worker})
