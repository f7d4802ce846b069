"""The composer's choices (senders, templates, variables), a contact's message history, and the campaigns that
select people by a tag or segment (contacts.services asks before deleting one)."""

from __future__ import annotations

from django.db.models import Q

from campaigns.models import UNFINISHED_STATES, Campaign, CampaignTestSend, Message
from campaigns.rendering import CONTACT_FIELDS
from campaigns.selectors.progress import messages_shown
from campaigns.selectors.records import all_account_ids
from contacts.models import Contact
from contacts.selectors import contact_attribute_keys
from providers.dlt import template_variables
from providers.models import DltTemplate, ProviderAccount, Sender, sender_label


def composer_account_channels() -> dict[str, list[str]]:
    """The channels each account has enabled, by account id: the composer offers only those of the chosen account."""
    return {str(pk): list(channels or []) for pk, channels in ProviderAccount.objects.values_list("pk", "channels")}


def composer_senders(*, account_id: int, channel: str) -> list[dict]:
    """The approved senders of an account on a channel: the only ones a campaign may use, each with its label
    (sender_label, as the page's own choices read)."""
    senders = list(
        Sender.objects.filter(account_id=account_id, channel=channel, status=Sender.Status.APPROVED)
        .order_by("name")
        .values("id", "name", "service", "country", "dlt_entity_id", "channel", "account__name")
    )
    for sender in senders:
        account, channel = sender.pop("account__name"), sender.pop("channel")
        sender["label"] = sender_label(name=sender["name"], channel=channel, account=account,
                                       service=sender["service"], country=sender["country"])  # fmt: skip
    return senders


def composer_templates(*, sender_id: int) -> list[dict]:
    """The approved DLT templates registered for a sender, with their body and variables."""
    templates = list(
        DltTemplate.objects.filter(senders=sender_id, status=DltTemplate.Status.APPROVED)
        .order_by("name")
        .values("id", "name", "dlt_template_id", "type", "body")
    )
    for template in templates:
        template["variables"] = template_variables(template["body"])
    return templates


def composer_variables() -> dict[str, list[str]]:
    """What a text can personalise with: the contact fields and the attribute keys seen on contacts."""
    return {"fields": list(CONTACT_FIELDS), "attributes": contact_attribute_keys()}


def contact_message_history(*, contact: Contact, limit: int = 50) -> list[Message]:
    """A contact's latest messages, found by the addresses they were sent to (the (account, address) index)."""
    addresses = [a for a in (contact.phone, (contact.email or "").lower()) if a]
    return list(
        messages_shown(Message.objects.filter(account_id__in=all_account_ids(), address__in=addresses))
        .select_related("campaign", "account", "test_send__campaign")
        .order_by("-id")[:limit]
    )


def campaign_test_sends(*, campaign: Campaign, limit: int = 20) -> list[CampaignTestSend]:
    """The campaign's latest tests, newest first, each with its message as shown now (its delivery report too)."""
    tests = list(
        CampaignTestSend.objects.filter(campaign=campaign)
        .select_related("filled_from", "requested_by")
        .order_by("-id")[:limit]
    )
    shown = messages_shown(Message.objects.filter(pk__in=[t.message_id for t in tests])).select_related("account")
    messages = {message.pk: message for message in shown}
    for test in tests:
        test.shown = messages.get(test.message_id)
    return [test for test in tests if test.shown is not None]


def campaigns_selecting_by_tags(tag_ids: list[int]) -> list[Campaign]:
    """Unfinished campaigns whose audience names any of these tags, to send to or to leave out."""
    held = Q(tags__in=tag_ids) | Q(excluded_tags__in=tag_ids)
    return list(Campaign.objects.filter(held, state__in=UNFINISHED_STATES).distinct().order_by("name"))


def campaigns_selecting_by_segments(segment_ids: list[int]) -> list[Campaign]:
    """Unfinished campaigns whose audience names any of these segments."""
    held = Q(segments__in=segment_ids)
    return list(Campaign.objects.filter(held, state__in=UNFINISHED_STATES).distinct().order_by("name"))
