"""The sandbox's shared parts: knobs, the state every vendor emulation writes to, the request and
response types, and the thread that sends delivery reports later.

A vendor emulation (`providers/sandbox/<vendor>.py`) subclasses `VendorEmulator`: it answers
requests under its path prefix as the vendor does, records what it accepted with
`state.record_accepted`, and schedules callbacks with `state.callbacks.schedule`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs

import requests

logger = logging.getLogger("herald.sandbox")

OUTCOMES = ("delivered", "undelivered", "expired", "rejected")


@dataclass
class Knobs:
    """How the sandbox misbehaves. Set by env/CLI (run_sandbox), HTTP (/_sandbox/config) or Python."""

    latency_ms: float = 0.0  # added to every vendor API answer
    rate_429: float = 0.0  # share of send requests answered 429 with Retry-After
    retry_after: float = 1.0  # seconds, in those 429 answers
    rate_429_other: float = 0.0  # share of the other requests (reports pulled, balance, setup) answered 429 too
    rate_5xx: float = 0.0  # share of send requests answered 503 (nothing accepted)
    rate_504: float = 0.0  # share answered 504 by a gateway in front of the vendor, after the vendor accepted
    rate_timeout: float = 0.0  # share of send requests that hang for hang_seconds, then close unanswered
    hang_seconds: float = 30.0
    rate_drop: float = 0.0  # share of send requests whose connection is closed without an answer
    fault_after_accept: float = 0.5  # of the timeouts and drops, the share where the vendor had accepted first
    accept_after_hang: bool = False  # those of the timeouts accept at the end of the hang, after the client gave up
    dlr_delay: float = 1.0  # seconds from acceptance to the delivery report
    dlr_jitter: float = 0.5  # ± seconds, uniformly
    dlr_mix: dict[str, float] = field(
        default_factory=lambda: {"delivered": 0.92, "undelivered": 0.04, "expired": 0.02, "rejected": 0.02}
    )
    callbacks: bool = True  # send delivery reports to callback URLs at all
    callback_loss: float = 0.0  # share of callbacks never sent (only the pull API has them)
    retry_scale: float = 1.0  # multiplies the vendors' callback retry delays (tests use 0.01)
    report_nan: bool = (
        False  # reports pulled (MOBtexting sms/status) carry NaN, which JSON has not, as a broken vendor's
    )
    seed: int = 42

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown sandbox knobs: {', '.join(sorted(unknown))}")
        for name, value in values.items():
            default = getattr(Knobs(), name)
            if isinstance(default, dict):
                value = {str(k): float(v) for k, v in dict(value).items()}
            elif isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            else:
                value = type(default)(value)
            setattr(self, name, value)


# --- Requests and responses -----------------------------------------------------------------------


class Headers(dict):
    """Case-insensitive header lookup (keys stored lower-case)."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in dict(items).items())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(str(key).lower())


@dataclass
class SandboxRequest:
    method: str
    path: str  # below the vendor's prefix, without the query string, e.g. "/sms/send"
    query: dict[str, str]  # last value wins; `query_lists` has every value
    query_lists: dict[str, list[str]]
    headers: Headers
    body: bytes
    full_path: str = ""

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8") or "null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}


@dataclass
class SandboxResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse(status, json.dumps(payload).encode(), "application/json", headers or {})


def text_response(status: int, text: str = "", content_type: str = "text/plain") -> SandboxResponse:
    return SandboxResponse(status, text.encode(), content_type)


# --- Callbacks ------------------------------------------------------------------------------------


@dataclass(order=True)
class CallbackJob:
    due: float
    seq: int
    url: str = field(compare=False)
    method: str = field(compare=False, default="POST")
    body: bytes = field(compare=False, default=b"")
    headers: dict[str, str] = field(compare=False, default_factory=dict)
    retry_delays: tuple[float, ...] = field(compare=False, default=())  # seconds before each further try
    retry_on: Callable[[int], bool] | None = field(compare=False, default=None)  # status → retry?
    vendor: str = field(compare=False, default="")


