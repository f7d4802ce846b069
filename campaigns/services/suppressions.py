"""Opt-outs kept in step with a vendor's suppression list (MOBtexting), both ways.

Lives in campaigns because it joins the two sides: contacts' Unsubscriber rows and a provider's
registry. MOBtexting has no channel scope and its list holds phone numbers, so channel-scoped and
e-mail suppressions stay in Herald only (Herald applies them itself at every send).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from contacts.models import Unsubscriber
from contacts.phones import InvalidPhone, normalize_address
from providers.backends import get_backend
from providers.backends.base import BackendError, RemoteUnsubscriber
from providers.models import ProviderAccount

PUSH_LIMIT = 1000  # one vendor request each: a run pushes at most this many, the next run carries on


@transaction.atomic
def unsubscribers_sync(*, account_id: int, push_limit: int = PUSH_LIMIT) -> dict[str, int]:
    """Pull the vendor's opt-outs into Herald and push Herald's phone opt-outs the vendor lacks."""
    account = ProviderAccount.objects.select_for_update().filter(pk=account_id).first()
    if account is None or account.kind != ProviderAccount.Kind.MOBTEXTING:
        raise ValidationError({"account": "Only MOBtexting keeps a suppression list to sync with."})
    backend, remote_account = get_backend(account.kind), account.as_backend_account()
    try:
        remote = backend.list_unsubscribers(remote_account)
    except BackendError as exc:
        raise ValidationError({"account": f"MOBtexting could not list its opt-outs: {exc.message}"}) from None

    known = set()
    for item in remote:
        try:
            known.add((normalize_address(item.address), item.scope, item.value))
        except InvalidPhone:
            continue
    addresses, scopes, values = (list(column) for column in zip(*known, strict=True)) if known else ([], [], [])
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
        if row in known or pushed >= push_limit:
            continue
        try:
            backend.create_unsubscriber(remote_account, RemoteUnsubscriber(*row))
        except BackendError as exc:
            raise ValidationError({"account": f"MOBtexting refused the opt-out of {row[0]}: {exc.message}"}) from None
        known.add(row)
        pushed += 1
    return {"pulled": pulled, "pushed": pushed}
