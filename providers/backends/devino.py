"""Devino Telecom OMNI (https://api.devino.online): transactional SMS through a scenario task.

Seed: /work/shared/seeds/000_a8417f0a600f1b2a.txt; PROVIDERS.md § Devino OMNI. Auth `Authorization: Key <api
key>` [seed 000:98]. `setup()` creates one scenario task of type API with a TRAN_API_SOURCE trigger on SMS
[seed 000:317-318]; each frame is then `POST /omni-scheduler/api/messages` naming the task and overriding that
trigger's smsTemplate with the frame's sender and text [seed 000:319-459]. A request carries one template, so a
frame whose recipients have different texts goes as one request per distinct text.

Our id travels as `callbackData.ref` on each contact (with the address, as Devino's callbacks name no phone
[seed 000:505-526]) and comes back in every status callback. Devino has no idempotency key and no per-message
lookup (only task state and counters [seed 000:141-316]): a frame whose response was lost is settled from those
callbacks (recovery = "callbacks"), never resent by this backend.

Send answers [seed 000:461-497]: sendAnswers (code OK, result = message id) go to the remaining contacts in
order; errorAnswers (code REJECTED, description "<contact JSON> #<key>; <text>") are matched by phone.
Callback statuses [seed 000:569-584]: delivered, expired, undeliverable, bounced, opened, clicked, rejected,
deleted, subscribed, unsubscribed, complained, unknown, canceled.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import requests

from providers.backends.base import (
    Account,
    Backend,
    BackendError,
    CallbackResponse,
    CheckResult,
    ConfigError,
    CredentialField,
    OutboundFrame,
    ParsedCallback,
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

DEFAULT_BASE_URL = "https://api.devino.online"
TASKS_PATH = "/omni-task-api/tasks"
MESSAGES_PATH = "/omni-scheduler/api/messages"
DEFAULT_VALIDITY = 600  # seconds, as in the seed's smsTemplate [seed 000:128]

# Callback status → canonical status. bounced is e-mail's undeliverable; deleted (dropped from the send
# queue), canceled (push) and unknown ("an unknown error has occurred") are failures where nothing reached
# the person. opened/clicked are engagement, which proves delivery.
STATUS_MAP: dict[str, Status] = {
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "undeliverable": Status.UNDELIVERED,
    "bounced": Status.UNDELIVERED,
    "opened": Status.READ,
    "clicked": Status.CLICKED,
    "rejected": Status.REJECTED,
    "deleted": Status.FAILED,
    "canceled": Status.FAILED,
    "unknown": Status.FAILED,
}
# What each failure status means, in Devino's own words [seed 000:569-584]: a report's text, which the message's
# page and the campaign's failure breakdown show (the seed lists no errorCode values, so the code stays beside
# these words as Devino sent it, untranslated).
STATUS_TEXTS: dict[str, str] = {
    "expired": "The lifetime of the message has expired",
    "undeliverable": "Unable to deliver the message",
    "bounced": "Email message cannot be delivered",
    "rejected": "The message has been rejected by the operator or Devino",
    "deleted": "The message has been deleted from the queue for sending",
    "canceled": "The push-message has been canceled",
    "unknown": "An unknown error has occurred",
}
# Not delivery outcomes. unsubscribed suppresses the address on the channel it came through (an unsubscribe
# link or reply is about that channel's messages); complained (a spam complaint) suppresses it everywhere.
# subscribed is stored as an UNKNOWN update: Herald never subscribes anyone on a vendor's word.
OPT_OUT_SCOPES = {"unsubscribed": "channel", "complained": "all"}
OPT_OUT_TEXTS = {"unsubscribed": "Unsubscription via message", "complained": "Complaint via message"}  # seed 000:581

# Refusal keys ("#<key>; <text>" in errorAnswers) → the refused recipient's status. Keys not listed are
# REJECTED as well; a refusal that is about our own request rather than the recipient is FAILED.
ERROR_CODES: dict[str, Status] = {
    "invalid.phone.size": Status.REJECTED,  # [seed 000:478]
    "invalid.phone.format": Status.REJECTED,
    "contact.phone.required": Status.REJECTED,
    "contact.in.stop.list": Status.REJECTED,
    "contact.not.found": Status.REJECTED,
    "invalid.callback.url": Status.FAILED,
}
# Request-level refusals that mean the account's task is gone or wrong: run setup again (ConfigError).
CONFIG_ERRORS = frozenset({"task.not.found", "task.type.invalid", "task.state.invalid", "template.trigger.not.found"})
# Task states [seed 000:163, 593]: only NEW and STARTED send. Devino stops a task by itself while the balance is
# exhausted or outside working hours, and it goes on once that passes: setup() keeps such a task (a new one would
# be stopped alike) and Herald says what to wait for. Any other task (a draft, stopped by hand, finished,
# deleted, failed) will not send again by itself: setup() creates a new one instead. (Which stop passes by itself
# is read from the state names; the seed does not say.)
LIVE_TASK_STATES = frozenset({"NEW", "STARTED"})
WAITING_TASK_STATES = {
    "STOPPED_BALANCE_BLOCKED": "Devino stopped it because the balance is exhausted: top the balance up, then resume",
    "STOPPED_NOT_WORKING_TIME": "Devino holds it outside the account's working hours: resume within them",
}
RUN_SETUP = "run the account's setup again: it creates a new task"
COUNTERS = ("total", "success", "error")  # totalCount, successCount, errorCount per trigger [seed 000:177]


class DevinoBackend(Backend):
    kind = "devino"
    sender_required = True  # its send refuses a message without one (its sandbox too)
    label = "Devino OMNI"
    default_base_url = DEFAULT_BASE_URL
    default_currency = "RUB"  # Russia (seed 000: +7 numbers)
    channels = ("sms",)  # setup() creates an SMS trigger; other channels need their own triggers and templates
    setup_options = ("task_id", "trigger_id")
    max_recipients = 100  # no cap documented; small frames because nothing can be looked up later [Herald]
    default_frame_size = 100
    per_recipient_text = False
    supports_callbacks = True
    supports_polling = False
    secret_in_url = True  # Devino does not sign callbacks
    credential_fields = (CredentialField("api_key", "API key", help_text="Sent as 'Authorization: Key <api key>'."),)
    recovery = "callbacks"
    # What a failure code means, in words a person acts on (Backend.code_words).
    code_words = {
        "contact.in.stop.list": "The number is on Devino's stop list.",
        "invalid.phone.format": "The number is not a valid phone number.",
    }

    def send(self, account: Account, frame: OutboundFrame) -> SendResult:
        """One request per distinct text (a request carries one template); results in the frame's order.

        An error after an earlier request of the same frame was accepted is not raised, since a retry of the
        whole frame would resend what Devino already took. A text Devino refuses (Rejected) fails its own
        recipients and the other texts go on; any other error stops there, and the recipients not sent come
        back as `unsent_error` for the engine to retry. That error (raised or not) names in `attempted` the
        recipients of its request: if its answer was lost, Devino may have them, and none of the others.
        """
        task_id, trigger_id = self._task(account)
        by_text: dict[str, list[int]] = {}
        for index, recipient in enumerate(frame.recipients):
            by_text.setdefault(frame.text_for(recipient), []).append(index)
        results: dict[int, RecipientResult] = {}
        unsent_error: BackendError | None = None
        for text, indexes in by_text.items():
            recipients = [frame.recipients[i] for i in indexes]
            try:
                answers = self._send_text(account, frame, task_id, trigger_id, text, recipients)
            except BackendError as exc:
                exc.attempted = [r.external_ref for r in recipients]
                if not any(r.accepted for r in results.values()):
                    raise
                if not isinstance(exc, Rejected):
                    unsent_error = exc
                    break
                answers = [_not_sent(r, exc) for r in recipients]
            results.update(zip(indexes, answers, strict=True))
        ordered = [results[i] for i in range(len(frame.recipients)) if i in results]
        ok = sum(r.accepted for r in ordered)
        summary = {"task_id": task_id, "requests": len(by_text), "accepted": ok, "refused": len(ordered) - ok}
        if unsent_error is not None:
            summary["unsent"] = len(frame.recipients) - len(ordered)
        return SendResult(results=ordered, ticket=str(task_id), summary=summary, unsent_error=unsent_error)

    def parse_callback(
        self, account: Account, *, method: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> ParsedCallback:
        """Devino does not sign: the URL's ?secret= must match; then one update per item of the JSON array."""
        self.require_url_secret(account, query or {})
        try:
            data = loads_json(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            preview = scrub(body[:200].decode("utf-8", "replace"), account.secrets)
            raise ResponseUnparseable(f"Devino posted a status callback that is not JSON: {preview!r}") from None
        items = [data] if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ResponseUnparseable(f"Devino posted a callback that is not a JSON array: {type(data).__name__}")
        return ParsedCallback([_update(item) for item in items], CallbackResponse(200, "", "text/plain"))

    def recover(self, account: Account, frame: OutboundFrame) -> list[RecipientResult] | None:
        """Devino cannot be asked about messages: the callbacks carrying our refs settle the frame."""
        return None

    def check(self, account: Account) -> CheckResult:
        """Read the scenario task (or the task list before setup) and report its state and counters."""
        try:
            if account.options.get("task_id"):
                task = self.task_counters(account)
                ok = task["state"] in LIVE_TASK_STATES
                message = (
                    f"Connected; task {task['task_id']} is {task['state']}: {task['total']} sent, "
                    f"{task['success']} delivered, {task['error']} failed"
                    + ("" if ok else f"; {_advice(task['state'])}")
                )
                return CheckResult(ok, message)
            params = {"ascending": "false", "count": 10, "offset": 0, "orderBy": "ID", "types": "API"}
            data = self._json(account, self._call(account, "GET", TASKS_PATH, params=params))
            tasks = data.get("result") if isinstance(data, dict) else None
            if not isinstance(tasks, list):
                raise ResponseUnparseable("Devino's task list has no result array.")
            return CheckResult(True, f"Connected; {len(tasks)} API task(s), none set up for Herald yet: run setup")
        except BackendError as exc:
            return CheckResult(False, exc.message)

    def setup(self, account: Account) -> dict[str, Any]:
        """Create the API scenario task once (keeping a live one Devino still knows); return its task and trigger."""
        if account.options.get("task_id"):
            task_id = _option_int(account, "task_id")
            task = self._get_task(account, task_id)
            trigger_id = _sms_trigger(task, account.options.get("trigger_id")) if task else None
            if trigger_id and (task.get("state") in LIVE_TASK_STATES or task.get("state") in WAITING_TASK_STATES):
                return {"task_id": task_id, "trigger_id": trigger_id}
        sender = str(account.options.get("sender") or "Herald")
        template = {"smsTemplate": {"text": "Herald", "from": sender, "validity": _validity(account)}}
        trigger = {"index": 0, "type": "TRAN_API_SOURCE", "channel": "SMS", "template": template}
        name = f"Herald {account.uuid[:8]}".strip()
        body = {"taskName": name, "type": "API", "channel": "SMS", "triggers": [trigger]}
        data = self._json(account, self._call(account, "POST", TASKS_PATH, json=body))
        created = data.get("result") if isinstance(data, dict) else None
        if not isinstance(created, dict) or created.get("code") != "OK" or not str(created.get("result")).isdigit():
            raise ResponseUnparseable(
                f"Devino answered the task creation without a task id: {scrub(str(data)[:200], account.secrets)}"
            )
        task = self._get_task(account, int(created["result"]))
        trigger_id = _sms_trigger(task, None) if task else None
        if not trigger_id:
            raise ResponseUnparseable(f"Devino created task {created['result']} but shows no SMS API trigger in it.")
        return {"task_id": int(created["result"]), "trigger_id": trigger_id}

    def task_counters(self, account: Account) -> dict[str, Any]:
        """The scenario task's state and counters (total, success, error; summed and per trigger id), for the admin."""
        task_id = _option_int(account, "task_id")
        task = self._get_task(account, task_id)
        if task is None:
            raise ConfigError(f"Devino does not know task {task_id}: run setup again.", code="task.not.found")
        counters = {str(t.get("triggerId")): t.get("counters") or {} for t in task.get("triggersInfo") or []}
        triggers = {tid: {name: int(c.get(f"{name}Count") or 0) for name in COUNTERS} for tid, c in counters.items()}
        totals = {name: sum(t[name] for t in triggers.values()) for name in COUNTERS}
        return {"task_id": task_id, "state": str(task.get("state", "")), **totals, "triggers": triggers}

    def _send_text(self, account, frame, task_id, trigger_id, text, recipients) -> list[RecipientResult]:
        """Send the recipients who share one text in one request; their results in their order."""
        hook = {"callbackUrl": account.webhook_url} if account.webhook_url else {}
        contacts = [{"contact": {"phone": _digits(r.address)}, **hook,
                     "callbackData": {"ref": r.external_ref, "address": r.address}} for r in recipients]  # fmt: skip
        template = {"smsTemplate": {"text": text, "from": frame.sender, "validity": _validity(account)}}
        body = {"contacts": contacts, "taskId": task_id, "templates": {trigger_id: template}, **hook,
                "callbackData": {"frame": frame.key}}  # fmt: skip
        try:
            response = self._call(account, "POST", MESSAGES_PATH, json=body)
        except ConfigError as exc:
            if exc.code == "task.state.invalid":  # the task cannot send now: say why and what to do
                raise self._task_not_sending(account, task_id, exc) from None
            raise
        data = self._json(account, response)
        try:
            return _match(data, recipients)
        except (Rejected, ResponseUnparseable) as exc:  # their messages quote Devino's answer
            raise type(exc)(scrub(exc.message, account.secrets), code=exc.code) from None

    def _call(self, account: Account, method: str, path: str, **kwargs) -> requests.Response:
        """One API call; a 400 about the request's content becomes Rejected, one about the task ConfigError."""
        headers = {"Authorization": f"Key {account.credential('api_key')}", "Accept": "application/json"}
        url, vendor_error = account.base_url + path, lambda response: _error_fields(response.json())
        try:
            return request(account, method, url, headers=headers, vendor_error=vendor_error, **kwargs)
        except ResponseStatusError as exc:
            if exc.code in CONFIG_ERRORS:
                message = exc.message if exc.code == "task.state.invalid" else f"{exc.message} ({RUN_SETUP})"
                raise ConfigError(message, code=exc.code, status_code=exc.status_code) from None
            if exc.status_code in (400, 422):
                raise Rejected(exc.message, code=exc.code, status_code=exc.status_code) from None
            raise

    def _task_not_sending(self, account: Account, task_id: int, error: ConfigError) -> ConfigError:
        """The refusal of a send through a task that is not NEW or STARTED, with what to do about its state."""
        try:
            task = self._get_task(account, task_id)
        except BackendError:
            task = None
        state = str(task.get("state") or "") if task else ""
        advice = _advice(state) if state else RUN_SETUP
        return ConfigError(f"{error.message} ({advice})", code=error.code, status_code=error.status_code)

    def _get_task(self, account: Account, task_id: int) -> dict[str, Any] | None:
        """The task as Devino shows it, or None when Devino does not know it."""
        try:
            response = self._call(account, "GET", f"{TASKS_PATH}/{task_id}")
        except (ResponseStatusError, ConfigError) as exc:
            if exc.status_code == 404 or exc.code == "task.not.found":
                return None
            raise
        data = self._json(account, response)
        task = data.get("result") if isinstance(data, dict) else None
        if not isinstance(task, dict):
            raise ResponseUnparseable(f"Devino's answer for task {task_id} has no result object.")
        return task

    def _json(self, account: Account, response: requests.Response) -> Any:
        try:
            return json_body(response, self.kind)
        except ResponseUnparseable as exc:
            raise ResponseUnparseable(scrub(exc.message, account.secrets), status_code=exc.status_code) from None

    @staticmethod
    def _task(account: Account) -> tuple[int, str]:
        if not account.options.get("task_id") or not account.options.get("trigger_id"):
            raise ConfigError("The Devino account has no scenario task yet: run its setup to create one.")
        return _option_int(account, "task_id"), str(account.options["trigger_id"])


def _advice(state: str) -> str:
    """What to do about a task in `state`, which cannot send now."""
    return WAITING_TASK_STATES.get(state, RUN_SETUP)


def _option_int(account: Account, name: str, default: int | None = None) -> int:
    value = account.options.get(name) or default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"The Devino option {name} must be a whole number, not {value!r}.") from None


