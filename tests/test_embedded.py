"""The embedded services `make run` starts: each checkout gets its own Redis, never another checkout's."""

import os
import signal
import socket

import pytest

from config import embedded


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """This test as a checkout of its own: its var/ and its Redis, stopped at the end."""
    monkeypatch.setattr(embedded, "VAR_DIR", tmp_path / "var")
    monkeypatch.setattr(embedded, "REDIS_DIR", tmp_path / "var" / "redis")
    yield embedded.REDIS_DIR
    pid_file = tmp_path / "var" / "redis" / "redis.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_a_redis_another_checkout_runs_on_the_default_port_is_not_shared(checkout, monkeypatch):
    others = embedded.private_redis_url()  # another checkout's `make run`, on what would be our default port
    monkeypatch.setattr(embedded, "DEFAULT_REDIS_PORT", port_of(others))

    ours = embedded.redis_url()

    assert port_of(ours) != port_of(others)
    assert embedded._port_answers(port_of(ours))
    assert embedded.redis_url() == ours, "a second process of this checkout reuses this checkout's Redis"


def test_the_default_port_is_taken_when_free(checkout, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    monkeypatch.setattr(embedded, "DEFAULT_REDIS_PORT", free)

    assert port_of(embedded.redis_url()) == free
