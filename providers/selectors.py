"""Reads about providers that hot paths share."""

from __future__ import annotations

import time

from django.db.models import QuerySet

from providers.backends import get_backend
from providers.models import ProviderAccount

_ACCOUNT_TTL = 10.0  # seconds an account stays cached for webhooks; edits apply within this
_accounts: dict[tuple[str, str], tuple[float, ProviderAccount | None]] = {}


def provider_account_for_webhook(*, kind: str, uuid: str) -> ProviderAccount | None:
    """The account a webhook URL names, cached briefly: a busy vendor calls once per message."""
    key = (kind, str(uuid))
    now = time.monotonic()
    cached = _accounts.get(key)
    if cached and now - cached[0] < _ACCOUNT_TTL:
        return cached[1]
    account = ProviderAccount.objects.filter(kind=kind, uuid=uuid).first()
    _accounts[key] = (now, account)
    return account


def dlt_kinds() -> list[str]:
    """The kinds of account whose vendor uses DLT (Backend.uses_dlt: MOBtexting)."""
    return [kind for kind in ProviderAccount.Kind.values if get_backend(kind).uses_dlt]


def provider_accounts_using_dlt() -> QuerySet[ProviderAccount]:
    """The accounts whose vendor uses DLT, the ones DLT templates are registered on."""
    return ProviderAccount.objects.filter(kind__in=dlt_kinds())
