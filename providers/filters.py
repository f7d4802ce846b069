"""Query-string filters for the providers API (django-filter)."""

import django_filters

from config.filters import FilterSet
from contacts.filters import CountryFilter
from providers.models import Channel, DltTemplate, ProviderAccount, Sender


class ProviderAccountFilter(FilterSet):
    currency = django_filters.CharFilter(lookup_expr="iexact", help_text="ISO code, in any case: EUR or eur.")
    channel = django_filters.ChoiceFilter(
        choices=Channel.choices, method="filter_channel", help_text="Accounts with this channel enabled."
    )

    class Meta:
        model = ProviderAccount
        fields = ["kind", "is_active", "currency"]

    def filter_channel(self, queryset, name, value):
        return queryset.filter(channels__contains=[value])


class SenderFilter(FilterSet):
    # Read as the contacts' `country` filter reads it (and as a sender's country is stored): uk is GB.
    country = CountryFilter(help_text="ISO code, in any case (IN or in; uk is GB), or an English name (India).")
    service = django_filters.CharFilter(lookup_expr="iexact", help_text="Service code, in any case: T, P, S or G.")

    class Meta:
        model = Sender
        fields = ["account", "channel", "status", "service", "country", "dlt_entity_id"]


class DltTemplateFilter(FilterSet):
    sender = django_filters.ModelChoiceFilter(
        field_name="senders", queryset=Sender.objects.all(), help_text="Templates registered for this sender id."
    )

    class Meta:
        model = DltTemplate
        fields = ["account", "type", "status", "is_english", "dlt_template_id"]
