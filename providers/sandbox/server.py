"""The sandbox HTTP server: one port, the vendor chosen by path prefix.

    /mobtexting/api/v2/…       MOBtexting   (account base URL http://HOST:PORT/mobtexting/api/v2)
    /octopush/v1/public/…      Octopush     (http://HOST:PORT/octopush/v1/public)
    /devino/…                  Devino OMNI  (http://HOST:PORT/devino)
    /hyber/…                   Hyber / GMS  (http://HOST:PORT/hyber; DR pull under /hyber/dr/…)
    /_sandbox/…                control: GET stats, POST config, POST reset, POST <vendor>/<action>

Before a vendor answers a send request, the knobs may turn it into a 429, a 503, a hang or a
dropped connection, so that the engine's retries are exercised over real HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from providers.sandbox.core import (
    Headers,
    Knobs,
    RecordedRequest,
    SandboxRequest,
    SandboxResponse,
    SandboxState,
    VendorEmulator,
    json_response,
)

ANSWER_HOLD_LIMIT = 60.0  # seconds a held answer waits for its release, so a forgotten hold cannot hang a client

logger = logging.getLogger("herald.sandbox")


class _Dropped(Exception):
    """Close the connection without an answer (a lost response)."""


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the vendors' servers do
    server: SandboxServer

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format, *args):
        logger.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        query_lists = parse_qs(split.query, keep_blank_values=True)
        request = SandboxRequest(
            method=self.command,
            path=split.path,
            query={k: v[-1] for k, v in query_lists.items()},
            query_lists=query_lists,
            headers=Headers(self.headers.items()),
            body=body,
            full_path=self.path,
        )
        try:
            response, vendor = self.server.route(request)
        except _Dropped:
            self.close_connection = True
            return
        except Exception:
            logger.exception("sandbox error on %s %s", self.command, self.path)
            response, vendor = json_response(500, {"status": 500, "message": "Sandbox internal error"}), ""
        self._write(response)
        if vendor:
            self.server.record(vendor, request, response.status)

    def _write(self, response: SandboxResponse) -> None:
        close = (self.headers.get("Connection") or "").lower() == "close"
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SandboxState | None = None):
        super().__init__(address, SandboxHandler)
        from providers.sandbox import VENDOR_CLASSES

        self.state = state or SandboxState()
        self.vendors: dict[str, VendorEmulator] = {cls.name: cls(self.state) for cls in VENDOR_CLASSES}
        self._prefixes = sorted(((v.prefix, v) for v in self.vendors.values()), key=lambda p: -len(p[0]))
        self._thread: threading.Thread | None = None
        self._answers_released = threading.Event()
        self._answers_released.set()
        self._sends_held = 0  # send requests waiting for release_answers() now
        self._sends_held_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, kind: str) -> str:
        """The base URL a provider account of this kind should use to reach the sandbox."""
        from providers.sandbox import BASE_PATHS

        return self.url + BASE_PATHS[kind]

    # --- routing ---
    def route(self, request: SandboxRequest) -> tuple[SandboxResponse, str]:
        if request.path.startswith("/_sandbox"):
            return self._control(request), ""
        for prefix, vendor in self._prefixes:
            if request.path == prefix or request.path.startswith(prefix + "/"):
                request.path = request.path[len(prefix) :] or "/"
                return self._vendor(vendor, request), vendor.name
        return json_response(404, {"message": f"No emulated vendor at {request.path}"}), ""

    def _vendor(self, vendor: VendorEmulator, request: SandboxRequest) -> SandboxResponse:
        sending = vendor.is_send(request)
        self._held(sending)
        knobs = self.state.knobs
        if knobs.latency_ms:
            time.sleep(knobs.latency_ms / 1000)
        if self.state.chance(knobs.rate_429 if sending else knobs.rate_429_other):
            self.state.faults["429"] += 1
            return json_response(
                429, {"status": 429, "code": 429, "message": "Too Many Requests"},
                {"Retry-After": f"{knobs.retry_after:g}"},
            )  # fmt: skip
        if not sending:
            return vendor.handle(request)
        if self.state.chance(knobs.rate_5xx):
            self.state.faults["5xx"] += 1
            return json_response(503, {"status": 503, "code": 503, "message": "Service temporarily unavailable"})
        if self.state.chance(knobs.rate_504):
            self.state.faults["504"] += 1
            vendor.handle(request)  # the vendor took it; the gateway timed out waiting for its answer
            return json_response(504, {"message": "Gateway Timeout"})
        hang = self.state.chance(knobs.rate_timeout)
        drop = not hang and self.state.chance(knobs.rate_drop)
        if hang or drop:
            self.state.faults["timeout" if hang else "drop"] += 1
            accepts = self.state.chance(knobs.fault_after_accept)
            late = hang and knobs.accept_after_hang  # a slow vendor, not a dead one
            if accepts and not late:
                vendor.handle(request)  # the vendor accepted it; only the answer is lost
                self.state.faults["accepted_then_lost"] += 1
            if hang:
                time.sleep(knobs.hang_seconds)
            if accepts and late:
                vendor.handle(request)
                self.state.faults["accepted_after_client_gave_up"] += 1
            raise _Dropped
        return vendor.handle(request)

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        parts = [p for p in request.path.split("/") if p][1:]
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return json_response(400, {"message": "body must be JSON"})
        if parts == ["stats"]:
            return json_response(200, self.state.stats())
        if parts == ["config"] and request.method == "POST":
            try:
                self.state.configure(**body)
            except (ValueError, TypeError) as exc:
                return json_response(400, {"message": str(exc)})
            return json_response(200, self.state.stats()["knobs"])
        if parts == ["reset"] and request.method == "POST":
            self.reset()
            return json_response(200, {"reset": True})
        if len(parts) == 2 and parts[0] in self.vendors and request.method == "POST":
            try:
                return json_response(200, self.vendors[parts[0]].control(parts[1], body))
            except KeyError:
                return json_response(404, {"message": f"no control action {parts[1]!r} for {parts[0]}"})
        return json_response(404, {"message": "unknown sandbox control path"})

    def record(self, vendor: str, request: SandboxRequest, status: int) -> None:
        with self.state.lock:
            self.state.request_counts[vendor] += 1
            self.state.requests.append(
                RecordedRequest(
                    vendor, request.method, request.path, request.query, dict(request.headers), request.body, status
                )
            )

    # --- lifecycle ---
    def hold_answers(self) -> None:
        """Vendor API requests wait, unanswered, until `release_answers()` (at most ANSWER_HOLD_LIMIT seconds).

        In-process only: for tests that look at Herald while a request is on the wire, which a latency
        would make a race with a slow machine."""
        self._answers_released.clear()

    def release_answers(self) -> None:
        self._answers_released.set()

    def sends_held(self) -> int:
        """Send requests held now: a test waits for one to know a frame is on the wire, not only claimed (a frame
        claimed but not yet sent when its campaign is paused is not sent)."""
        with self._sends_held_lock:
            return self._sends_held

    def _held(self, sending: bool) -> None:
        """Wait while answers are held (hold_answers), counting a send request among those held."""
        if self._answers_released.is_set():
            return
        if sending:
            with self._sends_held_lock:
                self._sends_held += 1
        try:
            if not self._answers_released.wait(ANSWER_HOLD_LIMIT):
                logger.warning("sandbox: answers held for %.0f s without a release; answering", ANSWER_HOLD_LIMIT)
        finally:
            if sending:
                with self._sends_held_lock:
                    self._sends_held -= 1

    def reset(self) -> None:
        self.release_answers()
        self.state.reset()
        for vendor in self.vendors.values():
            vendor.reset()

    def configure(self, **knobs) -> None:
        self.state.configure(**knobs)

    def start_background(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.state.callbacks.stop()


def start_sandbox(host: str = "127.0.0.1", port: int = 0, knobs: Knobs | None = None) -> SandboxServer:
    """Start the sandbox in a background thread (port 0: any free port) and return it."""
    server = SandboxServer((host, port), SandboxState(knobs))
    return server.start_background()


def describe(server: SandboxServer) -> str:
    return json.dumps({kind: server.base_url(kind) for kind in server.vendors}, indent=2)