class CallbackDispatcher:
    """Sends scheduled callbacks when due, from a small thread pool, retrying as the vendor does."""

    def __init__(self, state: SandboxState, workers: int = 8):
        self.state = state
        self._heap: list[CallbackJob] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-callback")
        self._session = requests.Session()
        self._session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=workers))
        self._in_flight = 0
        self.sent = Counter()  # vendor → callbacks answered 2xx
        self.failed = Counter()  # vendor → tries that failed
        self.lost = Counter()  # vendor → callbacks dropped by the callback_loss knob, or out of retries
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-callbacks", daemon=True)
        self._thread.start()

    def schedule(
        self,
        url: str,
        payload: Any,
        *,
        delay: float,
        vendor: str,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        retry_delays: tuple[float, ...] = (),
        retry_on: Callable[[int], bool] | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        """Send `payload` (JSON) to `url` after `delay` seconds, unless the knobs say callbacks are off or lost."""
        knobs = self.state.knobs
        if not url or not knobs.callbacks:
            return
        if knobs.callback_loss and self.state.chance(knobs.callback_loss):
            self.lost[vendor] += 1
            return
        body = raw_body if raw_body is not None else json.dumps(payload).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        job = CallbackJob(
            time.monotonic() + max(0.0, delay), next(self._seq), url, method, body, hdrs,
            tuple(d * knobs.retry_scale for d in retry_delays), retry_on, vendor,
        )  # fmt: skip
        with self._cond:
            heapq.heappush(self._heap, job)
            if self._heap[0] is job:  # only an earlier deadline changes how long the sender sleeps
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._in_flight

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every scheduled callback has been sent or given up (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.05)
        return False

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
        self.sent.clear()
        self.failed.clear()
        self.lost.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    timeout = (self._heap[0].due - time.monotonic()) if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                job = heapq.heappop(self._heap)
                self._in_flight += 1
            self._pool.submit(self._send, job)

    def _send(self, job: CallbackJob) -> None:
        try:
            try:
                response = self._session.request(
                    job.method, job.url, data=job.body or None, headers=job.headers, timeout=10
                )
                status = response.status_code
            except requests.RequestException as exc:
                logger.info("sandbox callback to %s failed: %s", job.url, exc)
                status = 0
            if 200 <= status < 300:
                self.sent[job.vendor] += 1
                return
            self.failed[job.vendor] += 1
            should_retry = job.retry_on(status) if job.retry_on else True
            if should_retry and job.retry_delays:
                retry = CallbackJob(
                    time.monotonic() + job.retry_delays[0], next(self._seq), job.url, job.method, job.body,
                    job.headers, job.retry_delays[1:], job.retry_on, job.vendor,
                )  # fmt: skip
                with self._cond:
                    heapq.heappush(self._heap, retry)
                    self._cond.notify()
            else:
                self.lost[job.vendor] += 1
        finally:
            with self._cond:
                self._in_flight -= 1


# --- State ----------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    vendor: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.monotonic)  # when it was answered (the sandbox's monotonic clock)


class SandboxState:
    """What the sandbox knows: knobs, what each vendor accepted (to prove "sent exactly once"),
    recent requests, and the callback dispatcher."""

    def __init__(self, knobs: Knobs | None = None):
        self.knobs = knobs or Knobs()
        self.lock = threading.RLock()
        self.rng = random.Random(self.knobs.seed)
        # (vendor, ref) → times accepted. `ref` is our external reference where the vendor carries one
        # (MOBtexting custom, Devino callbackData.ref, Hyber extra_id) and the phone number for Octopush.
        self.accepted: Counter[tuple[str, str]] = Counter()
        self.accepted_by_address: Counter[tuple[str, str]] = Counter()
        self.requests: deque[RecordedRequest] = deque(maxlen=5000)
        self.request_counts: Counter[str] = Counter()  # vendor → requests answered
        self.faults: Counter[str] = Counter()  # fault kind → times injected
        self.callbacks = CallbackDispatcher(self)

    # Randomness is seeded (knobs.seed) so that a run can be replayed.
    def chance(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self.lock:
            return self.rng.random() < probability

    def outcome(self) -> str:
        """A delivery outcome drawn from knobs.dlr_mix: delivered, undelivered, expired or rejected."""
        mix = {k: v for k, v in self.knobs.dlr_mix.items() if v > 0} or {"delivered": 1.0}
        with self.lock:
            return self.rng.choices(list(mix), weights=list(mix.values()))[0]

    def dlr_delay(self) -> float:
        with self.lock:
            return max(0.0, self.knobs.dlr_delay + self.rng.uniform(-self.knobs.dlr_jitter, self.knobs.dlr_jitter))

    def record_accepted(self, vendor: str, ref: str, address: str) -> None:
        with self.lock:
            self.accepted[(vendor, ref)] += 1
            self.accepted_by_address[(vendor, address)] += 1

    def configure(self, **values: Any) -> None:
        with self.lock:
            self.knobs.update(values)
            if "seed" in values:
                self.rng = random.Random(self.knobs.seed)

    def reset(self) -> None:
        """Forget accepted messages, requests and pending callbacks; knobs back to defaults."""
        with self.lock:
            self.knobs = Knobs()
            self.rng = random.Random(self.knobs.seed)
            self.accepted.clear()
            self.accepted_by_address.clear()
            self.requests.clear()
            self.request_counts.clear()
            self.faults.clear()
        self.callbacks.clear()

    def duplicates(self, vendor: str | None = None) -> dict[str, int]:
        """References accepted more than once (should always be empty)."""
        with self.lock:
            return {ref: n for (v, ref), n in self.accepted.items() if n > 1 and vendor in (None, v)}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            by_vendor: dict[str, dict[str, int]] = {}
            for (vendor, _ref), n in self.accepted.items():
                entry = by_vendor.setdefault(vendor, {"accepted": 0, "refs": 0, "duplicates": 0})
                entry["accepted"] += n
                entry["refs"] += 1
                entry["duplicates"] += n - 1
            return {
                "knobs": asdict(self.knobs),
                "vendors": by_vendor,
                "requests": dict(self.request_counts),
                "faults": dict(self.faults),
                "callbacks": {
                    "sent": dict(self.callbacks.sent),
                    "failed": dict(self.callbacks.failed),
                    "lost": dict(self.callbacks.lost),
                    "pending": self.callbacks.pending(),
                },
            }


class VendorEmulator:
    """Base of the vendor emulations. `handle` answers a request under `prefix` as the vendor would."""

    name: str = ""
    prefix: str = ""  # e.g. "/octopush"; the vendor's real paths follow it

    def __init__(self, state: SandboxState):
        self.state = state

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        raise NotImplementedError

    def is_send(self, request: SandboxRequest) -> bool:
        """Requests that submit messages; only these get the injected faults (429, 5xx, timeouts)."""
        return False

    def control(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Vendor-specific sandbox settings over HTTP: POST /_sandbox/<vendor>/<action>."""
        raise KeyError(action)

    def reset(self) -> None:
        """Forget everything this vendor stored."""
