"""What every provider backend takes, returns and raises.

Backends are plain classes, one module per vendor, registered by `kind` in
`providers/backends/__init__.py`. They know nothing of Django models: the engine hands them an
`Account` and an `OutboundFrame` (dataclasses) and gets dataclasses back, so that a backend can
be read, tested against the sandbox and reused without the rest of Herald.

Failures are one closed set of exceptions (below), each with a `retryable` flag, so that the
engine decides retry-or-fail without knowing the vendor. Results and errors keep the vendor's
own code and text.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hmac
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exceptions

logger = logging.getLogger("herald.providers")


# --- Canonical statuses ---------------------------------------------------------------------------


class Status(enum.StrEnum):
    """Canonical message statuses (DESIGN §2), in the order a message moves through them."""

    PENDING = "pending"  # materialised, not yet sent (or its frame is on the wire: recorded once it answers)
    SUPPRESSED = "suppressed"  # never sent: unsubscribed, inactive, invalid address (final)
    QUEUED = "queued"  # not stored by Herald any more (pending while sent); a vendor's "try later" (Octopush 153)
    SUBMITTED = "submitted"  # the vendor accepted it
    SENT = "sent"  # the vendor handed it to the operator / channel
    DELIVERED = "delivered"
    READ = "read"
    CLICKED = "clicked"
    REJECTED = "rejected"  # refused by vendor or operator (final)
    UNDELIVERED = "undelivered"  # the operator could not deliver it (final)
    EXPIRED = "expired"  # validity or our send-by deadline ran out (final)
    FAILED = "failed"  # we could not send it, or the outcome is unknown (final)


FAILURE_STATUSES = frozenset({Status.REJECTED, Status.UNDELIVERED, Status.EXPIRED, Status.FAILED})
SUCCESS_FINAL_STATUSES = frozenset({Status.DELIVERED, Status.READ, Status.CLICKED})
# Final: no report may change the outcome any more (READ and CLICKED can still follow DELIVERED).
FINAL_STATUSES = FAILURE_STATUSES | SUCCESS_FINAL_STATUSES | {Status.SUPPRESSED}

# A report moves a message only to a strictly higher rank, so a late or duplicate report never
# moves it backwards. Failures rank with DELIVERED: once a message has an outcome, only READ or
# CLICKED (engagement, which proves delivery) can follow.
STATUS_RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.QUEUED: 1,
    Status.SUBMITTED: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.REJECTED: 4,
    Status.UNDELIVERED: 4,
    Status.EXPIRED: 4,
    Status.FAILED: 4,
    Status.READ: 5,
    Status.CLICKED: 6,
    Status.SUPPRESSED: 100,
}


# --- Data in --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """One provider account as a backend sees it (built from providers.models.ProviderAccount)."""

    kind: str
    base_url: str  # without trailing slash; the vendor's default when the account leaves it empty
    credentials: dict[str, str]  # secrets: api_key, login, password … (see each backend's credential_fields)
    options: dict[str, Any] = field(default_factory=dict)  # non-secret vendor settings
    webhook_url: str = ""  # where the vendor should post delivery reports for this account
    webhook_secret: str = ""  # shared secret for callbacks (bearer token, signature key or URL secret)
    uuid: str = ""
    timeout: float = 30.0  # seconds to wait for an answer (connect timeout is at most 5)
    # Called before each request to the vendor: Herald's per-account rate limit, which counts requests, not frames
    # (Devino takes one per text). None: no limit (a staff member's "check credentials").
    pace: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def credential(self, name: str) -> str:
        value = self.credentials.get(name, "")
        if not value:
            raise ConfigError(f"The account has no {name!r} credential.", field="credentials")
        return value

    @property
    def secrets(self) -> list[str]:
        """Every secret value, so that logs and errors can be scrubbed of them."""
        return [v for v in (*self.credentials.values(), self.webhook_secret) if v]


@dataclass(frozen=True)
class Recipient:
    external_ref: str  # Herald's own id for this message; sent wherever the vendor carries one
    address: str  # E.164 ("+919812345678") or e-mail
    text: str | None = None  # rendered text when it differs per recipient; None → frame.text
    variables: dict[str, str] = field(default_factory=dict)  # template variables, for template sends


@dataclass(frozen=True)
class OutboundFrame:
    """One provider request's worth of recipients, with the idempotency key kept across retries.

    Personalised texts: `text` is then the unrendered text with `{{name}}` placeholders and each
    recipient carries its rendered `text` and the `variables` used. Backends whose API takes one
    text per recipient (MOBtexting nodes) send the rendered texts; Octopush maps up to five
    variables onto its `{param1}`…`{param5}`; a backend with neither groups recipients by text.
    """

    key: str  # idempotency key: Octopush request_id, MOBtexting custom prefix, Devino callbackData, Hyber extra_id
    channel: str  # sms, viber, email …
    sender: str  # sender ID / alpha name / DLT header
    text: str  # the shared text (or template body) when recipients carry no text of their own
    recipients: list[Recipient]
    purpose: str = "transactional"  # transactional | service | promotional
    dlt_entity_id: str = ""
    dlt_template_id: str = ""
    service: str = ""  # MOBtexting service code (T, P, S, G)
    send_at: datetime | None = None
    campaign_name: str = ""  # Octopush list_name, Hyber tag

    def text_for(self, recipient: Recipient) -> str:
        return recipient.text if recipient.text is not None else self.text

    @property
    def same_text_for_all(self) -> bool:
        return all(r.text is None or r.text == self.text for r in self.recipients)


@dataclass(frozen=True)
class PollQuery:
    """What to ask a pull API about: frames by ticket, messages by ref/id, or everything since a time."""

    tickets: list[str] = field(default_factory=list)  # MOBtexting group_id, Devino task id …
    messages: list[MessageRef] = field(default_factory=list)
    since: datetime | None = None


@dataclass(frozen=True)
class MessageRef:
    external_ref: str
    address: str
    provider_message_id: str = ""


# --- Data out -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientResult:
    """The vendor's answer for one recipient of a frame."""

    external_ref: str
    address: str
    accepted: bool
    status: Status  # SUBMITTED when accepted, REJECTED (or FAILED) when not
    provider_message_id: str = ""
    code: str = ""  # the vendor's own code, kept as text
    text: str = ""  # the vendor's own words
    parts: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class SendResult:
    results: list[RecipientResult]
    ticket: str = ""  # the request-level id: Octopush sms_ticket, MOBtexting group_id
    already_accepted: bool = False  # the vendor says it had this frame already (Octopush 120)
    summary: dict[str, Any] = field(default_factory=dict)  # a short, secret-free digest of the response
    # A frame sent in several requests that stopped part-way: `results` covers the recipients answered, and the
    # others were not sent because of this error. The engine records the answered and retries the rest.
    unsent_error: BackendError | None = None


