"""`make run`: the whole product on one machine, until Ctrl-C.

Starts the embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), migrates,
creates the `admin` user, loads the demo data, then runs the provider sandbox, the web server,
a Celery worker and Celery beat, with their logs prefixed. Ctrl-C stops all of them, and the
embedded services this run started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
COLOURS = {"sandbox": "35", "web": "32", "worker": "36", "beat": "33"}


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _pump(name: str, stream) -> None:
    colour = COLOURS.get(name, "0")
    prefix = f"\033[{colour}m{name:>7}\033[0m | " if sys.stdout.isatty() else f"{name:>7} | "
    for line in iter(stream.readline, b""):
        sys.stdout.write(prefix + line.decode("utf-8", "replace"))
        sys.stdout.flush()


def _start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()
    return proc


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time; killing it.")
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    from config import embedded

    port = os.environ.get("PORT", "8000")
    sandbox_port = os.environ.get("SANDBOX_PORT", "8025")
    env = dict(os.environ)
    own_services = "DATABASE_URL" not in env or "REDIS_URL" not in env
    print("Starting embedded PostgreSQL and Redis under var/ …" if own_services else "Using DATABASE_URL / REDIS_URL.")
    env.setdefault("DATABASE_URL", embedded.postgres_url())
    env.setdefault("REDIS_URL", embedded.redis_url())
    env.setdefault("HERALD_PUBLIC_URL", f"http://127.0.0.1:{port}")
    env.setdefault("SANDBOX_URL", f"http://127.0.0.1:{sandbox_port}")
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")

    procs: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()

    def request_stop(*_):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        _manage("migrate", "--noinput", "-v", "0", env=env)
        _manage("ensure_admin", env=env)
        procs["sandbox"] = _start("sandbox", [PYTHON, "manage.py", "run_sandbox", "--port", sandbox_port], env)
        _manage("load_demo", env=env)
        procs["web"] = _start("web", [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env)
        # Vendors verify a new webhook by calling it (MOBtexting's handshake): the web server must answer first.
        _wait_for(f"http://127.0.0.1:{port}/healthz", procs["web"])
        _manage("setup_accounts", "--sandbox", env["SANDBOX_URL"], env=env)
        procs["worker"] = _start(
            "worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=4"], env
        )
        procs["beat"] = _start(
            "beat",
            [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
            env,
        )  # fmt: skip
        time.sleep(2)
        print(
            f"\n  Herald is running.\n"
            f"  Admin:        http://127.0.0.1:{port}/admin/   (user: admin; password above)\n"
            f"  API docs:     http://127.0.0.1:{port}/api/docs/\n"
            f"  Sandbox:      {env['SANDBOX_URL']}/_sandbox/stats\n"
            f"  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not stopping.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the rest.")
                    stopping.set()
            stopping.wait(1)
    except subprocess.CalledProcessError as exc:
        print(f"Setup step failed: {' '.join(exc.cmd[1:])} (exit {exc.returncode}).", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nStopping …")
        _stop(procs)
        if own_services and os.environ.get("HERALD_KEEP_SERVICES") != "1":
            embedded.stop()
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
