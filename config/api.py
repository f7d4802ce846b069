"""Project-wide REST API pieces: the JSON error format and a few shared serializer fields.

Every error is JSON. A 400 names the field: ``{"phone": ["Enter a valid phone number."]}``; what concerns
no single field (a body that is not JSON, or not an object) is under ``non_field_errors``. Other errors are
``{"detail": "…"}``.
"""

import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import F, ProtectedError, RestrictedError, UniqueConstraint
from django.http import Http404
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from rest_framework import exceptions, serializers
from rest_framework.relations import MANY_RELATION_KWARGS
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.deletion import StillUsed, Users, used_by_text


def validation_error_detail(error: DjangoValidationError) -> dict:
    """Turn a Django ValidationError into DRF's field -> [messages] shape."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for e in errors for m in e.messages]
            for field, errors in error.error_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


_KEY_COLUMNS = re.compile(r"Key \((?P<columns>[^)]*)\)=")  # PostgreSQL's detail: Key (phone)=(+33…) already exists.


def constraint_error_detail(error: IntegrityError) -> dict | None:
    """A unique constraint the database enforced, in the field -> [messages] shape; None for other errors.

    Validation checks uniqueness before saving, but two requests can pass it at once (two clients creating
    "VIP" and "vip"): the second insert then fails in the database, and gets the 400 that validation would
    have given, not a 500."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) != "23505":  # unique_violation
        return None
    diag = cause.diag
    for model in apps.get_models():
        if model._meta.db_table != diag.table_name:
            continue
        constraint = next((c for c in model._meta.constraints if c.name == diag.constraint_name), None)
        if isinstance(constraint, UniqueConstraint) and (
            constraint.violation_error_message != constraint.default_violation_error_message
        ):
            fields = list(constraint.fields) or [
                ref.name for expression in constraint.expressions for ref in expression.flatten() if isinstance(ref, F)
            ]
            return {fields[0] if len(fields) == 1 else "non_field_errors": [constraint.get_violation_error_message()]}
        found = _KEY_COLUMNS.search(diag.message_detail or "")
        columns = [column.strip() for column in found["columns"].split(",")] if found else []
        fields = [field.name for field in model._meta.concrete_fields if field.column in columns]
        if fields and len(fields) == len(columns):
            message = model().unique_error_message(model, tuple(fields)).messages[0]
            return {fields[0] if len(fields) == 1 else "non_field_errors": [message]}
    return {"non_field_errors": ["This would duplicate a record that exists already."]}


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "body_too_large"


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


def still_used_detail(error: ProtectedError | RestrictedError, model=None) -> str:
    """What keeps an object from being deleted, e.g. "This sender is used by 3 campaigns (Diwali sale, …); …"."""
    if isinstance(error, StillUsed):  # counted, not loaded (config/deletion.py)
        return used_by_text(model, error.users, error.way_out)
    users = error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects
    by_model = defaultdict(list)
    for obj in users:
        by_model[obj._meta.model].append(obj)
    return used_by_text(
        model,
        sorted(
            (Users(related, len(objs), sorted(objs, key=lambda obj: obj.pk)) for related, objs in by_model.items()),
            key=lambda u: str(u.model._meta.verbose_name),
        ),
    )


