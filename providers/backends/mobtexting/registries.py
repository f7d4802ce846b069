"""MOBtexting's registries: sender IDs (DLT headers), DLT templates and unsubscribers [seed 001:1141-1896].

Rows come back in the CRUD envelope {"code", "status", "message", "data", "links", "meta"}, 15 a page; the lists
are read at `REGISTRY_PACE`, so that a long one (thousands of opt-outs) neither fails on the vendor's GET limit
nor takes the report poll's share of it.
"""

from __future__ import annotations

from typing import Any

from providers.backends.base import (
    Account,
    RemoteSender,
    RemoteTemplate,
    RemoteUnsubscriber,
    ResponseStatusError,
    ResponseUnparseable,
)
from providers.backends.mobtexting.client import REGISTRY_PACE, call, digits, first, pages, parse_time, receiver_e164

# 0 pending, 1 approved, 2 rejected [seed 001:1143-1146]; templates use the same codes.
REVIEW_STATUS = {"0": "pending", "1": "approved", "2": "rejected"}
REVIEW_CODE = {name: code for code, name in REVIEW_STATUS.items()}
TEMPLATE_TYPES = {"transactional": "T", "promotional": "P", "service implicit": "SI", "service explicit": "SE"}
# Herald's suppression scope → the vendor's unsubscriber type (create accepts tag|product|sender|all).
UNSUBSCRIBER_TYPES = {"all": "all", "channel": "all", "sender": "sender", "tag": "tag", "service": "product"}
UNSUBSCRIBER_SCOPES = {"all": "all", "sender": "sender", "tag": "tag", "product": "service", "service": "service"}


def list_senders(account: Account) -> list[RemoteSender]:
    return [sender_from_row(row) for row in pages(account, "sms/senders", {}, pace=REGISTRY_PACE)]


def create_sender(account: Account, sender: RemoteSender) -> RemoteSender:
    """Register a sender ID; name, service, country_code, entity_id and entity_name are all required."""
    body = {
        "name": sender.name,
        "service": sender.service,
        "country_code": sender.country,
        "entity_id": sender.entity_id,
        "entity_name": sender.entity_name,
    }
    return sender_from_row(_created(call(account, "POST", "sms/senders", json=body)))


def list_templates(account: Account) -> list[RemoteTemplate]:
    return [template_from_row(row) for row in pages(account, "sms/templates", {}, pace=REGISTRY_PACE)]


def create_template(account: Account, template: RemoteTemplate) -> RemoteTemplate:
    """Register a DLT template under an approved sender (variables written {{name}})."""
    body = {
        "sender": template.sender,
        "name": template.name,
        "body": template.body,
        "template_id": template.dlt_template_id,
        "type": template.type,
    }
    return template_from_row(_created(call(account, "POST", "sms/templates", json=body)))


def list_unsubscribers(account: Account) -> list[RemoteUnsubscriber]:
    return [
        unsubscriber_from_row(row) for row in pages(account, "sms/suppressions/unsubscribers", {}, pace=REGISTRY_PACE)
    ]


def create_unsubscriber(account: Account, unsubscriber: RemoteUnsubscriber) -> RemoteUnsubscriber:
    kind = UNSUBSCRIBER_TYPES.get(unsubscriber.scope, "all")
    body = {"receiver": digits(unsubscriber.address), "type": kind}
    if kind != "all":
        body["value"] = unsubscriber.value
    return unsubscriber_from_row(_created(call(account, "POST", "sms/suppressions/unsubscribers", json=body)))


def delete_unsubscriber(account: Account, remote_id: str) -> None:
    """Take one opt-out off the list by its id [seed 001:1843-1872]; one that is gone already is no error."""
    try:
        call(account, "DELETE", f"sms/suppressions/unsubscribers/{remote_id}")
    except ResponseStatusError as exc:
        if exc.status_code != 404:
            raise


def sender_from_row(row: dict[str, Any]) -> RemoteSender:
    return RemoteSender(
        remote_id=first(row, "id"),
        name=first(row, "name", "sender"),
        status=_review_status(row),
        service=first(row, "service"),
        country=first(row, "iso_code", "country_code", "iso").upper(),
        entity_id=first(row, "entity_id"),
        entity_name=first(row, "entity_name"),
    )


def template_from_row(row: dict[str, Any]) -> RemoteTemplate:
    kind = first(row, "type") or TEMPLATE_TYPES.get(first(row, "template_type").lower(), "")
    return RemoteTemplate(
        remote_id=first(row, "id"),
        name=first(row, "name", "alias"),
        dlt_template_id=first(row, "template_id"),
        body=first(row, "body"),
        type=kind.upper(),
        sender=first(row, "sender"),
        status=_review_status(row),
        is_english=first(row, "is_english") not in ("0", "False", "false"),
    )


def unsubscriber_from_row(row: dict[str, Any]) -> RemoteUnsubscriber:
    scope = UNSUBSCRIBER_SCOPES.get(first(row, "type").lower(), "all")
    return RemoteUnsubscriber(
        address=receiver_e164(first(row, "receiver"), first(row, "iso")),
        scope=scope,
        value="" if scope == "all" else first(row, "value"),
        remote_id=first(row, "id"),
        created_at=parse_time(first(row, "created_at")),
    )


def _review_status(row: dict[str, Any]) -> str:
    value = first(row, "status").lower()
    if value in REVIEW_CODE:
        return value
    return REVIEW_STATUS.get(value, "pending")


def _created(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict) or not first(data, "id"):
        raise ResponseUnparseable(f"mobtexting saved a record without returning it: {str(body)[:200]}")
    return data
