"""Creating and editing campaigns: the consistency rules shared by the API and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.selectors import TEMPLATE_OF_ANOTHER_ACCOUNT
from contacts.services import segments_keep, tags_keep

EDITABLE_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED)
UNSCHEDULED_REASON = "Back to draft: its send time was cleared. Launch it to send it now."
RUNNING_STATES = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED)
RELATIONS = ("tags", "segments", "excluded_tags", "contacts")


def campaign_check(*, account, sender, template, channel: str, instance: Campaign | None = None) -> None:
    """Refuse a sender or template of another account, a channel the account lacks, or editing a started campaign."""
    if instance is not None and instance.state not in EDITABLE_STATES:
        raise ValidationError({"state": f"A {instance.get_state_display()} campaign cannot be edited."})
    if account is None:
        return
    if sender is not None and sender.account_id != account.pk:
        raise ValidationError({"sender": f"{sender.name} is not a sender of {account.name}."})
    if template is not None and template.account_id not in (None, account.pk):
        raise ValidationError({"template": TEMPLATE_OF_ANOTHER_ACCOUNT})
    if channel not in (account.channels or []):
        raise ValidationError({"channel": f"{account.name} does not have {channel} enabled."})


@transaction.atomic
def campaign_create(*, data: dict[str, Any], user=None) -> Campaign:
    relations = {name: data.pop(name) for name in RELATIONS if name in data}
    campaign_check(account=data.get("account"), sender=data.get("sender"), template=data.get("template"),
                   channel=data.get("channel") or "sms")  # fmt: skip
    campaign = Campaign.objects.create(created_by=user if user and user.is_authenticated else None, **data)
    _relations_set(campaign, relations)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    relations = {name: data.pop(name) for name in RELATIONS if name in data}
    campaign_check(
        account=data.get("account", campaign.account), sender=data.get("sender", campaign.sender),
        template=data.get("template", campaign.template), channel=data.get("channel", campaign.channel),
        instance=campaign,
    )  # fmt: skip
    send_at = campaign.send_at
    for name, value in data.items():
        setattr(campaign, name, value)
    if campaign.state == Campaign.State.SCHEDULED and campaign.send_at != send_at:
        # A scheduled campaign waits for its send time (campaigns_launch_due): without one it would wait for ever.
        if campaign.send_at is None:
            campaign.state, campaign.state_reason = Campaign.State.DRAFT, UNSCHEDULED_REASON
        else:
            campaign.state_reason = scheduled_reason(at=campaign.send_at, recurring=bool(campaign.recurrence))
    campaign.save()
    _relations_set(campaign, relations)
    return campaign


def _relations_set(campaign: Campaign, relations: dict[str, Any]) -> None:
    """The audience's tags, segments and contacts; the tags and segments are held until commit, so that one is
    not deleted from under the campaign meanwhile (contacts.services.tags_delete)."""
    tags_keep([tag.pk for name in ("tags", "excluded_tags") for tag in relations.get(name) or []])
    segments_keep([segment.pk for segment in relations.get("segments") or []])
    for name, values in relations.items():
        getattr(campaign, name).set(values)


def scheduled_reason(*, at: datetime, recurring: bool = False) -> str:
    """What a scheduled campaign says it waits for."""
    when = f"{timezone.localtime(at):%Y-%m-%d %H:%M %Z}"
    return f"Recurring; next run {when}." if recurring else f"Scheduled for {when}."


def campaign_delete(*, campaign: Campaign) -> None:
    campaigns_delete(campaign_ids=[campaign.pk])


@transaction.atomic
def campaigns_delete(*, campaign_ids: Iterable[int]) -> int:
    """Delete campaigns with their messages and frames, in a few statements whatever their number; none if one of
    them is running (cancel it first). Their delivery reports stay (StatusEvent.message). Returns how many."""
    campaigns = list(Campaign.objects.select_for_update().filter(pk__in=list(campaign_ids)).order_by("pk"))
    for campaign in campaigns:
        if campaign.state in RUNNING_STATES:
            raise ValidationError(
                {"state": f"A {campaign.get_state_display()} campaign cannot be deleted; cancel it first ({campaign})."}
            )
    ids = [campaign.pk for campaign in campaigns]
    # One DELETE: nothing cascades from a message and nothing listens to its deletion, so Django loads none.
    Message.objects.filter(campaign_id__in=ids).delete()
    with connection.cursor() as cursor:
        # Django would load every frame to clear its messages' link (SET_NULL), and delete them a hundred at a
        # time; their messages are gone already.
        cursor.execute("DELETE FROM campaigns_frame WHERE campaign_id = ANY(%s)", [ids])
    Campaign.objects.filter(pk__in=ids).delete()
    return len(ids)
