"""Sync MOBtexting's sender ID, DLT template and opt-out registries with Herald's Sender, DltTemplate and
Unsubscriber rows: every hour from beat (`registries_sync_all`), so that an opt-out given at the vendor holds for
every account without anyone pressing a button, and in a worker from the account page's button or the API.

A registry's sync pulls the remote registry (matching rows by remote id, else by name or DLT template id, so that a
push whose answer was lost is adopted on the next run), then pushes the local rows MOBtexting does not
have yet and stores the ids it gives them. Its writes are set-based and happen under a lock of the account's syncs,
so two syncs of one account never interleave (senders and templates in one transaction; opt-outs, whose list can
take minutes to read, statement by statement). Permanent vendor errors become a
ValidationError naming what failed; retryable ones (ConnectionFailed, Throttled) propagate. `registries_sync`
runs the three and records how it went on the account, unless a sync of the account is running already (then it
leaves the account to that one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.models import Unsubscriber
from contacts.phones import InvalidPhone, normalize_address
from providers.backends import get_backend
from providers.backends.base import Account, BackendError, RemoteSender, RemoteTemplate, RemoteUnsubscriber
from providers.models import Channel, DltTemplate, ProviderAccount, Sender
from providers.services import dlt_templates_link_headers

logger = logging.getLogger("herald.providers")

SYNCABLE_KINDS = (ProviderAccount.Kind.MOBTEXTING,)
SYNC_LOCK_NAMESPACE = 0x53594E43  # "SYNC": a transaction advisory lock (namespace, account id) per registry syncing
SYNC_RUNNING_NAMESPACE = 0x53594E52  # "SYNR": a session advisory lock (namespace, account id) per registries_sync
SENDER_SYNC_FIELDS = ["status", "service", "country", "dlt_entity_id", "dlt_entity_name", "remote_id", "updated_at"]
TEMPLATE_SYNC_FIELDS = ["account", "name", "body", "type", "status", "is_english", "remote_id", "updated_at"]


@transaction.atomic
def senders_sync(*, account_id: int) -> dict[str, int]:
    """Pull the account's sender IDs from MOBtexting and register the local ones it lacks."""
    account, remote_account, backend = _syncable(account_id)
    remote = _vendor(backend.list_senders, remote_account, what="list the sender IDs")
    local = list(Sender.objects.filter(account=account, channel=Channel.SMS))
    remote_ids = {r.remote_id for r in remote}
    by_remote_id = {s.remote_id: s for s in local if s.remote_id}
    by_name = {s.name.upper(): s for s in local if not s.remote_id or s.remote_id not in remote_ids}
    created, updated, matched = [], [], set()
    for item in remote:
        sender = by_remote_id.get(item.remote_id) or by_name.get(item.name.upper())
        if sender is None:
            created.append(Sender(account=account, channel=Channel.SMS, name=item.name, **_sender_fields(item)))
        elif sender.pk not in matched:
            matched.add(sender.pk)
            if _assign(sender, _sender_fields(item)):
                updated.append(sender)
    pushed = []
    for sender in local:
        if sender.pk in matched or (sender.remote_id and sender.remote_id in remote_ids):
            continue
        registered = _vendor(
            backend.create_sender,
            remote_account,
            _remote_sender(sender),
            what=f"register sender {sender.name}",
            item=True,
        )
        _assign(sender, _sender_fields(registered))
        pushed.append(sender)
    Sender.objects.bulk_create(created)
    dlt_templates_link_headers(sender_ids=[sender.pk for sender in created])
    Sender.objects.bulk_update(updated + pushed, SENDER_SYNC_FIELDS)
    return {"created": len(created), "updated": len(updated), "pushed": len(pushed)}