class UpdateKind(enum.StrEnum):
    STATUS = "status"
    OPT_OUT = "opt_out"
    UNKNOWN = "unknown"  # stored raw and logged, never silently dropped


@dataclass(frozen=True)
class StatusUpdate:
    """One delivery report or opt-out, as parsed from a callback or a poll."""

    kind: UpdateKind
    raw_status: str = ""
    status: Status | None = None
    provider_message_id: str = ""
    external_ref: str = ""
    address: str = ""
    ticket: str = ""  # request-level id when the vendor reports by (ticket, number), as Octopush does
    code: str = ""
    text: str = ""
    occurred_at: datetime | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    # Opt-outs: which suppression to create (scope all|channel|sender|tag|service, and its value).
    optout_scope: str = ""
    optout_value: str = ""


@dataclass(frozen=True)
class CallbackResponse:
    """What the webhook must answer (the vendor's expected acknowledgement)."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


@dataclass(frozen=True)
class ParsedCallback:
    updates: list[StatusUpdate]
    response: CallbackResponse = field(default_factory=CallbackResponse)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str  # "Connected; balance 120.50 EUR" or the vendor's error
    balance: float | None = None
    currency: str = ""


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = True
    help_text: str = ""


@dataclass(frozen=True)
class RemoteSender:
    remote_id: str
    name: str
    status: str  # pending | approved | rejected
    service: str = ""
    country: str = ""
    entity_id: str = ""
    entity_name: str = ""


@dataclass(frozen=True)
class RemoteTemplate:
    remote_id: str
    name: str
    dlt_template_id: str
    body: str
    type: str  # T | P | SI | SE
    sender: str = ""
    status: str = "approved"
    is_english: bool = True


@dataclass(frozen=True)
class RemoteUnsubscriber:
    address: str
    scope: str  # all | sender | tag | service | channel
    value: str = ""
    # The vendor's id and when it recorded the opt-out (what a listed one carries); not part of what it is.
    remote_id: str = field(default="", compare=False)
    created_at: datetime | None = field(default=None, compare=False)


# --- Errors ---------------------------------------------------------------------------------------


class BackendError(Exception):
    """Base of every error a backend raises. `retryable` tells the engine whether to try again.

    `attempted`, set by a backend that sends a frame in several requests: the refs of the request that failed.
    If its answer was lost, only these may have reached the vendor; the frame's other unanswered recipients
    were never sent. None: any of them may have."""

    retryable: ClassVar[bool] = False
    attempted: list[str] | None = None

    def __init__(self, message: str, *, code: str = "", status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code


class ConfigError(BackendError):
    """The account is missing something the vendor needs (credential, option); fix the account.

    `field` names the account's field to fix ("credentials", "options", "webhook_secret"), or "" for none."""

    def __init__(self, message: str, *, field: str = "options", **kwargs):
        super().__init__(message, **kwargs)
        self.field = field


