"""HTTP plumbing shared by the MOBtexting backend and its registry calls: auth header, error bodies,
JSON envelopes and the two pagination styles, plus the number and time formats the vendor uses."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers

from providers.backends.base import (
    Account,
    ConfigError,
    ConnectionFailed,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    Throttled,
    json_body,
    request,
    scrub,
)

KIND = "mobtexting"
IST = timezone(timedelta(hours=5, minutes=30), "IST")  # the vendor's clock; India has no DST
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PAGES = 10_000  # a guard against a paginator that never ends
_OK = (None, "OK", "ok", "success", 200, "200")
# Insufficient balance [seed 001:95-99: a 4xx "caused by … insufficient balance"]: an account problem, so that
# the engine pauses the campaign rather than fail every further frame alike (ConfigError).
PAYMENT_REQUIRED = 402
_NON_DIGITS = re.compile(r"\D")


def url(account: Account, path: str) -> str:
    return f"{account.base_url}/{path}"


def headers(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.credential('api_key')}", "Accept": "application/json"}


def vendor_error(response) -> tuple[str, str]:
    """(code, message) from an error body {status, code, message[, errors]} [seed 001:95-114]."""
    return error_fields(response.json(), response.status_code)


def error_fields(body: dict[str, Any], fallback_code: Any) -> tuple[str, str]:
    """(code, message) of an error envelope, its field errors spelled out; `fallback_code` when it has no number."""
    code = body.get("code") or body.get("status") or fallback_code
    if not str(code).isdigit():
        code = fallback_code
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        details = "; ".join(
            f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}" for field, msgs in errors.items()
        )
        message = f"{message} ({details})" if message else details
    return str(code), message


def call(account: Account, method: str, path: str, *, params=None, json=None, stored: bool = False) -> dict[str, Any]:
    """One API call; 400/422 (the request's content) become Rejected; a 402 (insufficient balance) is ConfigError.
    A 2xx error envelope is read by its code as that HTTP status would be (401/403 the account's credentials, 429
    throttled, 5xx the vendor's trouble), else Rejected. `stored`: see `json_body`."""
    try:
        response = request(
            account,
            method,
            url(account, path),
            params=params,
            json=json,
            headers=headers(account),
            vendor_error=vendor_error,
        )
    except ResponseStatusError as exc:
        if exc.status_code == PAYMENT_REQUIRED or exc.code == str(PAYMENT_REQUIRED):
            raise ConfigError(exc.message, field="", code=exc.code, status_code=exc.status_code) from None
        if exc.status_code in (400, 422):
            raise Rejected(exc.message, code=exc.code, status_code=exc.status_code) from None
        raise
    body = json_body(response, KIND, stored=stored)
    if not isinstance(body, dict):
        raise ResponseUnparseable(f"{KIND} answered with JSON that is not an object: {str(body)[:200]}")
    if body.get("status") not in _OK:
        code, text = error_fields(body, body.get("code") or body.get("status"))
        text = scrub((text or str(body))[:300], account.secrets)
        message = f"{KIND} refused the request: {text}"
        # The envelope's code "represents the HTTP code" [seed 001:95-101]: it means what that status would.
        status = int(code) if str(code).isdigit() and 100 <= int(code) <= 599 else None
        if status == PAYMENT_REQUIRED:
            raise ConfigError(message, field="", code=str(code))
        if status == 429:
            raise Throttled(message, code=str(code), status_code=status)
        if status is not None and status >= 500:
            raise ConnectionFailed(message, code=str(code), status_code=status)
        if status in (401, 403, 404):  # the account to fix (the campaign pauses); 404: nothing found
            raise ResponseStatusError(message, code=str(code), status_code=status)
        raise Rejected(message, code=str(code))
    return body


@dataclass(frozen=True)
class Pace:
    """How a long listing spends the key's GET requests, which MOBtexting limits to 1,000 a minute (a 429 past
    them) and which the delivery-report poll needs too [seed 001:81]: at most `per_minute` pages a minute, and on
    a 429 it waits as long as the vendor says (Retry-After, else a minute) and asks for the same page again, until
    it has waited `patience` seconds in all."""

    per_minute: int
    patience: float


# The registries list 15 rows a page [seed 001:1141-1896]: 600 pages a minute is 9,000 opt-outs, and leaves the
# poll 400 GETs of the minute.
REGISTRY_PACE = Pace(per_minute=600, patience=600.0)


def pages(
    account: Account, path: str, params: dict[str, Any], *, stored: bool = False, pace: Pace | None = None
) -> Iterator[dict[str, Any]]:
    """Every row of a paginated list, page after page (a 404 means no rows). `stored`: see `json_body`. Without a
    `pace` the pages are asked for back to back and a 429 is raised (Throttled); with one, see `Pace`."""
    page, asked_at, waited = 1, None, 0.0
    while page <= MAX_PAGES:
        if pace is not None and asked_at is not None:
            time.sleep(max(0.0, asked_at + 60 / pace.per_minute - time.monotonic()))
        asked_at = time.monotonic()
        try:
            body = call(account, "GET", path, params=params if page == 1 else {**params, "page": page}, stored=stored)
        except Throttled as exc:
            wait = max(1.0, exc.retry_after if exc.retry_after is not None else 60.0)  # "Retry-After: 0" too
            if pace is None or waited + wait > pace.patience:
                raise
            time.sleep(wait)
            waited += wait
            continue
        except ResponseStatusError as exc:
            if exc.status_code == 404:
                return
            raise
        rows, more = rows_and_more(body)
        yield from rows
        if not (rows and more):
            return
        page += 1


def rows_and_more(body: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Rows and whether another page follows: top-level links/meta, or the older paginator nested in data."""
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        more = bool(data.get("next_page_url")) or _int(data.get("current_page")) < _int(data.get("last_page"))
        data = data["data"]
    elif isinstance(data, list):
        links, meta = body.get("links") or {}, body.get("meta") or {}
        more = bool(links.get("next")) or _int(meta.get("current_page")) < _int(meta.get("last_page"))
    elif isinstance(data, dict) and data:
        return [data], False  # a single record
    elif data in (None, {}, ""):
        return [], False
    else:
        raise ResponseUnparseable(f"{KIND} answered a list request without rows: {str(body)[:200]}")
    return [row for row in data if isinstance(row, dict)], more


def digits(address: str) -> str:
    """The vendor's number format: digits with the country code, no + [seed 001:1089-1094]."""
    return _NON_DIGITS.sub("", address or "")


def e164(number: Any) -> str:
    value = digits(str(number or ""))
    return f"+{value}" if value else ""


def receiver_e164(number: Any, iso: Any = "") -> str:
    """An opt-out's `receiver` in E.164. MOBtexting writes it with the country code ("9176xxxxxxxx" [seed
    001:1710]), but a national number ("9876543210", "09876543210") also reaches it from people and imports, and
    read as international it would be another country's (+98…, Iran). So a number is read in the record's `iso`
    country when the record has one, and otherwise a 10-digit number or one with a trunk 0 in India's (the
    vendor's market); anything else, or what phonenumbers finds invalid either way, keeps its digits as written."""
    value = digits(str(number or ""))
    if not value:
        return ""
    region = str(iso or "").strip().upper()
    national_first = bool(region) or len(value) == 10 or value.startswith("0")
    readings = [(value, region or "IN"), ("+" + value, None)]
    for text, in_region in readings if national_first else readings[::-1]:
        try:
            parsed = phonenumbers.parse(text, in_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return f"+{value}"


def vendor_time(moment: datetime) -> str:
    """A datetime as the vendor writes it (IST wall clock); naive values are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(IST).strftime(TIME_FORMAT)


def parse_time(value: Any) -> datetime | None:
    """'2021-04-09 16:27:51' (IST) or ISO 8601; None when empty or unreadable."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=IST)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=IST)


def first(item: dict[str, Any], *names: str) -> str:
    """The first non-empty value among `names`, as text."""
    for name in names:
        value = item.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
