"""Sign-in throttling for the two places a password is tried: the API's token endpoint and the admin's login page.

Failed attempts are counted per client address and per username (each attempt counted before its password is
checked, and taken back when it was right), in fixed windows of `LOGIN_FAILURE_WINDOW` seconds, in the shared cache (Redis: every web worker and machine counts into the same counters). Once either count
reaches its limit (`LOGIN_FAILURES_PER_IP`, `LOGIN_FAILURES_PER_USERNAME`; 0 turns it off), every further attempt is
refused until the window ends, the right password too: otherwise a guesser would still learn which one is right.
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
    counters = _counters(request, username)
    counts = cache.get_many([key for key, _ in counters])
    if any(limit and counts.get(key, 0) >= limit for key, limit in counters):
        window = settings.LOGIN_FAILURE_WINDOW
        return max(1, math.ceil(window - time.time() % window))
    return None


@_counting
def login_attempt(*, request, username: str) -> tuple[list[str], int | None]:
    """Count a sign-in attempt against the client's address and the username before its password is checked, and
    say whether it may go on: (the keys counted, None), or, when that makes either count pass its limit, (nothing,
    seconds to wait), the attempt taken back. Counting first (atomically, in Redis) means guesses sent side by side
    cannot all pass a check made before any of them was counted. A right password takes its count back
    (`login_succeeded`); a wrong one leaves it, a failure."""
    counted, over = [], False
    for key, limit in _counters(request, username):
        if limit:
            counted.append(key)
            over = _incr(key) > limit or over
    if over:
        login_succeeded(counted)
        window = settings.LOGIN_FAILURE_WINDOW
        return [], max(1, math.ceil(window - time.time() % window))
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
    cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
    try:
        return cache.incr(key)
    except ValueError:  # the window's key expired in between: this attempt opens the next one
        cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW)
        return 1


def _counters(request, username: str) -> list[tuple[str, int]]:
    window = int(time.time() // settings.LOGIN_FAILURE_WINDOW)
    # Usernames are hashed (any length or character fits a key), read in NFKC as the admin's login form reads them
    # ("ａｄｍｉｎ", full-width, signs in as "admin": each way of writing a name must not count apart) and folded in case
    # ("Admin" is tried as "admin").
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).strip().casefold())
    user = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]  # JSON may carry a lone surrogate
    return [
        (f"{KEY_PREFIX}:ip:{login_client_address(request)}:{window}", settings.LOGIN_FAILURES_PER_IP),
        (f"{KEY_PREFIX}:user:{user}:{window}", settings.LOGIN_FAILURES_PER_USERNAME),
    ]
