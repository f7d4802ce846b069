"""A per-account token bucket in Redis, shared by every worker process and machine.

The bucket refills at `rate` tokens a second up to `burst`; each provider request takes one (`paced`
hands backends an account that waits for its token before every request it makes).
The arithmetic runs inside Redis (one Lua script, Redis's own clock), so concurrent workers
never overdraw it.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cache, partial

import redis

from django.conf import settings

from providers.backends.base import PaceRefused

logger = logging.getLogger("herald.ratelimit")

_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = (want - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@cache
def _script():
    return redis_client().register_script(_TAKE)


def try_acquire(account_id: int, rate: float, tokens: int = 1) -> float:
    """Take `tokens` now if the bucket has them and return 0; otherwise return the seconds to wait."""
    if rate <= 0:
        return 0.0
    burst = max(1.0, rate)  # at most one second's worth of requests at once
    return float(_script()(keys=[f"herald:ratelimit:{account_id}"], args=[rate, burst, tokens]))


class NoToken(PaceRefused):
    """The account's bucket granted no token within the wait allowed: the request is not made (made without one,
    it would go beyond the vendor's limit and earn a 429). A frame waits again, its attempt not counted
    (dispatch.frame_record_failure); a poll round stops, to be asked again next round."""


def acquire(account_id: int, rate: float, tokens: int = 1, max_wait: float | None = None) -> None:
    """Block until the account's bucket grants `tokens` requests; `NoToken` if it has not after `max_wait` seconds
    (RATE_LIMIT_MAX_WAIT by default)."""
    max_wait = settings.RATE_LIMIT_MAX_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    while True:
        wait = try_acquire(account_id, rate, tokens)
        if wait <= 0:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoToken(f"no token from the account's rate limit ({rate:g} requests a second) within {max_wait:g} s")
        time.sleep(min(wait, left))


def paced(
    account,
    stop: tuple[int, float] | None = None,
    not_after: float | None = None,
    recheck: Callable[[], None] | None = None,
):
    """The backend's view of a ProviderAccount whose every request waits for the account's rate limit (and is not made
    if no token comes within RATE_LIMIT_MAX_WAIT: `NoToken`, as the cause of the backend's NotSent). `stop`: the
    campaign and the time (epoch seconds, the database's clock) its frame was claimed; the request is not made if
    the campaign stopped since (`CampaignStopped`), while it waited, nor if its token came at or after `not_after`
    (epoch seconds: the campaign's send-by deadline, which passed while it waited). `recheck`: called once the token
    is there, before the request; it refuses the request by raising a PaceRefused."""
    take = partial(acquire, account.pk, account.rate_limit)
    if stop is None and recheck is None:
        return replace(account.as_backend_account(), pace=take)
    return replace(account.as_backend_account(), pace=partial(_pace, take, stop, not_after, recheck))


class CampaignStopped(PaceRefused):
    """A campaign's request not made: the campaign was paused, cancelled or failed while it waited for its token, or
    its send-by deadline passed."""


STOPPED_TTL = 3600  # longer than any claimed frame waits for its tokens and answers


def _stopped_key(campaign_id: int) -> str:
    return f"herald:campaign:{campaign_id}:stopped_at"


def _pace(take, stop: tuple[int, float] | None, not_after: float | None, recheck: Callable[[], None] | None) -> None:
    take()
    if stop is not None:
        campaign_id, claimed_at = stop
        if not_after is not None and time.time() >= not_after:
            raise CampaignStopped(
                f"campaign {campaign_id}'s send-by deadline passed while this request waited for the rate limit"
            )
        stopped_at = redis_client().get(_stopped_key(campaign_id))
        if stopped_at is not None and float(stopped_at) > claimed_at:
            raise CampaignStopped(f"campaign {campaign_id} stopped while this request waited for the rate limit")
    if recheck is not None:
        recheck()


def campaign_stopped_mark(campaign_id: int, at: float) -> None:
    """The campaign stopped (paused, cancelled, failed) at `at` (epoch seconds, the database's clock): the requests
    of frames claimed before then and still waiting for a token are not made. Dispatchers check the campaign's
    state between frames; this reaches the frames already claimed (a batch of one-recipient frames, several at
    once, each waiting its turn for the account's rate limit). A frame claimed later, once resumed, is sent: the
    mark needs no clearing."""
    try:
        redis_client().set(_stopped_key(campaign_id), repr(at), ex=STOPPED_TTL)
    except redis.RedisError as exc:  # the stop itself is committed; dispatchers still stop between frames
        logger.warning("could not mark campaign %s stopped for the requests waiting for a token: %s", campaign_id, exc)
