"""Run statements side by side: PostgreSQL runs one statement on one core, so work that several
statements can share (report batches, audience shares) is spread over threads, each on its own
database connection, closed when its call returns."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def on_own_connections(function: Callable[..., T], calls: list[tuple], *, name: str) -> list[T]:
    """function(*args) for each args in `calls`, all at once, each in a thread with its own connection; results in
    order. The first error is raised once every call has ended."""

    def call(args: tuple) -> T:
        try:
            return function(*args)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=name) as pool:
        return list(pool.map(call, calls))
