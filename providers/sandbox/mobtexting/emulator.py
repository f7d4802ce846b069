"""MOBtexting API v2 emulation (seed 001, PROVIDERS.md § MOBtexting), below /mobtexting/api/v2/.

What it serves, as the vendor does:
- auth: `Authorization: Bearer <token>`, `?access_token=` or `access_token` in a form body; any token
  works until the control action `revoke` names it; none → 401 {"status", "code", "message"}. POST with
  `_method=PUT|PATCH|DELETE` (query or body) tunnels the method; trailing slashes and explicit nulls are
  accepted. GET requests are limited to 1000 a minute per token (429 with Retry-After; control `limits` sets the
  allowance and, for tests, its window in seconds).
- `POST sms/send/json` (root + nodes), `sms/send` as JSON, form (`to` comma-separated) or GET with query
  parameters, and `POST sms/send/template` (a registered template by id or alias, {{variables}} from data).
  A query or form whose unencoded `&` cut the message gets a 422, never a crash. Any request error is a
  422 with Laravel's field errors and nothing is sent. Invalid numbers are left out of the answer.
- DLT: towards Indian numbers (91 + 10 digits) services T, P and S need entity_id and template_id (422
  naming them); a transactional (T) sender ID is 6 capitals or digits (422). Promotional (P) traffic outside
  09:00-21:00 IST is refused at submission: the row says PROMO-TMOUT, code 457 (the sandbox's choice; the
  vendor may also delay it). Unsubscribed numbers get OPTOUT-REJ 456, NDNC numbers (control `dnd`) on P
  get DNDNUMB 408, both at submission. The seventh identical text within an hour from one sender to one
  number is accepted and reported DUPLICATE (460). A token whose balance is metered (control `balance`) pays
  one credit per SMS part; a number whose parts the credit left cannot pay gets NO-CREDITS 401 ("Credit
  exhausted." [seed 001:2709]) in its row at submission, while those paid for before it are sent. Likewise,
  with a sending limit (control `limits` sms_per_minute), the numbers past the minute's allowance get THROTTLED
  463 ("Maximum Sent Limit is Reached" [seed 001:2734]). The token's registries count too: a sender it registered
  that is not approved gets INV-SENDER 454, a text that does not match the registered template whose
  template_id it names gets TEMPLATE-NOT-FOUND 452 (both in the row, at submission), and one whose variable runs
  over 30 characters is reported DLT-TM-VAR-EXECEED (783); senders and templates never registered pass.
- No de-duplication by `custom`: a resent node is a new message (so `state.accepted` exposes a double send);
  a lost answer is settled with `GET sms/status?cid=`. record_accepted's ref is the node's custom, else the
  mobile; where one `custom` covers several numbers (sms/send) it is "<custom>/<mobile>".
- Delivery: each accepted message draws its outcome (DELIVRD, UNDELIV, EXPIRED, DLT-REJECTED) and delay from
  the knobs; `sms/status` shows AWAITING-DLR (SCHEDULED before a `time`) until then. Reports are pushed to
  the send's `webhook_id` as flat JSON [seed 001:9894-9916], else to the token's sms:message:status
  subscription as the {"event", "payload"} envelope; a webhook created with "method": "GET" gets the
  customised GET with its {{placeholders}} filled in. Every push carries `Signature` (hex HMAC-SHA256 of the
  body keyed with the webhook id) and, when the webhook has a secret, `Authorization: Bearer <secret>`;
  retried 10 s and 100 s later (times retry_scale). Promotional (P) messages never get a report, as post-DLT
  [seed 001:9527]: the pull keeps AWAITING-DLR.
- Webhooks: created with a `token`, the webhook is verified at once by the handshake (POST uri?token=… with
  {validation_key, challenge}, 200 echoing the challenge within 3 s); one that fails is kept but unverified
  and gets nothing (control `verify` marks it verified, as the console's button would). Without a token
  there is no handshake. An update of an unverified webhook retries the handshake.
- Registries per token: developer/webhooks, developer/subscriptions, sms/senders, sms/templates,
  sms/suppressions/unsubscribers (filter[field]=, 15 a page with links/meta). New senders and templates are
  approved (status 1) unless control `approval` says otherwise. `auth/me` describes the token's account.

Control actions (POST /_sandbox/mobtexting/<action>): optout {address, type?, value?, token?} (stores the
unsubscriber and emits `sms:unsubscription` to subscribed webhooks), revoke {token}, verify {webhook_id},
dnd {address}, approval {senders?, templates?: 0|1|2}, clock {now: "YYYY-MM-DD HH:MM:SS" IST | null},
limits {get_per_minute?, sms_per_minute?: 0 for none, the default; window_seconds?: the GET window, 60},
balance {token, credits: a number | null (unmetered, the default)}, envelope {errors_with_200: true} (every
error answered HTTP 200, the error envelope's `status` and `code` alone saying what went wrong, as the seed's "OK
or 200 is success and rest everything is failed" allows; false again by default).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from providers.sandbox.core import SandboxRequest, SandboxResponse, SandboxState, VendorEmulator
from providers.sandbox.mobtexting.common import (
    API,
    IST,
    TIME_FORMAT,
    Tenant,
    crud_time,
    digits,
    error,
    invalid,
    ok,
)
from providers.sandbox.mobtexting.messages import MessageDesk
from providers.sandbox.mobtexting.registries import Registries

SEND_PATHS = ("sms/send", "sms/send/json", "sms/send/template")
REGISTRIES = {
    ("developer", "webhooks"): "webhooks",
    ("developer", "subscriptions"): "subscriptions",
    ("sms", "senders"): "senders",
    ("sms", "templates"): "templates",
    ("sms", "suppressions", "unsubscribers"): "unsubscribers",
}
SEND_FIELDS = {
    "access_token",
    "message",
    "sender",
    "to",
    "service",
    "time",
    "type",
    "flash",
    "custom",
    "custom1",
    "port",
    "entity_id",
    "template_id",
    "max_units",
    "webhook_id",
    "dlr_url",
    "name",
    "meta",
    "_method",
}
GET_LIMIT = 1000  # GET requests a minute per token [seed 001:81]
ACCOUNT = {"name": "Sandbox account", "username": "sandbox", "email": "sandbox@mobtexting.invalid", "status": 1}
CUT_TEXT = "The message looks cut at an unencoded '&' (near {fragment!r}); URL-encode the text."
CONTROL_FIELDS = {"optout": "address", "revoke": "token", "verify": "webhook_id", "dnd": "address", "balance": "token"}


class MobtextingSandbox(VendorEmulator):
    name = "mobtexting"
    prefix = "/mobtexting"

    def __init__(self, state: SandboxState):
        super().__init__(state)
        self.lock = threading.RLock()
        self.messages = MessageDesk(self)
        self.registries = Registries(self)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tenants: dict[str, Tenant] = {}
            self.revoked: set[str] = set()
            self.dnd: set[str] = set()
            self.clock: datetime | None = None
            self.approval = {"senders": 1, "templates": 1}
            self.get_limit = GET_LIMIT
            self.get_window_seconds = 60  # the limit's window; tests shorten it (control `limits`, `window_seconds`)
            self.sms_limit = 0  # numbers accepted a minute per token; 0: no limit (control `limits`)
            self.errors_with_200 = (
                False  # errors answered HTTP 200, their envelope's code saying what (control `envelope`)
            )

    def now(self) -> datetime:
        """The vendor's clock (IST); the control action `clock` pins it for tests of the promotional window."""
        return self.clock or datetime.now(IST)

    def is_send(self, request: SandboxRequest) -> bool:
        return _route(request.path) in SEND_PATHS

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        response = self._answer(request)
        if self.errors_with_200 and response.status >= 400:  # the error envelope alone says it [seed 001:95-101]
            return replace(response, status=200)
        return response

    def _answer(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path.rstrip("/")
        if not path.startswith(API + "/"):
            return error(404, "Not Found")
        params, problem = _params(request)
        if problem is not None:
            return problem
        method = request.method.upper()
        if method == "POST" and str(params.get("_method", "")).upper() in ("PUT", "PATCH", "DELETE"):
            method = str(params["_method"]).upper()
        token = _token(request, params)
        if not token or token in self.revoked:
            return error(401, "Unauthenticated.")
        tenant = self._tenant(token)
        if method == "GET" and (wait := self._over_limit(tenant)):
            return error(429, "Too Many Attempts.", headers={"Retry-After": str(wait)})
        route = _route(path)
        base = f"http://{request.headers.get('host', 'localhost')}{self.prefix}{API}/{route}"
        return self._dispatch(request, tenant, method, route, params, base)

    def control(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Sandbox-only settings and events (see the module docstring)."""
        required = CONTROL_FIELDS.get(action)
        if required and not body.get(required):
            return {"error": f"the {action} action needs {required!r}"}
        with self.lock:
            if action == "optout":
                return self._optout(body)
            if action == "revoke":
                self.revoked.add(str(body["token"]))
                return {"revoked": body["token"]}
            if action == "verify":
                hooks = [
                    t.webhooks[body["webhook_id"]] for t in self.tenants.values() if body["webhook_id"] in t.webhooks
                ]
                for hook in hooks:
                    hook["is_verified"] = 1
                return {"verified": len(hooks)}
            if action == "dnd":
                self.dnd.add(digits(body["address"]))
                return {"dnd": sorted(self.dnd)}
            if action == "approval":
                self.approval.update({k: int(v) for k, v in body.items() if k in self.approval})
                return dict(self.approval)
            if action == "clock":
                try:
                    self.clock = (
                        datetime.strptime(body["now"], TIME_FORMAT).replace(tzinfo=IST) if body.get("now") else None
                    )
                except (TypeError, ValueError):
                    return {"error": f"now must look like 2024-03-10 22:15:00 (IST), not {body['now']!r}"}
                return {"now": self.now().strftime(TIME_FORMAT)}
            if action == "envelope":
                self.errors_with_200 = bool(body.get("errors_with_200"))
                return {"errors_with_200": self.errors_with_200}
            if action == "balance":
                tenant = self._tenant(str(body["token"]))
                tenant.credits = None if body.get("credits") is None else float(body["credits"])
                return {"token": tenant.token, "credits": tenant.credits}
            if action == "limits":
                self.get_limit = int(body.get("get_per_minute", self.get_limit))
                self.sms_limit = int(body.get("sms_per_minute", self.sms_limit) or 0)
                self.get_window_seconds = max(1, int(body.get("window_seconds", self.get_window_seconds)))
                return {
                    "get_per_minute": self.get_limit,
                    "sms_per_minute": self.sms_limit,
                    "window_seconds": self.get_window_seconds,
                }
        raise KeyError(action)

    def subscribed_webhook(self, tenant: Tenant, event: str) -> dict[str, Any] | None:
        """The webhook of the token's newest subscription to `event` that can receive calls."""
        for subscription in reversed(tenant.subscriptions.values()):
            hook = tenant.webhooks.get(subscription["webhook_id"])
            if subscription["event"] == event and hook and str(hook["status"]) == "1" and hook["is_verified"]:
                return hook
        return None

    # --- helpers ---

    def _dispatch(self, request, tenant, method, route, params, base) -> SandboxResponse:
        parts = tuple(route.split("/"))
        if parts == ("auth", "me") and method == "GET":
            return ok("OK", {**ACCOUNT, "id": tenant.token[-8:]})
        if route in SEND_PATHS:
            if method not in ("GET", "POST") or (method == "GET" and route != "sms/send"):
                return error(405, "The method is not supported for this route.")
            if route == "sms/send/json":
                return self.messages.send_json(tenant, params)
            if route == "sms/send/template":
                return self.messages.send_template(tenant, params)
            raw = request.full_path.partition("?")[2] if method == "GET" else ""
            if request.content_type == "application/x-www-form-urlencoded":
                raw = request.body.decode("utf-8", "replace")
            if fragment := _cut_text(raw):
                return invalid({"message": [CUT_TEXT.format(fragment=fragment)]})
            return self.messages.send_simple(tenant, params)
        if route == "sms/status":
            if method != "GET":
                return error(405, "The method is not supported for this route.")
            return self.messages.status(tenant, params, base)
        for prefix, registry in REGISTRIES.items():
            if parts[: len(prefix)] == prefix and len(parts) <= len(prefix) + 1:
                ident = parts[len(prefix)] if len(parts) > len(prefix) else ""
                collection = base.rsplit("/", 1)[0] if ident else base
                return self.registries.handle(registry, tenant, method, ident, params, collection)
        return error(404, "Not Found")

    def _tenant(self, token: str) -> Tenant:
        with self.lock:
            tenant = self.tenants.get(token)
            if tenant is None:
                tenant = self.tenants[token] = Tenant(token)
            return tenant

    def _over_limit(self, tenant: Tenant) -> int:
        """Seconds to wait when this GET is over the window's allowance (a minute unless a test shortens it), else 0."""
        if self.get_limit <= 0:
            return 0
        now, window = time.time(), self.get_window_seconds
        current = int(now // window)
        with self.lock:
            if tenant.get_window[0] != current:
                tenant.get_window[:] = [current, 0]
            tenant.get_window[1] += 1
            over = tenant.get_window[1] > self.get_limit
        return max(1, math.ceil(window - now % window)) if over else 0

    def _optout(self, body: dict[str, Any]) -> dict[str, Any]:
        """An end user opted out: store the unsubscriber and emit `sms:unsubscription` where subscribed."""
        receiver = digits(body["address"])
        kind = str(body.get("type") or "all")
        tenants = [self._tenant(str(body["token"]))] if body.get("token") else list(self.tenants.values())
        sent = 0
        for tenant in tenants:
            row = {
                "id": str(uuid.uuid4()),
                "receiver": receiver,
                "type": kind,
                "value": "" if kind == "all" else str(body.get("value") or ""),
                "created_at": crud_time(),
                "status": 1,
            }
            tenant.unsubscribers[row["id"]] = {"iso": "IN" if receiver.startswith("91") else "", **row}
            hook = self.subscribed_webhook(tenant, "sms:unsubscription")
            if hook is not None:
                self.messages.push(hook, "envelope", json.dumps(row).encode(), 0.0, event="sms:unsubscription")
                sent += 1
        return {"unsubscribed": len(tenants), "callbacks": sent}


def _route(path: str) -> str:
    path = path.rstrip("/")
    return path[len(API) + 1 :] if path.startswith(API + "/") else ""


def _params(request: SandboxRequest) -> tuple[dict[str, Any], SandboxResponse | None]:
    """Query parameters, then the body (JSON object or form), without explicit nulls."""
    params: dict[str, Any] = dict(request.query)
    if request.body.strip():
        if request.content_type == "application/x-www-form-urlencoded":
            params.update(request.form())
        elif not request.content_type.startswith("multipart/"):
            try:
                body = request.json()
            except ValueError:
                return {}, error(400, "The request body is not valid JSON.")
            if not isinstance(body, dict):
                return {}, error(400, "The request body must be a JSON object.")
            params.update(body)
    return {k: v for k, v in params.items() if v is not None}, None


def _token(request: SandboxRequest, params: dict[str, Any]) -> str:
    scheme, _, token = (request.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return str(params.get("access_token") or "").strip()


def _cut_text(raw: str) -> str:
    """A piece of a query or form that is not a parameter: text after an unencoded '&'."""
    for piece in raw.split("&"):
        key = unquote_plus(piece.partition("=")[0])
        if piece and (" " in key or ("=" not in piece and key not in SEND_FIELDS)):
            return key.strip() or piece
    return ""
