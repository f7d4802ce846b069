"""Octopush (France): SMS campaigns of up to 500 recipients through the v1 public API.

Seed: shared/seeds/002_71ecdaf35211ddab.txt (`POST /multi-channel/send`, its body, request_id de-duplicated
for 24 h, the responses and errors); shared/PROVIDERS.md "Octopush" for what the seed leaves out (paths, codes,
callbacks, balance). Errors come as {"code", "message"} (or code 400 with per-field "errors") with HTTP 400
(a 121 was seen answered "400 Bad Request", octopush/Octopush-SMS-API-PHP#20); the code decides, not the status.

Octopush returns one `sms_ticket` per request and no per-recipient id: a message is (ticket, number). Delivery
reports and opt-outs arrive as JSON callbacks set up in the Octopush console (not per request) and are not
signed, so Herald's webhook URL carries ?secret=. Statuses: ACK (first carrier acknowledged, not final),
DELIVERED, NOT_DELIVERED, NOT_ALLOWED, UNKNOWN_DELIVERY, BAD_DESTINATION, BLACKLISTED_NUMBER, UNDEFINED.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from providers.backends.base import (
    FAILURE_STATUSES,
    Account,
    Backend,
    BackendError,
    CallbackResponse,
    CheckResult,
    ConfigError,
    CredentialField,
    OutboundFrame,
    ParsedCallback,
    RecipientResult,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    SendResult,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
    json_body,
    loads_json,
    request,
    scrub,
)

DEFAULT_BASE_URL = "https://api.octopush.com/v1/public"

# Delivery-report status → canonical status.
STATUS_MAP: dict[str, Status] = {
    "ACK": Status.SENT,  # acknowledged by the first carrier; a final report follows
    "DELIVERED": Status.DELIVERED,
    "NOT_DELIVERED": Status.UNDELIVERED,  # the operator tried and could not deliver
    "NOT_ALLOWED": Status.REJECTED,  # the route or the operator refused this traffic
    "UNKNOWN_DELIVERY": Status.EXPIRED,  # no receipt came back within the validity period
    "BAD_DESTINATION": Status.REJECTED,  # not a valid mobile number: never attempted
    "BLACKLISTED_NUMBER": Status.REJECTED,  # on the account's Octopush blacklist (an earlier STOP)
    "UNDEFINED": Status.FAILED,  # Octopush itself cannot tell the outcome
}
# A failure report's words, for the message's page and the failure breakdown (Octopush's reports carry no text).
STATUS_TEXTS: dict[str, str] = {
    "NOT_DELIVERED": "Not delivered: the operator tried and could not deliver it",
    "NOT_ALLOWED": "Not allowed: the route or the operator refused this traffic",
    "UNKNOWN_DELIVERY": "No delivery receipt came back within the message's validity period",
    "BAD_DESTINATION": "Bad destination: not a valid mobile number, never attempted",
    "BLACKLISTED_NUMBER": "The number is on the account's Octopush blacklist (an earlier STOP)",
    "UNDEFINED": "Octopush cannot tell the outcome",
}

# Request-level error code → what it means for the frame's recipients (octopush.com "return codes"):
# SUBMITTED: the frame was accepted before (not an error); REJECTED: the request's content is refused
# (Rejected); QUEUED: try again later (Throttled); FAILED: the account must be fixed (ConfigError, whatever the
# HTTP status: the engine pauses the campaign instead of failing frame after frame).
CREDENTIAL_CODES = frozenset({"101", "108"})  # the login or the key: fix the account's credentials
ERROR_CODES: dict[str, Status] = {
    "120": Status.SUBMITTED,  # same request_id within 24 h
    "101": Status.FAILED,  # incorrect login details
    "108": Status.FAILED,  # login details missing
    "113": Status.FAILED,  # account not validated
    "114": Status.FAILED,  # account under investigation
    "125": Status.FAILED,  # undefined error, contact support
    "104": Status.FAILED,  # out of credit: top up, then resume (every frame would be refused alike)
    "105": Status.FAILED,  # not enough credit, an order awaits validation
    "102": Status.REJECTED,  # text too long for this type of SMS
    "103": Status.REJECTED,  # no recipients
    "106": Status.REJECTED,  # sender: 3 to 11 characters of a-z A-Z 0-9
    "107": Status.REJECTED,  # text missing
    "117": Status.REJECTED,  # no valid number in the recipients
    "121": Status.REJECTED,  # premium marketing text lacks "STOP au XXXXX"
    "122": Status.REJECTED,  # low-cost marketing text lacks "no PUB=STOP"
    "150": Status.REJECTED,  # no country for this prefix
    "151": Status.REJECTED,  # country not served
    "152": Status.REJECTED,  # no low-cost SMS to this country
    "208": Status.REJECTED,  # wrong type of SMS
    "400": Status.REJECTED,  # payload validation error (per-field errors)
    "153": Status.QUEUED,  # route congested: this type of SMS cannot go now
}

SMS_TYPES = ("sms_premium", "sms_low_cost")
MAX_TEXT = 1224  # characters of one SMS text
# A marketing ("wholesale") text carries the opt-out mention its type needs, or Octopush refuses it: premium
# "STOP au XXXXX" (Octopush puts its short number in place of XXXXX; the number itself does too), 121; low cost
# "no PUB=STOP", 122.
STOP_PREMIUM = re.compile(r"STOP au (?:X{5}|\d{5})")
STOP_LOW_COST = "no PUB=STOP"
SENDER_NAME = re.compile(r"[A-Za-z0-9]{3,11}")  # the `sender` field: 3-11 alphanumeric characters (seed 002)
MAX_PARAMS = 5  # Octopush personalises with {param1} … {param5}
PARIS = ZoneInfo("Europe/Paris")  # callback dates are French local time
_VARIABLE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")


class OctopushBackend(Backend):
    kind = "octopush"
    label = "Octopush"
    default_base_url = DEFAULT_BASE_URL
    default_currency = "EUR"  # France; its balance answers in euros (check)
    channels = ("sms",)
    max_recipients = 500
    default_frame_size = 500
    per_recipient_text = True  # through {param1}…{param5}
    supports_callbacks = True
    supports_polling = False  # no delivery-report pull API
    secret_in_url = True
    reports_cost_in_currency = True  # total_cost is in the account's currency (EUR)
    credential_fields = (
        CredentialField("login", "API login", secret=False, help_text="The e-mail address of the Octopush account."),
        CredentialField("api_key", "API key", help_text="Octopush console → API & integrations."),
    )
    recovery = "resend"  # the same request_id again: 120 when Octopush had the frame
    resend_window = 24 * 3600.0  # request_id is de-duplicated for 24 h (seed 002)
    # What a failure code means, in words a person acts on (Backend.code_words).
    code_words = {
        "104": "The Octopush account has run out of credit.",
        "117": "None of the numbers is valid.",
        "121": "Marketing texts must end with the STOP mention, e.g. 'STOP au 30101'.",
        "151": "Octopush does not serve this country.",
    }

    def send(self, account: Account, frame: OutboundFrame) -> SendResult:
        """One campaign request; every recipient shares the request's sms_ticket."""
        path, body = self._request_body(account, frame)
        try:
            response = request(
                account, "POST", account.base_url + path, json=body, headers=self._headers(account),
                vendor_error=_vendor_error,
            )  # fmt: skip
        except ResponseStatusError as exc:
            return self._refused(frame, exc.code, exc.message, exc.status_code)
        data = json_body(response, self.kind)
        ticket = data.get("sms_ticket") if isinstance(data, dict) else None
        if not ticket:
            if isinstance(data, dict) and data.get("code") is not None:
                code, text = _error_fields(data)
                message = f"octopush answered HTTP {response.status_code}: {text}"
                return self._refused(frame, code, message, response.status_code)
            raise ResponseUnparseable(
                f"octopush answered HTTP {response.status_code} without an sms_ticket: "
                + scrub(repr(response.text[:200]), account.secrets),
                status_code=response.status_code,
            )
        cost, parts = _per_recipient(data)
        results = [
            RecipientResult(r.external_ref, r.address, True, Status.SUBMITTED, str(ticket), parts=parts, cost=cost)
            for r in frame.recipients
        ]
        summary = {k: data[k] for k in ("number_of_contacts", "total_cost", "number_of_sms_needed") if k in data}
        return SendResult(results, ticket=str(ticket), summary={"sms_ticket": ticket, **summary})

    def parse_callback(
        self, account: Account, *, method: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> ParsedCallback:
        """Delivery reports and STOP opt-outs; Octopush expects an empty 200 at once."""
        self.require_url_secret(account, query or {})
        try:
            data = loads_json(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            snippet = scrub(repr(body[:200]), account.secrets)
            raise ResponseUnparseable(f"An Octopush callback must be JSON; got {snippet}") from None
        items = data if isinstance(data, list) else [data]
        return ParsedCallback([_callback_update(item) for item in items], CallbackResponse(200, ""))

    def recover(self, account: Account, frame: OutboundFrame) -> list[RecipientResult] | None:
        """Send again with the same request_id: Octopush answers 120 when it had the frame, or takes it now."""
        return self.send(account, frame).results

    def check(self, account: Account) -> CheckResult:
        """The wallet balance, which also proves the credentials."""
        try:
            response = request(
                account, "GET", f"{account.base_url}/wallet/check-balance", headers=self._headers(account),
                vendor_error=_vendor_error,
            )  # fmt: skip
            data = json_body(response, self.kind)
            amount, unit = float(data["amount"]), str(data.get("unit") or "")
        except BackendError as exc:
            return CheckResult(False, exc.message)
        except (KeyError, TypeError, ValueError):
            return CheckResult(False, "Octopush answered the balance check without an amount.")
        currency = "EUR" if unit.lower() in ("euros", "euro", "eur") else ""
        return CheckResult(True, f"Balance {amount:g} {currency or unit}".rstrip(), amount, currency)

    def setup(self, account: Account) -> dict[str, Any]:
        """Nothing to create by API: the DLR and STOP callback URLs are set in the Octopush console."""
        return {}

    def options_problem(self, options: dict[str, Any]) -> str:
        """sms_type must be one Octopush sends (else every frame would be refused, and the campaign paused)."""
        sms_type = options.get("sms_type")
        if sms_type not in (None, "") and sms_type not in SMS_TYPES:
            return f"sms_type must be {' or '.join(SMS_TYPES)} (empty: sms_premium), not {sms_type!r}."
        return ""

    def sender_problem(self, name: str, *, service: str = "", country: str = "") -> str:
        """A sender Octopush would refuse (106) for every message sent through it, in words for staff, or ""
        (checked when the sender is saved; seed 002: 3-11 alphanumeric characters, a-zA-Z0-9)."""
        if name and not SENDER_NAME.fullmatch(name):
            return "Octopush takes a sender of 3 to 11 letters (a-z, A-Z) and digits, with no accent, space or punctuation."
        return ""

    def text_problems(self, options: dict[str, Any], text: str, *, promotional: bool) -> list[str]:
        problems = []
        sms_type = options.get("sms_type") or "sms_premium"
        if promotional and sms_type == "sms_premium" and not STOP_PREMIUM.search(text):
            problems.append(
                "A promotional Octopush premium SMS must carry the opt-out mention 'STOP au XXXXX', as written "
                "(Octopush puts its short number in its place) or with the number, e.g. 'STOP au 30101'."
            )
        elif promotional and sms_type == "sms_low_cost" and STOP_LOW_COST not in text:
            problems.append(
                "A promotional Octopush low-cost SMS must carry the opt-out mention 'no PUB=STOP', as written."
            )
        if len(text) > MAX_TEXT:
            problems.append(f"Octopush takes at most {MAX_TEXT} characters.")
        return problems

    # --- private helpers ---

    @staticmethod
    def _headers(account: Account) -> dict[str, str]:
        return {"api-login": account.credential("login"), "api-key": account.credential("api_key")}

    def _request_body(self, account: Account, frame: OutboundFrame) -> tuple[str, dict[str, Any]]:
        """The seed's multi-channel body for one text; the older sms-campaign body with params when texts differ."""
        options = account.options
        sms_type = options.get("sms_type") or "sms_premium"
        if sms_type not in SMS_TYPES:
            raise ConfigError(f"Octopush option sms_type must be one of {', '.join(SMS_TYPES)}, not {sms_type!r}.")
        with_replies = _flag(options.get("with_replies"))
        common: dict[str, Any] = {"purpose": "wholesale" if frame.purpose == "promotional" else "alert"}
        if frame.sender:
            common["sender"] = frame.sender
        if frame.send_at:
            send_at = frame.send_at if frame.send_at.tzinfo else frame.send_at.replace(tzinfo=UTC)
            common["send_at"] = send_at.isoformat(timespec="seconds")
        if frame.campaign_name:
            common["list_name"] = frame.campaign_name
        common["simulation_mode"] = _flag(options.get("simulation_mode"))
        if frame.same_text_for_all:
            recipients = [{"phone_number": r.address} for r in frame.recipients]
            metadata = {"type": sms_type, "with_replies": with_replies, "request_id": frame.key}
            body = {"channel": "sms", "text": frame.text, "recipients": recipients, **common, "metadata": metadata}
            return "/multi-channel/send", body
        text, recipients = _personalised(frame)
        extra = {"type": sms_type, "with_replies": with_replies, "request_id": frame.key}
        return "/sms-campaign/send", {"text": text, "recipients": recipients, **common, **extra}

    def _refused(self, frame: OutboundFrame, code: str, message: str, http_status: int | None) -> SendResult:
        """Classify a request-level error by its Octopush code (120 settles the frame; the rest raise). The code
        decides, not the HTTP status, which is a 400 for most errors, whether about the text or the account."""
        meaning = ERROR_CODES.get(code)
        if meaning is Status.SUBMITTED:
            results = [RecipientResult(r.external_ref, r.address, True, Status.SUBMITTED) for r in frame.recipients]
            return SendResult(results, already_accepted=True, summary={"code": int(code), "message": message})
        if meaning is Status.QUEUED:
            raise Throttled(message, code=code, status_code=http_status)
        if meaning is Status.FAILED:
            field = "credentials" if code in CREDENTIAL_CODES else ""
            raise ConfigError(message, field=field, code=code, status_code=http_status)
        about_content = http_status in (400, 422) or 200 <= (http_status or 0) < 300
        if meaning is Status.REJECTED or (meaning is None and code and about_content):
            raise Rejected(message, code=code, status_code=http_status)
        raise ResponseStatusError(message, code=code, status_code=http_status)


def _personalised(frame: OutboundFrame) -> tuple[str, list[dict[str, str]]]:
    """Rewrite {{name}} to {paramN} and give each recipient its values; Octopush has five params."""
    names = list(dict.fromkeys(_VARIABLE.findall(frame.text)))
    if not names:
        raise ConfigError(
            "The recipients' texts differ but the frame text has no {{variables}}: Octopush personalises only "
            "through {param1}…{param5}."
        )
    if len(names) > MAX_PARAMS:
        raise ConfigError(
            f"Octopush personalises at most {MAX_PARAMS} variables per text ({{param1}}…{{param5}}); this text has "
            f"{len(names)}: {', '.join(names)}."
        )
    params = {name: f"param{i}" for i, name in enumerate(names, 1)}
    text = _VARIABLE.sub(lambda m: "{" + params[m.group(1)] + "}", frame.text)
    recipients = [
        {"phone_number": r.address, **{params[n]: str(r.variables.get(n, "")) for n in names}} for r in frame.recipients
    ]
    return text, recipients


def _callback_update(item: Any) -> StatusUpdate:
    """One callback object: a delivery report, a STOP, or anything else kept raw."""
    if not isinstance(item, dict):
        return StatusUpdate(kind=UpdateKind.UNKNOWN, payload={"body": item})
    ticket, number = str(item.get("message_id") or ""), _e164(item.get("number"))
    if "stop_date" in item and number:
        return StatusUpdate(
            kind=UpdateKind.OPT_OUT, raw_status="STOP", provider_message_id=ticket, ticket=ticket, address=number,
            text=str(item.get("text") or ""), occurred_at=_paris_time(item.get("stop_date")), payload=item,
            optout_scope="all",
        )  # fmt: skip
    raw = str(item.get("status") or "")
    status = STATUS_MAP.get(raw.upper())
    # Octopush has no numeric codes: a failure's status word is its code; a success carries none.
    code = raw if status in FAILURE_STATUSES or status is None else ""
    return StatusUpdate(
        kind=UpdateKind.STATUS if status and number else UpdateKind.UNKNOWN, raw_status=raw, status=status,
        provider_message_id=ticket, ticket=ticket, address=number, code=code, text=STATUS_TEXTS.get(code.upper(), ""),
        occurred_at=_paris_time(item.get("delivery_date")), payload=item,
    )  # fmt: skip


def _vendor_error(response) -> tuple[str, str]:
    return _error_fields(response.json())


def _error_fields(data: dict[str, Any]) -> tuple[str, str]:
    """(code, text) of an Octopush error body, the per-field errors spelled out."""
    code = data.get("code")
    text = str(data.get("message") or "")
    errors = data.get("errors")
    if isinstance(errors, dict):
        details = [
            f"{field}: {e.get('message')} (code {e.get('code')})" if isinstance(e, dict) else f"{field}: {e}"
            for field, e in errors.items()
        ]
        text = " ".join([text, *details]) if details else text
    return ("" if code is None else str(code)), text


def _per_recipient(data: dict[str, Any]) -> tuple[float | None, int | None]:
    """Cost and parts per recipient, from the request's totals."""
    try:
        contacts = int(data["number_of_contacts"])
        cost = round(float(data["total_cost"]) / contacts, 6)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    needed = data.get("number_of_sms_needed")
    parts = needed // contacts if isinstance(needed, int) and needed % contacts == 0 else None
    return cost, parts


def _flag(value: Any) -> bool:
    """Options may hold booleans or their spellings from a form."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _e164(number: Any) -> str:
    """A callback's number in E.164: with or without "+" or "00", spaces and dots ignored; a French national number
    ("06 01 02 03 04", Octopush's home market) read as French: taken as written ("+0601020304"), a STOP from it
    suppressed nobody."""
    digits = re.sub(r"[\s.()-]", "", str(number or ""))
    if digits.startswith("00"):
        digits = digits[2:]
    elif FRENCH_NATIONAL.fullmatch(digits):
        digits = "33" + digits[1:]
    return digits if not digits or digits.startswith("+") else "+" + digits


FRENCH_NATIONAL = re.compile(r"0[1-9]\d{8}")


def _paris_time(value: Any) -> datetime | None:
    """A "Y-m-d H:i:s" date in French local time (ISO 8601 with an offset also passes)."""
    try:
        when = datetime.fromisoformat(str(value))
        return (when if when.tzinfo else when.replace(tzinfo=PARIS)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # not a date, or one at the calendar's edge ("0001-01-01 00:00:00")
        return None
