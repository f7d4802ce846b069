"""The MOBtexting emulation's registries: webhooks (with the verification handshake), subscriptions,
sender IDs, DLT templates and unsubscribers, each stored per access token [seed 001:145-531, 1141-1896]."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from providers.sandbox.core import SandboxResponse
from providers.sandbox.mobtexting.common import (
    Tenant,
    crud_time,
    digits,
    error,
    invalid,
    ok,
    page_number,
    paginate,
)
from providers.sandbox.mobtexting.messages import SERVICES, TRANSACTIONAL_SENDER

if TYPE_CHECKING:
    from providers.sandbox.mobtexting.emulator import MobtextingSandbox

# Subscribable events [seed 001:372-388].
EVENTS = {
    "sms:message:status",
    "sms:unsubscription",
    "whatsapp:message:in",
    "whatsapp:message:status",
    "whatsapp:unsubscription",
    "rcs:message:in",
    "rcs:message:status",
    "rcs:unsubscription",
    "voice:message:out",
    "voice:unsubscription",
    "viber:message:status",
    "viber:message:in",
    "viber:unsubscription",
    "vmn:message:in",
    "contacts:subscriber:subscription",
}
TEMPLATE_TYPES = {"T": "Transactional", "P": "Promotional", "SI": "Service Implicit", "SE": "Service Explicit"}
UNSUBSCRIBER_TYPES = ("tag", "product", "sender", "service", "all")
VARIABLE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
PER_PAGE = 15
HANDSHAKE_TIMEOUT = 3.0  # the vendor gives a webhook 3 seconds [seed 001:132]

# Per registry: (tenant attribute, list message, created, shown, updated, deleted).
MESSAGES = {
    "webhooks": ("webhooks", "OK", "Created Successfully", "OK", "Updated Successfully", "Deleted Successfully"),
    "subscriptions": (
        "subscriptions",
        "Subscriptions List",
        "Subscription Saved Successfully",
        "Subscription",
        "",
        "Subscription Deleted Successfully",
    ),
    "senders": (
        "senders",
        "Senders List",
        "Sender Saved Successfully",
        "Sender Data",
        "Sender Updated Successfully",
        "Deleted Successfully",
    ),
    "templates": (
        "templates",
        "Templates List",
        "Template Saved Successfully",
        "Template Data",
        "Template Updated Successfully",
        "Template deleted successfully",
    ),
    "unsubscribers": (
        "unsubscribers",
        "Unsubscribers list",
        "Receiver added successfully",
        "Unsubscribers data",
        "Receiver update successfully",
        "Deleted Successfully",
    ),
}


class Registries:
    def __init__(self, emulator: MobtextingSandbox):
        self.emulator = emulator
        self.validators: dict[str, Callable[..., dict[str, list[str]]]] = {
            "webhooks": self._webhook_errors,
            "subscriptions": self._subscription_errors,
            "senders": self._sender_errors,
            "templates": self._template_errors,
            "unsubscribers": self._unsubscriber_errors,
        }
        self.builders: dict[str, Callable[[Tenant, dict[str, Any]], dict[str, Any]]] = {
            "webhooks": self._new_webhook,
            "subscriptions": self._new_subscription,
            "senders": self._new_sender,
            "templates": self._new_template,
            "unsubscribers": self._new_unsubscriber,
        }

    def handle(
        self, registry: str, tenant: Tenant, method: str, ident: str, params: dict[str, Any], base: str
    ) -> SandboxResponse:
        """List/create on the collection, show/edit/delete on one record; DELETE on unsubscribers clears all."""
        attribute, listed, created, shown, updated, deleted = MESSAGES[registry]
        with self.emulator.lock:
            store: dict[str, dict[str, Any]] = getattr(tenant, attribute)
            if not ident:
                if method == "GET":
                    rows = [r for r in store.values() if _matches(r, params)]
                    return paginate(
                        rows, page=page_number(params.get("page")), per_page=PER_PAGE, base=base, message=listed
                    )
                if method == "DELETE" and registry == "unsubscribers":
                    store.clear()
                    return ok(deleted, [])
                if method != "POST":
                    return error(405, "The method is not supported for this route.")
                errors = self.validators[registry](tenant, params, None)
                if errors:
                    return invalid(errors)
                row = self.builders[registry](tenant, params)
                store[row["id"]] = row
            else:
                row = store.get(ident)
                if row is None:
                    return error(404, "Record not found.")
                if method == "GET":
                    return ok(shown, row)
                if method == "DELETE":
                    del store[ident]
                    return ok(deleted, 1 if registry == "templates" else [])
                if method not in ("PUT", "PATCH") or not updated:
                    return error(405, "The method is not supported for this route.")
                errors = self.validators[registry](tenant, params, row)
                if errors:
                    return invalid(errors)
                self._update(registry, row, params)
        if registry == "webhooks" and row.get("token") and (not ident or not row["is_verified"]):
            self.verify(row)  # outside the lock: it calls the webhook's own server
        return ok(updated if ident else created, row)

    def verify(self, hook: dict[str, Any]) -> bool:
        """The handshake: POST uri?token=<key> {validation_key, challenge}; 200 echoing the challenge verifies.
        A webhook that fails it is kept, unverified, and gets no callbacks [seed 001:9828-9874]."""
        challenge = secrets.token_hex(8)
        body = json.dumps({"validation_key": hook["token"], "challenge": challenge}).encode()
        headers = {"Content-Type": "application/json", "Signature": _sign(hook["id"], body)}
        if hook.get("secret"):
            headers["Authorization"] = f"Bearer {hook['secret']}"
        uri = hook["uri"]
        url = f"{uri}{'&' if '?' in uri else '?'}{requests.compat.urlencode({'token': hook['token']})}"
        try:
            response = requests.post(url, data=body, headers=headers, timeout=HANDSHAKE_TIMEOUT)
            verified = response.status_code == 200 and response.json().get("challenge") == challenge
        except (requests.RequestException, ValueError, AttributeError):
            verified = False
        with self.emulator.lock:
            hook["is_verified"] = 1 if verified else 0
        return verified

    # --- new records ---

    def _new_webhook(self, tenant: Tenant, p: dict[str, Any]) -> dict[str, Any]:
        now = crud_time()
        return {
            "id": str(uuid.uuid4()),
            "name": str(p["name"]),
            "uri": str(p["uri"]),
            "secret": str(p.get("secret") or ""),
            "token": str(p.get("token") or ""),
            "method": str(p.get("method") or "POST").upper(),
            "status": int(p.get("status", 1)),
            "is_verified": 0 if p.get("token") else 1,
            "created_at": now,
            "updated_at": now,
        }

    def _new_subscription(self, tenant: Tenant, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "event": str(p["event"]),
            "identity": str(p["identity"]),
            "webhook_id": str(p["webhook_id"]),
            "created_at": crud_time(),
        }

    def _new_sender(self, tenant: Tenant, p: dict[str, Any]) -> dict[str, Any]:
        now = crud_time()
        return {
            "id": str(uuid.uuid4()),
            "name": str(p["name"]),
            "service": str(p["service"]).upper(),
            "entity_id": str(p["entity_id"]),
            "entity_name": str(p["entity_name"]),
            "iso_code": str(p["country_code"]).upper(),
            "is_open": 0,
            "purpose": "",
            "status": int(self.emulator.approval["senders"]),
            "created_at": now,
            "updated_at": now,
        }

    def _new_template(self, tenant: Tenant, p: dict[str, Any]) -> dict[str, Any]:
        now, sender = crud_time(), next(s for s in tenant.senders.values() if s["name"] == p["sender"])
        body, kind = str(p["body"]), str(p["type"]).upper()
        return {
            "id": str(uuid.uuid4()),
            "sender_id": sender["id"],
            "template_id": str(p["template_id"]),
            "template_type": TEMPLATE_TYPES[kind],
            "type": kind,
            "sender": sender["name"],
            "name": str(p["name"]),
            "alias": str(p["name"]),
            "body": body,
            "content": None,
            "body_length": len(body),
            "match_count": 0,
            "percentage": 0,
            "is_complete": 0,
            "is_english": 1 if body.isascii() else 0,
            "status": int(self.emulator.approval["templates"]),
            "created_at": now,
            "updated_at": now,
        }

    def _new_unsubscriber(self, tenant: Tenant, p: dict[str, Any]) -> dict[str, Any]:
        receiver, kind = digits(p["receiver"]), str(p.get("type") or "all")
        return {
            "id": str(uuid.uuid4()),
            "iso": "IN" if receiver.startswith("91") else "",
            "receiver": receiver,
            "type": kind,
            "value": "" if kind == "all" else str(p.get("value") or ""),
            "created_at": crud_time(),
        }

    def _update(self, registry: str, row: dict[str, Any], p: dict[str, Any]) -> None:
        editable = {
            "webhooks": ("name", "uri", "secret", "status"),
            "senders": ("service", "entity_id", "entity_name"),
            "templates": ("name", "body", "template_id", "type", "is_english"),
            "unsubscribers": ("receiver", "type", "value"),
        }[registry]
        for name in editable:
            if name in p:
                row[name] = int(p[name]) if name in ("status", "is_english") else str(p[name])
        if registry == "senders" and "country_code" in p:
            row["iso_code"] = str(p["country_code"]).upper()
        if registry == "templates":
            row["type"] = row["type"].upper()
            row["alias"], row["body_length"] = row["name"], len(row["body"])
            row["template_type"] = TEMPLATE_TYPES.get(row["type"], row["template_type"])
        if registry == "unsubscribers":
            row["receiver"] = digits(row["receiver"])
            row["value"] = "" if row["type"] == "all" else row["value"]
        row["updated_at"] = crud_time()

    # --- validation (422 with Laravel's field errors) ---

    @staticmethod
    def _webhook_errors(tenant, p, row) -> dict[str, list[str]]:
        errors = _required(p, () if row else ("name", "uri"))
        if "uri" in p and not str(p["uri"]).startswith(("http://", "https://")):
            errors["uri"] = ["The uri must be a valid URL."]
        if "status" in p and str(p["status"]) not in ("0", "1"):
            errors["status"] = ["The selected status is invalid."]
        if str(p.get("method") or "POST").upper() not in ("GET", "POST"):
            errors["method"] = ["The selected method is invalid."]
        return errors

    @staticmethod
    def _subscription_errors(tenant, p, row) -> dict[str, list[str]]:
        errors = _required(p, ("event", "identity", "webhook_id"))
        if p.get("event") and p["event"] not in EVENTS:
            errors["event"] = ["The selected event is invalid."]
        if p.get("webhook_id") and str(p["webhook_id"]) not in tenant.webhooks:
            errors["webhook_id"] = ["The selected webhook id is invalid."]
        return errors

    @staticmethod
    def _sender_errors(tenant, p, row) -> dict[str, list[str]]:
        errors = _required(p, () if row else ("name", "service", "country_code", "entity_id", "entity_name"))
        service = str(p.get("service") or (row or {}).get("service") or "").upper()
        country = str(p.get("country_code") or (row or {}).get("iso_code") or "").upper()
        if p.get("service") and service not in SERVICES:
            errors["service"] = ["The selected service is invalid."]
        if p.get("country_code") and not re.fullmatch(r"[A-Za-z]{2}", str(p["country_code"])):
            errors["country_code"] = ["The country code must be 2 letters."]
        name = str(p.get("name") or (row or {}).get("name") or "")
        if service == "T" and country == "IN" and name and not TRANSACTIONAL_SENDER.fullmatch(name):
            errors["name"] = ["Transactional sender IDs are 6 capital letters or digits (TRAI)."]
        if not row and any(s["name"] == name for s in tenant.senders.values()):
            errors["name"] = ["The name has already been taken."]
        return errors

    @staticmethod
    def _template_errors(tenant, p, row) -> dict[str, list[str]]:
        errors = _required(p, ("template_id",) if row else ("sender", "name", "body", "template_id", "type"))
        if p.get("type") and str(p["type"]).upper() not in TEMPLATE_TYPES:
            errors["type"] = ["The selected type is invalid."]
        if not row and p.get("sender") and not any(s["name"] == p["sender"] for s in tenant.senders.values()):
            errors["sender"] = ["The selected sender is invalid."]
        bad = [v for v in VARIABLE.findall(str(p.get("body") or "")) if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v)]
        if bad:
            errors["body"] = [f"Template variables are alphabetic or alphanumeric: {', '.join(bad)}."]
        template_id = str(p.get("template_id") or "")
        if any(t["template_id"] == template_id and t is not row for t in tenant.templates.values()):
            errors["template_id"] = ["The template id has already been taken."]
        if "is_english" in p and str(p["is_english"]) not in ("0", "1"):
            errors["is_english"] = ["The selected is english is invalid."]
        return errors

    @staticmethod
    def _unsubscriber_errors(tenant, p, row) -> dict[str, list[str]]:
        errors = _required(p, ("receiver",))
        kind = str(p.get("type") or "all")
        if kind not in UNSUBSCRIBER_TYPES:
            errors["type"] = ["The selected type is invalid."]
        elif kind != "all" and not str(p.get("value") or "").strip():
            errors["value"] = ["The value field is required unless type is all."]
        if p.get("receiver") and not 8 <= len(digits(p["receiver"])) <= 15:
            errors["receiver"] = ["The receiver must be a mobile number with its country code."]
        return errors


def _required(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, list[str]]:
    return {n: [f"The {n.replace('_', ' ')} field is required."] for n in names if not str(params.get(n) or "").strip()}


def _matches(row: dict[str, Any], params: dict[str, Any]) -> bool:
    """`filter[field]=value` on lists (the iso filter reads iso or iso_code)."""
    for key, value in params.items():
        if key.startswith("filter[") and key.endswith("]"):
            name = key[7:-1]
            actual = row.get(name, row.get("iso_code") if name == "iso" else None)
            if str(actual) != str(value):
                return False
    return True


def _sign(webhook_id: str, body: bytes) -> str:
    return hmac.new(str(webhook_id).encode(), body, hashlib.sha256).hexdigest()