@transaction.atomic
def templates_sync(*, account_id: int) -> dict[str, int]:
    """Pull the account's DLT templates from MOBtexting (linking them to their sender) and register the local
    ones it lacks under their first sender."""
    account, remote_account, backend = _syncable(account_id)
    remote = _vendor(backend.list_templates, remote_account, what="list the DLT templates")
    dlt_ids = {r.dlt_template_id for r in remote if r.dlt_template_id}
    candidates = DltTemplate.objects.filter(Q(account=account) | Q(account__isnull=True, dlt_template_id__in=dlt_ids))
    local = list(candidates.prefetch_related("senders"))
    others = set(
        DltTemplate.objects.filter(dlt_template_id__in=dlt_ids).exclude(account=account).exclude(account__isnull=True)
        .values_list("dlt_template_id", flat=True)
    )  # fmt: skip
    remote_ids = {r.remote_id for r in remote}
    by_remote_id = {t.remote_id: t for t in local if t.remote_id and t.account_id == account.pk}
    by_dlt_id = {t.dlt_template_id: t for t in local}
    senders = {s.name: s for s in Sender.objects.filter(account=account, channel=Channel.SMS)}
    created, updated, matched, links = [], [], set(), []
    for item in remote:
        if item.dlt_template_id in others:
            logger.warning("DLT template %s belongs to another account; not synced.", item.dlt_template_id)
            continue
        template = by_remote_id.get(item.remote_id) or by_dlt_id.get(item.dlt_template_id)
        if template is None:
            template = DltTemplate(dlt_template_id=item.dlt_template_id, **_template_fields(item, account))
            created.append(template)
        elif template.pk in matched:
            continue
        else:
            matched.add(template.pk)
            if _assign(template, _template_fields(item, account)):
                updated.append(template)
        if item.sender in senders:
            links.append((template, senders[item.sender]))
    pushed = []
    for template in local:
        if template.account_id != account.pk or template.pk in matched or template.remote_id in remote_ids:
            continue
        registered = _vendor(
            backend.create_template, remote_account, _remote_template(template, account),
            what=f"register DLT template {template.dlt_template_id}", item=True,
        )  # fmt: skip
        _assign(template, _template_fields(registered, account))
        pushed.append(template)
    DltTemplate.objects.bulk_create(created)
    DltTemplate.objects.bulk_update(updated + pushed, TEMPLATE_SYNC_FIELDS)
    through = DltTemplate.senders.through
    through.objects.bulk_create([through(dlttemplate_id=t.pk, sender_id=s.pk) for t, s in links], ignore_conflicts=True)
    return {"created": len(created), "updated": len(updated), "pushed": len(pushed)}


UNSUBSCRIBER_PUSH_LIMIT = 1000  # one vendor request each (a push or a removal): a run makes at most this many


def unsubscribers_sync(*, account_id: int, push_limit: int = UNSUBSCRIBER_PUSH_LIMIT) -> dict[str, int]:
    """Pull the vendor's opt-outs into Herald, push Herald's phone opt-outs it lacks, and take off its list those
    that staff removed in Herald (UnsubscriberRemoval) after the vendor recorded them.

    MOBtexting has no channel scope and its list holds phone numbers, so channel-scoped and e-mail opt-outs stay in
    Herald only (Herald applies them itself at every send). Without the removals, an opt-out lifted in Herald came
    back with the next sync, from the vendor's list, and the vendor kept refusing the number. One the vendor recorded
    after the removal (the person opted out again there) is pulled as any other; so is one whose time it does not
    say.

    Unlike the other registries' syncs, not one transaction: reading a long list at the vendor's pace takes minutes
    (10 for 90,000 opt-outs), and a transaction open that long (holding a transaction id, from locking the account's
    row) kept PostgreSQL from cleaning up any table meanwhile, the message table's report updates included. Each
    write is a statement of its own, and two syncs of one account wait for each other on a session lock instead
    (the one registries_sync holds: taken again from its own connection, it does not wait)."""
    with _running_lock(account_id, wait=True):
        return _unsubscribers_sync(account_id, push_limit)


@contextmanager
def _running_lock(account_id: int, *, wait: bool):
    """The account's running lock (SYNC_RUNNING_NAMESPACE), a session lock of this connection, waited for or only
    tried; yields whether it is held, and lets it go after."""
    with connection.cursor() as cursor:
        function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        cursor.execute(f"SELECT {function}(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account_id])
        if not (wait or cursor.fetchone()[0]):
            yield False
            return
        try:
            yield True
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account_id])


