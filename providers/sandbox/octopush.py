"""Octopush emulation: the v1 public API below /octopush (account base URL http://HOST:PORT/octopush/v1/public).

Serves `POST /v1/public/multi-channel/send` (the seed's body, shared/seeds/002), `POST /v1/public/sms-campaign/send`
(the older body of the official PHP client: type, with_replies and request_id at the top level, param1…param5 per
recipient) and `GET /v1/public/wallet/check-balance`. Like Octopush it casts and strips what it can (explicit
nulls are absent, unknown fields ignored, a sender loses its forbidden characters) and refuses only the hard
limits, with HTTP 400 and Octopush's codes: per-field "Payload validation error." (text 1-1224, recipients
1-500, type, purpose, send_at), 106 sender, 121/122 STOP mention on marketing ("wholesale", the default purpose),
120 repeated request_id (per login, 24 h, only once accepted), 104 out of credit (wallets are metered once the
`account` action sets a balance, so the demo never runs dry); 401 without or with wrong credentials.

Callbacks are set per login in the console, here the control action `callbacks` {api_login, dlr_url, stop_url,
with_ack}. Each accepted number gets one DLR (optionally an ACK before): the knobs' outcome mapped onto Octopush's
statuses, BAD_DESTINATION for numbers that are not E.164, BLACKLISTED_NUMBER after a STOP. Failed callbacks are
retried after 1, 5 and 30 minutes (Octopush documents no schedule; [Herald]). Octopush has no pull API for
reports. Other control actions: `account` {api_login, api_key, balance, status} (status `not_validated` or
`under_investigation` refuses that login's sends with 113 or 114, HTTP 400 [Herald]; `active` again by default)
and `optout` {address}.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from providers.sandbox.core import SandboxRequest, SandboxResponse, VendorEmulator, json_response

API = "/v1/public"
MULTI_CHANNEL = API + "/multi-channel/send"
SMS_CAMPAIGN = API + "/sms-campaign/send"
BALANCE = API + "/wallet/check-balance"
MAX_RECIPIENTS = 500
MAX_TEXT = 1224
PRICES = {"sms_premium": 0.065, "sms_low_cost": 0.045}  # EUR per SMS part [Herald]
START_BALANCE = 1000.0  # EUR shown for a login; it runs down (and out: 104) only once `account` sets a balance
REQUEST_ID_TTL = 24 * 3600.0
CALLBACK_RETRIES = (60.0, 300.0, 1800.0)
OUTCOME_STATUS = {
    "delivered": "DELIVERED",
    "undelivered": "NOT_DELIVERED",
    "expired": "UNKNOWN_DELIVERY",  # the validity ran out without a receipt
    "rejected": "NOT_ALLOWED",
}
PARIS = ZoneInfo("Europe/Paris")
ACCOUNT_REFUSALS = {  # account status → the code and text Octopush refuses a send with
    "not_validated": (113, "Your account is not validated. Log in to Octopush and go to the account section."),
    "under_investigation": (114, "Your account is under investigation. Please contact Octopush support."),
}
_STOP_PREMIUM = re.compile(r"STOP au (?:X{5}|\d{5})")
_STOP_LOW_COST = "no PUB=STOP"
_E164 = re.compile(r"\+[1-9]\d{7,14}")
_PARAM = re.compile(r"\{(param[1-5]|first_name|last_name)\}")


class OctopushSandbox(VendorEmulator):
    name = "octopush"
    prefix = "/octopush"

    def __init__(self, state):
        super().__init__(state)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._request_ids: dict[tuple[str, str], float] = {}  # (login, request_id) → expiry (monotonic)
            self._hooks: dict[str, dict[str, Any]] = {}  # login → callback settings
            self._keys: dict[str, str] = {}  # login → api key, for logins registered with `account`
            self._wallets: dict[str, float] = {}  # login → EUR
            self._blocked: dict[str, str] = {}  # login → the account status that refuses its sends
            self._last_ticket: dict[str, tuple[str, str]] = {}  # number → (login, ticket) of its latest message
            self._blacklist: set[tuple[str, str]] = set()  # (login, number) that answered STOP

    def is_send(self, request: SandboxRequest) -> bool:
        return request.method == "POST" and request.path.rstrip("/") in (MULTI_CHANNEL, SMS_CAMPAIGN)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path.rstrip("/")
        if path not in (MULTI_CHANNEL, SMS_CAMPAIGN, BALANCE):
            return _error(404, f"No route for {request.method} {request.path}.", status=404)
        if request.method != ("GET" if path == BALANCE else "POST"):
            return _error(405, f"Method {request.method} not allowed.", status=405)
        login = (request.headers.get("api-login") or "").strip()
        key = (request.headers.get("api-key") or "").strip()
        if not login or not key:
            return _error(108, "You have not entered your login details.", status=401)
        with self._lock:
            known_key = self._keys.get(login)
        if known_key is not None and not secrets.compare_digest(known_key, key):
            return _error(101, "Incorrect login details.", status=401)
        if path == BALANCE:
            return self._balance(login, request)
        with self._lock:
            blocked = self._blocked.get(login)
        if blocked is not None:
            return _error(*ACCOUNT_REFUSALS[blocked])
        return self._send(login, request, path)

    def control(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action == "callbacks":
            return self._set_callbacks(body)
        if action == "account":
            return self._set_account(body)
        if action == "optout":
            return self._optout(body)
        if action == "forget_request_ids":
            return self._forget_request_ids()
        raise KeyError(action)

    def _forget_request_ids(self) -> dict[str, Any]:
        """What 24 hours do: every request_id seen so far may be used again (and is then a new campaign)."""
        with self._lock:
            forgotten = len(self._request_ids)
            self._request_ids.clear()
        return {"forgotten": forgotten}

    # --- sending ---

    def _send(self, login: str, request: SandboxRequest, path: str) -> SandboxResponse:
        try:
            data = request.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return _invalid({"body": {"code": 400, "message": "The body must be a JSON object."}})
        data = _present(data)
        metadata = _present(data["metadata"]) if isinstance(data.get("metadata"), dict) else {}
        # Where type, with_replies and request_id live depends on the path; Herald accepts either place.
        first, second = (data, metadata) if path == SMS_CAMPAIGN else (metadata, data)

        def option(name: str) -> Any:
            return first[name] if name in first else second.get(name)

        text = str(data.get("text", ""))
        sms_type = str(option("type") or "sms_premium").lower()
        purpose = str(data.get("purpose") or "wholesale").lower()
        contacts, errors = _contacts(data.get("recipients"))
        if path == MULTI_CHANNEL and str(data.get("channel") or "sms").lower() != "sms":
            errors["channel"] = {"code": 400, "message": "The sandbox emulates the sms channel only."}
        if not text.strip():
            errors["text"] = {"code": 107, "message": "The text of your message is missing."}
        elif len(text) > MAX_TEXT:
            errors["text"] = {"code": 102, "message": f"Your text exceeds {MAX_TEXT} characters."}
        if sms_type not in PRICES:
            errors["type"] = {"code": 208, "message": "Wrong type of SMS."}
        if purpose not in ("alert", "wholesale"):
            errors["purpose"] = {"code": 400, "message": "The purpose must be alert or wholesale."}
        send_at = _parse_time(data.get("send_at"))
        if send_at is False:
            errors["send_at"] = {
                "code": 400,
                "message": "send_at must be an ISO 8601 date, e.g. 2018-10-03T07:42:39-07:00.",
            }
        if errors:
            return _invalid(errors)
        if data.get("sender") not in (None, ""):
            sender = re.sub(r"[^A-Za-z0-9 ]", "", str(data["sender"])).strip()
            if not 3 <= len(sender) <= 11:
                return _error(
                    106, "You have entered the Sender incorrectly. 3 to 11 characters, chosen from 0 to 9, a to z, "
                    "A to Z. No accent, space or punctuation.",
                )  # fmt: skip
        if purpose == "wholesale" and sms_type == "sms_premium" and not _STOP_PREMIUM.search(text):
            return _error(121, "Mention STOP is missing.")
        if purpose == "wholesale" and sms_type == "sms_low_cost" and _STOP_LOW_COST not in text:
            return _error(122, "Mention no PUB=STOP is missing.")
        parts = {number: _parts(_personalise(text, params)) for number, params in contacts.items()}
        sms_needed = sum(parts.values())
        cost = round(sms_needed * PRICES[sms_type], 6)
        request_id = "" if option("request_id") in (None, "") else str(option("request_id"))
        simulated = _flag(data.get("simulation_mode"))
        ticket = "sms_" + uuid.uuid4().hex[:13]
        now = time.monotonic()
        with self._lock:
            if request_id and self._request_ids.get((login, request_id), 0) > now:
                return _error(120, "A SMS with the same request_id has already been sent.")
            metered = login in self._wallets
            balance = self._wallets.get(login, START_BALANCE)
            if metered and cost > balance:
                return _error(104, "You have run out of credit.")
            hooks = dict(self._hooks.get(login, {}))
            blacklisted = {n for n in contacts if (login, n) in self._blacklist}
            if not simulated:
                if request_id:
                    self._request_ids[(login, request_id)] = now + REQUEST_ID_TTL
                if metered:
                    balance = self._wallets[login] = round(balance - cost, 6)
                for number in contacts:
                    self._last_ticket[number] = (login, ticket)
        if not simulated:
            for number in contacts:
                self.state.record_accepted(self.name, number, number)
            delay = max(0.0, (send_at - datetime.now(PARIS)).total_seconds()) if send_at else 0.0
            self._report(hooks, ticket, str(data.get("list_name") or ""), parts, PRICES[sms_type], blacklisted, delay)
        answer = {
            "sms_ticket": ticket,
            "number_of_contacts": len(contacts),
            "total_cost": cost,
            "number_of_sms_needed": sms_needed,
            "residual_credit": round(balance, 4),
            "message": "Simulated campaign." if simulated else "Campaign created.",
        }
        return json_response(201, answer)

    def _report(
        self,
        hooks: dict,
        ticket: str,
        list_name: str,
        parts: dict[str, int],
        price: float,
        blacklisted: set,
        after: float,
    ) -> None:
        """One delivery report per number to the login's DLR URL, after the knobs' delay."""
        url = hooks.get("dlr_url")
        if not url:
            return
        now = datetime.now(PARIS)
        dates: dict[int, str] = {}  # whole seconds from now → "Y-m-d H:i:s", formatted once
        for number, count in parts.items():
            if not _E164.fullmatch(number):
                status = "BAD_DESTINATION"
            elif number in blacklisted:
                status = "BLACKLISTED_NUMBER"
            else:
                status = OUTCOME_STATUS[self.state.outcome()]
            delay = after + self.state.dlr_delay()
            reports = [("ACK", delay / 2)] if hooks.get("with_ack") else []
            for raw, at in [*reports, (status, delay)]:
                payload = {
                    "channel": "sms", "message_id": ticket, "list_name": list_name, "number": number, "status": raw,
                    "unit_price": round(count * price, 6),
                    "delivery_date": dates.get(int(at)) or dates.setdefault(int(at), _paris_date(now, int(at))),
                    "meta_data": {},
                }  # fmt: skip
                self.state.callbacks.schedule(url, payload, delay=at, vendor=self.name, retry_delays=CALLBACK_RETRIES)

    # --- balance and control actions ---

    def _balance(self, login: str, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            balance = self._wallets.get(login, START_BALANCE)
        product = request.query.get("product_name") or ""
        packs = None
        if _flag(request.query.get("with_details")):
            packs = [{"wallet_pack_id": str(uuid.uuid5(uuid.NAMESPACE_URL, login)), "credit": round(balance, 2),
                      "expiration_date": "2030-10-23T13:41:46+02:00"}]  # fmt: skip
        if product in PRICES:
            return json_response(
                200, {"amount": int(balance // PRICES[product]), "unit": product, "wallet_packs": packs}
            )
        return json_response(200, {"amount": round(balance, 2), "unit": "euros", "wallet_packs": packs})

    def _set_callbacks(self, body: dict[str, Any]) -> dict[str, Any]:
        login = str(body.get("api_login") or "")
        if not login:
            return {"error": "api_login is required"}
        hooks = {k: body[k] for k in ("dlr_url", "stop_url") if body.get(k)}
        hooks["with_ack"] = _flag(body.get("with_ack"))
        with self._lock:
            self._hooks[login] = hooks
        return {"api_login": login, **hooks}

    def _set_account(self, body: dict[str, Any]) -> dict[str, Any]:
        login = str(body.get("api_login") or "")
        if not login:
            return {"error": "api_login is required"}
        with self._lock:
            if body.get("api_key"):
                self._keys[login] = str(body["api_key"])
            if body.get("balance") is not None:
                self._wallets[login] = float(body["balance"])
            if body.get("status") is not None:
                status = str(body["status"])
                if status != "active" and status not in ACCOUNT_REFUSALS:
                    return {"error": f"status must be active, {' or '.join(ACCOUNT_REFUSALS)}"}
                if status == "active":
                    self._blocked.pop(login, None)
                else:
                    self._blocked[login] = status
            status = self._blocked.get(login, "active")
            return {"api_login": login, "balance": self._wallets.get(login, START_BALANCE), "status": status}

    def _optout(self, body: dict[str, Any]) -> dict[str, Any]:
        """The recipient answers STOP: blacklist the number and send the STOP callback to the login's stop_url."""
        number = _normalise(body.get("address"))
        with self._lock:
            login, ticket = self._last_ticket.get(number, (str(body.get("api_login") or ""), ""))
            if not login and len(self._hooks) == 1:
                login = next(iter(self._hooks))
            self._blacklist.add((login, number))
            url = self._hooks.get(login, {}).get("stop_url", "")
        payload = {
            "message_id": ticket, "number": number, "text": str(body.get("text") or "STOP"),
            "stop_date": _paris_date(datetime.now(PARIS), 0),
        }  # fmt: skip
        self.state.callbacks.schedule(url, payload, delay=0, vendor=self.name, retry_delays=CALLBACK_RETRIES)
        return {"scheduled": bool(url), "api_login": login, "callback": payload}


