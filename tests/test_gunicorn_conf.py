"""gunicorn as README's production command runs it (config/gunicorn.conf.py)."""

import socket
import time

import pytest

from config.processes import WebServer
from tests.conftest import _end_server_connections

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"


@pytest.fixture
def gunicorn(base_worker_env, transactional_db, tmp_path):
    server = WebServer(base_worker_env, log_path=tmp_path / "gunicorn.log", workers=1, threads=2)
    try:
        yield server.start()
    finally:
        server.stop()
        _end_server_connections()


def _answer(sock: socket.socket) -> bytes:
    """One whole response (its headers and Content-Length's body); what came before the end if the server closed."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(body) >= length:
                return data
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_a_vendor_reusing_its_connection_after_a_pause_is_answered(gunicorn):
    """A vendor's client keeps its connection to post the next delivery report. gunicorn's default closed it after
    2 s idle, and a report sent as it closed was reset: Devino retries only a 500, so that report was lost."""
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10) as sock:
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(3.5)  # past gunicorn's default keep-alive (2 s, checked once a second)
        sock.sendall(REQUEST)
        assert _answer(sock).startswith(b"HTTP/1.1 200"), "the idle connection was closed"
