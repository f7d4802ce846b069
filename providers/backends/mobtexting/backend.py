"""MOBtexting (India, DLT), API v2 — seed 001 and PROVIDERS.md § MOBtexting.

Sends go to `POST sms/send/json` as {"root": {defaults}, "nodes": [{"to", "custom", "message"}]}, so that
every recipient carries our external_ref in `custom` and may carry its own text. The vendor does not
de-duplicate, so a frame whose answer was lost is recovered by looking each ref up with
`GET sms/status?cid=` (recovery "lookup"). Delivery reports arrive both ways: pushed to the webhook
that `setup()` registers (flat JSON, the {"event", "payload"} envelope, or a customised webhook: a GET with
query fields or a POST with form or form-data fields), and pulled from `GET sms/status` (by group_id, cid or
date, 100 rows a page). A number refused at submission with 401 NO-CREDITS or 402 NO-ACCOUNT is the account's
problem, not the number's: it comes back unsent (SendResult.unsent_error, a ConfigError), so the campaign pauses
and it waits for the top-up instead of failing; one refused with 463 THROTTLED (the account's sending limit)
comes back unsent too, and is sent again after a backoff (Throttled). Promotional (P) traffic gets
no delivery report post-DLT [seed 001:9527]; the engine finalises it after the account's report window.

Status vocabulary (statuses.py): AWAITING-DLR, SCHEDULED, ENROUTE/EN_ROUTE, DELIVRD/DELIVERED,
UNDELIV/UNDELIVERABLE, EXPIRED, DELETED; the error code table 000-463 and the DLT family 777-792 with
their words (DNDNUMB, PROMO-TMOUT, DUPLICATE, DLT-REJECTED …); Smart Delivery's INV-PEID, INV-TMID ….

Account: credentials {"api_key"}; options "webhook_id" (set by setup), "callback_auth" "bearer"
(default: `Authorization: Bearer <webhook secret>`) or "signature" (`Signature` = hex HMAC-SHA256 of the
raw body keyed with the webhook id), "service" (the service code when the frame has none).
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from email.parser import BytesParser
from typing import Any, ClassVar
from urllib.parse import parse_qs

from providers.backends.base import (
    FAILURE_STATUSES,
    Account,
    AuthenticationFailed,
    Backend,
    BackendError,
    CallbackResponse,
    CheckResult,
    ConfigError,
    CredentialField,
    OutboundFrame,
    ParsedCallback,
    PollQuery,
    RecipientResult,
    RemoteSender,
    RemoteTemplate,
    RemoteUnsubscriber,
    ResponseUnparseable,
    SendResult,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
    loads_json,
)
from providers.backends.mobtexting import registries
from providers.backends.mobtexting.client import (
    IST,
    call,
    digits,
    e164,
    first,
    pages,
    parse_time,
    receiver_e164,
    vendor_time,
)
from providers.backends.mobtexting.statuses import CODE_WORDS, ERROR_CODES, STATUS_MAP, classify

__all__ = ["DEFAULT_BASE_URL", "ERROR_CODES", "STATUS_MAP", "MobtextingBackend", "verification_token"]

DEFAULT_BASE_URL = "https://portal.mobtexting.com/api/v2"
SERVICE_FOR_PURPOSE = {"transactional": "T", "service": "S", "promotional": "P"}
WEBHOOK_NAME = "Herald"
STATUS_EVENT, OPTOUT_EVENT = "sms:message:status", "sms:unsubscription"
OPTOUT_SCOPES = {"tag": "tag", "product": "service", "service": "service", "sender": "sender", "all": "all", "": "all"}
MAX_POLL_DAYS = 31
# Numbers refused at submission for the account's sake rather than their own are held, not failed: 401
# NO-CREDITS and 402 NO-ACCOUNT [seed 001:2709-2710] until a person tops up or fixes the account (ConfigError:
# the campaign pauses), 463 THROTTLED, the account's sending limit [seed 001:2734], until it lets them through
# (Throttled: sent again after a backoff).
ACCOUNT_CODES = frozenset({"401", "402"})
LIMIT_CODES = frozenset({"463"})
HELD_CODES = ACCOUNT_CODES | LIMIT_CODES
CALLBACK_AUTH_MODES = ("bearer", "signature")
TRANSACTIONAL_HEADER = re.compile(r"[A-Z0-9]{6}")  # an Indian service T sender ID (TRAI; seed 001:8859-8905)
PROMOTIONAL_HEADER = re.compile(r"[0-9]{6}")  # an Indian service P sender ID: numeric, e.g. 777777 (seed 001:8859)
SENDER_SERVICE_WORDS = {"T": "transactional (service T)", "S": "service (TransScrub, service S)", "P": "promotional"}
TEMPLATE_TYPE_WORDS = {"T": "transactional", "SI": "service implicit", "SE": "service explicit", "P": "promotional"}
HANDSHAKE_ONLY = (
    "The callback carries the webhook's validation token, which authenticates the verification handshake only."
)


def verification_token(account: Account) -> str:
    """The validation key given to MOBtexting for the webhook handshake, derived from the webhook secret so
    that the secret itself never travels in a URL."""
    if not account.webhook_secret:
        raise ConfigError("The account has no webhook secret.", field="webhook_secret")
    digest = hmac.new(account.webhook_secret.encode(), b"mobtexting-webhook-verification", hashlib.sha256)
    return digest.hexdigest()[:32]


class MobtextingBackend(Backend):
    kind = "mobtexting"
    sender_required = True  # its send refuses a message without one (its sandbox too)
    label = "MOBtexting"
    default_base_url = DEFAULT_BASE_URL
    default_currency = "INR"  # India (seed 001: DLT, TRAI)
    channels = ("sms",)
    setup_options = ("webhook_id", "webhook_verified")
    max_recipients = 500  # no cap is documented; Herald's choice, configurable per account
    default_frame_size = 200
    per_recipient_text = True
    supports_callbacks = True
    supports_polling = True
    secret_in_url = False  # MOBtexting sends the webhook secret as a bearer token (or signs)
    uses_dlt = True
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("api_key", "API access token", help_text="Developers → API Keys / Access Tokens."),
    )
    recovery = "lookup"
    code_words = CODE_WORDS

    def send(self, account: Account, frame: OutboundFrame) -> SendResult:
        """One `sms/send/json` request; results matched to recipients by `customid` (fallback: mobile)."""
        if frame.channel not in self.channels:
            raise ConfigError(f"MOBtexting sends SMS here, not {frame.channel!r}.")
        if not frame.recipients:
            return SendResult([])
        body = call(account, "POST", "sms/send/json", json=self._send_body(account, frame))
        rows = body.get("data")
        if not isinstance(rows, list):
            raise ResponseUnparseable(f"mobtexting accepted the request without per-number rows: {str(body)[:200]}")
        by_ref: dict[str, dict] = {}
        by_mobile: dict[str, list[dict]] = {}
        for row in rows:
            if isinstance(row, dict):
                by_ref.setdefault(first(row, "customid", "custom"), row)
                by_mobile.setdefault(digits(first(row, "mobile")), []).append(row)
        used: set[int] = set()
        results = []
        for recipient in frame.recipients:
            row = by_ref.get(recipient.external_ref)
            if row is None or id(row) in used:
                row = next((r for r in by_mobile.get(digits(recipient.address), []) if id(r) not in used), None)
            if row is not None:
                used.add(id(row))
            results.append(self._result(recipient, row))
        group_id = first(body, "group_id")
        accepted = sum(r.accepted for r in results)
        summary = {"group_id": group_id, "accepted": accepted, "message": first(body, "message")}
        held = [r for r in results if not r.accepted and r.code in HELD_CODES]
        if held:  # not the numbers' fault: they are left unsent, to wait for the account's fix or the limit
            sent = [r for r in results if r.accepted or r.code not in HELD_CODES]
            summary["unsent"] = len(held)
            return SendResult(sent, ticket=group_id, summary=summary, unsent_error=_held_error(held, len(results)))
        return SendResult(results, ticket=group_id, summary=summary)

    def parse_callback(
        self, account: Account, *, method: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> ParsedCallback:
        """The verification handshake, DLRs (flat, envelope, or a customised GET or form POST) and opt-out events.

        Authenticated before the body is read: by the account's bearer secret or Signature, or, for the
        handshake alone, by the validation key in `?token=`. Anyone else gets AuthenticationFailed (403),
        whatever the body holds."""
        headers = {k.lower(): v for k, v in headers.items()}
        authentic = self._authenticate(account, headers, query, body)
        try:
            payload = self._callback_payload(method, headers, query, body)
        except ResponseUnparseable:
            if not authentic:
                raise AuthenticationFailed(HANDSHAKE_ONLY) from None
            raise
        if isinstance(payload, dict) and "challenge" in payload and "validation_key" in payload:
            answer = json.dumps({"challenge": payload["challenge"]})
            return ParsedCallback([], CallbackResponse(200, answer, "application/json"))
        if not authentic:
            raise AuthenticationFailed(HANDSHAKE_ONLY)
        items = payload if isinstance(payload, list) else [payload]
        return ParsedCallback([self._update(item) for item in items], CallbackResponse(200, "", "text/plain"))

    def poll(self, account: Account, query: PollQuery) -> list[StatusUpdate]:
        """`sms/status` by group_id (every page), by cid per message, and by date since `query.since`. The rows are
        stored as they came: a page that jsonb could not store (NaN) fails the poll (`json_body`'s `stored`)."""
        updates = []
        for group_id in query.tickets:
            rows = pages(account, "sms/status", {"group_id": group_id}, stored=True)
            updates += [self._status_update(row) for row in rows]
        for message in query.messages:
            params = {"cid": message.external_ref} if message.external_ref else {"id": message.provider_message_id}
            if not any(params.values()):
                continue
            rows = pages(account, "sms/status", params, stored=True)
            updates += [self._status_update(row) for row in rows if self._is_message(row, message.external_ref)]
        if query.since is not None:
            day = query.since.astimezone(IST).date() if query.since.tzinfo else query.since.date()
            today = datetime.now(IST).date()
            for offset in range(min((today - day).days, MAX_POLL_DAYS) + 1):
                date = (day + timedelta(days=offset)).isoformat()
                rows = pages(account, "sms/status", {"date": date}, stored=True)
                updates += [self._status_update(row) for row in rows]
        return updates

    def recover(self, account: Account, frame: OutboundFrame) -> list[RecipientResult] | None:
        """Look each recipient up by cid; those MOBtexting has are SUBMITTED, the others are left out (resent)."""
        results = []
        for recipient in frame.recipients:
            rows = [r for r in pages(account, "sms/status", {"cid": recipient.external_ref}) if first(r, "id")]
            rows = [r for r in rows if self._is_message(r, recipient.external_ref)]
            row = next((r for r in rows if digits(first(r, "mobile")) == digits(recipient.address)), None)
            row = row or (rows[0] if rows else None)
            if row is not None:
                results.append(self._accepted(recipient, row))
        return results

    def check(self, account: Account) -> CheckResult:
        """`GET auth/me`: the token works, and whose account it is."""
        try:
            body = call(account, "GET", "auth/me")
        except BackendError as exc:
            return CheckResult(False, exc.message)
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        who = first(data, "name", "username", "email")
        return CheckResult(True, f"Connected to MOBtexting as {who}." if who else "Connected to MOBtexting.")

    def setup(self, account: Account) -> dict[str, Any]:
        """Create (or refresh) the "Herald" webhook and subscribe it to DLRs and opt-outs; safe to run twice."""
        if not account.webhook_url:
            raise ConfigError("The account has no webhook URL for MOBtexting to call.", field="")
        token = verification_token(account)  # also checks that there is a webhook secret
        hook = {"name": WEBHOOK_NAME, "uri": account.webhook_url, "secret": account.webhook_secret, "status": 1}
        rows = pages(account, "developer/webhooks", {"filter[name]": WEBHOOK_NAME})
        existing = next((row for row in rows if row.get("uri") == account.webhook_url and first(row, "id")), None)
        if existing is not None:
            data = call(account, "PUT", f"developer/webhooks/{first(existing, 'id')}", json=hook).get("data")
        else:
            hook["token"] = token
            data = call(account, "POST", "developer/webhooks", json=hook).get("data")
        webhook_id = first(data, "id") if isinstance(data, dict) else ""
        if not webhook_id:
            raise ResponseUnparseable(f"mobtexting created a webhook without an id: {str(data)[:200]}")
        subscribed = {
            (first(r, "event"), first(r, "webhook_id")) for r in pages(account, "developer/subscriptions", {})
        }
        for event in (STATUS_EVENT, OPTOUT_EVENT):
            if (event, webhook_id) not in subscribed:
                subscription = {"event": event, "identity": "all", "webhook_id": webhook_id}
                call(account, "POST", "developer/subscriptions", json=subscription)
        return {"webhook_id": webhook_id, "webhook_verified": str(data.get("is_verified", 1)) in ("1", "True", "true")}

    def options_problem(self, options: dict[str, Any]) -> str:
        """callback_auth must name a way the vendor authenticates its calls: a typo would refuse every report."""
        mode = options.get("callback_auth")
        if mode not in (None, "") and str(mode).strip().lower() not in CALLBACK_AUTH_MODES:
            return f"callback_auth must be {' or '.join(CALLBACK_AUTH_MODES)} (empty: bearer), not {mode!r}."
        return ""

    def sender_problem(self, name: str, *, service: str = "", country: str = "") -> str:
        """A transactional (service T) header for India must be 6 capital letters or digits (TRAI, seed 001:8859-8905:
        "six characters long", "always capitalized"); MOBtexting refuses any other with 422 on every message sent
        through it to an Indian number. A promotional (service P) one is numeric, given by the operator ("The sender
        ID is numeric and predetermined by the operator. For example, it could be 777777"), six characters long too.
        A sender without a country is taken as Indian: T and P are India's DLT routes (seed 001:29-37; G is the
        global one)."""
        if not name or country not in ("", "IN"):
            return ""
        if service == "T" and not TRANSACTIONAL_HEADER.fullmatch(name):
            return (
                "A transactional (service T) sender ID for India is 6 capital letters or digits, e.g. HERALD "
                "(TRAI's rule: MOBtexting refuses every message sent through any other)."
            )
        if service == "P" and not PROMOTIONAL_HEADER.fullmatch(name):
            return (
                "A promotional (service P) sender ID for India is the 6 digits the operator gives, e.g. 777777 "
                "(TRAI's rule: promotions go out from a numeric header only)."
            )
        return ""

    def template_sender_problem(self, template_type: str, *, name: str, service: str = "", country: str = "") -> str:
        """DLT sends a promotional template from a numeric header only (seed 001:9263: "Use the promotional category
        for communications intended to be sent from a numerical sender ID only"; 9285: "Header selection against
        irrelevant templates"), and a promotional (service P) header is numeric: so a promotional template goes out
        through a service P sender only, and a P sender carries promotional templates only. India's routes only; a
        sender without a service is not judged."""
        if country not in ("", "IN") or service not in ("T", "S", "P"):
            return ""
        if template_type == "P" and service != "P":
            return (
                f"{name} is a {SENDER_SERVICE_WORDS[service]} sender: a promotional template goes out from a "
                "promotional (service P, numeric) header only."
            )
        if template_type != "P" and service == "P":
            return (
                f"{name} is a promotional (service P) sender: it carries promotional templates only, not "
                f"{TEMPLATE_TYPE_WORDS.get(template_type, template_type)} ones."
            )
        return ""

    # Registries (senders, DLT templates, unsubscribers), synced by providers/sync.py.
    def list_senders(self, account: Account) -> list[RemoteSender]:
        return registries.list_senders(account)

    def create_sender(self, account: Account, sender: RemoteSender) -> RemoteSender:
        return registries.create_sender(account, sender)

    def list_templates(self, account: Account) -> list[RemoteTemplate]:
        return registries.list_templates(account)

    def create_template(self, account: Account, template: RemoteTemplate) -> RemoteTemplate:
        return registries.create_template(account, template)

    def list_unsubscribers(self, account: Account) -> list[RemoteUnsubscriber]:
        return registries.list_unsubscribers(account)

    def create_unsubscriber(self, account: Account, unsubscriber: RemoteUnsubscriber) -> RemoteUnsubscriber:
        return registries.create_unsubscriber(account, unsubscriber)

    def delete_unsubscriber(self, account: Account, remote_id: str) -> None:
        registries.delete_unsubscriber(account, remote_id)

    def service_code(self, options: dict[str, Any], *, purpose: str, service: str) -> str:
        """The sender's code, else the account's `service` option, else the purpose's (transactional: T)."""
        return service or str(options.get("service") or "") or SERVICE_FOR_PURPOSE.get(purpose, "T")

    # --- private helpers ---

    def _send_body(self, account: Account, frame: OutboundFrame) -> dict[str, Any]:
        """Defaults in root, one node per recipient; a node carries a text only when texts differ."""
        service = self.service_code(account.options, purpose=frame.purpose, service=frame.service)
        root: dict[str, Any] = {"name": frame.campaign_name or frame.key, "sender": frame.sender, "service": service}
        root["type"] = "A"  # the vendor picks GSM or Unicode
        shared = frame.same_text_for_all
        if shared:
            root["message"] = frame.text
        if frame.dlt_entity_id:
            root["entity_id"] = frame.dlt_entity_id
        if frame.dlt_template_id:
            root["template_id"] = frame.dlt_template_id
        if account.options.get("webhook_id"):
            root["webhook_id"] = str(account.options["webhook_id"])
        if frame.send_at is not None:
            root["time"] = vendor_time(frame.send_at)
        nodes = []
        for recipient in frame.recipients:
            node = {"to": digits(recipient.address), "custom": recipient.external_ref}
            if not shared:
                node["message"] = frame.text_for(recipient)
            nodes.append(node)
        return {"root": root, "nodes": nodes}

    def _result(self, recipient, row: dict | None) -> RecipientResult:
        if row is None:
            return RecipientResult(
                recipient.external_ref,
                recipient.address,
                False,
                Status.REJECTED,
                text="MOBtexting did not accept this number (it is missing from the answer).",
            )
        raw = first(row, "status")
        status, code, text = classify(raw, first(row, "code", "error_code"))
        if status in FAILURE_STATUSES or not first(row, "id"):
            return RecipientResult(
                recipient.external_ref,
                recipient.address,
                False,
                Status.FAILED if status is Status.FAILED else Status.REJECTED,
                provider_message_id=first(row, "id"),
                code=code,
                text=first(row, "message", "reason", "description") or text or raw,
            )
        return self._accepted(recipient, row)

    @staticmethod
    def _accepted(recipient, row: dict) -> RecipientResult:
        units, charges = _number(row.get("units")), _number(row.get("charges"))
        return RecipientResult(
            recipient.external_ref,
            recipient.address,
            True,
            Status.SUBMITTED,
            provider_message_id=first(row, "id"),
            parts=int(units) if units is not None else None,
            cost=charges,
        )

    @staticmethod
    def _is_message(row: dict, external_ref: str) -> bool:
        ref = first(row, "custom", "cid", "customid")
        return not external_ref or not ref or ref == external_ref

    @staticmethod
    def _callback_payload(method, headers, query, body) -> Any:
        """The callback as JSON-like data (read once the request is authenticated); ResponseUnparseable if malformed."""
        fields = {k: v for k, v in query.items() if k != "token"}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if method.upper() == "GET" or (not body.strip() and fields):
            return fields
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            return {**fields, **{k: v[-1] for k, v in form.items()}}
        if content_type == "multipart/form-data":  # a customised webhook's "form-data" body [seed 001:1004]
            return {**fields, **_form_data(headers.get("content-type", ""), body)}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ResponseUnparseable(f"mobtexting callback body is not JSON: {body[:200]!r}") from None
        try:
            payload = loads_json(text)
        except ValueError:
            try:  # the seed's own examples end objects with a comma [seed 001:9847, 9915]
                payload = loads_json(_TRAILING_COMMA.sub(r"\1\2", text))
            except ValueError:
                raise ResponseUnparseable(f"mobtexting callback body is not JSON: {body[:200]!r}") from None
        if isinstance(payload, dict):
            return {**fields, **payload}
        if isinstance(payload, list):
            return payload
        raise ResponseUnparseable(f"mobtexting callback body is not a JSON object: {body[:200]!r}")

    @staticmethod
    def _bearer_ok(account: Account, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        secret = account.webhook_secret
        return bool(secret) and scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), secret.encode())

    def _authenticate(self, account: Account, headers: dict[str, str], query: dict[str, str], body: bytes) -> bool:
        """True when the call carries the account's bearer secret or Signature (as `callback_auth` says); False
        when it carries only the webhook's validation token, which may authenticate the handshake and nothing
        else; AuthenticationFailed otherwise. An unknown `callback_auth` authenticates nothing (fail closed)."""
        mode = str(account.options.get("callback_auth") or "bearer").strip().lower()
        if mode == "bearer":
            if self._bearer_ok(account, headers):
                return True
            problem = "The callback's bearer token is not this account's webhook secret."
        elif mode == "signature":
            key = str(account.options.get("webhook_id") or "")
            expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            given = headers.get("signature", "").strip().lower()
            if key and hmac.compare_digest(given.encode(), expected.encode()):
                return True
            problem = (
                "The callback's Signature header does not match its body."
                if key
                else "No webhook_id on the account: a Signature header cannot be checked."
            )
        else:
            problem = f"The account's callback_auth option {mode!r} is neither 'bearer' nor 'signature'."
        # The handshake carries our validation key as ?token= and, usually, the bearer secret.
        if account.webhook_secret and (self._token_ok(account, query) or self._bearer_ok(account, headers)):
            return False
        raise AuthenticationFailed(problem)

    @staticmethod
    def _token_ok(account: Account, query: dict[str, str]) -> bool:
        given = str(query.get("token") or "").encode()
        return bool(given) and hmac.compare_digest(given, verification_token(account).encode())

    def _update(self, item: Any) -> StatusUpdate:
        if not isinstance(item, dict):
            return StatusUpdate(UpdateKind.UNKNOWN, payload={"value": item})
        if "event" in item:
            event, inner = first(item, "event"), item.get("payload")
            if event == STATUS_EVENT and isinstance(inner, dict):
                return self._status_update(inner, item)
            if event == OPTOUT_EVENT and isinstance(inner, dict):
                return self._optout_update(inner, item)
            return StatusUpdate(UpdateKind.UNKNOWN, raw_status=event, payload=item)
        if "receiver" in item and "mobile" not in item:
            return self._optout_update(item, item)
        if first(item, "status", "message_status") and first(item, "id", "message_id", "mobile", "mobile_number"):
            return self._status_update(item, item)
        return StatusUpdate(UpdateKind.UNKNOWN, payload=item)

    @staticmethod
    def _status_update(item: dict, payload: dict | None = None) -> StatusUpdate:
        """One DLR or pull row; a word we do not know becomes an UNKNOWN update, kept raw."""
        raw = first(item, "status", "message_status", "dlr_status")
        status, code, text = classify(raw, first(item, "code", "error_code", "status_code"))
        return StatusUpdate(
            kind=UpdateKind.STATUS if status is not None else UpdateKind.UNKNOWN,
            raw_status=raw,
            status=status,
            provider_message_id=first(item, "id", "message_id", "msgid"),
            external_ref=first(item, "custom", "cid", "customid"),
            address=e164(first(item, "mobile", "mobile_number", "to")),
            code=code,
            text=text,
            occurred_at=parse_time(
                first(item, "deliv_time", "delivered_at", "sent_time", "submit_time", "submitted_at")
            ),
            payload=payload if payload is not None else item,
        )

    @staticmethod
    def _optout_update(item: dict, payload: dict) -> StatusUpdate:
        """`sms:unsubscription` {id, receiver, type, value, created_at, status}; status 0 (a re-subscription)
        has no Herald counterpart and is kept as UNKNOWN."""
        if first(item, "status") == "0":
            return StatusUpdate(
                UpdateKind.UNKNOWN,
                raw_status=OPTOUT_EVENT,
                address=receiver_e164(first(item, "receiver"), first(item, "iso")),
                payload=payload,
            )
        kind = first(item, "type").lower()
        scope = OPTOUT_SCOPES.get(kind, "all")
        return StatusUpdate(
            kind=UpdateKind.OPT_OUT,
            address=receiver_e164(first(item, "receiver"), first(item, "iso")),
            optout_scope=scope,
            optout_value="" if scope == "all" else first(item, "value"),
            occurred_at=parse_time(first(item, "created_at")),
            payload=payload,
        )


