"""Query-string filters for the campaigns API (django-filter)."""

import django_filters
from django.core.validators import EMPTY_VALUES

from campaigns.models import Campaign, Message
from campaigns.selectors import SHOWN_STATUS_CHOICES, messages_of_campaign, messages_with_status
from campaigns.selectors.records import all_account_ids
from config.filters import FilterSet
from contacts.filters import AddressField

# A campaign being deleted is hidden (services/editing.py campaigns_delete).
VISIBLE_STATES = [choice for choice in Campaign.State.choices if choice[0] != Campaign.State.DELETING]


class CampaignFilter(FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=VISIBLE_STATES)
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")
    send_at = django_filters.IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Campaign
        fields = ["state", "account", "purpose", "channel", "sender", "template", "recurrence", "parent"]


class _MessageAddressField(AddressField):
    """A phone number as people write it, as messages store it (E.164, a national one read in the default region);
    an e-mail address as written; a text that is neither is a 400 (contacts.filters.AddressField)."""

    email_as_written = True


class ThroughAccountsFilter(django_filters.CharFilter):
    """An exact filter on a column that an index holds after the account, (account, address) or (account,
    provider_message_id): naming every account (a handful) lets PostgreSQL look it up in that index rather than
    read the millions of messages."""

    def filter(self, queryset, value):
        if value in EMPTY_VALUES:
            return queryset
        return queryset.filter(account_id__in=all_account_ids(), **{self.field_name: value})


class MessageAddressFilter(ThroughAccountsFilter):
    field_class = _MessageAddressField


class MessageFilter(FilterSet):
    """Exact filters, no substring search: this table holds millions of rows."""

    address = MessageAddressFilter(
        help_text="The recipient: a phone number in any format (a national one in the default region), or an e-mail "
        "address as the message has it."
    )

    campaign = django_filters.ModelChoiceFilter(
        queryset=Campaign.objects.only("id", "message_ids_from", "message_ids_to"), method="filter_campaign",
        help_text="The campaign's id.",
    )  # fmt: skip
    provider_message_id = ThroughAccountsFilter(help_text="The vendor's id of the message, exactly.")
    status = django_filters.MultipleChoiceFilter(
        choices=SHOWN_STATUS_CHOICES, method="filter_status", help_text="As shown: `sending` is a message being sent."
    )
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    def filter_status(self, queryset, name, value):
        return messages_with_status(queryset, value)

    def filter_campaign(self, queryset, name, value):
        return messages_of_campaign(queryset, value)

    class Meta:
        model = Message
        fields = [
            "campaign",
            "status",
            "account",
            "channel",
            "address",
            "contact",
            "provider_message_id",
            "external_ref",
        ]
