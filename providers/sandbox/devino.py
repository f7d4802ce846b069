"""Devino OMNI emulation below /devino (account base URL http://HOST:PORT/devino; the real one is
https://api.devino.online). Seed: shared/seeds/000_a8417f0a600f1b2a.txt; PROVIDERS.md § Devino OMNI.

Serves, with `Authorization: Key <api key>` [seed 000:98] and trailing slashes accepted:
    POST /omni-task-api/tasks          a scenario task and its trigger tree [seed 000:1-140, 340-427]
    GET  /omni-task-api/tasks          tasks by count, offset, orderBy, ascending, states, types … [seed 000:214-316]
    GET  /omni-task-api/tasks/{id}     one task with per-trigger counters [seed 000:141-213]
    POST /omni-scheduler/api/messages  a send through an API task's TRAN_API_SOURCE trigger [seed 000:317-497]

Tasks belong to the API key that created them. Sends are checked as Devino would: known API task that is NEW
or STARTED, contacts present, templates keyed by the task's own trigger ids, smsTemplate `from` (11 Latin
characters or 15 digits), text (34,170 Latin / 17,085 other characters) and `validity` (0-259,200 s) [public SMS
docs], callback URLs http(s) of at most 1,000 characters [seed 000:77]. Explicit nulls are absent, numeric
strings pass as numbers, and the seed's own oddities (`EventSource`, `MSISDN_NOT_REGISTERED`) are accepted. A bad
contact does not fail the request: it becomes an errorAnswers entry ("<contact JSON> #invalid.phone.size; Invalid
phone size" [seed 000:478], also #invalid.phone.format, #contact.phone.required, #contact.in.stop.list for an
address that unsubscribed, #invalid.callback.url, #contact.not.found for contactIds: the sandbox keeps no
address book) while the rest is sent. Request-level errors take the shape of Devino's REST errors, which the
seed does not show: HTTP 400/401/404 with {"result": null, "code": "REJECTED", "description": "#<key>; <text>",
"reasons": [{"key", "ref", "message"}]} [public SMS docs: reasons.key/ref/message].

Devino has no idempotency key: a repeated request is sent again (and recorded again, so state.duplicates()
shows a double send). Accepted refs are the contact's callbackData.ref (else the request's, else the phone).
Each accepted message gets one status callback, an outcome drawn from the knobs mapped onto Devino's words
(delivered, undeliverable with errorCode 13, expired, rejected with errorCode 5; the seed lists no error
codes); the reports of one request that fall due together go as one JSON array to its callbackUrl. A 500 is
retried 5 times a minute apart, nothing else is [seed 000:500-503]. There is no per-message pull API; the
task's trigger counters (totalCount at acceptance, successCount/errorCount once a report is due) are the only
pull. Control actions: `optout` {address} (an `unsubscribed` callback for the last message to it, and the
address joins the stop list), `keys` {api_keys: [...]} (only these keys are valid; [] → any key), and
`task_state` {task_id, state}.
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from providers.sandbox.core import SandboxRequest, SandboxResponse, VendorEmulator, json_response

TASKS = "/omni-task-api/tasks"
MESSAGES = "/omni-scheduler/api/messages"
_TASK_PATH = re.compile(re.escape(TASKS) + r"/([^/]+)")
TASK_TYPES = ("SIMPLE", "API", "PERIODIC")
CHANNELS = ("SMS", "EMAIL", "VIBER", "PUSH", "PUSH_WALLET", "VK", "WHATSAPP", "VOICE", "FLASHCALL", "HLR", "OMNI")
TRIGGER_TYPES = ("ADDRESS_BOOK_SOURCE", "EVENT_SOURCE", "NO_EVENT_SOURCE", "TRAN_API_SOURCE", "EVENT_COLLECTOR")
TASK_STATES = ("DRAFT", "NEW", "STARTED", "STOPPED", "FINISHED", "DELETED_FINISHED", "DELETED_DRAFT", "FAILED",
               "STOPPED_BALANCE_BLOCKED", "STOPPED_NOT_WORKING_TIME")  # fmt: skip
SENDING_STATES = ("NEW", "STARTED")
ORDER_KEYS = {"ID": "id", "NAME": "name", "STATE": "state", "CREATION_DATE": "created"}  # orderBy → _Task field
# Knob outcome → Devino status and errorCode (the seed lists no errorCode values; these are the sandbox's).
OUTCOME_STATUS = {
    "delivered": ("delivered", None),
    "undelivered": ("undeliverable", 13),
    "expired": ("expired", None),
    "rejected": ("rejected", 5),
}
SENDER = re.compile(r"[A-Za-z0-9 .,!&'_-]{1,11}|\d{1,15}")
MAX_TEXT_LATIN, MAX_TEXT_OTHER = 34170, 17085
MAX_VALIDITY = 259200  # 3 days
MAX_CALLBACK_URL = 1000
CALLBACK_RETRIES = (60.0,) * 5
REPORT_BUCKET = 0.25  # seconds: reports of one request due within the same quarter second share a callback
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BAD_CALLBACK_URL = "callbackUrl must be an http(s) URL of at most 1000 characters"
_OWNER = {"userId": 22, "companyId": 50, "officeId": 1}  # the seed's example account [seed 000:185-187]


class _Invalid(Exception):
    """A request-level refusal: HTTP status, Devino key, text, and the field it is about."""

    def __init__(self, status: int, key: str, text: str, ref: str | None = None):
        super().__init__(text)
        self.status, self.key, self.text, self.ref = status, key, text, ref


@dataclass
class _Trigger:
    id: int
    index: int
    parent_id: int | None
    type: str
    channel: str
    template: dict[str, Any]
    start: str
    end: str
    state: str
    external_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    counters: dict[str, int] = field(default_factory=lambda: {"totalCount": 0, "successCount": 0, "errorCount": 0})


@dataclass
class _Task:
    id: int
    owner: str  # the API key that created it
    name: str
    type: str
    channel: str
    state: str
    created: str
    triggers: list[_Trigger]


@dataclass
class _Sent:
    """The latest message to a phone, for the `optout` control action."""

    message_id: str
    contact_id: str
    task_id: int
    trigger_id: int
    url: str
    callback_data: Any


class DevinoSandbox(VendorEmulator):
    name = "devino"
    prefix = "/devino"

    def __init__(self, state):
        super().__init__(state)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tasks: dict[int, _Task] = {}
            self._task_ids = itertools.count(7003)
            self._trigger_ids = itertools.count(511)
            self._message_ids = itertools.count(3606044956953218300)
            self._contact_ids = itertools.count(0x3111E4711103C800)
            self._keys: set[str] = set()  # empty: any well-formed key is valid
            self._last_sent: dict[str, _Sent] = {}  # phone → its latest message
            self._stop_list: set[str] = set()
            self._due: list[tuple[float, int, _Trigger, int, int]] = []  # (due, seq, trigger, success, error)
            self._due_seq = itertools.count()

    def is_send(self, request: SandboxRequest) -> bool:
        return request.method == "POST" and request.path.rstrip("/") == MESSAGES

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path.rstrip("/") or "/"
        task_match = _TASK_PATH.fullmatch(path)
        routes = {(MESSAGES, "POST"): self._send, (TASKS, "POST"): self._create_task, (TASKS, "GET"): self._list_tasks}
        handler = self._get_task if task_match and request.method == "GET" else routes.get((path, request.method))
        if handler is None:
            known = path in (MESSAGES, TASKS) or task_match
            return _error(405 if known else 404, "not.found", f"No route for {request.method} {request.path}", None)
        try:
            key = self._api_key(request)
            return handler(key, request, task_match.group(1) if task_match else None)
        except _Invalid as exc:
            return _error(exc.status, exc.key, exc.text, exc.ref)

    def control(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action == "optout":
            return self._optout(str(body.get("address") or ""))
        if action == "keys":
            with self._lock:
                self._keys = {str(k) for k in body.get("api_keys") or []}
            return {"api_keys": len(self._keys)}
        if action == "task_state":
            with self._lock:
                task = self._tasks.get(int(body["task_id"])) if str(body.get("task_id", "")).isdigit() else None
                if task is None or body.get("state") not in TASK_STATES:
                    return {"changed": False}
                task.state = body["state"]
            return {"changed": True, "task_id": task.id, "state": task.state}
        raise KeyError(action)

    # --- tasks ---

    def _create_task(self, key: str, request: SandboxRequest, _id: str | None) -> SandboxResponse:
        body = _json_object(request)
        name = body.get("taskName")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise _Invalid(400, "task.name.invalid", "taskName must be 1 to 100 characters", "taskName")
        task_type = _choice(body, "type", TASK_TYPES, "task.type.invalid")
        channel = _choice(body, "channel", CHANNELS, "task.channel.invalid")
        raw_triggers = body.get("triggers")
        if not isinstance(raw_triggers, list) or not raw_triggers or not all(isinstance(t, dict) for t in raw_triggers):
            raise _Invalid(400, "task.triggers.required", "triggers must be a non-empty array of objects", "triggers")
        if task_type == "API" and not any(t.get("type") == "TRAN_API_SOURCE" for t in raw_triggers):
            raise _Invalid(400, "task.type.invalid", "An API task needs a TRAN_API_SOURCE trigger", "triggers")
        now = datetime.now()
        created = now.strftime(TIME_FORMAT)
        with self._lock:
            ids = {}
            for position, raw in enumerate(raw_triggers):
                index = _index(raw, "index", default=position)
                if index in ids:
                    raise _Invalid(400, "trigger.index.invalid", f"Trigger index {index!r} is not unique", "index")
                ids[index] = next(self._trigger_ids)
            triggers = [self._trigger(raw, ids, position, now) for position, raw in enumerate(raw_triggers)]
            state = "STARTED" if task_type == "API" else "NEW"
            task = _Task(next(self._task_ids), key, name, task_type, channel, state, created, triggers)
            self._tasks[task.id] = task
        return json_response(200, {"result": {"code": "OK", "result": str(task.id)}})

    def _trigger(self, raw: dict[str, Any], ids: dict[int, int], position: int, now: datetime) -> _Trigger:
        trigger_type = _choice(raw, "type", TRIGGER_TYPES, "trigger.type.invalid")
        channel = _choice(raw, "channel", CHANNELS, "trigger.channel.invalid")
        parent = _index(raw, "parentIndex", default=None)
        if parent is not None and parent not in ids:
            raise _Invalid(400, "trigger.parent.not.found", f"parentIndex {parent!r} names no trigger", "parentIndex")
        sources = raw.get("eventSources") if raw.get("eventSources") is not None else raw.get("EventSource")
        if sources is not None and not (isinstance(sources, list) and all(isinstance(s, dict) for s in sources)):
            raise _Invalid(400, "trigger.sources.invalid", "eventSources must be an array of objects", "eventSources")
        template = raw.get("template") or {}
        if not isinstance(template, dict):
            raise _Invalid(400, "template.invalid", "template must be an object", "template")
        if template.get("smsTemplate") is not None:
            _check_sms_template(template["smsTemplate"])
        index = _index(raw, "index", default=position)
        return _Trigger(
            id=ids[index], index=index, parent_id=ids.get(parent), type=trigger_type, channel=channel,
            template=template, start=_time(raw.get("startTime"), now, "startTime"),
            end=_time(raw.get("endTime"), now + timedelta(days=365), "endTime"),
            state="STARTED" if trigger_type == "TRAN_API_SOURCE" else "NEW",
        )  # fmt: skip

    def _get_task(self, key: str, request: SandboxRequest, task_id: str | None) -> SandboxResponse:
        with self._lock:
            self._settle()
            task = self._owned(key, task_id)
            if task is None:
                raise _Invalid(404, "task.not.found", f"Task {task_id} not found", "taskId")
            return json_response(200, {"result": _task_view(task)})

    def _list_tasks(self, key: str, request: SandboxRequest, _id: str | None) -> SandboxResponse:
        q = request.query
        try:
            count, offset = int(q.get("count") or 100), int(q.get("offset") or 0)
        except ValueError:
            raise _Invalid(400, "invalid.parameter", "count and offset must be integers", "count") from None
        order = ORDER_KEYS.get((q.get("orderBy") or "ID").upper())
        if order is None:
            raise _Invalid(400, "invalid.parameter", "orderBy must be ID, NAME, STATE or CREATION_DATE", "orderBy")
        included, excluded = _list_param(request, "includedStates"), _list_param(request, "excludedStates")
        types, channel, name = _list_param(request, "types"), q.get("channel"), (q.get("name") or "").lower()
        with self._lock:
            self._settle()
            tasks = [
                t for t in self._tasks.values()
                if t.owner == key and (not included or t.state in included) and t.state not in excluded
                and (not types or t.type in types) and (not channel or t.channel == channel) and name in t.name.lower()
            ]  # fmt: skip
            tasks.sort(key=attrgetter(order), reverse=(q.get("ascending") or "true").lower() == "false")
            return json_response(200, {"result": [_task_view(t) for t in tasks[offset : offset + count]]})

    # --- sending ---

    def _send(self, key: str, request: SandboxRequest, _id: str | None) -> SandboxResponse:
        body = _json_object(request)
        if body.get("taskId") is None:
            raise _Invalid(400, "task.id.required", "taskId is required", "taskId")
        with self._lock:
            task = self._owned(key, body["taskId"])
        if task is None:
            raise _Invalid(400, "task.not.found", f"Task {body['taskId']} not found", "taskId")
        if task.type != "API":
            raise _Invalid(400, "task.type.invalid", f"Task {task.id} is not an API task", "taskId")
        if task.state not in SENDING_STATES:
            raise _Invalid(400, "task.state.invalid", f"Task {task.id} is {task.state}", "taskId")
        trigger = next(t for t in task.triggers if t.type == "TRAN_API_SOURCE")
        sms = self._sms_template(task, trigger, body.get("templates"))
        contacts, contact_ids = body.get("contacts") or [], body.get("contactIds") or []
        if not isinstance(contacts, list) or not isinstance(contact_ids, list) or not (contacts or contact_ids):
            raise _Invalid(400, "contacts.required", "contacts (or contactIds) must be a non-empty array", "contacts")
        default_url = _callback_url(body.get("callbackUrl"))
        if default_url is None:
            raise _Invalid(400, "invalid.callback.url", BAD_CALLBACK_URL, "callbackUrl")
        accepted, errors = [], []
        for entry in contacts:
            contact = entry.get("contact") if isinstance(entry, dict) else None
            refusal = _contact_refusal(contact, sms is not None, self._stop_list)
            url = _callback_url(entry.get("callbackUrl")) if refusal is None else ""
            if refusal is None and url is None:
                refusal = ("invalid.callback.url", BAD_CALLBACK_URL)
            if refusal is not None:
                errors.append(_error_answer(contact, *refusal))
                continue
            data = entry.get("callbackData") if entry.get("callbackData") is not None else body.get("callbackData")
            accepted.append((_phone(contact.get("phone")), url or default_url, data))
        errors += [
            _error_answer({"id": i}, "contact.not.found", "No such contact in the address book") for i in contact_ids
        ]
        sent = self._accept(task, trigger, accepted)
        answers = [{"code": "OK", "mergeKey": s.contact_id, "result": s.message_id} for s in sent]
        result = {"contactIds": [s.contact_id for s in sent], "sendAnswers": answers, "errorAnswers": errors}
        return json_response(200, {"result": result})

    def _sms_template(self, task: _Task, trigger: _Trigger, templates: Any) -> dict[str, Any] | None:
        """The trigger's smsTemplate with this request's override laid over it (None for a non-SMS trigger)."""
        templates = templates or {}
        if not isinstance(templates, dict):
            raise _Invalid(400, "templates.invalid", "templates must be an object keyed by trigger id", "templates")
        known = {str(t.id) for t in task.triggers}
        for trigger_id, template in templates.items():
            if str(trigger_id) not in known:
                raise _Invalid(
                    400, "template.trigger.not.found", f"No trigger {trigger_id} in task {task.id}", "templates"
                )
            if not isinstance(template, dict):
                raise _Invalid(400, "template.invalid", f"The template for {trigger_id} is not an object", "templates")
            if template.get("smsTemplate") is not None:
                _check_sms_template(template["smsTemplate"])
        if trigger.channel != "SMS":
            return None
        base = trigger.template.get("smsTemplate") or {}
        override = (templates.get(str(trigger.id)) or {}).get("smsTemplate") or {}
        sms = {k: v for k, v in [*base.items(), *override.items()] if v is not None}
        if not sms.get("text") or not sms.get("from"):
            raise _Invalid(400, "template.text.required", "The SMS template needs a text and a from", "smsTemplate")
        return sms

    def _accept(self, task: _Task, trigger: _Trigger, accepted: list[tuple[str, str, Any]]) -> list[_Sent]:
        """Give each accepted contact a message, count it, and schedule its report."""
        sent = []
        with self._lock:
            for phone, url, data in accepted:
                contact_id = f"3111e47182ca9c11-{next(self._contact_ids):016x}"
                message = _Sent(str(next(self._message_ids)), contact_id, task.id, trigger.id, url, data)
                self._last_sent[phone] = message
                sent.append(message)
            trigger.counters["totalCount"] += len(sent)
        reports: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        tallies: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        now = time.time()
        for (phone, url, data), message in zip(accepted, sent, strict=True):
            ref = data.get("ref") if isinstance(data, dict) and data.get("ref") else phone
            self.state.record_accepted(self.name, str(ref), phone)
            status, error_code = OUTCOME_STATUS[self.state.outcome()]
            bucket = round(self.state.dlr_delay() / REPORT_BUCKET)
            tallies[bucket][0 if status == "delivered" else 1] += 1
            report = _report(message, status, int((now + bucket * REPORT_BUCKET) * 1000))
            if error_code is not None:
                report["errorCode"] = error_code
            reports[(url, bucket)].append(report)
        with self._lock:
            for bucket, (success, error) in tallies.items():
                due = time.monotonic() + bucket * REPORT_BUCKET
                heapq.heappush(self._due, (due, next(self._due_seq), trigger, success, error))
        for (url, bucket), payload in reports.items():
            self._schedule(url, payload, bucket * REPORT_BUCKET)
        return sent

    def _schedule(self, url: str, payload: list[dict[str, Any]], delay: float) -> None:
        """POST a JSON array of statuses; only a 500 is retried, 5 times a minute apart [seed 000:500-503]."""
        self.state.callbacks.schedule(
            url, payload, delay=delay, vendor=self.name, retry_delays=CALLBACK_RETRIES, retry_on=lambda s: s == 500
        )

    def _optout(self, address: str) -> dict[str, Any]:
        phone = _phone(address)
        with self._lock:
            self._stop_list.add(phone)
            message = self._last_sent.get(phone)
        if message is None:
            return {"scheduled": False, "message": f"No message was sent to {address!r}; it is on the stop list now."}
        payload = [_report(message, "unsubscribed", int(time.time() * 1000))]
        self._schedule(message.url, payload, 0.0)
        return {"scheduled": True, "messageId": message.message_id}

    # --- helpers that need the state ---

    def _api_key(self, request: SandboxRequest) -> str:
        scheme, _, key = (request.headers.get("Authorization") or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "key" or not key or " " in key or (self._keys and key not in self._keys):
            raise _Invalid(
                401,
                "auth.invalid.key",
                "Invalid or missing API key: send 'Authorization: Key <api key>'",
                "Authorization",
            )
        return key

    def _owned(self, key: str, task_id: Any) -> _Task | None:
        """The caller's task by id (an int or a numeric string); call with the lock held."""
        try:
            task = self._tasks.get(int(task_id))
        except (TypeError, ValueError):
            return None
        return task if task is not None and task.owner == key else None

    def _settle(self) -> None:
        """Move reports that fell due into the trigger counters; call with the lock held."""
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _due, _seq, trigger, success, error = heapq.heappop(self._due)
            trigger.counters["successCount"] += success
            trigger.counters["errorCount"] += error


