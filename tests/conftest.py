"""Shared fixtures: real PostgreSQL (embedded, a test database per session), real Redis (private to
the session, see config/settings.py), a real Celery worker process, and the provider sandbox on a
loopback port."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from django.db import connection

from config.processes import WebServer, WorkerProcess

ROOT = Path(__file__).resolve().parent.parent

# Engine timings shortened for tests, for the worker processes and this process alike.
ENGINE_TEST_SETTINGS = {
    "DISPATCH_LOCK_TTL": 4.0,
    "DISPATCH_TASK_BUDGET": 10.0,
    "FRAME_RETRY_BASE": 0.2,
    "FRAME_RETRY_MAX": 2.0,
    "FRAME_MAX_ATTEMPTS": 12,
    # An outage a test stages (every answer lost until it sees one frame in doubt) can last ten rounds of
    # one-recipient Hyber frames on a busy machine, and the campaign would pause itself; that pause is tested
    # in test_dispatch.py, with the threshold set there.
    "CAMPAIGN_MAX_CONSECUTIVE_FAILURES": 1000,
    "CALLBACK_SETTLE": 3.0,
    "LOOKUP_SETTLE": 3.0,
    "POLL_AFTER": 1.0,
    "POLL_INTERVAL": 2.0,
    "PROVIDER_HTTP_TIMEOUT": 2.0,
    # A request that gets no token from the account's rate limit within this is not made (its frame waits again):
    # test_rate_limit.py gets there with a low limit and a few concurrent frames rather than 60 s.
    "RATE_LIMIT_MAX_WAIT": 2.0,
    # Test audiences are small: prepare them in two shares side by side all the same (prepare.py), so that
    # every campaign the worker sends takes the path a large audience takes.
    "PREPARE_SPLIT_MIN_CONTACTS": 2,
}


# `make test` runs the suite in two processes side by side (pytest-xdist, `--dist worksteal`: one that runs out of
# tests takes half of the other's, so the long engine tests do not end up queued behind each other). Each has its own
# test database and Redis (config/settings.py), and starts its own web server, worker and sandbox when its tests
# need them.


def test_database_url() -> str:
    """DATABASE_URL pointing at this session's test database, for processes we start (workers)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


# Web server and worker start once per session (each takes seconds); every test that uses them gets
# committed data (transactional_db), an empty queue and no Redis state left by the test before.


