"""Query-string filters for the providers API (django-filter)."""

import django_filters

from providers.models import DltTemplate, ProviderAccount, Sender


class ProviderAccountFilter(django_filters.FilterSet):
    channel = django_filters.CharFilter(method="filter_channel", help_text="Accounts with this channel enabled.")

    class Meta:
        model = ProviderAccount
        fields = ["kind", "is_active", "currency"]

    def filter_channel(self, queryset, name, value):
        return queryset.filter(channels__contains=[value])


class SenderFilter(django_filters.FilterSet):
    class Meta:
        model = Sender
        fields = ["account", "channel", "status", "service", "country", "dlt_entity_id"]


class DltTemplateFilter(django_filters.FilterSet):
    sender = django_filters.NumberFilter(field_name="senders", help_text="Templates registered for this sender id.")

    class Meta:
        model = DltTemplate
        fields = ["account", "type", "status", "is_english", "dlt_template_id"]