def _error(status: int, key: str, text: str, ref: str | None) -> SandboxResponse:
    body = {
        "result": None,
        "code": "REJECTED",
        "description": f"#{key}; {text}",
        "reasons": [{"key": key, "ref": ref, "message": text}],
    }
    return json_response(status, body)


def _json_object(request: SandboxRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise _Invalid(400, "invalid.json", "The body is not valid JSON", None) from None
    if not isinstance(body, dict):
        raise _Invalid(400, "invalid.json", "The body must be a JSON object", None)
    return body


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], key: str) -> str:
    value = body.get(name)
    if value not in allowed:
        raise _Invalid(400, key, f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _index(raw: dict[str, Any], name: str, *, default: int | None) -> int | None:
    """A trigger's index or parentIndex: an integer, or a string of digits as Devino's JSON reader takes it too;
    absent (or null): `default`."""
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(400, "trigger.index.invalid", f"{name} must be an integer, not {value!r}", name)
    return value


def _time(value: Any, default: datetime, name: str) -> str:
    if value is None:
        return default.strftime(TIME_FORMAT)
    try:
        return datetime.fromisoformat(str(value)).strftime(TIME_FORMAT)
    except ValueError:
        raise _Invalid(400, "trigger.time.invalid", f"{name} must read yyyy-mm-dd hh:mm:ss", name) from None


def _check_sms_template(sms: Any) -> None:
    if not isinstance(sms, dict):
        raise _Invalid(400, "template.invalid", "smsTemplate must be an object", "smsTemplate")
    sender, text, validity = sms.get("from"), sms.get("text"), sms.get("validity")
    if sender is not None and not (isinstance(sender, str) and SENDER.fullmatch(sender)):
        raise _Invalid(400, "template.from.invalid", "from must be up to 11 Latin characters or 15 digits", "from")
    if text is not None:
        limit = MAX_TEXT_LATIN if isinstance(text, str) and text.isascii() else MAX_TEXT_OTHER
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise _Invalid(400, "template.text.size", f"text must be 1 to {limit} characters", "text")
    if validity is not None and not (str(validity).isdigit() and int(validity) <= MAX_VALIDITY):
        raise _Invalid(400, "template.validity.range", f"validity must be 0 to {MAX_VALIDITY} seconds", "validity")


def _list_param(request: SandboxRequest, name: str) -> set[str]:
    """An array query parameter, repeated (?types=API&types=SIMPLE) or comma-separated."""
    return {v.strip() for value in request.query_lists.get(name, []) for v in value.split(",") if v.strip()}


def _phone(value: Any) -> str:
    text = str(value if value is not None else "").strip()
    return text[1:] if text.startswith("+") else text


def _contact_refusal(contact: Any, needs_phone: bool, stop_list: set[str]) -> tuple[str, str] | None:
    if not isinstance(contact, dict):
        return "contact.invalid", "contact must be an object"
    phone = _phone(contact.get("phone"))
    if not phone:
        return ("contact.phone.required", "Phone is required for the SMS channel") if needs_phone else None
    if not phone.isdigit():
        return "invalid.phone.format", "Invalid phone format"
    if not 10 <= len(phone) <= 15:
        return "invalid.phone.size", "Invalid phone size"
    if phone in stop_list:
        return "contact.in.stop.list", "Contact is in the stop list"
    return None


def _callback_url(value: Any) -> str | None:
    """The URL, "" when absent, None when it is not an http(s) URL of at most 1000 characters."""
    if value is None or value == "":
        return ""
    if isinstance(value, str) and len(value) <= MAX_CALLBACK_URL and re.match(r"https?://[^\s/]+", value):
        return value
    return None


def _error_answer(contact: Any, key: str, text: str) -> dict[str, Any]:
    """An errorAnswers entry as the seed shows it: the contact as compact JSON, then '#key; text' [seed 000:474-479]."""
    if isinstance(contact, dict):
        contact = {
            "email": contact.get("email"),
            "fields": contact.get("fields"),
            "phone": contact.get("phone"),
            "pushInfo": contact.get("pushInfo"),
            **({"id": contact["id"]} if "id" in contact else {}),
        }
    shown = json.dumps(contact, separators=(",", ":"), ensure_ascii=False)
    return {"code": "REJECTED", "result": None, "description": f"{shown} #{key}; {text}"}


def _report(message: _Sent, status: str, ts_ms: int) -> dict[str, Any]:
    return {
        "messageId": message.message_id,
        "ts": ts_ms,
        "status": status,
        "callbackData": message.callback_data,
        "contactId": message.contact_id,
        "taskId": message.task_id,
        "triggerId": message.trigger_id,
    }


def _task_view(task: _Task) -> dict[str, Any]:
    triggers = []
    for t in task.triggers:
        view = {
            "triggerId": str(t.id),
            "taskId": str(task.id),
            **_OWNER,
            "startTime": t.start,
            "endTime": t.end,
            "state": t.state,
            "type": t.type,
            "channel": t.channel,
            "counters": dict(t.counters),
            "externalId": t.external_id,
        }
        if t.parent_id is not None:
            view["parentTriggerId"] = str(t.parent_id)
        triggers.append(view)
    return {
        "id": str(task.id),
        "taskName": task.name,
        **_OWNER,
        "creationDate": task.created,
        "type": task.type,
        "channel": task.channel,
        "state": task.state,
        "triggersInfo": triggers,
    }
