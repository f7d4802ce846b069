"""Trying a whole transaction again when PostgreSQL aborted it to break a deadlock.

The engine's writers lock rows in one order where they can (appliers: messages, then campaigns; the rematch:
queue rows, then events), but a few pairs cannot share an order: a cancel locks a campaign's waiting frames
before their messages, a report's applier a message before its frame. When such a pair meets, PostgreSQL
aborts one transaction and the other goes on; the aborted one has written nothing, so it can simply run again.
"""

from __future__ import annotations

import functools
import logging

from psycopg.errors import DeadlockDetected

from django.db import OperationalError, connection

logger = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3


def retry_on_deadlock(func):
    """Run `func` (which opens its own transaction) again, up to DEADLOCK_ATTEMPTS times in all, if PostgreSQL
    chose it as a deadlock's victim. Inside a caller's transaction nothing can be retried: the error goes up."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as error:
                if (
                    not isinstance(error.__cause__, DeadlockDetected)
                    or attempt == DEADLOCK_ATTEMPTS
                    or connection.in_atomic_block
                ):
                    raise
                logger.warning("%s deadlocked (attempt %s of %s); trying again", func.__name__, attempt,
                               DEADLOCK_ATTEMPTS)  # fmt: skip

    return wrapper
