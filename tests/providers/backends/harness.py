"""Golden-case runner for provider backends (imitates nyaruka/courier's handlertest).

A vendor's test module is data (SendCase, CallbackCase, PollCase … rows) plus tiny test functions
that hand each row to the `harness` fixture. The harness serves the row's canned vendor answers
from a real HTTP server on a loopback port, and checks for every vendor the same things:

- the requests the backend made: count, method and path, headers (subset), content type (always
  compared, never guessed), and the body (exact JSON, a JSON subset, form fields or query);
- every canned answer was consumed;
- results, error class and vendor code are always compared, empty and None included;
- no account secret appears in a logged record, a result or an error;
- any attempt to reach a non-loopback host fails the test.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest

from providers.backends.base import (
    Account,
    BackendError,
    OutboundFrame,
    PollQuery,
    Recipient,
    RecipientResult,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
)

FIXTURES = Path(__file__).parent / "fixtures"


# --- Canned answers and expected requests ---------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (longer than the account timeout → a timeout)
    drop: bool = False  # close the connection without answering


def fixture(name: str) -> bytes:
    """The bytes of tests/providers/backends/fixtures/<name>."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture(name))


def reply(
    status: int, body: str | bytes | dict | list = "", *, content_type: str = "application/json", headers=None
) -> Reply:
    """A canned answer: `body` is a fixture name ending in .json/.txt, raw text, or a JSON-able object."""
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str) and body.endswith((".json", ".txt")) and (FIXTURES / body).exists():
        data = fixture(body)
    else:
        data = body.encode() if isinstance(body, str) else body
    return Reply(status, data, content_type, dict(headers or {}))


def timeout_reply(seconds: float = 3.0) -> Reply:
    return Reply(200, b"", hang=seconds)


def dropped_reply() -> Reply:
    return Reply(200, b"", drop=True)


@dataclass
class ExpectedRequest:
    route: str  # "POST /v1/public/multi-channel/send"
    headers: dict[str, str] = field(default_factory=dict)  # subset, names case-insensitive
    content_type: str | None = "application/json"  # compared always; None for bodiless requests
    json: Any = None  # exact JSON body
    json_subset: Any = None  # every key given must be present with this value (recursively)
    form: dict[str, str] | None = None  # exact form fields (application/x-www-form-urlencoded)
    query: dict[str, str] | None = None  # subset of the query string
    absent_headers: tuple[str, ...] = ()


def req(route: str, **kwargs) -> ExpectedRequest:
    return ExpectedRequest(route, **kwargs)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";")[0].strip() if value else None

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


# --- Cases ----------------------------------------------------------------------------------------


@dataclass
class SendCase:
    label: str
    frame: OutboundFrame | None = None
    responses: dict[str, list[Reply]] = field(default_factory=dict)
    expected_requests: list[ExpectedRequest] = field(default_factory=list)
    expected_results: list[RecipientResult] = field(default_factory=list)
    expected_ticket: str = ""
    expected_already_accepted: bool = False
    expected_error: type[BackendError] | None = None
    expected_error_code: str = ""
    expected_error_contains: str = ""  # a phrase the error message must carry (the vendor's words)
    expected_retry_after: float | None = None
    expected_unsent_error: type[BackendError] | None = None  # a frame that stopped part-way (SendResult.unsent_error)
    account: dict[str, Any] = field(default_factory=dict)  # overrides of the default test account


@dataclass
class CallbackCase:
    label: str
    body: str | bytes | dict | list = b""  # fixture name, raw bytes or JSON-able
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    sign: bool = True  # add the vendor's authentication (signature, bearer, URL secret) via the case's `signer`
    expected_updates: list[StatusUpdate] = field(default_factory=list)
    expected_response_status: int = 200
    expected_response_body: str | None = None  # exact, when given
    expected_error: type[BackendError] | None = None  # e.g. AuthenticationFailed
    account: dict[str, Any] = field(default_factory=dict)
    compare_payload: bool = False  # StatusUpdate.payload is compared only when asked (it is the raw body)


@dataclass
class PollCase:
    label: str
    query: PollQuery = field(default_factory=PollQuery)
    responses: dict[str, list[Reply]] = field(default_factory=dict)
    expected_requests: list[ExpectedRequest] = field(default_factory=list)
    expected_updates: list[StatusUpdate] = field(default_factory=list)
    expected_error: type[BackendError] | None = None
    expected_error_code: str = ""
    account: dict[str, Any] = field(default_factory=dict)
    compare_payload: bool = False


