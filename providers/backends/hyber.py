"""Hyber / GMS, JSON v2 protocol: one message per request, cascading push → viber → sms/whatsapp.

Seed: shared/seeds/003 (the single-message send and its two responses). Its sections 8 (parameters)
and 9 (statuses and codes) are missing; what follows them comes from Hyber's public docs and client
code [public] or is Herald's own choice [Herald] (see PROVIDERS.md § Hyber).

Send: `POST {base}/{client_id}`, HTTP Basic (login, password), a JSON body shaped as the seed's SMS
example, with our external_ref as `extra_id` (≤ 64 characters) — Hyber's only idempotency handle,
which also lets us look a message up after a lost response. Answers `{"message_id": "<uuid>"}` or
`{"error_code": 36024, "error_text": "Phone number incorrect"}`.

Delivery reports, pushed to `callback_url` (one object or an array) and pulled from the DR service,
carry `status`, `substatus` and the detailed `hyber_status` (23011, 35015 …) [public]:

    1   in progress    1/11 sending started → sent, 1/12 accepted for processing → submitted
    2   delivered      2/23 delivered, on whichever channel of the cascade got through
    3   not delivered  3/35 not delivered, 3/26 not delivered within the TTL → expired,
                       3/36 sending error (e.g. hyber_status 36024, phone number incorrect) → rejected
    -1  not sent to any channel → rejected; in the DR pull a bare -1 (no hyber_status) also means
        "no final status yet" [public], which poll() reports as nothing [Herald].

Error codes: 36024 is the seed's; the rest of ERROR_CODES, DR_NOT_READY and DR_NOT_FOUND are the
codes Herald's sandbox answers with [Herald], following the seed's pattern (hyber_status 36xxx is
"sending error"). Hyber does not sign callbacks: our webhook URL carries `?secret=`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from providers.backends.base import (
    FAILURE_STATUSES,
    Account,
    Backend,
    BackendError,
    CallbackResponse,
    CheckResult,
    ConfigError,
    CredentialField,
    NotReadyYet,
    OutboundFrame,
    ParsedCallback,
    PollQuery,
    Recipient,
    RecipientResult,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    SendResult,
    Status,
    StatusUpdate,
    UpdateKind,
    json_body,
    loads_json,
    request,
    scrub,
)

DEFAULT_BASE_URL = "https://api-v2.hyber.im"

# "status/substatus" (or "status" alone) → canonical status [public].
STATUS_MAP: dict[str, Status] = {
    "1": Status.SENT,
    "1/11": Status.SENT,
    "1/12": Status.SUBMITTED,
    "2": Status.DELIVERED,
    "2/23": Status.DELIVERED,
    "3": Status.UNDELIVERED,
    "3/35": Status.UNDELIVERED,
    "3/26": Status.EXPIRED,
    "3/36": Status.REJECTED,
    "-1": Status.REJECTED,
}

# A failure report's words, for the message's page and the failure breakdown, where the report has none of its
# own: its hyber_status's (the seed's 36024), else its status/substatus's (the meanings above [public]).
STATUS_TEXTS: dict[str, str] = {
    "3": "Not delivered",
    "3/35": "Not delivered",
    "3/26": "Not delivered within the message's time to live (TTL)",
    "3/36": "Sending error",
    "-1": "Not sent to any channel",
}
HYBER_STATUS_TEXTS = {"36024": "Phone number incorrect"}  # [seed 003]


class LoginRefused(ConfigError):
    """36001, Hyber refused the login/password, whatever HTTP status carries it: fix the account's credentials.
    An account problem, so the campaign pauses instead of failing each further message alike."""

    def __init__(self, message: str, **kwargs):
        super().__init__(message, field="credentials", **kwargs)


# A send refused with `error_code`: a REJECTED result for the recipient, or the error the request raises.
ERROR_CODES: dict[str, Status | type[BackendError]] = {
    "36001": LoginRefused,  # Authorization failed (HTTP 401) [Herald]
    "36002": Rejected,  # Incorrect JSON [Herald]
    "36003": Rejected,  # Content-Type must be application/json [Herald]
    "36004": Rejected,  # Mandatory parameter is missing: <name> [seed: "the request is not accepted"]
    "36005": Rejected,  # Parameter incorrect: <name> (extra_id > 64, tag > 64, start_time …) [Herald]
    "36006": Rejected,  # One recipient per request on this URL [Herald]
    "36011": Rejected,  # Channels incorrect [Herald]
    "36012": Rejected,  # Channel options incorrect: <channel.field> (ttl, alpha_name, text length) [Herald]
    "36024": Status.REJECTED,  # Phone number incorrect [seed 003]
}
DR_NOT_READY = "36101"  # the DR pull answers an error within ~10 s of the send [public]; code and HTTP 425 [Herald]
DR_NOT_FOUND = "36104"  # no message with that id (HTTP 404) [Herald]

CHANNEL_TTL = {"sms": (300, 259200), "viber": (40, 86400), "push": (30, 86400), "whatsapp": (604800, 604800)}
DEFAULT_TTL = 300
CHECK_EXTRA_ID = "herald-connection-check"


class HyberBackend(Backend):
    kind = "hyber"
    sender_required = True  # its send refuses a message without one (its sandbox too)
    label = "Hyber / GMS"
    default_base_url = DEFAULT_BASE_URL
    default_currency = "UAH"  # Ukraine (seed 003: +380 numbers, Kyiv coordinates)
    channels = ("sms", "viber", "push", "whatsapp")
    max_recipients = 1
    default_frame_size = 1
    per_recipient_text = True  # each request carries one recipient and its own text
    supports_callbacks = True
    supports_polling = True
    secret_in_url = True
    credential_fields = (
        CredentialField("login", "Login", secret=False, help_text="HTTP Basic login from GMS's technical plan."),
        CredentialField("api_key", "Password", help_text="HTTP Basic password from GMS's technical plan."),
    )
    recovery = "lookup"

    def options_problem(self, options: dict[str, Any]) -> str:
        """client_id is part of every URL: without it, nothing is sent (checked when the account is saved)."""
        return "" if str(options.get("client_id") or "").strip() else NO_CLIENT_ID

    def send(self, account: Account, frame: OutboundFrame) -> SendResult:
        """POST the frame's one recipient; a refusal about the number rejects it, any other refusal raises."""
        if len(frame.recipients) != 1:
            raise ConfigError(f"Hyber takes one recipient per request; this frame has {len(frame.recipients)}.")
        recipient = frame.recipients[0]
        phone = _phone_number(recipient.address)
        if phone is None:
            return SendResult([_refused(recipient, "", "Not a phone number: Hyber sends to phone numbers only.")])
        url, body = f"{account.base_url}/{_client_id(account)}", _body(account, frame, recipient, phone)
        errors = _ErrorBody()
        try:
            response = request(account, "POST", url, json=body, auth=_auth(account), vendor_error=errors)
        except ResponseStatusError as exc:
            if exc.status_code in (401, 403) or "error_code" not in errors:
                raise
            return _refusal(account, recipient, errors, exc.status_code)
        data = json_body(response, self.kind)
        if isinstance(data, dict) and data.get("message_id"):
            message_id = str(data["message_id"])
            return SendResult([_accepted(recipient, message_id)], summary={"message_id": message_id})
        if isinstance(data, dict) and data.get("error_code") is not None:
            return _refusal(account, recipient, data, response.status_code)
        raise ResponseUnparseable(
            f"hyber answered HTTP {response.status_code} without message_id or error_code: {response.text[:200]!r}",
            status_code=response.status_code,
        )

    def parse_callback(
        self, account: Account, *, method: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> ParsedCallback:
        """Check the URL secret, then read one delivery report or an array of them; Hyber wants a 200."""
        self.require_url_secret(account, query or {})
        try:
            data = loads_json(body)
        except (ValueError, UnicodeDecodeError):
            raise ResponseUnparseable(
                scrub(f"Hyber callback is not JSON: {body[:200]!r}", account.secrets), status_code=400
            ) from None
        items = data if isinstance(data, list) else [data]
        return ParsedCallback([_status_update(item) for item in items], CallbackResponse(200))

    def poll(self, account: Account, query: PollQuery) -> list[StatusUpdate]:
        """One DR pull per message (by message id when known, else by extra_id); Hyber has no list API,
        so `since` and `tickets` are not used. Too early, unknown or still pending → no update."""
        updates = []
        for ref in query.messages:
            try:
                report = self._report(account, _dr_path(ref.external_ref, ref.provider_message_id), stored=True)
            except NotReadyYet:
                continue
            if report is None or (str(report.get("status")) == "-1" and not report.get("hyber_status")):
                continue
            updates.append(_status_update(report))
        return updates

    def recover(self, account: Account, frame: OutboundFrame) -> list[RecipientResult] | None:
        """Look each recipient up by extra_id after a lost response: found → SUBMITTED with its message id;
        not found → left out (the engine resends it). Within ~10 s of the send Hyber cannot tell yet:
        that raises NotReadyYet, so the engine waits and asks again instead of resending."""
        results = []
        for recipient in frame.recipients:
            report = self._report(account, _dr_path(recipient.external_ref))
            if report is not None:
                results.append(_accepted(recipient, str(report.get("message_id") or "")))
        return results

    def check(self, account: Account) -> CheckResult:
        """Hyber has no balance API: ask the DR pull about a made-up extra_id; "not found" proves the login."""
        try:
            self._report(account, _dr_path(CHECK_EXTRA_ID))
        except ResponseStatusError as exc:
            if exc.status_code in (401, 403):
                return CheckResult(False, "Hyber refused the login/password")
            return CheckResult(False, exc.message)
        except BackendError as exc:
            return CheckResult(False, exc.message)
        return CheckResult(True, "Connected: Hyber accepted the login/password (it has no balance API).")

    def setup(self, account: Account) -> dict[str, Any]:
        """Nothing to create at Hyber: every message carries its own callback_url."""
        return {}

    def _report(self, account: Account, path: str, *, stored: bool = False) -> dict[str, Any] | None:
        """The simple DR at `path`; None when Hyber has no such message; NotReadyYet while too early. `stored`: the
        report is kept as it came (see `json_body`)."""
        url = f"{dr_base_url(account)}/{_client_id(account)}/api/dr/{path}/simple"
        errors = _ErrorBody()
        try:
            response = request(account, "GET", url, auth=_auth(account), vendor_error=errors)
            data = json_body(response, self.kind, stored=stored)
        except ResponseStatusError as exc:
            if exc.status_code == 404 and not exc.code:
                return None
            if exc.code not in (DR_NOT_READY, DR_NOT_FOUND):
                raise
            data = dict(errors)
        code = str(data.get("error_code") or "") if isinstance(data, dict) else ""
        if code == DR_NOT_READY:
            raise NotReadyYet("Hyber has no report yet (asked within ~10 s of the send); ask again later.", code=code)
        if code == DR_NOT_FOUND:
            return None
        if not isinstance(data, dict) or "status" not in data:
            raise ResponseUnparseable(f"Hyber's delivery report has no status: {str(data)[:200]!r}", status_code=200)
        return data


def dr_base_url(account: Account) -> str:
    """Where the DR pull lives: options["dr_base_url"], else api-v2… → dr-v2… on hyber.im, else {base}/dr."""
    if account.options.get("dr_base_url"):
        return str(account.options["dr_base_url"]).rstrip("/")
    parts = urlsplit(account.base_url)
    if (parts.hostname or "").endswith("hyber.im") and "api-v2" in parts.netloc:
        return parts._replace(netloc=parts.netloc.replace("api-v2", "dr-v2", 1)).geturl()
    return f"{account.base_url}/dr"


class _ErrorBody(dict):
    """`vendor_error` for request(): reads Hyber's {error_code, error_text} and keeps it, so that a 4xx
    refusal can still become a per-recipient result in the vendor's own words."""

    def __call__(self, response) -> tuple[str, str]:
        data = response.json()
        if isinstance(data, dict):
            self.update(data)
        code = self.get("error_code") or self.get("code") or ""
        return str(code), str(self.get("error_text") or self.get("message") or "")


def _refusal(account: Account, recipient: Recipient, data: dict, status_code: int | None) -> SendResult:
    code, text = str(data.get("error_code")), str(data.get("error_text") or "")
    outcome = ERROR_CODES.get(code, Rejected)
    if outcome is Status.REJECTED:
        return SendResult([_refused(recipient, code, text)], summary={"error_code": code})
    message = scrub(f"Hyber refused the request: {code} {text}".strip(), account.secrets)
    raise outcome(message, code=code, status_code=status_code)


def _accepted(recipient: Recipient, message_id: str) -> RecipientResult:
    return RecipientResult(
        recipient.external_ref, recipient.address, True, Status.SUBMITTED, provider_message_id=message_id
    )


def _refused(recipient: Recipient, code: str, text: str) -> RecipientResult:
    return RecipientResult(recipient.external_ref, recipient.address, False, Status.REJECTED, code=code, text=text)


def _body(account: Account, frame: OutboundFrame, recipient: Recipient, phone: int) -> dict[str, Any]:
    """The seed's single-message body; the key order follows its example."""
    body: dict[str, Any] = {"phone_number": phone, "extra_id": recipient.external_ref}
    if account.webhook_url:
        body["callback_url"] = account.webhook_url
    if frame.send_at:
        send_at = frame.send_at if frame.send_at.tzinfo else frame.send_at.replace(tzinfo=UTC)
        body["start_time"] = send_at.isoformat(sep=" ", timespec="seconds")
    if frame.campaign_name:
        body["tag"] = frame.campaign_name[:64]
    channels = _cascade(account, frame.channel)
    body["channels"] = channels
    text = frame.text_for(recipient)
    body["channel_options"] = {channel: _channel_options(account, channel, frame, text) for channel in channels}
    return body


def _cascade(account: Account, channel: str) -> list[str]:
    """The frame's channel, then the channels after it in the account's cascade option [Herald]."""
    if channel not in CHANNEL_TTL:
        raise ConfigError(f"Hyber cannot send {channel!r} messages; it sends {', '.join(CHANNEL_TTL)}.")
    cascade = account.options.get("channels") or ["sms"]
    if isinstance(cascade, str):
        cascade = [name.strip() for name in cascade.split(",")]
    return cascade[cascade.index(channel) :] if channel in cascade else [channel]


def _channel_options(account: Account, channel: str, frame: OutboundFrame, text: str) -> dict[str, Any]:
    """Text and ttl (the account's "ttl" option, clamped to the channel's range [public]); the sender is the
    SMS alpha name and the push title [Herald]."""
    low, high = CHANNEL_TTL[channel]
    try:
        ttl = min(max(int(account.options.get("ttl") or DEFAULT_TTL), low), high)
    except (TypeError, ValueError):
        raise ConfigError("The Hyber account's 'ttl' option must be a number of seconds.") from None
    if channel == "sms":
        return {"text": text, "alpha_name": frame.sender, "ttl": ttl}
    if channel == "push":
        return {"text": text, "ttl": ttl, "title": frame.sender[:20]}
    return {"text": text, "ttl": ttl}


def _status_update(item: Any) -> StatusUpdate:
    """One report (callback or pull) as an update; anything without a known status is kept as UNKNOWN."""
    if not isinstance(item, dict):
        return StatusUpdate(kind=UpdateKind.UNKNOWN, payload={"body": item})
    status, substatus = item.get("status"), item.get("substatus")
    raw = "" if status is None else str(status) if substatus in (None, "") else f"{status}/{substatus}"
    canonical = STATUS_MAP.get(raw) or STATUS_MAP.get(str(status))
    number = str(item.get("number") or item.get("phone_number") or item.get("phone") or "")
    code = str(item.get("hyber_status") or "")
    text = str(item.get("status_text") or item.get("error_text") or "")
    if not text and canonical in FAILURE_STATUSES:
        text = HYBER_STATUS_TEXTS.get(code) or STATUS_TEXTS.get(raw) or STATUS_TEXTS.get(str(status), "")
    return StatusUpdate(
        kind=UpdateKind.STATUS if canonical else UpdateKind.UNKNOWN,
        raw_status=raw,
        status=canonical,
        provider_message_id=str(item.get("message_id") or ""),
        external_ref=str(item.get("extra_id") or ""),
        address=f"+{number.lstrip('+')}" if number else "",
        code=code,
        text=text,
        occurred_at=_epoch(item.get("time")),
        payload=item,
    )


def _epoch(value: Any) -> datetime | None:
    """Hyber's `time` is epoch milliseconds [public]; a value in seconds is accepted too."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _dr_path(extra_id: str, message_id: str = "") -> str:
    return quote(message_id, safe="") if message_id else f"external/{quote(extra_id, safe='')}"


def _phone_number(address: str) -> int | None:
    """The seed sends the number as a JSON number, international format without "+"."""
    digits = address.strip().removeprefix("+")
    return int(digits) if digits.isascii() and digits.isdigit() else None


NO_CLIENT_ID = "The Hyber account needs the 'client_id' option (the number at the end of its API URL)."


def _client_id(account: Account) -> str:
    client_id = str(account.options.get("client_id") or "").strip()
    if not client_id:
        raise ConfigError(NO_CLIENT_ID)
    return quote(client_id, safe="")


def _auth(account: Account) -> tuple[str, str]:
    return account.credential("login"), account.credential("api_key")