def _validity(account: Account) -> int:
    return _option_int(account, "validity", DEFAULT_VALIDITY)


def _digits(address: str) -> str:
    """Devino takes phones as digits without '+' [seed 000:438]."""
    return re.sub(r"\D", "", address or "")


def _split_key(text: str) -> tuple[str, str]:
    """'… #invalid.phone.size; Invalid phone size' → ('invalid.phone.size', 'Invalid phone size')."""
    found = re.search(r"#([\w.\-]+);?\s*(.*)$", text or "", re.S)
    return (found.group(1), found.group(2).strip()) if found else ("", (text or "").strip())


def _error_fields(data: Any) -> tuple[str, str]:
    """(key, text) from an error body: {"code", "description": "#key; text", "reasons": [{"key", "message"}]}."""
    if not isinstance(data, dict):
        return "", ""
    key, text = _split_key(str(data.get("description") or ""))
    reasons = data.get("reasons")
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
        key, text = key or str(reasons[0].get("key") or ""), text or str(reasons[0].get("message") or "")
    return key or str(data.get("code") or ""), text or str(data.get("message") or "")


def _match(data: Any, recipients: list[Recipient]) -> list[RecipientResult]:
    """errorAnswers by the phone in their description, then sendAnswers by order to the rest [seed 000:461-497]."""
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        if isinstance(data, dict) and data.get("code") not in (None, "OK"):
            key, text = _error_fields(data)
            raise Rejected(f"devino refused the request: {text or key}", code=key)
        raise ResponseUnparseable(f"Devino's send answer has no result object: {str(data)[:200]}")
    by_phone: dict[str, list[int]] = {}
    for index, recipient in enumerate(recipients):
        by_phone.setdefault(_digits(recipient.address), []).append(index)
    results: dict[int, RecipientResult] = {}
    for answer in result.get("errorAnswers") or []:
        answer = answer if isinstance(answer, dict) else {}
        phone, key, text = _parse_description(str(answer.get("description") or ""))
        free = [i for i in by_phone.get(phone, []) if i not in results]
        if not free:
            raise ResponseUnparseable(f"Devino refused a contact that is not in the request: {str(answer)[:200]}")
        results[free[0]] = _refused(recipients[free[0]], key or str(answer.get("code") or ""), text)
    remaining = [i for i in range(len(recipients)) if i not in results]
    send_answers = result.get("sendAnswers") or []
    if len(send_answers) != len(remaining):
        raise ResponseUnparseable(
            f"Devino answered {len(send_answers)} accepted and {len(results)} refused contacts for {len(recipients)}."
        )
    for index, answer in zip(remaining, send_answers, strict=True):
        recipient, answer = recipients[index], answer if isinstance(answer, dict) else {}
        if answer.get("code") == "OK" and answer.get("result") not in (None, ""):
            results[index] = RecipientResult(
                recipient.external_ref, recipient.address, True, Status.SUBMITTED, str(answer["result"])
            )
        else:
            key, text = _split_key(str(answer.get("description") or ""))
            results[index] = _refused(recipient, key or str(answer.get("code") or ""), text)
    return [results[i] for i in range(len(recipients))]


