"""Shared benchmark helpers: Django bootstrap on a throwaway database, timing, peak memory, a plain table."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager

import django


def setup_django() -> None:
    """Configure Django as the app runs (embedded PostgreSQL unless DATABASE_URL says otherwise)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


@contextmanager
def bench_database():
    """A fresh, migrated database for the run (as the test runner makes one), dropped afterwards.

    Uploaded files go to a temporary MEDIA_ROOT, so the development data stays untouched.
    """
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    with tempfile.TemporaryDirectory(prefix="herald-bench-") as media:
        settings.MEDIA_ROOT = media
        config = setup_databases(verbosity=0, interactive=False)
        try:
            yield
        finally:
            teardown_databases(config, verbosity=0)


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1024 * 1024)


def print_table(headers: list[str], rows: list[list], title: str = "") -> None:
    """A plain-text table, numbers right-aligned."""
    cells = [[_format(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(value.rjust(w) for value, w in zip(row, widths, strict=True)))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