@dataclass
class CallCase:
    """Any other backend method (check, recover, list_senders …): `call(backend, account)` returns the result."""

    label: str
    call: Any
    responses: dict[str, list[Reply]] = field(default_factory=dict)
    expected_requests: list[ExpectedRequest] = field(default_factory=list)
    expected_result: Any = None
    expected_error: type[BackendError] | None = None
    expected_error_code: str = ""
    account: dict[str, Any] = field(default_factory=dict)


# --- Builders for rows ----------------------------------------------------------------------------


def frame(
    addresses: list[str], text: str = "Hello", *, key: str = "frame-1", refs: list[str] | None = None, **kwargs
) -> OutboundFrame:
    """A frame with recipients ref-1, ref-2 … unless refs are given."""
    refs = refs or [f"ref-{i + 1}" for i in range(len(addresses))]
    recipients = [Recipient(external_ref=r, address=a) for r, a in zip(refs, addresses, strict=True)]
    kwargs.setdefault("channel", "sms")
    kwargs.setdefault("sender", "Herald")
    return OutboundFrame(key=key, text=text, recipients=recipients, **kwargs)


def submitted(address: str, provider_id: str = "", ref: str = "", **kwargs) -> RecipientResult:
    return RecipientResult(
        external_ref=ref,
        address=address,
        accepted=True,
        status=Status.SUBMITTED,
        provider_message_id=provider_id,
        **kwargs,
    )


def rejected(address: str, code: str, text: str, ref: str = "", **kwargs) -> RecipientResult:
    kwargs.setdefault("status", Status.REJECTED)
    return RecipientResult(external_ref=ref, address=address, accepted=False, code=code, text=text, **kwargs)


def update(status: Status | str | None, *, raw: str, **kwargs) -> StatusUpdate:
    return StatusUpdate(kind=UpdateKind.STATUS, status=Status(status) if status else None, raw_status=raw, **kwargs)


def opt_out(*, address: str, scope: str = "all", value: str = "", **kwargs) -> StatusUpdate:
    return StatusUpdate(kind=UpdateKind.OPT_OUT, address=address, optout_scope=scope, optout_value=value, **kwargs)


# --- The scripted vendor server -------------------------------------------------------------------