@pytest.fixture(scope="session")
def session_media(tmp_path_factory) -> Path:
    """Uploads and import reports, shared by this process and the servers it starts."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def base_worker_env(django_db_setup, django_db_blocker, session_media) -> dict[str, str]:
    with django_db_blocker.unblock():
        database_url = test_database_url()
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MEDIA_ROOT": str(session_media),
        "PGAPPNAME": SERVERS_APPLICATION_NAME,  # libpq labels the servers' connections (see _end_server_connections)
        "CONN_MAX_AGE": "0",
        "CELERY_VISIBILITY_TIMEOUT": "20",
        **{name: str(value) for name, value in ENGINE_TEST_SETTINGS.items()},
    }


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    """The web server's and the worker's logs (pytest keeps the last three sessions' temporary directories)."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def _web_server(base_worker_env, server_logs):
    server = WebServer(base_worker_env, log_path=server_logs / "web.log", app="tests.server_app").start()
    yield server
    server.stop()


SERVERS_APPLICATION_NAME = "herald-test-servers"


def _end_server_connections() -> None:
    """End the web and worker processes' sessions on the test database, so that none of their transactions
    can deadlock with the flush that follows each test (they reconnect when next needed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [SERVERS_APPLICATION_NAME],
        )


@pytest.fixture(scope="session", autouse=True)
def _flush_retried_after_a_deadlock():
    """A transactional test's flush (TRUNCATE of every table) can deadlock with a write that a server process makes
    after the test ended (a late delivery-report callback, a task the broker handed back after a worker was killed),
    which reconnects after _end_server_connections. PostgreSQL then cancels one of the two, and when it is the
    flush, the next test starts on the last one's rows. Such a flush ends the servers' sessions again and retries."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def handle_retried(self, **options):
        for attempt in range(3):
            try:
                return handle(self, **options)
            except CommandError as exc:
                if attempt == 2 or "deadlock detected" not in str(exc.__cause__):
                    raise
                _end_server_connections()

    flush.Command.handle = handle_retried
    yield
    flush.Command.handle = handle


@pytest.fixture
def web_server(_web_server, transactional_db, settings, session_media) -> WebServer:
    """Herald's web app in gunicorn on the test database; this process's settings point at it too."""
    settings.MEDIA_ROOT = str(session_media)
    settings.HERALD_PUBLIC_URL = _web_server.url
    yield _web_server
    _end_server_connections()


@pytest.fixture(scope="session")
def worker_env(base_worker_env, _web_server) -> dict[str, str]:
    """Environment for processes that must see the test database, Redis and web server."""
    return {**base_worker_env, "HERALD_PUBLIC_URL": _web_server.url}


@pytest.fixture(scope="session")
def _celery_worker(worker_env, server_logs):
    worker = WorkerProcess(worker_env, log_path=server_logs / "worker.log", name="test")
    yield worker
    worker.stop()


def _reset_broker_and_redis() -> None:
    """Empty the queue, the tasks a killed worker left unacknowledged, and Herald's own keys.

    A worker killed with tasks in hand leaves them in the broker's unacknowledged set, and the next worker to start
    hands them back to the queue once the visibility timeout (20 s here) has passed: a later test's worker then ran
    an earlier test's tasks. One test stops Redis just after its worker starts, and a worker holding such a task
    when Redis goes away exits (Celery 5.7 fails to hand it back), so that test's campaign was never prepared."""
    from kombu.transport.redis import Channel

    from campaigns.ratelimit import redis_client
    from config.celery import app

    app.control.purge()
    client = redis_client()
    client.delete(Channel.unacked_key, Channel.unacked_index_key)
    keys = list(client.scan_iter("herald:*", count=1000))
    if keys:
        client.delete(*keys)


def _worker_idle() -> bool:
    """No task running, prefetched or waiting for its countdown in any worker. (Revoking those held for later would
    spare the two seconds a restart costs, but a revoked task stays in the worker, unacknowledged, until its time:
    when Redis then stops (test_crash_drills.py), Celery 5.7's restore of unacknowledged messages fails and the
    worker exits.)"""
    from config.celery import app

    inspect = app.control.inspect(timeout=2.0, limit=1)  # one worker: answer as soon as it replies
    for report in (inspect.active(), inspect.reserved(), inspect.scheduled()):
        if report is None or any(report.values()):
            return False
    return True


@pytest.fixture
def celery_worker(_celery_worker, web_server):
    """A real Celery worker process (tests using it need committed data: transactional_db). A test may
    kill it (`.kill()`) and start it again (`.start()`); the next test gets a running one.

    Between such tests the worker stays alive but consumes nothing, so that tests without a worker
    really have none; one still busy with a test's work when the test ends is killed."""
    from config.celery import app

    _reset_broker_and_redis()
    if _celery_worker.running:
        app.control.add_consumer("celery", reply=True, timeout=5, limit=1)
    else:
        _celery_worker.start()
    yield _celery_worker
    if _celery_worker.running:
        app.control.cancel_consumer("celery", reply=True, timeout=5, limit=1)
    _reset_broker_and_redis()
    if _celery_worker.running and not _worker_idle():
        _celery_worker.kill()


@pytest.fixture
def broker_queue():
    """What a test without a worker queued on the real broker (Redis): a function returning the tasks waiting in the
    default queue, oldest first, as (task name, args). The queue is emptied before and after the test."""
    import base64
    import json

    from campaigns.ratelimit import redis_client
    from config.celery import app

    def queued() -> list[tuple[str, list]]:
        waiting = []
        for raw in reversed(redis_client().lrange(app.conf.task_default_queue, 0, -1)):  # kombu pushes on the left
            message = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            waiting.append((message["headers"]["task"], [*args, *kwargs.values()]))
        return waiting

    _reset_broker_and_redis()
    yield queued
    _reset_broker_and_redis()


@pytest.fixture(scope="session")
def sandbox_server():
    """The provider sandbox, in this process, on a free loopback port (one per session)."""
    from providers.sandbox import start_sandbox

    server = start_sandbox()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The sandbox, reset before each test; set knobs with `sandbox.configure(rate_429=0.2, …)`."""
    sandbox_server.reset()
    sandbox_server.configure(retry_scale=0.01, dlr_delay=0.2, dlr_jitter=0.1)
    yield sandbox_server
    sandbox_server.release_answers()  # a test that failed while holding them leaves no request waiting
    sandbox_server.state.callbacks.clear()
    sandbox_server.state.callbacks.wait_idle(10)  # callbacks already on their way finish before the next test


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the connections our web and worker processes left."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )


@pytest.fixture(
    params=[
        pytest.param(1, id="one connection"),
        # outside a test transaction, where the other connections see the import
        pytest.param(2, id="two connections", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def mergers(request, settings):
    """How many connections merge the chunks: one, as inside any transaction, or two side by side, as in a worker."""
    settings.IMPORT_MERGE_CONNECTIONS = request.param
    assert connection.in_atomic_block == (request.param == 1)  # else the engine merges on this connection alone
    return request.param
