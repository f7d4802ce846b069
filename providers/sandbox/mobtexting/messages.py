"""Sending, India's DLT rules, delivery reports (push and pull) for the MOBtexting emulation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from providers.sandbox.core import SandboxResponse, json_response
from providers.sandbox.mobtexting.common import (
    IST,
    TIME_FORMAT,
    Message,
    Tenant,
    digits,
    invalid,
    is_indian,
    ok,
    page_number,
    paginate,
    sms_parts,
)

if TYPE_CHECKING:
    from providers.sandbox.mobtexting.emulator import MobtextingSandbox

SERVICES = {"T", "P", "S", "G", "ENT", "MKT"}  # ENT and MKT appear in the vendor's own examples
DLT_SERVICES = {"T", "P", "S"}  # need entity_id and template_id towards Indian numbers
PROMOTIONAL = {"P"}
TRANSACTIONAL_SENDER = re.compile(r"[A-Z0-9]{6}")  # 6 capitals; digits discouraged [seed 001:8865-8879]
TEMPLATE_SERVICE = {"T": "T", "P": "P", "SI": "S", "SE": "S"}
OUTCOME_WORDS = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED", "rejected": "DLT-REJECTED"}
REFUSALS = {
    "OPTOUT-REJ": ("456", "Rejected as a number optout to receive messages"),
    "PROMO-TMOUT": ("457", "Promotional time exceeded"),
    "DNDNUMB": ("408", "Number registered in the DND database."),
    "NO-CREDITS": ("401", "Credit exhausted."),
    "THROTTLED": ("463", "Maximum Sent Limit is Reached"),
    "INV-SENDER": ("454", "Message rejected as sender ID not allotted for ESME"),
    "TEMPLATE-NOT-FOUND": ("452", "No matching templates"),
}
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*[^}]*?\s*\}\}|\{#var#\}", re.IGNORECASE)
REPEAT_LIMIT, REPEAT_WINDOW = 6, 3600.0  # identical texts, same sender → same number, per hour
RETRY_DELAYS = (10.0, 100.0)  # two more attempts [seed 001:130-136]
PULL_PAGE = 100
STATUS_EVENT = "sms:message:status"
PLACEHOLDER = re.compile(r"@?\{\{\s*(?:payload\.)?(\w+)\s*\}\}")


class MessageDesk:
    def __init__(self, emulator: MobtextingSandbox):
        self.emulator = emulator

    # --- the three ways in ---

    def send_json(self, tenant: Tenant, body: dict[str, Any]) -> SandboxResponse:
        """`sms/send/json`: root defaults, nodes override all but webhook_id, service and time [public]."""
        root, nodes = body.get("root") or {}, body.get("nodes")
        if not isinstance(root, dict):
            return invalid({"root": ["The root must be an object."]})
        if not isinstance(nodes, list) or not nodes:
            return invalid({"nodes": ["The nodes field is required."]})
        root = _present(root)
        fixed = {k: root[k] for k in ("service", "webhook_id", "time") if k in root}
        merged, errors = [], {}
        for i, node in enumerate(nodes):
            if isinstance(node, dict):
                merged.append({**root, **_present(node), **fixed})
            else:
                errors[f"nodes.{i}"] = ["Each node must be an object."]
        if errors:
            return invalid(errors)
        return self.submit(tenant, merged, webhook_id=root.get("webhook_id"), where=lambda i, f: f"nodes.{i}.{f}")

    def send_simple(self, tenant: Tenant, params: dict[str, Any]) -> SandboxResponse:
        """`sms/send` as JSON, form or GET: `to` is an array or one comma-separated string."""
        to = params.get("to")
        numbers = to if isinstance(to, list) else [n for n in str(to or "").split(",") if n.strip()]
        if not numbers:
            return invalid({"to": ["The to field is required."]})
        node = {k: v for k, v in params.items() if k not in ("to", "access_token", "_method")}
        nodes = [{**node, "to": number} for number in numbers]
        return self.submit(tenant, nodes, webhook_id=params.get("webhook_id"), shared_custom=len(numbers) > 1)

    def send_template(self, tenant: Tenant, body: dict[str, Any]) -> SandboxResponse:
        """`sms/send/template`: a registered template by id or alias, its {{variables}} from `data`."""
        ident = str(body.get("id") or body.get("alias") or "")
        if not ident:
            return invalid({"alias": ["The alias field is required when id is not present."]})
        template = tenant.templates.get(ident) or next(
            (t for t in tenant.templates.values() if ident in (t["alias"], t["name"])), None
        )
        if template is None:
            return invalid({"id" if body.get("id") else "alias": ["The selected template is invalid."]})
        if str(template["status"]) != "1":
            return invalid({"alias": ["The template is not approved."]})
        recipient, data, meta = body.get("recipient"), body.get("data") or {}, body.get("meta") or {}
        to = recipient.get("to") if isinstance(recipient, dict) else None
        numbers = to if isinstance(to, list) else [n for n in str(to or "").split(",") if n.strip()]
        if not numbers:
            return invalid({"recipient.to": ["The recipient.to field is required."]})
        if not isinstance(data, dict) or not isinstance(meta, dict):
            return invalid({"data": ["The data must be an object."]})
        names = PLACEHOLDER.findall(template["body"])
        missing = [name for name in names if name not in data]
        if missing:
            return invalid({f"data.{name}": [f"The data.{name} field is required."] for name in missing})
        text = PLACEHOLDER.sub(lambda m: str(data[m.group(1)]), template["body"])
        too_long = any(len(str(data[name])) > 30 for name in names)  # DLT allows 30 characters a variable
        sender = next((s for s in tenant.senders.values() if s["name"] == template["sender"]), {})
        node = {
            "message": text,
            "sender": template["sender"],
            "service": TEMPLATE_SERVICE.get(template["type"], "T"),
            "entity_id": sender.get("entity_id", ""),
            "template_id": template["template_id"],
            "custom": str(meta.get("custom") or ""),
            "meta": meta,
        }
        nodes = [{**node, "to": number} for number in numbers]
        return self.submit(
            tenant,
            nodes,
            webhook_id=meta.get("webhook_id"),
            shared_custom=len(numbers) > 1,
            final_word="DLT-TM-VAR-EXECEED" if too_long else "",
        )

    # --- the common path ---

    def submit(
        self,
        tenant: Tenant,
        nodes: list[dict[str, Any]],
        *,
        webhook_id: Any,
        where=lambda i, f: f,
        shared_custom: bool = False,
        final_word: str = "",
    ) -> SandboxResponse:
        """Validate the whole request (any error: 422, nothing sent), then accept or refuse each number."""
        emulator = self.emulator
        now = emulator.now()
        errors, scheduled = self._request_errors(tenant, nodes[0], webhook_id, now)
        service = str(nodes[0].get("service") or "").upper()
        mobiles, indian_dlt = [], False
        for i, node in enumerate(nodes):
            for name in ("to", "message", "sender"):
                if not str(node.get(name) or "").strip():
                    errors.setdefault(where(i, name), [f"The {name} field is required."])
            to = str(node.get("to") or "")
            mobile = to if to.isdigit() else digits(to)
            mobiles.append(mobile)
            if service in DLT_SERVICES and is_indian(mobile):
                indian_dlt = True
                for name in ("entity_id", "template_id"):
                    if not str(node.get(name) or "").strip():
                        label = name.replace("_", " ")
                        errors.setdefault(name, [f"The {label} field is required for Indian (DLT) routes."])
                sender = str(node.get("sender") or "")
                if service == "T" and sender and not TRANSACTIONAL_SENDER.fullmatch(sender):
                    errors.setdefault("sender", ["Transactional sender IDs are 6 capital letters or digits (TRAI)."])
        if errors:
            return invalid(errors)
        promotional = service in PROMOTIONAL
        promo_closed = promotional and indian_dlt and not 9 <= now.hour < 21
        group_id, rows, accepted = str(uuid.uuid4()), [], 0
        mono, submitted_at, texts = time.monotonic(), now.strftime(TIME_FORMAT), {}
        delay_base = max(0.0, (scheduled - now).total_seconds()) if scheduled else 0.0
        refs = Counter(str(n.get("custom") or "") for n in nodes) if shared_custom else Counter()
        registered: dict[tuple[str, str, str], tuple[str, str]] = {}  # (sender, template_id, text) → _registry_check
        record, name = emulator.state.record_accepted, emulator.name
        with emulator.lock:
            target = self._dlr_target(tenant, webhook_id)
            optouts = self._optouts(tenant)
            by_group, by_date = tenant.by_group[group_id], tenant.by_date[now.date().isoformat()]
            for node, mobile in zip(nodes, mobiles, strict=True):
                if not 8 <= len(mobile) <= 15:
                    continue  # the vendor leaves invalid numbers out of its answer
                text, kind = str(node["message"]), str(node.get("type") or "A").upper()
                if (text, kind) not in texts:
                    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
                    texts[(text, kind)] = (*sms_parts(text, kind), digest)
                length, units, digest = texts[(text, kind)]
                custom, sender = str(node.get("custom") or ""), str(node["sender"])
                refusal = ""
                if optouts or promotional:
                    refusal = self._refusal(optouts, node, mobile, service, sender, promotional, promo_closed)
                node_word = final_word
                if not refusal and (tenant.senders or tenant.templates):
                    key = (sender, str(node.get("template_id") or ""), text)
                    if key not in registered:
                        registered[key] = self._registry_check(tenant, *key)
                    refusal, node_word = registered[key][0], registered[key][1] or final_word
                if not refusal and tenant.credits is not None and units > tenant.credits:
                    refusal = "NO-CREDITS"  # the balance ran out
                if not refusal and self._over_sms_limit(tenant):
                    refusal = "THROTTLED"  # the token's sending limit for this minute is reached
                if refusal:
                    code, reason = REFUSALS[refusal]
                    row = _row(None, mobile, refusal, units, length, custom, submitted_at)
                    rows.append({**row, "code": code, "message": reason})
                    continue
                if tenant.credits is not None:
                    tenant.credits -= units
                tenant.sms_window[1] += 1
                accepted += 1
                message = Message(
                    f"{group_id}:{accepted}", group_id, mobile, custom, sender, service, length, units, submitted_at
                )
                tenant.messages[message.id] = message
                by_group.append(message)
                by_date.append(message)
                tenant.by_mobile[mobile].append(message)
                if custom:
                    tenant.by_cid[custom].append(message)
                record(name, f"{custom}/{mobile}" if custom and refs[custom] > 1 else custom or mobile, f"+{mobile}")
                word = "DUPLICATE" if self._repeated(tenant, sender, mobile, digest, mono) else node_word
                self._report(message, target, now, mono, delay_base, promotional, word)
                rows.append(_row(message.id, mobile, "AWAITING-DLR", units, length, custom, submitted_at))
        body = {"status": 200, "message": f"{accepted} numbers accepted for delivery.", "group_id": group_id}
        return json_response(200, {**body, "data": rows})

    def status(self, tenant: Tenant, params: dict[str, Any], base: str) -> SandboxResponse:
        """`sms/status` by id, cid or mobile (all rows), or by group_id or date (100 a page)."""
        mono, nan = time.monotonic(), self.emulator.state.knobs.report_nan
        with self.emulator.lock:
            if params.get("id"):
                found = tenant.messages.get(str(params["id"]))
                return ok("OK", [_pull_row(found, mono, nan)] if found else [])
            for key, index in (("cid", tenant.by_cid), ("mobile", tenant.by_mobile)):
                if params.get(key):
                    value = str(params[key]) if key == "cid" else digits(params[key])
                    return ok("OK", [_pull_row(m, mono, nan) for m in index.get(value, [])])
            for key, index in (("group_id", tenant.by_group), ("date", tenant.by_date)):
                if params.get(key):
                    messages = index.get(str(params[key]), [])
                    return paginate(
                        messages,
                        page=page_number(params.get("page")),
                        per_page=PULL_PAGE,
                        base=base,
                        render=lambda chunk: [_pull_row(m, mono, nan) for m in chunk],
                    )
        return invalid({"id": ["One of id, mobile, cid, date or group_id is required."]})

    # --- helpers ---

    def _request_errors(self, tenant, first, webhook_id, now) -> tuple[dict[str, list[str]], datetime | None]:
        errors: dict[str, list[str]] = {}
        service = str(first.get("service") or "").upper()
        if not service:
            errors["service"] = ["The service field is required."]
        elif service not in SERVICES:
            errors["service"] = ["The selected service is invalid."]
        if str(first.get("type") or "A").upper() not in ("U", "N", "A"):
            errors["type"] = ["The selected type is invalid."]
        if str(first.get("flash", 0)) not in ("0", "1", "True", "False"):
            errors["flash"] = ["The selected flash is invalid."]
        if "max_units" in first and str(first["max_units"]) not in ("2", "3"):
            errors["max_units"] = ["The selected max units is invalid."]
        if webhook_id not in (None, "") and str(webhook_id) not in tenant.webhooks:
            errors["webhook_id"] = ["The selected webhook id is invalid."]
        scheduled = None
        if str(first.get("time") or "").strip():
            try:
                scheduled = datetime.strptime(str(first["time"]).strip(), TIME_FORMAT).replace(tzinfo=IST)
            except ValueError:
                errors["time"] = ["The time does not match the format Y-m-d H:i:s."]
            else:
                if scheduled > now + timedelta(days=30):
                    errors["time"] = ["The time may be at most 30 days ahead (792 INV-SCHEDULE)."]
        return errors, scheduled

    @staticmethod
    def _optouts(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
        index: dict[str, list[dict[str, Any]]] = {}
        for row in tenant.unsubscribers.values():
            index.setdefault(row["receiver"], []).append(row)
        return index

    def _refusal(self, optouts, node, mobile, service, sender, promotional, promo_closed) -> str:
        for row in optouts.get(mobile, ()):
            kind, value = row["type"], row["value"]
            tags = (node.get("meta") or {}).get("tags") or node.get("tags") or []
            if (
                kind == "all"
                or (kind == "sender" and value == sender)
                or (kind in ("product", "service") and value.upper() == service)
                or (kind == "tag" and value in tags)
            ):
                return "OPTOUT-REJ"
        if promo_closed and is_indian(mobile):
            return "PROMO-TMOUT"
        if promotional and mobile in self.emulator.dnd:
            return "DNDNUMB"
        return ""

    @staticmethod
    def _registry_check(tenant: Tenant, sender: str, template_id: str, text: str) -> tuple[str, str]:
        """(refusal at submission, final word of its report) from the token's own registries: a sender it registered
        that is not approved is refused (454), a text whose fixed parts differ from the registered template it
        names too (452), and one with a variable over 30 characters is reported DLT-TM-VAR-EXECEED (783). What the
        token never registered passes (the sandbox does not make every test register its sender and templates)."""
        if any(s["name"] == sender and str(s["status"]) != "1" for s in tenant.senders.values()):
            return "INV-SENDER", ""
        template = next((t for t in tenant.templates.values() if template_id and t["template_id"] == template_id), None)
        if template is None:
            return "", ""
        found = _template_pattern(template["body"]).fullmatch(text)
        if found is None:
            return "TEMPLATE-NOT-FOUND", ""
        return "", "DLT-TM-VAR-EXECEED" if any(len(value) > 30 for value in found.groups()) else ""

    def _over_sms_limit(self, tenant: Tenant) -> bool:
        """Whether one more number would pass the token's sending limit for this minute (none when 0)."""
        minute = int(time.time() // 60)
        if tenant.sms_window[0] != minute:
            tenant.sms_window[:] = [minute, 0]
        return 0 < self.emulator.sms_limit <= tenant.sms_window[1]

    @staticmethod
    def _repeated(tenant: Tenant, sender: str, mobile: str, digest: bytes, mono: float) -> bool:
        """The seventh identical message within the hour from one sender to one number [seed 001:8913]
        (counted in hour-long windows from the first one: cheap for millions of numbers)."""
        key = (sender, mobile, digest)
        window = tenant.repeats.get(key)
        if window is None or mono - window[0] > REPEAT_WINDOW:
            tenant.repeats[key] = [mono, 1]
            return False
        window[1] += 1
        return window[1] > REPEAT_LIMIT

    def _report(self, message, target, now, mono, delay_base, promotional, final_word) -> None:
        """Draw the outcome and when it is known; push it unless the traffic is promotional (no DLR post-DLT)."""
        state = self.emulator.state
        if delay_base:
            message.scheduled_until = mono + delay_base
        if promotional:
            return  # the pull API keeps AWAITING-DLR; Herald finalises after its report window
        delay = delay_base + state.dlr_delay()
        message.final_status = final_word or OUTCOME_WORDS.get(state.outcome(), "UNDELIV")
        message.due = mono + delay
        message.delivered_at = _clock_after(now, int(delay))
        if target is not None:
            self.push(target[0], target[1], _dlr_json(message), delay)

    def _dlr_target(self, tenant: Tenant, webhook_id: Any) -> tuple[dict[str, Any], str] | None:
        """The send's webhook_id (flat JSON), else the token's sms:message:status subscription (envelope)."""
        hook, form = (tenant.webhooks.get(str(webhook_id)), "flat") if webhook_id else (None, "envelope")
        if hook is None:
            hook = self.emulator.subscribed_webhook(tenant, "sms:message:status")
        if hook is None or str(hook["status"]) != "1" or not hook["is_verified"]:
            return None  # an unverified or inactive webhook gets nothing
        return hook, "get" if hook.get("method") == "GET" else form

    def push(self, hook: dict[str, Any], form: str, payload: bytes, delay: float, event: str = STATUS_EVENT) -> None:
        """Schedule one webhook call (`payload`: the event's JSON) with the vendor's headers: the secret as
        bearer, and the Signature."""
        method, url = "POST", hook["uri"]
        if form == "get":
            fields = json.loads(payload)
            method, body = "GET", b""
            url = PLACEHOLDER.sub(lambda m: quote(str(fields.get(m.group(1), "")), safe=""), url)
        elif form == "envelope":
            body = b'{"event": "' + event.encode() + b'", "payload": ' + payload + b"}"
        else:
            body = payload
        headers = {"Signature": hmac.new(str(hook["id"]).encode(), body, hashlib.sha256).hexdigest()}
        if hook.get("secret"):
            headers["Authorization"] = f"Bearer {hook['secret']}"
        self.emulator.state.callbacks.schedule(
            url,
            None,
            delay=delay,
            vendor=self.emulator.name,
            method=method,
            headers=headers,
            retry_delays=RETRY_DELAYS,
            raw_body=body,
        )


@lru_cache(maxsize=4096)
@lru_cache(maxsize=256)
def _template_pattern(body: str) -> re.Pattern:
    """A registered template as DLT matches texts against it: its fixed parts verbatim, a group for each variable
    ({{name}} or {#var#}), whose length the caller checks."""
    return re.compile("(.*?)".join(re.escape(part) for part in TEMPLATE_VARIABLE.split(body)), re.DOTALL)


def _clock_after(now: datetime, seconds: int) -> str:
    return (now + timedelta(seconds=seconds)).strftime(TIME_FORMAT)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Explicit nulls count as absent, as real clients send them."""
    return {k: v for k, v in values.items() if v is not None}


def _row(message_id, mobile, status, units, length, custom, submitted_at) -> dict[str, Any]:
    """One row of the send answer [seed 001:2285-2291, rows public]."""
    return {
        "id": message_id,
        "mobile": mobile,
        "status": status,
        "units": units,
        "length": length,
        "charges": units,
        "customid": custom,
        "customid1": "",
        "iso_code": "IN" if is_indian(mobile) else None,
        "submitted_at": submitted_at,
    }


def _pull_row(message: Message, mono: float, nan: bool = False) -> dict[str, Any]:
    """One row of `sms/status`: the intermediate status until the report is due [public]; its charges NaN when the
    `report_nan` knob makes the vendor's JSON broken."""
    status, delivered_at = "AWAITING-DLR", ""
    if message.scheduled_until > mono:
        status = "SCHEDULED"
    elif message.due is not None and mono >= message.due:
        status, delivered_at = message.final_status, message.delivered_at
    return {
        "id": message.id,
        "mobile": message.mobile,
        "status": status,
        "units": message.units,
        "service": message.service,
        "length": message.length,
        "charges": float("nan") if nan else message.units,
        "custom": message.custom,
        "custom1": "",
        "location": "India" if is_indian(message.mobile) else "",
        "provider": "",
        "submitted_at": message.submitted_at,
        "delivered_at": delivered_at,
        "sender": message.sender,
    }


def _dlr_json(message: Message) -> bytes:
    """The pushed report, field for field as seed 001:9894-9916 shows it (formatted by hand: it is built
    once per message, and only `custom` comes from the client)."""
    indian = is_indian(message.mobile)
    custom = json.dumps(message.custom)
    return (
        f'{{"id": "{message.id}", "mobile": "{message.mobile}", "status": "{message.final_status}", '
        f'"credits": "{message.units}.0000", "units": {message.units}, "deliv_time": "{message.delivered_at}", '
        f'"sent_time": "{message.submitted_at}", "submit_time": "{message.submitted_at}", "cid": {custom}, '
        f'"custom": {custom}, "custom1": "", "custom2": "", "location": "{"India" if indian else ""}", "region": "", '
        f'"provider": "", "location_code": "{"in" if indian else ""}", "region_code": "", "provider_code": ""}}'
    ).encode()
