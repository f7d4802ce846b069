"""What the MOBtexting emulation's parts share: the per-token tenant, the vendor's response envelopes,
its Laravel-style pagination, its clock (IST) and SMS part counting."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from providers.sandbox.core import SandboxResponse, json_response

IST = timezone(timedelta(hours=5, minutes=30), "IST")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
API = "/api/v2"
NON_DIGITS = re.compile(r"\D")
# GSM 03.38 basic set and the extension characters that take two septets.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(slots=True)
class Message:
    """One accepted SMS as the pull API and the DLR push see it."""

    id: str
    group_id: str
    mobile: str
    custom: str
    sender: str
    service: str
    length: int
    units: int
    submitted_at: str  # IST wall clock
    scheduled_until: float = 0.0  # monotonic; SCHEDULED until then
    due: float | None = None  # monotonic time of the final report; None: never (promotional, post-DLT)
    final_status: str = ""
    delivered_at: str = ""


@dataclass
class Tenant:
    """Everything stored under one access token (the vendor keeps accounts apart by token)."""

    token: str
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    senders: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsubscribers: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    by_cid: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    by_group: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    by_mobile: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    by_date: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    repeats: dict[tuple[str, str, bytes], list[float]] = field(default_factory=dict)  # [window start, count]
    get_window: list[int] = field(default_factory=lambda: [0, 0])  # [window number, GET requests in it]
    sms_window: list[int] = field(default_factory=lambda: [0, 0])  # [minute, numbers accepted in it]
    credits: float | None = None  # None: unmetered; else each SMS part accepted costs one credit (control `balance`)


def ok(message: str, data: Any = None, status: int = 200, **extra: Any) -> SandboxResponse:
    """The CRUD envelope {"code", "status": "OK", "message", "data"} [seed 001:163-173]."""
    return json_response(status, {"code": status, "status": "OK", "message": message, "data": data, **extra})


def error(status: int, message: str, errors: dict[str, list[str]] | None = None, headers=None) -> SandboxResponse:
    """The error shape: status, code and message [seed 001:95-101], and Laravel's field errors on 422."""
    body: dict[str, Any] = {"status": status, "code": status, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(status, body, headers)


def invalid(errors: dict[str, list[str]]) -> SandboxResponse:
    return error(422, "The given data was invalid.", errors)


def paginate(
    rows: list[Any], *, page: int, per_page: int, base: str, message: str = "OK", render: Callable | None = None
) -> SandboxResponse:
    """One page with top-level links/meta; like the vendor's, the links drop the filters [public].
    `render` turns the page's items into rows, so that only one page is ever rendered."""
    total = len(rows)
    last = max(1, math.ceil(total / per_page))
    page = min(max(1, page), last) if total else 1
    start = (page - 1) * per_page
    chunk = rows[start : start + per_page]
    chunk = render(chunk) if render else chunk

    def link(n: int | None) -> str | None:
        return f"{base}?page={n}" if n else None

    meta_links = [{"url": link(page - 1 if page > 1 else None), "label": "&laquo; Previous", "active": False}]
    meta_links += [{"url": link(n), "label": str(n), "active": n == page} for n in range(1, min(last, 10) + 1)]
    meta_links.append({"url": link(page + 1 if page < last else None), "label": "Next &raquo;", "active": False})
    return ok(
        message,
        chunk,
        links={
            "first": link(1),
            "last": link(last),
            "prev": link(page - 1 if page > 1 else None),
            "next": link(page + 1 if page < last else None),
        },
        meta={
            "current_page": page,
            "from": start + 1 if chunk else None,
            "last_page": last,
            "links": meta_links,
            "path": base,
            "per_page": per_page,
            "to": start + len(chunk) if chunk else None,
            "total": total,
        },
    )


def digits(value: Any) -> str:
    return NON_DIGITS.sub("", str(value or ""))


def is_indian(mobile: str) -> bool:
    return len(mobile) == 12 and mobile.startswith("91")


def crud_time(moment: datetime | None = None) -> str:
    """Laravel's timestamp format, as the CRUD rows carry it (UTC)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def sms_parts(text: str, kind: str = "A") -> tuple[int, int]:
    """(length, units): GSM-7 160/153 (extension characters count double), UCS-2 70/67 [seed 001:1111-1127]."""
    if kind != "U" and all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        length = len(text) + sum(c in GSM_EXTENSION for c in text)
        return len(text), 1 if length <= 160 else math.ceil(length / 153)
    if kind == "N":
        return len(text), 1 if len(text) <= 160 else math.ceil(len(text) / 153)  # the vendor sends "?" instead
    length = len(text.encode("utf-16-le")) // 2
    return len(text), 1 if length <= 70 else math.ceil(length / 67)


def page_number(value: Any) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1