def _unsubscribers_sync(account_id: int, push_limit: int) -> dict[str, int]:
    account, remote_account, backend = _with_backend(ProviderAccount.objects.filter(pk=account_id).first())
    remote = _vendor(backend.list_unsubscribers, remote_account, what="list its opt-outs")
    listed: dict[tuple[str, str, str], RemoteUnsubscriber] = {}
    for item in remote:
        try:
            listed[(normalize_address(item.address), item.scope, item.value)] = item
        except InvalidPhone:
            continue
    keys = list(listed)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT r.address, r.scope, r.value, max(r.removed_at) FROM contacts_unsubscriberremoval r
               WHERE r.address = ANY(%s) AND NOT EXISTS (
                   SELECT 1 FROM contacts_unsubscriber u
                   WHERE u.address = r.address AND u.scope = r.scope AND u.value = r.value)
               GROUP BY 1, 2, 3""",
            [sorted({address for address, _, _ in keys})],
        )
        removed = {(address, scope, value): at for address, scope, value, at in cursor.fetchall()}
    lifted = {
        key
        for key, item in listed.items()
        if key in removed and item.created_at is not None and item.created_at <= removed[key]
    }
    taken_off = sorted(lifted)[:push_limit]  # (one past the limit is taken off by the next run, not pulled meanwhile)
    for key in taken_off:
        _vendor(
            backend.delete_unsubscriber,
            remote_account,
            listed[key].remote_id,
            what=f"remove the opt-out of {key[0]}",
            item=True,
        )
    calls = len(taken_off)
    kept = [key for key in keys if key not in lifted]
    addresses, scopes, values = (list(column) for column in zip(*kept, strict=True)) if kept else ([], [], [])
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
               SELECT a, s, v, 'provider', %s, now() FROM unnest(%s::text[], %s::text[], %s::text[]) AS r(a, s, v)
               ON CONFLICT (address, scope, value) DO NOTHING""",
            [f"on {account.name}'s suppression list", addresses, scopes, values],
        )
        pulled = cursor.rowcount

    pushed = 0
    local = (
        Unsubscriber.objects.exclude(address__contains="@")
        .exclude(scope=Unsubscriber.Scope.CHANNEL)
        .order_by("id")
        .values_list("address", "scope", "value")
    )
    for row in local.iterator(chunk_size=2000):
        if calls >= push_limit:  # the next run carries on
            break
        if row in listed:
            continue
        _vendor(
            backend.create_unsubscriber,
            remote_account,
            RemoteUnsubscriber(*row),
            what=f"add the opt-out of {row[0]}",
            item=True,
        )
        calls += 1
        pushed += 1
    return {"pulled": pulled, "pushed": pushed, "removed": len(taken_off)}


@dataclass(frozen=True)
class SyncResult:
    ok: bool | None  # None: not run, another sync of the account is running
    message: str  # what was synced, counted, or what failed


def registries_sync_start(*, account_id: int) -> None:
    """Sync the account's registries in the background (staff's button): a sync makes up to a thousand vendor
    requests, minutes at a vendor's pace, past a web request's time. Until it ends the account says it is syncing."""
    from providers.tasks import registries_sync_account_task

    _refuse_unsyncable(ProviderAccount.objects.filter(pk=account_id).first())
    ProviderAccount.objects.filter(pk=account_id).update(
        last_sync_at=timezone.now(), last_sync_ok=None, last_sync_message=""
    )
    transaction.on_commit(lambda: registries_sync_account_task.delay(account_id), robust=True)


# Longer than a sync runs: its lists at the vendor's pace (22 minutes for 200,000 opt-outs, 10 more of waiting on the
# GET limit at most) and its 1,000 vendor requests.
SYNC_STALLED_AFTER = timedelta(minutes=45)


def registries_sync_stalled(account: ProviderAccount) -> bool:
    """Whether the account has said "syncing" for longer than a sync runs: no worker has taken it (none runs, or all
    are busy), or its worker stopped and none took it up again. The next hourly sync, or the button, runs again."""
    started = account.last_sync_at
    return account.last_sync_ok is None and started is not None and timezone.now() - started > SYNC_STALLED_AFTER


def registries_sync(*, account_id: int) -> SyncResult:
    """Sync the account's sender IDs, DLT templates and opt-outs, each in its own transaction, and record on the
    account when and how it went, for its health panel. A row the vendor refuses (a sender it will not register)
    stops its own registry only, so that opt-outs still sync; a refused key or an unreachable vendor stops the rest.
    Failures are said, not raised.

    A sync of an account already syncing (the button pressed during the hourly one, an hourly one still running an
    hour on, or the broker's second delivery of a sync past its visibility timeout) is left to that one, which
    records how it went: waiting for it would hold a worker process idle, and then sync again."""
    with _running_lock(account_id, wait=False) as held:
        if not held:
            return SyncResult(None, "A sync of this account is already running; it says how it went.")
        return _registries_sync(account_id)


def _registries_sync(account_id: int) -> SyncResult:
    said, ok = [], True
    for what, part in (
        ("sender IDs", senders_sync),
        ("DLT templates", templates_sync),
        ("opt-outs", unsubscribers_sync),
    ):
        try:
            counts = part(account_id=account_id)
        except (ValidationError, BackendError) as exc:  # BackendError: not reached or throttled, this part not kept
            ok = False
            said.append((exc.message if isinstance(exc, BackendError) else " ".join(exc.messages)).rstrip("."))
            if not isinstance(exc, ItemRefused):  # the account itself (its key, the vendor down): the next fails alike
                break
        else:
            said.append(f"{what} synced ({', '.join(f'{n} {outcome}' for outcome, n in counts.items())})")
    result = SyncResult(ok, "; ".join(said) + ".")
    ProviderAccount.objects.filter(pk=account_id).update(
        last_sync_at=timezone.now(), last_sync_ok=result.ok, last_sync_message=result.message[:1000]
    )
    return result