def _contacts(recipients: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict]]:
    """Numbers (normalised, de-duplicated, in order) → their params; or the recipients' validation error."""
    if not isinstance(recipients, list) or not recipients:
        return {}, {"recipients": {"code": 110, "message": "You have not entered the list of recipient."}}
    if len(recipients) > MAX_RECIPIENTS:
        message = f"There are too many contacts in the query: {MAX_RECIPIENTS} at most."
        return {}, {"recipients": {"code": 305, "message": message}}
    contacts: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(recipients):
        item = _present(item) if isinstance(item, dict) else {"phone_number": item}
        number = _normalise(item.get("phone_number"))
        if not number or isinstance(item["phone_number"], (dict, list, bool)):
            return {}, {"recipients": {"code": 117, "message": f"Recipient {index} has no phone_number."}}
        contacts.setdefault(number, item)
    return contacts, {}


def _personalise(text: str, params: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    return _PARAM.sub(lambda m: str(params.get(m.group(1), "")), text)


def _parts(text: str) -> int:
    """SMS parts, approximated: ASCII as GSM-7 (160, then 153 a part), anything else as UCS-2 (70, then 67)."""
    single, multi = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)


def _normalise(number: Any) -> str:
    if isinstance(number, str) and number[1:].isdigit() and number[0] == "+":
        return number
    digits = re.sub(r"[\s.()-]", "", str(number if number is not None else ""))
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits if not digits or digits.startswith("+") else "+" + digits


def _paris_date(now: datetime, seconds: int) -> str:
    return (now + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def _parse_time(value: Any) -> datetime | None | bool:
    """None when absent, the aware datetime, or False when it cannot be read."""
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return when if when.tzinfo else when.replace(tzinfo=PARIS)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Explicit nulls (the official PHP client sends them) count as absent."""
    return {k: v for k, v in values.items() if v is not None}


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _error(code: int, message: str, *, status: int = 400) -> SandboxResponse:
    return json_response(status, {"code": code, "message": message})


def _invalid(errors: dict[str, dict]) -> SandboxResponse:
    return json_response(400, {"code": 400, "message": "Payload validation error.", "errors": errors})
