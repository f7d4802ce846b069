"""The engine's records (messages, frames, delivery reports) found by a value typed whole, through their indexes;
and how many of them deleting campaigns takes.

Not Django's `=field` admin search: it compares UPPER(field) with UPPER(term), which no index serves. And an index
that leads with the account serves a lookup without one only when it is given every account:
`account_id = ANY(all of them) AND field = term` descends the index once per account (a handful).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q, QuerySet

from campaigns.models import Campaign, Frame, Message, StatusEvent
from contacts.phones import InvalidPhone, normalize_address
from providers.models import ProviderAccount


def _addresses(term: str) -> list[str]:
    """The term as typed and, for a phone written any way or an e-mail, as addresses are stored."""
    try:
        return sorted({term, normalize_address(term)})
    except InvalidPhone:
        return [term]


def _uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def all_account_ids() -> list[int]:
    """Every provider account's id: for a lookup through an index that leads with the account (a handful)."""
    return list(ProviderAccount.objects.values_list("pk", flat=True))


def messages_matching(queryset: QuerySet[Message], term: str) -> QuerySet[Message]:
    """Messages to that address (a phone in any format), with that provider message id, or that Herald reference
    (a UUID): three index lookups, (account, address), (account, provider_message_id) and external_ref."""
    accounts = all_account_ids()
    found = Q(account_id__in=accounts, address__in=_addresses(term)) | Q(
        account_id__in=accounts, provider_message_id=term
    )
    if (ref := _uuid(term)) is not None:
        found |= Q(external_ref=ref)
    return queryset.filter(found)


def frames_matching(queryset: QuerySet[Frame], term: str) -> QuerySet[Frame]:
    """The frame with that idempotency key (a UUID, its unique index); else frames with that vendor ticket, which
    no index holds: that reads the frames, a few hundred times fewer than the messages."""
    if (key := _uuid(term)) is not None and (found := queryset.filter(key=key)).exists():
        return found
    return queryset.filter(ticket=term)


def status_events_matching(queryset: QuerySet[StatusEvent], term: str) -> QuerySet[StatusEvent]:
    """Reports naming that Herald reference, through the (account, external_ref) index; when none does, reports with
    that provider message id, address or ticket, which no index holds (each costs the report path, see the model):
    compared whole, but by reading the table."""
    refs = [term, str(ref)] if (ref := _uuid(term)) is not None else [term]
    found = queryset.filter(account_id__in=all_account_ids(), external_ref__in=sorted(set(refs)))
    if found.exists():
        return found
    return queryset.filter(Q(provider_message_id=term) | Q(address__in=_addresses(term)) | Q(ticket=term))


def message_id_last() -> int:
    """The last id handed to a message (0 before the first): every message written from now on has a greater one.
    Read from the table's sequence, which is not cached per connection, so ids come out of it in order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence('campaigns_message', 'id')::regclass)")
        (last,) = cursor.fetchone()
    return last or 0


def messages_of_campaign(queryset: QuerySet[Message], campaign: Campaign) -> QuerySet[Message]:
    """The campaign's messages in `queryset`, looked for only in the range of ids they were given
    (Campaign.message_ids_from/to): the primary key then finds the newest or the oldest of an old campaign at once."""
    queryset = queryset.filter(campaign_id=campaign.pk)
    if campaign.message_ids_from is not None:
        queryset = queryset.filter(id__gte=campaign.message_ids_from)
    if campaign.message_ids_to is not None:
        queryset = queryset.filter(id__lte=campaign.message_ids_to)
    return queryset


def campaign_records_counts(*, campaign_ids: Iterable[int]) -> dict[str, int]:
    """How many messages and frames the campaigns have (what deleting them deletes), counted, not loaded: through
    the (campaign, contact) and (campaign, seq) unique indexes."""
    ids = list(campaign_ids)
    return {
        "messages": Message.objects.filter(campaign_id__in=ids).count(),
        "frames": Frame.objects.filter(campaign_id__in=ids).count(),
    }
