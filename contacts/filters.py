"""Query-string filters for the contacts API (django-filter)."""

import re

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from config.filters import FilterSet
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from contacts.phones import InvalidPhone, invalid_phone_message, normalize_address, normalize_phone
from contacts.selectors import email_q, segment_q, tag_ids_named
from contacts.validators import country_code, tag_names_split

# A "+" in a query string is a space unless written %2B: "?address=+33611111111" arrives as " 33611111111".
_PLUS_AS_SPACE = re.compile(r" \d[\d\s().-]*")


def plus_restored(value):
    """A number whose "+" the URL did not encode (a leading space, then digits) with its "+"; anything else as it
    came. (A form field strips the space, and the number was read as a national one.)"""
    if isinstance(value, str) and _PLUS_AS_SPACE.fullmatch(value):
        return "+" + value[1:]
    return value


class _PhoneField(forms.CharField):
    """A number written as people write it, as it is stored (E.164); a 400 naming the parameter if it is none. A
    number whose "+" the URL did not encode is read with its "+", as an address is (plus_restored)."""

    def clean(self, value):
        value = super().clean(plus_restored(value))
        try:
            return normalize_phone(value) if value else value
        except InvalidPhone:
            raise forms.ValidationError(invalid_phone_message()) from None


# A number as it can be written: digits, an optional leading "+", and the separators people write.
_NUMBER_AS_WRITTEN = re.compile(r"\+?[\d\s().-]*\d[\d\s().-]*")


class AddressField(forms.CharField):
    """An address written as people write it, as it is stored (a number in E.164, an e-mail in lower case).

    A number that does not normalise is looked up as written: a provider's opt-out can store one (a number sent
    without its country code), and it must stay findable. Anything else that is neither a number nor an e-mail
    address (`?address=garbage`) is a 400 naming the parameter: it would find nothing, silently. A number whose
    "+" the URL did not encode (a leading space, then digits) is read with its "+"."""

    email_as_written = False  # an e-mail looked up in the case it is written in, not lower-cased

    def clean(self, value):
        value = super().clean(plus_restored(value))
        if not value:
            return value
        try:
            address = normalize_address(value)
        except InvalidPhone:
            if "@" not in value and _NUMBER_AS_WRITTEN.fullmatch(value):
                return value
            raise forms.ValidationError(
                f"Enter a valid phone number (E.164 such as +919812345678, or a national number of "
                f"{settings.DEFAULT_PHONE_REGION}) or e-mail address: {value!r} is neither."
            ) from None
        return value if self.email_as_written and "@" in value else address


class _CountryField(forms.CharField):
    """A country as the contacts' and senders' fields take it (`uk` is GB, `India` is IN), as it is stored; a 400
    naming the parameter if it is none (a typo would otherwise find nobody, silently)."""

    def clean(self, value):
        value = super().clean(value)
        try:
            return country_code(value) if value else value
        except ValueError as error:
            raise forms.ValidationError(f"{value!r} is {error}.") from None  # as the contact's field says it


class CountryFilter(django_filters.CharFilter):
    """Exact, on the code a country is stored as, however it is written."""

    field_class = _CountryField


class PhoneFilter(django_filters.CharFilter):
    """Exact, through the unique index, whatever format the number is written in (a national one is read in
    the default region)."""

    field_class = _PhoneField


class AddressFilter(django_filters.CharFilter):
    """A suppression's address, exact: a number in any format (one that does not normalise as written), or an
    e-mail in any case."""

    field_class = AddressField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.ModelChoiceFilter):
    """An object by its id, as django-filter's foreign-key filters take one: an id that is none is a 400."""


class ContactFilter(FilterSet):
    tag = django_filters.CharFilter(
        method="filter_tag",
        help_text="Tag name, or several comma-separated: contacts carrying any of them. A name that is no tag is "
        "a 400.",
    )
    segment = IdFilter(queryset=Segment.objects.all(), method="filter_segment", help_text="Segment id: its contacts.")
    phone = PhoneFilter(help_text="A number in any format (a national one in the default region): its contact.")
    country = CountryFilter(help_text="A two-letter code (IN, uk) or an English name (India): its contacts.")
    email = django_filters.CharFilter(method="filter_email", help_text="An e-mail address, in any case.")
    created = django_filters.IsoDateTimeFromToRangeFilter(
        field_name="created_at", help_text="created_after / created_before, ISO 8601."
    )
    updated = django_filters.IsoDateTimeFromToRangeFilter(field_name="updated_at")

    class Meta:
        model = Contact
        fields = ["is_active", "country", "language", "identity", "email"]

    def filter_email(self, queryset, name, value):
        return queryset.filter(email_q(value))

    def filter_tag(self, queryset, name, value):
        names = tag_names_split(value)
        if not names:  # "," or " ": no name, like an empty ?tag=, filters nothing
            return queryset
        tag_ids = tag_ids_named(names)
        if unknown := [given for given, tag_id in tag_ids.items() if tag_id is None]:
            raise ValidationError({name: f"No tag named {', '.join(map(repr, unknown))}."})
        # EXISTS, not a join: a contact with two of the tags still appears once, without DISTINCT.
        return queryset.filter(
            Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag_id__in=set(tag_ids.values())))
        )

    def filter_segment(self, queryset, name, value):
        return queryset.filter(segment_q(value))


class TagFilter(FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tag
        fields = ["name"]


class UnsubscriberFilter(FilterSet):
    address = AddressFilter(help_text="A number in any format, or an e-mail in any case: its suppressions.")
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Unsubscriber
        fields = ["address", "scope", "value", "source"]


class UnsubscriberRemovalFilter(FilterSet):
    address = AddressFilter(help_text="A number in any format, or an e-mail in any case: its removed opt-outs.")
    removed = django_filters.IsoDateTimeFromToRangeFilter(
        field_name="removed_at", help_text="removed_after / removed_before, ISO 8601."
    )

    class Meta:
        model = UnsubscriberRemoval
        fields = ["address", "scope", "value", "source", "via"]
