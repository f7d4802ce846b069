"""Redis locks: dispatcher slots (a bounded number of dispatchers per campaign, freed when one dies)
and non-overlapping beat runs."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from campaigns.ratelimit import redis_client

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_REFRESH = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class RedisLock:
    """A lock with an owner token and a time to live: a holder that dies releases it by expiry."""

    def __init__(self, key: str, ttl: float):
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(redis_client().set(self.key, self.token, nx=True, px=self.ttl_ms))

    def refresh(self) -> bool:
        return bool(redis_client().eval(_REFRESH, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        redis_client().eval(_RELEASE, 1, self.key, self.token)


def dispatch_slot(campaign_id: int, slot: int, ttl: float) -> RedisLock:
    return RedisLock(f"herald:dispatch:{campaign_id}:{slot}", ttl)


def slot_taken(campaign_id: int, slot: int) -> bool:
    return bool(redis_client().exists(f"herald:dispatch:{campaign_id}:{slot}"))


@contextmanager
def run_once(name: str, ttl: float):
    """Yield True if this run holds the lock (no other run of `name` is going), else False."""
    lock = RedisLock(f"herald:beat:{name}", ttl)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            lock.release()


def debounce(name: str, seconds: float) -> bool:
    """True at most once per `seconds` for `name` (to coalesce many triggers into one task)."""
    return bool(redis_client().set(f"herald:debounce:{name}", 1, nx=True, px=int(seconds * 1000)))
