"""Fixtures for sandbox tests: a loopback receiver that collects the callbacks the sandbox sends."""

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class ReceivedCallback:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


class CallbackReceiver(ThreadingHTTPServer):
    """Answers every callback with `status` (200 unless a test says otherwise) and records it."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[ReceivedCallback] = []
        self.status = 200
        self.body = b""
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedCallback]:
        """Wait until at least `count` callbacks arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} callbacks within {timeout}s, got {len(self.received)}")


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CallbackReceiver

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        with self.server.lock:
            self.server.received.append(
                ReceivedCallback(self.command, split.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status, answer = self.server.status, self.server.body
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_PUT = do_POST


@pytest.fixture
def callback_receiver():
    receiver = CallbackReceiver()
    yield receiver
    receiver.shutdown()
