"""Query-string filters for the contacts API (django-filter)."""

import django_filters
from django.db.models import Exists, OuterRef

from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber
from contacts.selectors import segment_q, tags_named


class ContactFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(
        method="filter_tag", help_text="Tag name, or several comma-separated: contacts carrying any of them."
    )
    segment = django_filters.NumberFilter(method="filter_segment", help_text="Segment id: its contacts.")
    country = django_filters.CharFilter(lookup_expr="iexact")
    created = django_filters.IsoDateTimeFromToRangeFilter(
        field_name="created_at", help_text="created_after / created_before, ISO 8601."
    )
    updated = django_filters.IsoDateTimeFromToRangeFilter(field_name="updated_at")

    class Meta:
        model = Contact
        fields = ["is_active", "country", "language", "identity", "email"]

    def filter_tag(self, queryset, name, value):
        names = [part.strip() for part in value.split(",") if part.strip()]
        # EXISTS, not a join: a contact with two of the tags still appears once, without DISTINCT.
        return queryset.filter(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag__in=tags_named(names))))

    def filter_segment(self, queryset, name, value):
        segment = Segment.objects.filter(pk=value).first()
        return queryset.filter(segment_q(segment)) if segment else queryset.none()


class TagFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tag
        fields = ["name"]


class UnsubscriberFilter(django_filters.FilterSet):
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Unsubscriber
        fields = ["address", "scope", "value", "source"]