def exception_handler(exc, context):
    """DRF's handler, plus Django's ValidationError (raised by services) rendered as a 400 naming the field,
    a unique constraint enforced by the database (a race past validation) rendered the same way, a body that
    cannot be parsed as a 400 in that same shape (under non_field_errors), and a delete refused because other
    records still use the object (a protected foreign key) as a 409 naming them."""
    if isinstance(exc, exceptions.ParseError):  # every 400 is {field: [messages]}, not DRF's {"detail": "…"} here
        exc = exceptions.ValidationError({"non_field_errors": [str(exc.detail)]})
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    elif isinstance(exc, ProtectedError | RestrictedError):
        queryset = getattr(context.get("view"), "queryset", None)
        exc = Conflict(still_used_detail(exc, getattr(queryset, "model", None)))
    elif isinstance(exc, IntegrityError) and (detail := constraint_error_detail(exc)) is not None:
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # was Django's HTML "Bad Request (400)", saying nothing of why
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        exc = BodyTooLarge(
            f"The request body is over {limit} MB (DATA_UPLOAD_MAX_MEMORY_SIZE): send less at a time, or many "
            "contacts as a file to /api/v1/imports/."
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response


def not_implemented(detail: str) -> Response:
    return Response({"detail": detail}, status=501)


class DetailSerializer(serializers.Serializer):
    """The body of an error or not-implemented answer, for the OpenAPI schema."""

    detail = serializers.CharField()


class KnownFieldsMixin:
    # For the serializers of request bodies: a field the body names and the serializer does not have is a 400
    # naming it and the fields it takes. DRF ignored it, so a typo did silently nothing: `"exclude_tags": ["staff"]`
    # (for excluded_tags) made a campaign that sent to staff too, `"send_time"` one sent at launch. Read-only fields
    # sent back as a GET shows them (id, created_at…) are fields too, and are ignored as before. (A comment, not a
    # docstring: drf-spectacular would show a docstring as every serializer's description.)

    ignored_fields = frozenset({"csrfmiddlewaretoken"})  # the browsable API's HTML forms send it

    def to_internal_value(self, data):
        self.unknown_fields_check(data)
        return super().to_internal_value(data)

    def unknown_fields_check(self, data) -> None:
        # The refusal alone, for a view that checks the body before validating it (the token endpoint, before it
        # counts a sign-in attempt).
        if isinstance(data, Mapping):
            fields = self.fields
            if unknown := [name for name in data if name not in fields and name not in self.ignored_fields]:
                taken = ", ".join(sorted(name for name, field in fields.items() if not field.read_only))
                raise exceptions.ValidationError({name: [f"Unknown field; this takes {taken}."] for name in unknown})


class ServiceCheckedMixin:
    # For the serializers of a write whose service checks the object as a whole (the account's settings, a sender's
    # name on its account, a contact's country, a DLT template's senders, a campaign's send time):
    # `service_problems(attrs)` returns what the service would refuse in `attrs`, by field, without writing. When fields fail their own checks (a type, a length), it still runs on
    # the fields that passed, and its problems go on the fields that have none yet (a field's own error stays the one
    # told), so a 400 tells every problem at once, as the admin's forms do (providers.forms.ServiceCheckedForm):
    # `{"currency": "EURO", "rate_limit": 0}` was told the currency's length alone, the rate limit in the next request.
    # When every field passes, the service's write refuses the same problems itself. (A comment, not a docstring:
    # drf-spectacular would show a docstring as every serializer's description.)

    def service_problems(self, attrs: dict) -> dict[str, list[str]]:
        raise NotImplementedError

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except exceptions.ValidationError as error:
            if not isinstance(error.detail, Mapping) or not isinstance(data, Mapping):
                raise
            errors = dict(error.detail)
        try:
            problems = self.service_problems(self._fields_that_passed(data, errors))
        except DjangoValidationError as refusal:
            problems = validation_error_detail(refusal)
        for field, messages in problems.items():
            field = "non_field_errors" if field == "__all__" else field
            errors.setdefault(field, messages)
        raise exceptions.ValidationError(errors)

    def _fields_that_passed(self, data: Mapping, errors: Mapping) -> dict:
        """The values of the body's fields that passed their checks, as validated_data holds them (checked again:
        DRF's to_internal_value keeps none of them once one field fails)."""
        passed = {}
        for field in self._writable_fields:
            if field.field_name in errors:
                continue
            try:
                value = field.run_validation(field.get_value(data))
                if validate := getattr(self, f"validate_{field.field_name}", None):
                    value = validate(value)
            except (exceptions.ValidationError, DjangoValidationError, serializers.SkipField):
                continue
            self.set_value(passed, field.source_attrs, value)
        return passed


class ListOnlyManyRelatedField(serializers.ManyRelatedField):
    """Many related objects, given as a JSON list only. DRF's field iterates whatever it is given, so an object was
    read as its keys, and `{}` as none at all: `"excluded_tags": {}` left a campaign excluding no one, and
    `"positive_tags": {}` made a segment of everyone. An object is now refused on its field, as a string is."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


class ListOnlyManyMixin:
    # For related fields: `many=True` makes a ListOnlyManyRelatedField (DRF's RelatedField.many_init, with that class).

    @classmethod
    def many_init(cls, *args, **kwargs):
        list_kwargs = {"child_relation": cls(*args, **kwargs)}
        list_kwargs.update({key: value for key, value in kwargs.items() if key in MANY_RELATION_KWARGS})
        return ListOnlyManyRelatedField(**list_kwargs)


class IdRelatedField(ListOnlyManyMixin, serializers.PrimaryKeyRelatedField):
    """An object by its id, as DRF's field takes it, but for a number that is not a whole one: DRF passed `1.5` to
    the database, which read it as 1, so a wrong id named another object instead of being refused. Now it is
    refused on its field, as `true` is, and as a filter refuses `?segment=1.5`. The refusals name what the id is of
    ("Expected the sender's id…", DRF said "pk value"), and a name given for an id is quoted back."""

    default_error_messages = {
        "does_not_exist": "No {what} has the id {pk_value}.",
        "incorrect_type": "Incorrect type. Expected the {what}'s id, a whole number, received {data_type}.",
        "not_an_id": "{value!r} is not an id: give the {what}'s id, a whole number.",
    }

    def fail(self, key, **kwargs):
        super().fail(key, what=self.get_queryset().model._meta.verbose_name, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or (isinstance(data, float) and not data.is_integer()):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str) and not data.strip().isdigit():
            self.fail("not_an_id", value=data)
        return super().to_internal_value(data)


class IdRelationsMixin:
    # For ModelSerializers: their foreign keys and many-to-many fields are IdRelatedFields. (A comment, not a
    # docstring: drf-spectacular would show a docstring as every serializer's description.)

    serializer_related_field = IdRelatedField


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


class ClockDateTimeField(serializers.DateTimeField):
    """A time given with its offset (`2026-03-28T09:00:00+01:00`, `…Z`), or without one on the site's clock
    (TIME_ZONE), as the admin takes it. A time without an offset that the clock skips (02:30 on the night the clocks
    go forward) or shows twice (on the night they go back) is refused naming the field, as the admin's form refuses
    it, rather than silently read as another time (DRF's own field took both)."""

    def enforce_timezone(self, value):
        zone = self.timezone if hasattr(self, "timezone") else self.default_timezone()
        if zone is not None and value.tzinfo is None:
            first, second = value.replace(tzinfo=zone), value.replace(tzinfo=zone, fold=1)
            given = value.strftime("%Y-%m-%d %H:%M")
            if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
                raise serializers.ValidationError(
                    f"{given} does not exist in {zone} (the clocks skip it): give the time with its UTC offset."
                )
            if first.utcoffset() != second.utcoffset():
                offsets = " or ".join(d.isoformat()[-6:] for d in (first, second))
                raise serializers.ValidationError(
                    f"{given} comes twice in {zone} (the clocks go back): give its UTC offset, {offsets}."
                )
        return super().enforce_timezone(value)


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
