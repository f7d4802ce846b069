"""REST API for contacts, tags, segments and suppressions: /api/v1/contacts/, tags/, segments/, unsubscribers/.

Serializers check shapes; the writes go through contacts.services, the reads of segments through
contacts.selectors.
"""

import json
from collections.abc import Mapping

import phonenumbers

from django.db import models
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from config.api import KnownFieldsMixin, ListOnlyManyMixin, NamedChoiceField, NamedEnumsMixin, ServiceCheckedMixin
from config.filters import QueryParametersMixin
from config.permissions import StrictModelPermissions
from config.schema import refuses_delete_while_used
from contacts import services
from contacts.filters import ContactFilter, TagFilter, UnsubscriberFilter, UnsubscriberRemovalFilter
from contacts.models import TAG_NAME_TAKEN, Contact, Operator, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from contacts.phones import INVALID_MESSAGE, AddressSerializerField, InvalidPhone, PhoneSerializerField, normalize_phone
from contacts.selectors import (
    segment_contacts,
    segment_count,
    suppression_names_nothing,
    tags_named,
    tags_with_contact_count,
)
from contacts.validators import ATTRIBUTES_NOT_AN_OBJECT, attributes_nested


def tag_name_expected(value) -> str:
    """Why a tag given as something else than its name is refused: `"tags": [1, 2]` made tags named "1" and "2"."""
    shown = {list: "a list", dict: "an object"}.get(type(value)) or json.dumps(value)
    return f'Give tags by name, as text such as "vip": {shown} is not a tag\'s name.'