def registries_sync_all() -> dict[str, int]:
    """Sync every active account that keeps registries (beat, hourly); one that fails does not stop the others."""
    accounts = ProviderAccount.objects.filter(kind__in=SYNCABLE_KINDS, is_active=True).order_by("pk")
    outcomes = {"synced": 0, "failed": 0, "running": 0}
    for account_id in accounts.values_list("pk", flat=True):
        result = registries_sync(account_id=account_id)
        outcomes["running" if result.ok is None else "synced" if result.ok else "failed"] += 1
        if result.ok is False:
            logger.warning("Registry sync of provider account %s failed: %s", account_id, result.message)
    return outcomes


def _syncable(account_id: int) -> tuple[ProviderAccount, Account, Any]:
    """The account, for a sync in this transaction. Two syncs of one account wait for each other (an advisory lock),
    and the account cannot be deleted meanwhile (FOR KEY SHARE). Its row is not locked for update: that held up,
    for the whole sync and its vendor requests, every delivery-report webhook of the account (each notes the time on
    the row) and any edit of it."""
    query = """WITH held AS (SELECT pg_advisory_xact_lock(%s::int, %s::int))
               SELECT a.* FROM providers_provideraccount a, held WHERE a.id = %s FOR KEY SHARE OF a"""
    return _with_backend(
        next(iter(ProviderAccount.objects.raw(query, [SYNC_LOCK_NAMESPACE, account_id, account_id])), None)
    )


def _with_backend(account: ProviderAccount | None) -> tuple[ProviderAccount, Account, Any]:
    """The account (refused unless it syncs), as its backend takes it, and its backend."""
    _refuse_unsyncable(account)
    return account, account.as_backend_account(), get_backend(account.kind)


def _refuse_unsyncable(account: ProviderAccount | None) -> None:
    if account is None:
        raise ValidationError({"account": "No such provider account."})
    if account.kind not in SYNCABLE_KINDS:
        kind = account.get_kind_display()
        raise ValidationError(
            {"account": f"{kind} keeps no sender, template or opt-out registry; only MOBtexting syncs."}
        )


class ItemRefused(ValidationError):
    """The vendor refused one row pushed to it (a sender it will not register): that registry's sync stops there,
    the others still run."""


def _vendor(call: Callable, *args, what: str, item: bool = False):
    """Call the backend; a permanent vendor error becomes a ValidationError saying what could not be done (an
    ItemRefused for a call about one `item`)."""
    try:
        return call(*args)
    except BackendError as exc:
        if exc.retryable:
            raise
        refused = ItemRefused if item else ValidationError
        raise refused({"account": f"MOBtexting could not {what}: {exc.message}"}) from None


def _assign(row, values: dict[str, Any]) -> bool:
    """Set the values that differ (and updated_at, which bulk_update leaves alone); True when anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = timezone.now()
    return changed


def _sender_fields(item: RemoteSender) -> dict[str, Any]:
    return {
        "status": item.status,
        "service": item.service,
        "country": item.country,
        "dlt_entity_id": item.entity_id,
        "dlt_entity_name": item.entity_name,
        "remote_id": item.remote_id,
    }


def _template_fields(item: RemoteTemplate, account: ProviderAccount) -> dict[str, Any]:
    return {
        "account_id": account.pk,
        "name": item.name,
        "body": item.body,
        "type": item.type or DltTemplate.Type.TRANSACTIONAL,
        "status": item.status,
        "is_english": item.is_english,
        "remote_id": item.remote_id,
    }


def _remote_sender(sender: Sender) -> RemoteSender:
    return RemoteSender(
        remote_id="",
        name=sender.name,
        status=sender.status,
        service=sender.service,
        country=sender.country,
        entity_id=sender.dlt_entity_id,
        entity_name=sender.dlt_entity_name,
    )


def _remote_template(template: DltTemplate, account: ProviderAccount) -> RemoteTemplate:
    own = sorted((s for s in template.senders.all() if s.account_id == account.pk), key=lambda s: s.name)
    sender = own[0] if own else None
    if sender is None:
        raise ValidationError(
            {"senders": f"DLT template {template.dlt_template_id} has no sender to register it under."}
        )
    return RemoteTemplate(
        remote_id="",
        name=template.name,
        dlt_template_id=template.dlt_template_id,
        body=template.body,
        type=template.type,
        sender=sender.name,
        status=template.status,
        is_english=template.is_english,
    )
