"""Two clients at once, in a fixed order: the first holds an uncommitted write while the second runs into it."""

import threading
import time

import pytest

from django.db import connection, transaction


def second_waits_on_first(first, second, *, insert_into: str = "", statement: str = "") -> None:
    """Run `first()` in a thread, in a transaction it holds open; then `second()` in another thread, until its
    INSERT into `insert_into` (or the statement starting with `statement`) waits on a lock the first holds;
    then commit the first and wait for both. Each callable records its own result."""
    waiting = statement or f'INSERT INTO "{insert_into}"'
    written, release = threading.Event(), threading.Event()

    def holding():
        try:
            with transaction.atomic():
                first()
                written.set()
                release.wait(30)
        finally:
            connection.close()

    def running():
        try:
            second()
        finally:
            connection.close()

    threads = [threading.Thread(target=holding), threading.Thread(target=running)]
    threads[0].start()
    assert written.wait(30), "the first client never wrote"
    threads[1].start()
    try:
        with connection.cursor() as cursor:
            for _ in range(300):
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                    [f"{waiting}%"],
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"the second client never waited in: {waiting}")
    finally:
        release.set()
        for thread in threads:
            thread.join(30)


def wait_until_waiting_for_a_lock(pid: int | list[int], who: str = "the session") -> None:
    """Return once the PostgreSQL session `pid` waits for a lock (`pid` may be a list that a thread is about to put
    its session's pid in); fail after 5 s."""
    with connection.cursor() as cursor:
        for _ in range(500):
            if pid_now := (pid if isinstance(pid, int) else next(iter(pid), None)):
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid_now])
                if (cursor.fetchone() or [None])[0] == "Lock":
                    return
            time.sleep(0.01)
    pytest.fail(f"{who} never waited for a lock")
