"""Shared fixtures: real PostgreSQL (embedded, a test database per session), real Redis (private to
the session, see config/settings.py), a real Celery worker process, and the provider sandbox on a
loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

# Engine timings shortened for tests, for the worker processes and this process alike.
ENGINE_TEST_SETTINGS = {
    "DISPATCH_LOCK_TTL": 4.0,
    "DISPATCH_TASK_BUDGET": 10.0,
    "FRAME_RETRY_BASE": 0.2,
    "FRAME_RETRY_MAX": 2.0,
    "FRAME_MAX_ATTEMPTS": 12,
    "CALLBACK_SETTLE": 3.0,
    "POLL_AFTER": 1.0,
    "POLL_INTERVAL": 2.0,
    "PROVIDER_HTTP_TIMEOUT": 2.0,
}


def test_database_url() -> str:
    """DATABASE_URL pointing at this session's test database, for processes we start (workers)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class WorkerProcess:
    """A real `celery worker` process on this session's Redis and test database."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, queues: str = "celery"):
        self.env = env
        self.concurrency = concurrency
        self.queues = queues
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"test-worker-{os.getpid()}.log"

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--pool=prefork",
             f"--concurrency={self.concurrency}", "-Q", self.queues, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Celery worker exited early; log:\n{self.log_path.read_text()[-4000:]}")
            replies = app.control.ping(timeout=0.5)
            if replies:
                return
        raise RuntimeError(f"Celery worker did not answer a ping; log:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """Herald's web app (webhooks, API, admin) in its own gunicorn process on this session's test database,
    as in production: persistent database connections, not contending with the test for the GIL."""

    def __init__(self, env: dict[str, str]):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "HERALD_PUBLIC_URL": self.url, "CONN_MAX_AGE": "60"}
        self.log_path = ROOT / "var" / f"test-web-{os.getpid()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> WebServer:
        import requests

        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
             "--threads", "8", "--worker-class", "gthread", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; log:\n{self.log_path.read_text()[-3000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=2).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not answer within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def web_server(transactional_db, base_worker_env):
    server = WebServer(base_worker_env).start()
    yield server
    server.stop()


@pytest.fixture
def base_worker_env(transactional_db) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CONN_MAX_AGE": "0",
        "CELERY_VISIBILITY_TIMEOUT": "20",
        **{name: str(value) for name, value in ENGINE_TEST_SETTINGS.items()},
    }


@pytest.fixture
def worker_env(base_worker_env, web_server) -> dict[str, str]:
    """Environment for processes that must see this test's database, Redis and web server."""
    return {
        **base_worker_env,
        "HERALD_PUBLIC_URL": web_server.url,
    }


@pytest.fixture
def celery_worker(transactional_db, worker_env):
    """A real Celery worker process (tests using it need committed data: transactional_db)."""
    from config.celery import app

    app.control.purge()
    worker = WorkerProcess(worker_env).start()
    yield worker
    worker.stop()
    app.control.purge()


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
    sandbox_server.state.callbacks.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the connections our web and worker processes left."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