def _refused(recipient: Recipient, code: str, text: str) -> RecipientResult:
    status = ERROR_CODES.get(code, Status.REJECTED)
    return RecipientResult(recipient.external_ref, recipient.address, False, status, code=code, text=text)


def _parse_description(description: str) -> tuple[str, str, str]:
    """'<contact JSON> #<key>; <text>' → (the contact's phone digits, key, text)."""
    text = description.lstrip()
    try:
        contact, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        found = re.search(r'"phone"\s*:\s*"?([+\d]*)', text)
        phone = found.group(1) if found else ""
    else:
        phone, text = (str(contact.get("phone") or "") if isinstance(contact, dict) else ""), text[end:]
    key, reason = _split_key(text)
    return _digits(phone), key, reason


def _not_sent(recipient: Recipient, error: Rejected) -> RecipientResult:
    """A recipient of a text Devino refused (the frame's other texts went on)."""
    code, text = error.code or str(error.status_code or type(error).__name__), f"not sent: {error.message}"
    return RecipientResult(recipient.external_ref, recipient.address, False, Status.REJECTED, code=code, text=text)


def _update(item: Any) -> StatusUpdate:
    """One callback item → a status update, an opt-out, or an UNKNOWN update carrying the raw item."""
    if not isinstance(item, dict):
        return StatusUpdate(kind=UpdateKind.UNKNOWN, payload={"item": item})
    raw = str(item.get("status") or "")
    callback_data = item.get("callbackData") if isinstance(item.get("callbackData"), dict) else {}
    address = item.get("email") or callback_data.get("address")
    fields: dict[str, Any] = {
        "raw_status": raw, "provider_message_id": _text(item.get("messageId")), "code": _text(item.get("errorCode")),
        "external_ref": _text(callback_data.get("ref")), "address": _text(address), "payload": item,
        "occurred_at": _occurred_at(item.get("ts")),
    }  # fmt: skip
    word = raw.lower()
    if word in STATUS_MAP:
        return StatusUpdate(kind=UpdateKind.STATUS, status=STATUS_MAP[word], text=STATUS_TEXTS.get(word, ""), **fields)
    if word in OPT_OUT_SCOPES:
        scope = OPT_OUT_SCOPES[word]
        value = ("email" if item.get("email") else "sms") if scope == "channel" else ""
        return StatusUpdate(
            kind=UpdateKind.OPT_OUT, text=OPT_OUT_TEXTS[word], optout_scope=scope, optout_value=value, **fields
        )
    return StatusUpdate(kind=UpdateKind.UNKNOWN, **fields)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _occurred_at(ts: Any) -> datetime | None:
    """`ts` is epoch milliseconds in practice; seconds are accepted too (anything past 1e11 is milliseconds)."""
    if isinstance(ts, bool):
        return None
    try:
        value = float(ts)
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC) if value > 0 else None
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, or not a time a computer can hold
        return None


def _sms_trigger(task: dict[str, Any], preferred: Any) -> str | None:
    """The task's TRAN_API_SOURCE trigger on SMS (the configured one when it is still there), if any."""
    ids = [
        str(t.get("triggerId"))
        for t in task.get("triggersInfo") or []
        if isinstance(t, dict) and t.get("type") == "TRAN_API_SOURCE" and t.get("channel") == "SMS"
    ]
    return str(preferred) if str(preferred) in ids else next(iter(ids), None)