class PaceRefused(Exception):
    """Raised by an account's `pace` when the request must not be made (no token in time, the campaign stopped
    meanwhile); request() raises it on as NotSent, its words kept."""


class ConnectionFailed(BackendError):
    """Timeout, refused connection or a 5xx: the request may or may not have arrived; retry with the same key."""

    retryable = True


class NotReadyYet(ConnectionFailed):
    """The vendor cannot answer this yet (a delivery report asked for too soon after the send): nothing is
    wrong, ask again after `retry_after` seconds. Raised by `recover` only for messages the vendor holds
    (one it never got is "not found"), so recovery waits, and past its settle window counts them received."""

    def __init__(self, message: str, *, retry_after: float = 2.0, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Throttled(BackendError):
    """HTTP 429 (or the vendor's throttling code): retry after `retry_after` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NotSent(BackendError):
    """Herald did not send the request (its rate limit could not be checked): nothing reached the vendor; retry."""

    retryable = True


class ResponseStatusError(BackendError):
    """A non-2xx answer that is not throttling or a server error (401, 403, 404 …): permanent."""


def is_account_problem(error: BackendError) -> bool:
    """Errors that no request will get past until a person fixes the account (credentials, options)."""
    return isinstance(error, ConfigError) or (
        isinstance(error, ResponseStatusError) and error.status_code in (401, 403)
    )


class ResponseUnparseable(BackendError):
    """A 2xx answer whose body is not what the vendor documents. Permanent: a human must look."""


class Rejected(BackendError):
    """The vendor refused the whole request with its own code and text (validation, no credit, STOP missing)."""


class AuthenticationFailed(BackendError):
    """A callback that is not authentic (bad signature, wrong secret): answer 403, store nothing."""


# --- HTTP -----------------------------------------------------------------------------------------

CONNECT_TIMEOUT = 5.0
_sessions: dict[tuple, requests.Session] = {}


def session_for(account: Account) -> requests.Session:
    """One keep-alive `requests.Session` per account (connection pooling). No automatic retries:
    the engine retries frames itself, with the same idempotency key and its own backoff."""
    key = (account.kind, account.base_url, account.uuid)
    sess = _sessions.get(key)
    if sess is None:
        sess = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        sess.headers["User-Agent"] = "Herald/1.0"
        _sessions[key] = sess
    return sess


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        from datetime import UTC

        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def scrub(text: str, secrets: list[str]) -> str:
    """Remove every account secret from a text bound for a log, an error or the database: as it is, and as a vendor
    that echoes the request may quote it: escaped in JSON (`\\/`, `\\"`, `\\u00e9`), percent-encoded in a URL or a
    form (`%2F`, `+`) or as HTML (`&amp;`); and any of these quoted again by a Python repr, as the backends quote a
    vendor's body in their errors (`{body[:200]!r}`: each backslash doubled, a byte outside ASCII as `\\xc3`).

    The text may be a vendor's body echoing what anyone sent it, so it is read in one pass whatever the secret is
    made of (a regex of the secret's forms would try every way of reading, say, a run of backslashes as escaped or
    not: exponentially many, minutes for a few dozen).

    The longest secret first: one that another begins with, or holds, would otherwise mask only its part of the
    other, and leave the rest of the other in clear."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = _cut_secret_masked(_secret_masked(text, secret), secret)
    return text


def _secret_masked(text: str, secret: str) -> str:
    """The text with each occurrence of the secret, in any of its forms (mixed too), replaced by a mask: the one
    that starts first (the longest of those starting there), then the first after it, and so on."""
    parts, at = [], 0
    while found := _secret_read(text, secret, at, first_only=True):
        start, end = found
        parts += [text[at:start], "••••"]
        at = end
    return "".join(parts) + text[at:] if parts else text


def _cut_secret_masked(text: str, secret: str) -> str:
    """A text cut to a length (a vendor's body quoted to 200 characters) may end inside a secret: the first 4 or
    more characters of it before the cut (and a closing quote or ellipsis), written in any of the forms
    `_secret_masked` finds, are masked too."""
    if len(secret) <= 4:  # no head of 4 characters or more but the whole secret, masked already
        return text
    body = text.rstrip("'\"…")
    tail_at = max(0, len(body) - len(secret) * _LONGEST_FORM)  # where the longest head could start, at the most
    at_end = _secret_read(body, secret, tail_at, first_only=False)  # (way, characters read) → earliest start
    if starts := [start for (_way, read), start in at_end.items() if 4 <= read < len(secret)]:
        return body[: min(starts)] + "••••" + text[len(body) :]
    return text


def _secret_read(
    text: str, secret: str, at: int, *, first_only: bool
) -> tuple[int, int] | None | dict[tuple[int, int], int]:
    """Read the text from `at` for the secret in one pass, as one automaton per way of writing it (`_secret_forms`):
    at each position, each way and number of the secret's characters read so far keeps only its earliest start.
    A position costs at most ways × characters × forms, whatever the text; and the earliest start of an occurrence
    is never lost (a later start that reaches the same point makes an occurrence wherever the earlier one does).

    `first_only`: where the first occurrence starts and ends, the longest of those starting there (or None).
    Otherwise, what reached the end of the text: {(way, characters read): earliest start}.
    """
    ways, starter = _secret_forms(secret)
    pending: dict[int, dict[tuple[int, int], int]] = {}  # position → (way, characters read) → earliest start
    seed, found = starter.search(text, at), None
    while True:
        position = min(pending, default=None)
        if seed is not None and found is None and (position is None or seed.start() <= position):
            position = seed.start()
            states = pending.pop(position, {})
            states.update({(way, 0): position for way in range(len(ways))})  # no other state has read nothing
            seed = starter.search(text, position + 1)
        elif position is None:
            return found if first_only else {}
        elif position == len(text) and not first_only:
            return pending[position]
        else:
            states = pending.pop(position)
        ends_of: dict[tuple[int, str], list[int]] = {}  # where each way of writing a character, read here, ends
        for (way, read), start in states.items():
            if found is not None and start > found[0]:
                continue  # an occurrence starts earlier
            if (ends := ends_of.get((way, secret[read]))) is None:
                forms = ways[way][read]
                ends = ends_of[way, secret[read]] = [position + len(f) for f in forms if text.startswith(f, position)]
            for end in ends:
                if read + 1 < len(secret):
                    reached = pending.setdefault(end, {})
                    reached[(way, read + 1)] = min(start, reached.get((way, read + 1), start))
                elif first_only and (found is None or (start, -end) < (found[0], -found[1])):
                    found = (start, end)


# A character as JSON (or a Python repr) writes it escaped, besides \uXXXX, which any character may be written as;
# and as an HTML page that echoes the request does.
_ESCAPES = {
    '"': ('\\"', "&quot;", "&#34;"),
    "'": ("\\'", "&#39;", "&#x27;", "&apos;"),
    "\\": ("\\\\",),
    "/": ("\\/",),
    "&": ("&amp;",),
    "<": ("&lt;",),
    ">": ("&gt;",),
    "\b": ("\\b",),
    "\f": ("\\f",),
    "\n": ("\\n",),
    "\r": ("\\r",),
    "\t": ("\\t",),
}

# More characters than any form of one character of a secret takes (four UTF-8 bytes in a bytes' repr: 16).
_LONGEST_FORM = 24


@functools.lru_cache(maxsize=256)
def _secret_forms(secret: str) -> tuple[tuple[tuple[tuple[str, ...], ...], ...], re.Pattern]:
    """The ways the secret is written: each character plainly, JSON-escaped or percent-encoded (hex digits in either
    case; a space also as `+`) or as HTML, so that a secret quoted any of these ways, even mixed, is found; or all
    that quoted by a Python repr. For each way, each character's forms; and a regex (of literals only) of the
    forms an occurrence may start with."""
    ways = tuple(tuple(_char_forms(char, repr_of=repr_of) for char in secret) for repr_of in (False, True))
    firsts = sorted({form for way in ways for form in way[0]}, key=lambda form: (-len(form), form))
    return ways, re.compile("|".join(re.escape(form) for form in firsts))


def _char_forms(char: str, *, repr_of: bool) -> tuple[str, ...]:
    """The ways `char` is written in a text, or, `repr_of`, in that text's repr (of the text or of its UTF-8 bytes:
    the backends quote vendors' bodies as `{body[:200]!r}`), which doubles every backslash."""
    code = ord(char)
    units = [code] if code <= 0xFFFF else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    forms = {char, *_ESCAPES.get(char, ())}
    for case in (str.lower, str.upper):
        forms.add("".join("\\u" + case(f"{unit:04x}") for unit in units))
        forms.add("".join("%" + case(f"{byte:02x}") for byte in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        forms.add("+")
    if repr_of:
        forms = {repr(form)[1:-1] for form in forms} | {
            repr(form.encode("utf-8", "surrogatepass"))[2:-1] for form in forms
        }
        if char == "'":
            forms.add("\\'")  # a repr of a text holding both quotes
    return tuple(sorted(forms))


def unreachable_words(exc: requests.ConnectionError) -> str:
    """Why a connection failed, in words staff can act on, instead of urllib3's "HTTPSConnectionPool(host=…):
    Max retries exceeded with url: … (Caused by NameResolutionError(…))" (cut short where it is stored)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    url = urlsplit(exc.request.url) if exc.request is not None and exc.request.url else None
    where = (
        f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}" if url and url.hostname else "the vendor"
    )
    if isinstance(reason, urllib3_exceptions.NameResolutionError):
        return f"the host name {url.hostname if url else ''} does not resolve (DNS): check the account's base URL."
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the secure connection (TLS) to {where} failed: {reason or exc}"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy refused or failed the connection to {where}: {reason or exc}"
    if isinstance(reason, urllib3_exceptions.NewConnectionError):
        if isinstance(reason.__context__, ConnectionRefusedError) or "Connection refused" in str(reason):
            return f"{where} refused the connection (nothing listens there): check the account's base URL."
        return f"no connection to {where}: {str(reason).split(': ', 1)[-1]}"
    return str(exc)


def request(
    account: Account,
    method: str,
    url: str,
    *,
    vendor_error: Any = None,
    **kwargs,
) -> requests.Response:
    """Send one HTTP request and map the transport outcome onto the error set.

    Waits for the account's rate limit first (`Account.pace`). Timeout, connection error or 5xx →
    ConnectionFailed; 429 → Throttled (with Retry-After); any other non-2xx → ResponseStatusError carrying
    the vendor's message, found by `vendor_error(response) -> (code, text)` when given. 2xx responses are
    returned untouched: backends read bodies only for vendor-level outcomes.
    """
    timeout = (min(CONNECT_TIMEOUT, account.timeout), account.timeout)
    if account.pace is not None:
        try:
            account.pace()
        except PaceRefused as exc:  # no token in time, or the campaign stopped meanwhile: said in its own words
            raise NotSent(f"Not sent to {account.kind}: {exc}") from exc
        except Exception as exc:  # e.g. Redis unreachable: a failure of this request, which was never sent
            raise NotSent(f"Not sent to {account.kind}: the rate limit could not be checked ({exc})") from exc
    try:
        response = session_for(account).request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.InvalidHeader:  # its text quotes the header: a key, in clear
        raise ConfigError(
            f"Not sent to {account.kind}: a credential holds a line break or another character that cannot go in an "
            "HTTP header; type it again.",
            field="credentials",
        ) from None
    except requests.Timeout as exc:
        raise ConnectionFailed(f"Timed out calling {account.kind}: {scrub(str(exc), account.secrets)}") from None
    except requests.ConnectionError as exc:
        raise ConnectionFailed(
            f"Could not reach {account.kind}: {scrub(unreachable_words(exc), account.secrets)}"
        ) from None
    if response.status_code < 300:
        return response
    code, text = "", ""
    if vendor_error is not None:
        try:
            code, text = vendor_error(response)
        except Exception:
            code, text = "", ""
    text = scrub(text or response.text[:300] or response.reason or "", account.secrets)
    message = f"{account.kind} answered HTTP {response.status_code}: {text}".rstrip(": ")
    if response.status_code == 429:
        raise Throttled(message, retry_after=_retry_after(response), code=str(code), status_code=429)
    if response.status_code >= 500:
        raise ConnectionFailed(message, code=str(code), status_code=response.status_code)
    raise ResponseStatusError(message, code=str(code), status_code=response.status_code)


def loads_json(text: str | bytes) -> Any:
    """json.loads, where JSON nested deeper than the parser goes (RecursionError) raises the ValueError that any
    other bad JSON raises: a webhook body comes from anyone, and must get a 400 or a 403, never a 500.

    So does JSON that Python reads but PostgreSQL's jsonb cannot store, which failed the reports' COPY with a 500:
    NaN and ±Infinity (not JSON per RFC 8259) or a number too large for a float, and a \\uD800-\\uDFFF escape
    that is not half of a pair (a lone surrogate, no character at all)."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if (_SURROGATE_ESCAPE_BYTES if isinstance(text, bytes) else _SURROGATE_ESCAPE).search(text):
        try:  # only a body with such an escape pays for this check; a valid pair encodes, a lone half does not
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        except UnicodeEncodeError:
            raise ValueError("JSON with a lone UTF-16 surrogate (\\uD800-\\uDFFF), which is no character") from None
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")  # a body as it came: not decoded again to look


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    """A JSON number as a float, refusing one too large for a float (1e400), which Python reads as infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def json_body(response: requests.Response, kind: str, *, stored: bool = False) -> Any:
    """The response's JSON, or ResponseUnparseable naming the vendor.

    `stored`: the answer is kept as it came (delivery reports pulled become status events' payloads), so it is read
    as `loads_json` reads a webhook's body: NaN, ±Infinity or a lone surrogate, which PostgreSQL's jsonb refuses,
    make it unparseable here, saying why, rather than fail the statement that stores it."""
    try:
        if not stored:
            return response.json()
        return loads_json(response.text if response.encoding else response.content)
    except (ValueError, RecursionError) as exc:
        why = f" ({exc})" if stored and not isinstance(exc, json.JSONDecodeError) else ""
        raise ResponseUnparseable(
            f"{kind} answered HTTP {response.status_code} with a body that is not JSON{why}: {response.text[:200]!r}",
            status_code=response.status_code,
        ) from None


# --- The backend interface ------------------------------------------------------------------------


# The backend methods that take an account first: what they raise, and a connection check's message, are shown to
# staff, stored and logged, so Backend scrubs the account's secrets from them (`_scrubbing`).
SCRUBBED_METHODS = (
    "send", "parse_callback", "poll", "recover", "check", "setup", "list_senders", "list_templates", "task_counters",
)  # fmt: skip


def _scrubbing(method: Callable) -> Callable:
    """`method` whose BackendError and CheckResult never carry the account's secrets: a vendor that echoes the
    request (the key in an HTML error page, the webhook secret in a created webhook) would otherwise put them in
    an error that staff, the API and the logs see. The backends scrub what they quote; this covers what they miss."""

    @functools.wraps(method)
    def scrubbed(self, account: Account, *args, **kwargs):
        try:
            result = method(self, account, *args, **kwargs)
        except BackendError as exc:
            exc.message = scrub(exc.message, account.secrets)
            exc.args = (exc.message,)
            raise
        if isinstance(result, CheckResult):
            result = dataclasses.replace(result, message=scrub(result.message, account.secrets))
        return result

    scrubbed.scrubs_secrets = True
    return scrubbed


class Backend:
    """Base class of the vendor backends. Subclasses set the declarative attributes and implement
    `send`, `parse_callback` and `check`; `poll` and `recover` where the vendor allows. What those methods raise,
    and a check's message, are scrubbed of the account's secrets (SCRUBBED_METHODS)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in SCRUBBED_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "scrubs_secrets", False):
                setattr(cls, name, _scrubbing(method))

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    default_currency: ClassVar[str] = ""  # ISO code a new account prices in unless given one: the vendor's country's
    channels: ClassVar[tuple[str, ...]] = ("sms",)
    sender_required: ClassVar[bool] = False  # the vendor has no default sender: every message (but e-mail) names one
    max_recipients: ClassVar[int] = 1  # hard maximum per request
    default_frame_size: ClassVar[int] = 1  # what Herald uses unless the account overrides it
    per_recipient_text: ClassVar[bool] = False  # can one request carry a different text per recipient?
    supports_callbacks: ClassVar[bool] = True
    supports_polling: ClassVar[bool] = False
    secret_in_url: ClassVar[bool] = True  # the vendor does not sign: our webhook URL carries ?secret=
    # RecipientResult.cost is money in the account's currency (else it is the vendor's credits or units,
    # and Herald prices messages itself: parts × the account's price per part).
    reports_cost_in_currency: ClassVar[bool] = False
    # The vendor carries Indian traffic under DLT (TRAI): its accounts have DLT templates, registered on the DLT portal
    # for their senders (headers), and an Indian message goes out on one.
    uses_dlt: ClassVar[bool] = False
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    # How Herald recovers a frame whose response was lost (DESIGN §3.6): "resend" (idempotent),
    # "lookup" (ask by our refs), or "callbacks" (wait for reports carrying our refs).
    recovery: ClassVar[str] = "lookup"
    # "resend" only: how long the vendor de-duplicates a repeated idempotency key, in seconds (None: for ever).
    # Past it a resend could be sent twice, so recovery falls back to "callbacks".
    resend_window: ClassVar[float | None] = None
    # What the vendor's failure codes mean, in words a person acts on: the campaign's failure breakdown and a
    # message's page show them beside the vendor's own text. Only codes whose meaning Herald knows.
    code_words: ClassVar[Mapping[str, str]] = {}

    def send(self, account: Account, frame: OutboundFrame) -> SendResult:
        """Send one frame in one HTTP request; per-recipient results in the frame's order."""
        raise NotImplementedError

    def parse_callback(
        self, account: Account, *, method: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> ParsedCallback:
        """Authenticate and parse one webhook call; raise AuthenticationFailed when it is not genuine."""
        raise NotImplementedError

    def require_url_secret(self, account: Account, query: dict[str, str]) -> None:
        """For vendors that do not sign callbacks (`secret_in_url`): the webhook URL's ?secret= must be the
        account's; raise AuthenticationFailed otherwise."""
        given, expected = str(query.get("secret") or ""), account.webhook_secret or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed(
                f"The {self.label or self.kind} callback's ?secret= does not match the account's webhook secret."
            )

    def poll(self, account: Account, query: PollQuery) -> list[StatusUpdate]:
        """Ask the vendor's pull API for statuses (only where `supports_polling`)."""
        raise NotImplementedError(f"{self.kind} has no pull API")

    def recover(self, account: Account, frame: OutboundFrame) -> list[RecipientResult] | None:
        """After a lost response: results for the recipients the vendor has; None when it cannot tell."""
        return None

    def check(self, account: Account) -> CheckResult:
        """Credentials/balance ping behind "test connection"."""
        raise NotImplementedError

    # The options setup() returns: kept on the account by every edit (an edit of its options that drops one is
    # refused), as sending reads them.
    setup_options: tuple[str, ...] = ()

    def setup(self, account: Account) -> dict[str, Any]:
        """Create what the vendor needs once per account (Devino's scenario task, MOBtexting's webhook
        and subscriptions) and return the options to store on the account; {} when nothing is needed."""
        return {}

    # MOBtexting keeps registries that the admin syncs; other vendors need not implement these.
    def list_senders(self, account: Account) -> list[RemoteSender]:
        raise NotImplementedError(f"{self.kind} has no sender registry API")

    def list_templates(self, account: Account) -> list[RemoteTemplate]:
        raise NotImplementedError(f"{self.kind} has no template registry API")

    def options_problem(self, options: dict[str, Any]) -> str:
        """What is wrong with the account's vendor options, in words for staff, or "" (checked when it is saved)."""
        return ""

    def sender_problem(self, name: str, *, service: str = "", country: str = "") -> str:
        """What the vendor would refuse in a sender's name for every message sent through it, in words for staff, or
        "" (checked when the sender is saved, and by the pre-flight for senders saved before the rule). `service` (a
        MOBtexting service code, T/P/S/G) and `country` (ISO, upper case) are the sender's: a vendor's rule may hold
        for one route only."""
        return ""

    def template_sender_problem(self, template_type: str, *, name: str, service: str = "", country: str = "") -> str:
        """What the vendor (DLT) would refuse in a template of `template_type` (T, P, SI, SE) going out through the
        sender `name` of `service` and `country`, in words for staff, or "" (checked when a template's senders are
        given, and by the pre-flight)."""
        return ""

    def service_code(self, options: dict[str, Any], *, purpose: str, service: str) -> str:
        """The service code a message of `purpose`, through a sender of `service` ("" for none), goes out under at
        the vendor with these account options; "" for a vendor without service codes. The audience compares it with
        opt-outs from a service, as the vendor would."""
        return service

    def text_problems(self, options: dict[str, Any], text: str, *, promotional: bool) -> list[str]:
        """What the vendor would refuse in `text` sent with these account options, in words for staff (checked by
        the pre-flight and by transactional sends, before anything is sent)."""
        return []

    def frame_size(self, configured: int | None) -> int:
        """The frame size to use: the account's setting clamped to the vendor's maximum."""
        return max(1, min(configured or self.default_frame_size, self.max_recipients))