class TagNameField(serializers.CharField):
    """A tag's name, as text only: DRF's CharField took a number as its digits."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(tag_name_expected(data))
        return super().to_internal_value(data)


class TagByNameField(ListOnlyManyMixin, serializers.SlugRelatedField):
    """An existing tag by its name, in any case (names are unique regardless of case). A name that is none, or a
    tag given otherwise, is refused in words (DRF's: "Object with name=nosuch does not exist.", "Invalid value.")."""

    default_error_messages = {"does_not_exist": "No tag named {name!r}."}

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=Tag.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(tag_name_expected(data))
        tag = tags_named([data.strip()]).first()
        if tag is None:
            self.fail("does_not_exist", name=data.strip())
        return tag


class TagNamesField(serializers.ListField):
    """Tags as a list of names: read from the prefetched tags, written as names (missing tags are created)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", TagNameField(max_length=100))
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return sorted(tag.name for tag in instance.tags.all())


class ContactPhoneField(PhoneSerializerField):
    """A phone in any format; a national number is read in the payload's `region` when one is given."""

    def to_internal_value(self, data):
        initial = getattr(self.parent, "initial_data", None)
        region = initial.get("region") if isinstance(initial, Mapping) else None
        if not region or not isinstance(region, str):
            return super().to_internal_value(data)
        value = serializers.CharField.to_internal_value(self, data)
        try:
            return normalize_phone(value, region)
        except InvalidPhone:
            raise serializers.ValidationError(INVALID_MESSAGE.format(region=region.upper())) from None


class AttributesField(serializers.JSONField):
    """A contact's attributes: a value that is a list or an object is refused under its key, as the API names a wrong
    item of an object (`{"attributes": {"address": ["attributes.address is an object: …"]}}`); the model's
    validators (an object; storable) then run as for any field."""

    def to_internal_value(self, data):
        # Before DRF's JSONField encodes the value to check it: a list nested 900 deep overflowed that encoding's
        # stack (a 500) whenever the request's own stack was a little deeper.
        if not isinstance(data, dict):
            raise serializers.ValidationError(ATTRIBUTES_NOT_AN_OBJECT)
        if nested := attributes_nested(data):
            raise serializers.ValidationError({key: [message] for key, message in nested.items()})
        return super().to_internal_value(data)


class ContactSerializer(KnownFieldsMixin, ServiceCheckedMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: AttributesField,
    }
    phone = ContactPhoneField(max_length=32, help_text="E.164 (+919812345678) or national, read in `region`.")
    region = serializers.CharField(
        write_only=True, required=False, min_length=2, max_length=2,
        help_text="Country (ISO code) for a national phone number; default from the server's settings.",
    )  # fmt: skip
    country = serializers.CharField(
        required=False, allow_blank=True, max_length=60,
        help_text="ISO 3166 code (IN), or the country's English name (India), stored as its code.",
    )  # fmt: skip
    tags = TagNamesField(required=False, help_text="Tag names; missing tags are created. Replaces the contact's tags.")

    class Meta:
        model = Contact
        fields = [
            "id", "phone", "region", "email", "first_name", "last_name", "identity", "country", "language",
            "timezone", "attributes", "is_active", "tags", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate_region(self, value):
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise serializers.ValidationError(f"{value!r} is not a country code that phone numbers know.")
        return value.upper()

    def service_problems(self, attrs):
        return services.contact_write_problems(contact=self.instance, **attrs)


class ContactsTagSerializer(KnownFieldsMixin, serializers.Serializer):
    contacts = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=50000)
    tags = serializers.ListField(child=TagNameField(max_length=100), allow_empty=False, max_length=100)


class ContactChangePermissions(StrictModelPermissions):
    """Tagging existing contacts is a change, not an add."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class ContactViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = Contact.objects.prefetch_related("tags")
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["phone", "email", "first_name", "last_name", "identity"]
    ordering_fields = ["id", "phone", "last_name", "first_name", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.instance = services.contact_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.contact_update(contact=serializer.instance, **serializer.validated_data)

    @extend_schema(
        request=ContactsTagSerializer,
        responses=inline_serializer(
            "ContactsTagged",
            {
                "contacts": serializers.IntegerField(),
                "tags": serializers.ListField(child=serializers.CharField(max_length=100)),
            },
        ),
    )
    @action(detail=False, methods=["post"], permission_classes=[ContactChangePermissions])
    def tag(self, request):
        """Add tags (created when missing) to many contacts at once."""
        data = self._bulk_input(request)
        tags = services.contacts_tag(contact_ids=data["contacts"], tag_names=data["tags"])
        return Response({"contacts": len(set(data["contacts"])), "tags": sorted(tag.name for tag in tags)})

    @extend_schema(
        request=ContactsTagSerializer,
        responses=inline_serializer("ContactsUntagged", {"removed": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], permission_classes=[ContactChangePermissions])
    def untag(self, request):
        """Remove tags from many contacts at once."""
        data = self._bulk_input(request)
        return Response({"removed": services.contacts_untag(contact_ids=data["contacts"], tag_names=data["tags"])})

    @staticmethod
    def _bulk_input(request) -> dict:
        serializer = ContactsTagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class TagSerializer(KnownFieldsMixin, serializers.ModelSerializer):
    contact_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "description", "contact_count", "created_at"]
        read_only_fields = ["created_at"]

    def validate_name(self, value: str) -> str:
        others = tags_named([value])
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(TAG_NAME_TAKEN)
        return value


@refuses_delete_while_used
class TagViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = tags_with_contact_count()
    serializer_class = TagSerializer
    filterset_class = TagFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "contact_count"]

    def perform_create(self, serializer):
        serializer.instance = self._annotated(serializer.save())

    def perform_update(self, serializer):
        tag = services.tag_update(tag=serializer.instance, **serializer.validated_data)
        serializer.instance = self._annotated(tag)

    def perform_destroy(self, instance):
        services.tags_delete(tags=[instance])

    @staticmethod
    def _annotated(tag: Tag) -> Tag:
        return tags_with_contact_count().get(pk=tag.pk)


class SegmentSerializer(KnownFieldsMixin, serializers.ModelSerializer):
    positive_tags = TagByNameField(many=True, required=False, help_text="Tag names; empty for everyone.")
    negative_tags = TagByNameField(many=True, required=False, help_text="Tag names to exclude.")
    positive_operator = NamedChoiceField(enum_name="TagOperatorEnum", choices=Operator.choices, default=Operator.ANY)
    negative_operator = NamedChoiceField(enum_name="TagOperatorEnum", choices=Operator.choices, default=Operator.ANY)

    class Meta:
        model = Segment
        fields = [
            "id", "name", "description", "positive_tags", "positive_operator", "negative_tags", "negative_operator",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]


@refuses_delete_while_used
class SegmentViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = Segment.objects.prefetch_related("positive_tags", "negative_tags")
    serializer_class = SegmentSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    filterset_fields = ["positive_operator", "negative_operator"]

    def perform_create(self, serializer):
        serializer.instance = services.segment_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.segment_update(segment=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.segments_delete(segments=[instance])

    @extend_schema(responses=ContactSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], paginated=True)
    def contacts(self, request, pk=None):
        """The segment's contacts, newest first, paginated (the contacts' view permission too)."""
        if not request.user.has_perm("contacts.view_contact"):
            raise PermissionDenied("Listing a segment's contacts needs the permission to view contacts.")
        queryset = segment_contacts(self.get_object()).prefetch_related("tags").order_by("-id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(responses=inline_serializer("SegmentCount", {"count": serializers.IntegerField()}), filters=False)
    @action(detail=True, methods=["get"])
    def count(self, request, pk=None):
        """How many contacts the segment holds right now (the contacts' view permission too, as in the admin)."""
        if not request.user.has_perm("contacts.view_contact"):
            raise PermissionDenied("Counting a segment's contacts needs the permission to view contacts.")
        return Response({"count": segment_count(self.get_object())})


class UnsubscriberSerializer(KnownFieldsMixin, NamedEnumsMixin, ServiceCheckedMixin, serializers.ModelSerializer):
    address = AddressSerializerField(max_length=254, help_text="Phone (any format; stored E.164) or e-mail.")
    source = NamedChoiceField(
        enum_name="UnsubscriberSourceEnum",
        choices=Unsubscriber.Source.choices,
        default=Unsubscriber.Source.API,
        help_text="Who recorded it; it stays as recorded (an edit may send it back unchanged). `provider` and `inbound` "
        "come only from a vendor's report of an opt-out: a client cannot record one with them.",
    )

    class Meta:
        model = Unsubscriber
        fields = ["id", "address", "scope", "value", "source", "reason", "created_at"]
        read_only_fields = ["created_at"]
        enum_names = {"scope": "UnsubscriberScopeEnum"}
        validators = []  # uniqueness and the scope/value rule are the service's, with field-named errors

    def service_problems(self, attrs):
        fields = {name: value for name, value in attrs.items() if name in ("address", "scope", "value", "source")}
        if "source" not in self.initial_data:  # its default is no change of who recorded it (perform_update)
            fields.pop("source", None)
        if "scope" in self.initial_data and "scope" not in fields:  # refused: no other scope stands in for it
            fields["scope"] = None
        return services.unsubscriber_write_problems(unsubscriber=self.instance, **fields)


class UnsubscriberWrittenSerializer(UnsubscriberSerializer):
    warnings = serializers.SerializerMethodField(
        help_text="What the client should know of what it recorded: a sender or tag that no sender or tag is named "
        "(in any case), so that this opt-out suppresses nothing until one is. Empty when all is well."
    )

    class Meta(UnsubscriberSerializer.Meta):
        fields = [*UnsubscriberSerializer.Meta.fields, "warnings"]

    def get_warnings(self, unsubscriber: Unsubscriber) -> list[str]:
        warning = suppression_names_nothing(unsubscriber.scope, unsubscriber.value)
        return [warning] if warning else []


class UnsubscriberViewSet(QueryParametersMixin, viewsets.ModelViewSet):
    queryset = Unsubscriber.objects.all()
    serializer_class = UnsubscriberSerializer
    filterset_class = UnsubscriberFilter
    search_fields = ["address", "value", "reason"]
    ordering_fields = ["id", "address", "created_at"]

    def get_serializer_class(self):
        """A create or an edit answers with `warnings` too: a misspelt sender or tag was recorded without a word,
        and suppressed nobody (the admin warns of it alike)."""
        if self.action in ("create", "update", "partial_update"):
            return UnsubscriberWrittenSerializer
        return super().get_serializer_class()

    def perform_create(self, serializer):
        serializer.instance = services.unsubscriber_create(**serializer.validated_data)

    def perform_update(self, serializer):
        fields = dict(serializer.validated_data)
        if "source" not in self.request.data:  # a PUT without it: the field's default is no change of who recorded it
            fields.pop("source", None)
        serializer.instance = services.unsubscriber_update(
            unsubscriber=serializer.instance, user=self.request.user, via="api", **fields
        )

    def perform_destroy(self, instance):
        services.unsubscribers_remove(unsubscribers=[instance], user=self.request.user, via="api")


class UnsubscriberRemovalSerializer(NamedEnumsMixin, serializers.ModelSerializer):
    removed_by = serializers.CharField(source="removed_by_name", help_text="The user who removed it (its name then).")

    class Meta:
        model = UnsubscriberRemoval
        fields = [
            "id", "address", "scope", "value", "source", "reason", "opted_out_at", "removed_at", "removed_by", "via",
            "note",
        ]  # fmt: skip
        read_only_fields = fields
        enum_names = {
            "scope": "UnsubscriberScopeEnum", "source": "UnsubscriberSourceEnum", "via": "UnsubscriberRemovalViaEnum",
        }  # fmt: skip


class UnsubscriberRemovalViewSet(QueryParametersMixin, viewsets.ReadOnlyModelViewSet):
    """Opt-outs lifted by staff or API clients (deleted, or edited into another), as they stood, with who lifted them
    and when: why an address that had opted out was messaged after. Read only."""

    queryset = UnsubscriberRemoval.objects.all()
    serializer_class = UnsubscriberRemovalSerializer
    filterset_class = UnsubscriberRemovalFilter
    search_fields = ["address", "value", "removed_by_name"]
    ordering_fields = ["id", "address", "removed_at"]


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("contacts", ContactViewSet, basename="contact")
    router.register("tags", TagViewSet, basename="tag")
    router.register("segments", SegmentViewSet, basename="segment")
    router.register("unsubscribers", UnsubscriberViewSet, basename="unsubscriber")
    router.register("unsubscriber-removals", UnsubscriberRemovalViewSet, basename="unsubscriberremoval")
