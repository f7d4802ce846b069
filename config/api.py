"""Project-wide REST API pieces: the JSON error format and a few shared serializer fields.

Every error is JSON. Validation errors name the field: ``{"phone": ["Enter a valid phone
number."]}``; errors that concern no single field use ``non_field_errors``.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def validation_error_detail(error: DjangoValidationError) -> dict:
    """Turn a Django ValidationError into DRF's field -> [messages] shape."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for e in errors for m in e.messages]
            for field, errors in error.error_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def exception_handler(exc, context):
    """DRF's handler, plus Django's ValidationError (raised by services) rendered as a 400 naming the field."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response


def not_implemented(detail: str) -> Response:
    return Response({"detail": detail}, status=501)


class DetailSerializer(serializers.Serializer):
    """The body of an error or not-implemented answer, for the OpenAPI schema."""

    detail = serializers.CharField()


class RelatedIdsField(serializers.ListField):
    """Many related objects written and read as ids, checked in one query.

    DRF's `PrimaryKeyRelatedField(many=True)` runs one query per id, which hurts on a campaign with
    thousands of explicit recipients. Reading expects the relation prefetched (`only("id")` is enough).
    """

    def __init__(self, *, queryset, **kwargs):
        self.queryset = queryset
        kwargs.setdefault("child", serializers.IntegerField(min_value=1))
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return [obj.pk for obj in super().get_attribute(instance).all()]

    def to_internal_value(self, data):
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        found = {obj.pk: obj for obj in self.queryset.filter(pk__in=ids)}
        if missing := [pk for pk in ids if pk not in found]:
            shown = ", ".join(str(pk) for pk in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise exceptions.ValidationError(f"No {self.queryset.model._meta.verbose_name} with id {shown}.")
        return [found[pk] for pk in ids]


class NamedChoiceField(serializers.ChoiceField):
    """A ChoiceField whose OpenAPI enum has a name of its own, e.g. "ChannelEnum".

    drf-spectacular names enums after the field, so two `status` fields with different choices
    collide (a schema warning) and one choice set under two field names gets two enums. A fixed
    name avoids both.
    """

    def __init__(self, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedEnumsMixin:
    # For ModelSerializers: `Meta.enum_names = {"status": "MessageStatusEnum"}` names the enums of choice
    # fields. (A comment, not a docstring: drf-spectacular would show a docstring as every serializer's description.)

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        enum_name = getattr(self.Meta, "enum_names", {}).get(field_name)
        if enum_name and issubclass(field_class, serializers.ChoiceField):
            return NamedChoiceField, {**kwargs, "enum_name": enum_name}
        return field_class, kwargs


class NamedChoiceFieldSchema(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def get_name(self):
        return self.target.enum_name

    def map_serializer_field(self, auto_schema, direction):
        schema = build_choice_field(self.target)
        schema.pop("x-spec-enum-id", None)
        return schema
