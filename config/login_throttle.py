"""Sign-in throttling for the two places a password is tried: the API's token endpoint and the admin's login page.

Failed attempts are counted per client address and per username (each attempt counted before its password is
checked, and taken back when it was right) in the shared cache (Redis: every web worker and machine counts into the
same counters), over a sliding window of `LOGIN_FAILURE_WINDOW` seconds. The counts are kept per fixed window, and
an attempt is weighed against this window's count plus the previous window's, weighted by the share of it that
still lies within the last `LOGIN_FAILURE_WINDOW` seconds: with fixed windows alone, a guesser who spent the limit
in a window's last seconds had it again at once in the next, twice the limit within a few seconds. Once either
weighed count would pass its limit (`LOGIN_FAILURES_PER_IP`, `LOGIN_FAILURES_PER_USERNAME`; 0 turns it off), the
attempt is refused, the right password too (otherwise a guesser would still learn which one is right), and
Retry-After says when the next one would be let through.
When the counters cannot be reached (Redis down), no attempt is let through uncounted either: `SignInUnavailable`,
which the sign-in places answer with a 503 that says so.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import time
import unicodedata

import redis

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

KEY_PREFIX = "login-failures"
REFUSAL = "Too many failed sign-in attempts from this address or for this username."
UNAVAILABLE = "Sign-in is unavailable for now: attempts cannot be counted (the cache does not answer)."
UNAVAILABLE_WAIT = 60  # seconds: Retry-After of the 503

logger = logging.getLogger(__name__)


def login_refusal(wait: int) -> str:
    """The refusal as the admin's login page and the token endpoint both say it, the wait in minutes."""
    minutes = -(-wait // 60)
    return f"{REFUSAL} Try again in {minutes} minute{'s' if minutes != 1 else ''}."


class SignInUnavailable(Exception):
    """The counters cannot be read or written: no attempt may go on uncounted (that would let guesses through
    unthrottled for as long as the cache is down)."""


def _counting(function):
    @functools.wraps(function)
    def counted(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            logger.error("sign-in refused: the login failure counters cannot be reached (%s)", exc)
            raise SignInUnavailable(UNAVAILABLE) from exc

    return counted


def login_client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or, behind `REST_FRAMEWORK["NUM_PROXIES"]` trusted proxies, the address
    they put in X-Forwarded-For (DRF's rule); an X-Forwarded-For that no trusted proxy wrote is ignored."""
    return BaseThrottle().get_ident(request) or "unknown"


@_counting
def login_wait(*, request, username: str) -> int | None:
    """Seconds until the client or the username may try again, or None when neither is over its limit."""
    now = time.time()
    counters = _counters(request, username)
    counts = _counts(counters, now)
    waits = [_wait(prev, cur, limit, now) for (_, limit), (prev, cur) in zip(counters, counts, strict=True) if limit]
    return max((wait for wait in waits if wait), default=None)


@_counting
def login_attempt(*, request, username: str) -> tuple[list[str], int | None]:
    """Count a sign-in attempt against the client's address and the username before its password is checked, and
    say whether it may go on: (the keys counted, None), or, when that makes either weighed count pass its limit,
    (nothing, seconds to wait), the attempt taken back. Counting first (atomically, in Redis) means guesses sent
    side by side cannot all pass a check made before any of them was counted. A right password takes its count
    back (`login_succeeded`); a wrong one leaves it, a failure."""
    now = time.time()
    counters = [(name, limit) for name, limit in _counters(request, username) if limit]
    previous = [prev for prev, _ in _counts(counters, now)]
    counted, waits = [], []
    for (name, limit), prev in zip(counters, previous, strict=True):
        key = _key(name, now)
        counted.append(key)
        cur = _incr(key)
        if prev * _previous_weight(now) + cur > limit:
            waits.append(_wait(prev, cur - 1, limit, now) or 1)
    if waits:
        login_succeeded(counted)
        return [], max(waits)
    return counted, None


def login_succeeded(keys: list[str]) -> None:
    """Take back the counts of an attempt that was not a failure (login_attempt's keys)."""
    for key in keys:
        with contextlib.suppress(ValueError):  # its window has ended: nothing to take back
            try:
                cache.decr(key)
            except redis.RedisError as exc:  # the attempt went through: its count stays, as a failure would
                logger.warning("sign-in: a count could not be taken back (%s)", exc)
                return


def _incr(key: str) -> int:
    # A window's count is read until the end of the next window (the previous window's weighted share).
    timeout = 2 * settings.LOGIN_FAILURE_WINDOW
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # the key expired in between (only a count already out of both windows does)
        cache.add(key, 1, timeout=timeout)
        return 1


def _key(name: str, when: float) -> str:
    return f"{name}:{int(when // settings.LOGIN_FAILURE_WINDOW)}"


def _previous_weight(now: float) -> float:
    """The share of the previous fixed window that still lies within the last LOGIN_FAILURE_WINDOW seconds."""
    window = settings.LOGIN_FAILURE_WINDOW
    return 1 - (now % window) / window


def _counts(counters: list[tuple[str, int]], now: float) -> list[tuple[int, int]]:
    """Each counter's (previous window's count, this window's count), read in one round trip."""
    window = settings.LOGIN_FAILURE_WINDOW
    keys = [(_key(name, now - window), _key(name, now)) for name, _ in counters]
    counts = cache.get_many([key for pair in keys for key in pair])
    return [(counts.get(prev, 0), counts.get(cur, 0)) for prev, cur in keys]


def _wait(prev: int, cur: int, limit: int, now: float) -> int | None:
    """Seconds until one attempt more would be let through, given the previous window's count and this one's, or
    None when it would be now. The previous window's weight falls as time passes; past this window's end, this
    window's count becomes the previous one and falls in its turn."""
    window = settings.LOGIN_FAILURE_WINDOW
    room = limit - 1 - cur  # what the previous window's weighted count may be for one attempt more
    if prev * _previous_weight(now) <= room:
        return None
    start = now - now % window
    if room >= 0:  # this window's own count leaves room: until the previous window's weighs no more than it
        return max(1, math.ceil(start + window * (1 - room / prev) - now))
    # This window's count alone is over: into the next window, until it weighs no more than the limit less one.
    return max(1, math.ceil(start + window * (2 - (limit - 1) / cur) - now))


def _counters(request, username: str) -> list[tuple[str, int]]:
    """Each counter's name (its keys add the window's number) and limit."""
    # Usernames are hashed (any length or character fits a key), read in NFKC as the admin's login form reads them
    # ("ａｄｍｉｎ", full-width, signs in as "admin": each way of writing a name must not count apart) and folded in case
    # ("Admin" is tried as "admin").
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).strip().casefold())
    user = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]  # JSON may carry a lone surrogate
    return [
        (f"{KEY_PREFIX}:ip:{login_client_address(request)}", settings.LOGIN_FAILURES_PER_IP),
        (f"{KEY_PREFIX}:user:{user}", settings.LOGIN_FAILURES_PER_USERNAME),
    ]