class ScriptedVendor(ThreadingHTTPServer):
    """Serves canned replies in order per route and records every request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.recorded: list[RecordedRequest] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def load(self, responses: dict[str, list[Reply]]) -> None:
        self.replies.clear()
        self.recorded.clear()
        for route, replies in responses.items():
            self.replies[route].extend(replies)

    def unconsumed(self) -> dict[str, int]:
        return {route: len(q) for route, q in self.replies.items() if q}


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedVendor

    def log_message(self, *args):
        pass

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        recorded = RecordedRequest(
            self.command, split.path, query, {k.lower(): v for k, v in self.headers.items()}, body
        )
        with self.server.lock:
            self.server.recorded.append(recorded)
            queue = self.server.replies.get(recorded.route)
            answer = queue.popleft() if queue else None
        if answer is None:
            answer = Reply(599, json.dumps({"harness": f"no canned reply for {recorded.route}"}).encode())
        if answer.hang:
            time.sleep(answer.hang)
        if answer.drop or answer.hang:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET


# --- The harness ----------------------------------------------------------------------------------


def _contains(actual: Any, subset: Any, where: str = "$") -> list[str]:
    """Paths where `actual` lacks what `subset` has (dicts recursively; other values exactly)."""
    if isinstance(subset, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = []
        for key, value in subset.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems.extend(_contains(actual[key], value, f"{where}.{key}"))
        return problems
    if isinstance(subset, list) and isinstance(actual, list) and len(subset) == len(actual):
        return [
            p for i, (a, s) in enumerate(zip(actual, subset, strict=True)) for p in _contains(a, s, f"{where}[{i}]")
        ]
    return (
        [] if actual == subset and type(actual) is type(subset) else [f"{where}: expected {subset!r}, got {actual!r}"]
    )


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not contents (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def assert_same_shape(actual: Any, golden: Any) -> None:
    """`actual` (e.g. the sandbox's answer) has every key of `golden` with the same types."""
    problems = _contains(shape(actual), shape(golden))
    assert not problems, "shape differs from the golden response:\n" + "\n".join(problems)


class Harness:
    def __init__(self, vendor: ScriptedVendor, caplog):
        self.vendor = vendor
        self.caplog = caplog

    def account(self, base_path: str = "", secrets: dict[str, str] | None = None, **overrides) -> Account:
        """An account pointing at the scripted server (+ the vendor's base path, e.g. "/v1/public")."""
        values = dict(
            kind="test",
            base_url=self.vendor.url + base_path,
            credentials=dict(secrets or {}),
            options={},
            webhook_url="https://herald.example/hooks/test/0b3f…/",
            webhook_secret="whsec-0123456789",
            uuid="00000000-0000-0000-0000-000000000001",
            timeout=1.0,
        )
        values.update(overrides)
        return Account(**values)

    # -- send --
    def run_send_case(self, backend_cls, case: SendCase, *, base_path: str = "", secrets: dict[str, str] | None = None):
        backend = backend_cls()
        account = self.account(base_path, secrets, kind=backend.kind, **case.account)
        self.vendor.load(case.responses)
        result, error = None, None
        try:
            result = backend.send(account, case.frame)
        except BackendError as exc:
            error = exc
        self._check_requests(case.expected_requests)
        self._check_error(error, case.expected_error, case.expected_error_code, case.expected_error_contains)
        if case.expected_error is Throttled:
            assert error.retry_after == case.expected_retry_after, (
                f"retry_after {error.retry_after} != {case.expected_retry_after}"
            )
        if case.expected_error is None:
            assert result.results == case.expected_results, _diff("results", result.results, case.expected_results)
            assert result.ticket == case.expected_ticket, f"ticket {result.ticket!r} != {case.expected_ticket!r}"
            assert result.already_accepted == case.expected_already_accepted
            assert type(result.unsent_error) is (case.expected_unsent_error or type(None)), result.unsent_error
        self._check_secrets(account, result, error)
        return result

    # -- callbacks --
    def run_callback_case(self, backend_cls, case: CallbackCase, *, signer=None, secrets: dict[str, str] | None = None):
        """`signer(account, method, headers, query, body) -> (headers, query)` adds the vendor's authentication."""
        backend = backend_cls()
        account = self.account("", secrets, kind=backend.kind, **case.account)
        if isinstance(case.body, (dict, list)):
            body = json.dumps(case.body).encode()
        elif isinstance(case.body, str) and case.body.endswith(".json") and (FIXTURES / case.body).exists():
            body = fixture(case.body)
        else:
            body = case.body.encode() if isinstance(case.body, str) else case.body
        headers = {k.lower(): v for k, v in case.headers.items()}
        query = dict(case.query)
        if case.sign and signer is not None:
            headers, query = signer(account, case.method, headers, query, body)
        parsed, error = None, None
        try:
            parsed = backend.parse_callback(account, method=case.method, headers=headers, query=query, body=body)
        except BackendError as exc:
            error = exc
        self._check_error(error, case.expected_error, "", "")
        if case.expected_error is None:
            updates = parsed.updates if case.compare_payload else [_without_payload(u) for u in parsed.updates]
            expected = (
                case.expected_updates if case.compare_payload else [_without_payload(u) for u in case.expected_updates]
            )
            assert updates == expected, _diff("updates", updates, expected)
            assert parsed.response.status == case.expected_response_status
            if case.expected_response_body is not None:
                assert parsed.response.body == case.expected_response_body
        self._check_secrets(account, parsed, error)
        return parsed

    # -- poll --
    def run_poll_case(self, backend_cls, case: PollCase, *, base_path: str = "", secrets: dict[str, str] | None = None):
        backend = backend_cls()
        account = self.account(base_path, secrets, kind=backend.kind, **case.account)
        self.vendor.load(case.responses)
        updates, error = None, None
        try:
            updates = backend.poll(account, case.query)
        except BackendError as exc:
            error = exc
        self._check_requests(case.expected_requests)
        self._check_error(error, case.expected_error, case.expected_error_code, "")
        if case.expected_error is None:
            got = updates if case.compare_payload else [_without_payload(u) for u in updates]
            expected = (
                case.expected_updates if case.compare_payload else [_without_payload(u) for u in case.expected_updates]
            )
            assert got == expected, _diff("updates", got, expected)
        self._check_secrets(account, updates, error)
        return updates

    # -- anything else --
    def run_call_case(self, backend_cls, case: CallCase, *, base_path: str = "", secrets: dict[str, str] | None = None):
        backend = backend_cls()
        account = self.account(base_path, secrets, kind=backend.kind, **case.account)
        self.vendor.load(case.responses)
        result, error = None, None
        try:
            result = case.call(backend, account)
        except BackendError as exc:
            error = exc
        self._check_requests(case.expected_requests)
        self._check_error(error, case.expected_error, case.expected_error_code, "")
        if case.expected_error is None:
            assert result == case.expected_result, _diff("result", result, case.expected_result)
        self._check_secrets(account, result, error)
        return result

    # -- checks shared by every case --
    def _check_requests(self, expected: list[ExpectedRequest]) -> None:
        recorded = self.vendor.recorded
        routes = [r.route for r in recorded]
        assert len(recorded) == len(expected), f"expected {len(expected)} request(s), the backend made {routes}"
        for i, (got, want) in enumerate(zip(recorded, expected, strict=True)):
            where = f"request {i + 1} ({got.route})"
            assert got.route == want.route, f"{where}: expected {want.route}"
            assert got.content_type == want.content_type, (
                f"{where}: content type {got.content_type!r} != {want.content_type!r}"
            )
            for name, value in want.headers.items():
                assert got.headers.get(name.lower()) == value, (
                    f"{where}: header {name} = {got.headers.get(name.lower())!r}, expected {value!r}"
                )
            for name in want.absent_headers:
                assert name.lower() not in got.headers, f"{where}: header {name} must not be sent"
            if want.json is not None:
                assert got.json() == want.json, _diff(f"{where} body", got.json(), want.json)
                assert not _contains(got.json(), want.json), _contains(got.json(), want.json)  # same types too
            if want.json_subset is not None:
                problems = _contains(got.json(), want.json_subset)
                assert not problems, f"{where}: " + "; ".join(problems)
            if want.form is not None:
                assert got.form() == want.form, _diff(f"{where} form", got.form(), want.form)
            if want.query is not None:
                problems = _contains(got.query, want.query)
                assert not problems, f"{where} query: " + "; ".join(problems)
        left = self.vendor.unconsumed()
        assert not left, f"canned replies never requested: {left}"

    @staticmethod
    def _check_error(error, expected_cls, expected_code, expected_contains) -> None:
        if expected_cls is None:
            assert error is None, f"unexpected {type(error).__name__}: {error}"
            return
        assert error is not None, f"expected {expected_cls.__name__}, nothing was raised"
        assert type(error) is expected_cls, f"expected {expected_cls.__name__}, got {type(error).__name__}: {error}"
        assert error.code == expected_code, f"error code {error.code!r} != {expected_code!r} ({error})"
        if expected_contains:
            assert expected_contains in error.message, f"{expected_contains!r} not in {error.message!r}"

    def _check_secrets(self, account: Account, *outputs) -> None:
        texts = [r.getMessage() for r in self.caplog.records] + [repr(o) for o in outputs if o is not None]
        texts += [str(o) for o in outputs if isinstance(o, Exception)]
        for secret in (*account.credentials.values(), account.webhook_secret):
            if secret and len(secret) >= 4:
                leaked = [t for t in texts for form in secret_forms(secret) if form in t]
                assert not leaked, f"a secret leaked into: {leaked[0][:200]}"


def secret_forms(secret: str) -> set[str]:
    """`secret` as a vendor echoing a request may quote it: plain, JSON-escaped (PHP's `\\/` too) or URL-encoded."""
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
    }


def _without_payload(u: StatusUpdate) -> StatusUpdate:
    from dataclasses import replace

    return replace(u, payload={})


def _diff(what: str, got, want) -> str:
    return f"{what} differ:\n  got:  {got!r}\n  want: {want!r}"


@pytest.fixture(scope="session")
def scripted_vendor():
    server = ScriptedVendor()
    yield server
    server.shutdown()


@pytest.fixture
def harness(scripted_vendor, caplog, monkeypatch):
    """Golden-case runner; real network is refused (only loopback answers)."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"the test tried to reach {host}: real network is not allowed in backend tests")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    caplog.set_level(logging.DEBUG)
    return Harness(scripted_vendor, caplog)