# A comma before a closing brace or bracket, outside strings (a string is matched whole first, and kept). A string
# left open runs to the end of the body, read once: read to the end again from each quote inside it, 60 kB of `\"`
# took most of a minute.
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*+(?:"|\\?\Z))|,(\s*[}\]])', re.DOTALL)


def _form_data(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (files are ignored); ResponseUnparseable without parts."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("utf-8", "replace")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or not message.get_payload():
        raise ResponseUnparseable(f"mobtexting callback is not readable multipart/form-data: {body[:200]!r}")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            data = part.get_payload(decode=True) or b""
            try:
                fields[str(name)] = data.decode(part.get_content_charset() or "utf-8", "replace")
            except LookupError:  # a charset Python does not know
                fields[str(name)] = data.decode("utf-8", "replace")
    if not fields:
        raise ResponseUnparseable(f"mobtexting callback's multipart/form-data has no fields: {body[:200]!r}")
    return fields


def _held_error(held: list[RecipientResult], total: int) -> BackendError:
    """The error that holds back the numbers refused for the account's sake: the account's, if any is, else the
    sending limit's."""
    first_held = next((r for r in held if r.code in ACCOUNT_CODES), held[0])
    what = (
        f"mobtexting refused {len(held)} of {total} numbers with {first_held.code} "
        f"{ERROR_CODES[first_held.code][0]}: {first_held.text}"
    )
    if first_held.code in ACCOUNT_CODES:
        return ConfigError(f"{what} Top up or fix the MOBtexting account, then resume.", field="", code=first_held.code)
    return Throttled(f"{what} They are sent again later.", code=first_held.code)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
