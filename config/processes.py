"""Herald's own processes as children of a test session or a benchmark: a Celery worker and gunicorn.

Each runs in its own process group (so that stopping it stops its pool children too), logs to a file
of the caller's choosing and is ready when `start()` returns. `make run` starts the same commands with
their output shown (config/launcher.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.05, tick=None):
    """Poll `predicate` until it returns something truthy, and return that; `tick` runs each round.
    Raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_group(proc: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM the process group we started (start_new_session), SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def _log_tail(path: Path, characters: int) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


class WorkerProcess:
    """A real `celery worker` (prefork, `concurrency` processes) on the broker and database `env` names."""

    def __init__(self, env: dict[str, str], *, log_path: Path, concurrency: int = 2, queues: str = "celery",
                 app: str = "config", name: str = "herald"):  # fmt: skip
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.app = app
        self.name = f"{name}-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", self.app, "worker", "--loglevel=INFO", "--pool=prefork",
                 f"--concurrency={self.concurrency}", "-Q", self.queues, "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-n", self.name],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Celery worker exited early; log:\n{_log_tail(self.log_path, 4000)}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"Celery worker did not answer a ping; log:\n{_log_tail(self.log_path, 4000)}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        stop_group(self.proc, 20)


class WebServer:
    """Herald's web app (webhooks, API, admin) in gunicorn as in production (config/gunicorn.conf.py): `workers` ×
    `threads`, persistent database connections; `access_log` writes its request lines to the log too."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_path: Path,
        workers: int = 2,
        threads: int = 8,
        access_log: bool = False,
        app: str = "config.wsgi",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "HERALD_PUBLIC_URL": self.url, "CONN_MAX_AGE": "60"}
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.access_log = access_log
        self.app = app  # the WSGI module gunicorn serves (the test suite wraps Herald's)
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> WebServer:
        import requests

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", self.app, "--bind",
                 f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--threads", str(self.threads),
                 "--worker-class", "gthread", "--log-level", "warning",
                 *(["--access-logfile", "-"] if self.access_log else [])],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; log:\n{_log_tail(self.log_path, 3000)}")
            try:
                requests.get(self.url + "/healthz", timeout=2).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within 30 s; log:\n{_log_tail(self.log_path, 3000)}")

    def stop(self) -> None:
        stop_group(self.proc, 15)
