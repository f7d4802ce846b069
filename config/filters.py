"""Query-string filter pieces shared by the apps' filtersets (django-filter), the strict `?ordering=`, and
`?search=` whose errors name it.

django-filter's boolean filter takes "true" and "false" (and "True", "False", "2", "3") and ignores
anything else: `?is_active=maybe` or `?is_active=0` answered every row. Here a boolean parameter takes
true/false, 1/0 or yes/no in any case, and anything else is a 400 naming the parameter.
"""

from collections.abc import Mapping

import django_filters
from django import forms
from django.db import models
from django.forms.utils import ErrorDict
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import SuffixedMultiWidget
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter as DrfOrderingFilter
from rest_framework.filters import SearchFilter as DrfSearchFilter
from rest_framework.settings import api_settings

TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


class _BooleanField(forms.Field):
    """True, False, or None when the parameter is absent or empty."""

    default_error_messages = {"invalid": "Enter true or false (1 or 0, yes or no)."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = _BooleanField


class FilterSet(django_filters.FilterSet):
    """The base of every filterset: model boolean fields get the strict BooleanFilter above, and its errors name
    the query parameters the client sent."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
    }

    def __init__(self, data=None, *args, **kwargs):
        """An empty parameter (`?status=`, a form's blank choice) filters nothing, as for every single-value filter;
        a multiple-choice one (status, state) took "" for a choice and answered 400."""
        if data is not None and hasattr(data, "getlist"):
            data = data.copy()
            for key in list(data):
                values = [value for value in data.getlist(key) if value != ""]
                if values:
                    data.setlist(key, values)
                else:
                    del data[key]
        super().__init__(data, *args, **kwargs)

    def get_form_class(self):
        """An object filter's id that is none (`?campaign=999`, `?segment=1.5`) is refused naming what the id is of,
        as a body's id is (config.api.IdRelatedField), not in Django's words ("Select a valid choice. That choice is
        not one of the available choices.")."""
        form = super().get_form_class()
        for field in form.base_fields.values():
            if isinstance(field, forms.ModelChoiceField) and not isinstance(field, forms.ModelMultipleChoiceField):
                what = field.queryset.model._meta.verbose_name
                field.error_messages["invalid_choice"] = f"No {what} has the id %(value)s."
        return form

    @property
    def errors(self) -> ErrorDict:
        """A range filter's error under the parameter that is wrong (`created_after`), not the filter's name
        (`created`), which is no parameter at all."""
        errors = ErrorDict()
        for name, messages in super().errors.items():
            field = self.form.fields.get(name)
            if field is None or not isinstance(field.widget, SuffixedMultiWidget):
                errors[name] = messages
                continue
            widget = field.widget
            params = [widget.suffixed(name, suffix) for suffix in widget.suffixes]
            sent = [
                (param, sub)
                for param, sub in zip(params, field.fields, strict=True)
                if self.data.get(param) not in (None, "")
            ]
            wrong = [param for param, sub in sent if not _valid(sub, self.data.get(param))]
            for param in wrong or [param for param, _ in sent] or params[:1]:
                errors[param] = messages
        return errors


def _valid(field: forms.Field, value) -> bool:
    try:
        field.clean(value)
    except forms.ValidationError:
        return False
    return True


def parameters_check(request, taken: set[str]) -> None:
    """Refuse a query parameter that is not among `taken` (`format`, DRF's choice of renderer, always is): a 400
    naming it and the parameters taken."""
    taken = taken | {api_settings.URL_FORMAT_OVERRIDE}
    if unknown := [name for name in request.query_params if name not in taken]:
        choices = ", ".join(sorted(taken - {api_settings.URL_FORMAT_OVERRIDE}))
        words = f"this list takes {choices}" if choices else "this takes no query parameter (a list's filters go there)"
        raise exceptions.ValidationError({name: [f"Unknown parameter; {words}."] for name in unknown})


def takes_no_body(**schema):
    """For an action that takes no body: `extend_schema(request=None, **schema)`, and a body sent with fields is
    refused, naming them (QueryParametersMixin)."""

    def decorate(function):
        function.takes_no_body = True
        return extend_schema(request=None, **schema)(function)

    return decorate


def body_check(request) -> None:
    """Refuse a body with anything in it, for an operation that takes none: a 400 naming its fields."""
    data = request.data
    if isinstance(data, Mapping):
        if fields := [name for name in data if name != "csrfmiddlewaretoken"]:  # the browsable API's forms send it
            raise exceptions.ValidationError(
                {name: ["Unknown field; this operation takes no body."] for name in fields}
            )
    elif data:
        raise exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: ["This operation takes no body."]})


class QueryParametersMixin:
    # For the API's viewsets and views: an operation that is no list refuses a query parameter, as a list refuses one
    # it does not take (FilterBackend). It was ignored: `GET /campaigns/5/?fields=name` answered the whole campaign as
    # if trimmed, and `POST /messages/?dry_run=true` sent. An action that pages its answer (`@action(paginated=True)`)
    # takes its pages' parameters. The check comes after authentication and permissions: a 401 or 403 first, as on the
    # lists. (A comment, not a docstring: drf-spectacular would show a docstring as every operation's description.)

    # The same for a body: an action that takes none (`@takes_no_body`: launch, pause, cancel, duplicate,
    # test-connection…) refuses one with fields, naming them. It was ignored: `{"dry_run": true}`
    # to `launch/` launched the campaign, `{"name": …}` to `duplicate/` named the copy "Copy of …".

    paginated = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        action = getattr(self, "action", None)
        if action != "list":  # a list's are checked against its filters by FilterBackend
            parameters_check(request, paging_parameters(self.paginator) if self.paginated else set())
        handler = getattr(self, action, None) if action else None
        if request.method in ("POST", "PUT", "PATCH") and getattr(handler, "takes_no_body", False):
            body_check(request)


def paging_parameters(paginator) -> set[str]:
    """The query parameters a paginator reads: page, page_size, cursor."""
    attributes = ("page_query_param", "page_size_query_param", "cursor_query_param")
    return {name for attribute in attributes if (name := getattr(paginator, attribute, None))}


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose filtersets made from a view's `filterset_fields` use the FilterSet above, and
    which refuses, on a list, a query parameter that the list does not take.

    A parameter nothing reads was ignored: `?campaign_id=2` on the messages, or `?tags=vip` on the contacts,
    answered the whole unfiltered list, which looked like the filtered one. Now it is a 400 naming it and the
    parameters the list takes (those its schema lists; `format` too, DRF's choice of renderer)."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", None) == "list":
            parameters_check(request, self.parameters_taken(request, queryset, view))
            # Only a multiple-choice filter (`?status=delivered&status=read`) takes several values; any other kept
            # the last one given, so `?campaign=1&campaign=2` answered campaign 2's messages as if they were both's.
            repeatable = self.parameters_repeatable(request, queryset, view)
            if repeated := [
                name
                for name in request.query_params
                if name not in repeatable and len([v for v in request.query_params.getlist(name) if v != ""]) > 1
            ]:
                raise exceptions.ValidationError(
                    {name: ["Give one value: this parameter is not repeated."] for name in repeated}
                )
        return super().filter_queryset(request, queryset, view)

    def parameters_repeatable(self, request, queryset, view) -> set[str]:
        """The list's parameters that take several values, each repeated: its multiple-choice filters'."""
        filterset = self.get_filterset(request, queryset, view)
        fields = filterset.form.fields.items() if filterset is not None else ()
        return {name for name, field in fields if isinstance(field, forms.MultipleChoiceField)}

    def parameters_taken(self, request, queryset, view) -> set[str]:
        """The query parameters a list reads: its filters' (a range as its _after and _before), `search` and
        `ordering` where it has them, its pages', and `format`."""
        taken = {api_settings.URL_FORMAT_OVERRIDE}
        filterset = self.get_filterset(request, queryset, view)
        for name, field in filterset.form.fields.items() if filterset is not None else ():
            widget = field.widget
            if isinstance(widget, SuffixedMultiWidget):
                taken.update(widget.suffixed(name, suffix) for suffix in widget.suffixes)
            else:
                taken.add(name)
        backends = getattr(view, "filter_backends", ())
        if getattr(view, "search_fields", None) and any(issubclass(b, DrfSearchFilter) for b in backends):
            taken.add(api_settings.SEARCH_PARAM)
        if any(issubclass(b, DrfOrderingFilter) for b in backends):
            taken.add(api_settings.ORDERING_PARAM)
        return taken | paging_parameters(getattr(view, "paginator", None))


class OrderingFilter(DrfOrderingFilter):
    """`?ordering=name,-created_at` among the view's `ordering_fields`; a field not among them is a 400 naming
    `ordering` and the fields it takes (DRF's filter dropped it and answered in the default order, so that a typo
    such as `-create_at` looked like a sort that worked)."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        fields = [term for term in fields if term]  # `?ordering=,`: no field named, as an empty `?ordering=`
        valid = [name for name, _ in self.get_valid_fields(queryset, view, {"request": request})]
        if unknown := [term for term in fields if term.removeprefix("-") not in valid]:
            raise exceptions.ValidationError(
                {self.ordering_param: [f"Cannot order by {', '.join(unknown)}; choose from {', '.join(valid)}."]}
            )
        return fields

    def get_schema_operation_parameters(self, view):
        (parameter,) = super().get_schema_operation_parameters(view)
        fields = [item if isinstance(item, str) else item[0] for item in getattr(view, "ordering_fields", None) or []]
        if fields:
            parameter["description"] = (
                f"Comma-separated fields to order by, each optionally prefixed with - for descending: "
                f"{', '.join(fields)}. Any other is a 400."
            )
        return [parameter]


class SearchFilter(DrfSearchFilter):
    """DRF's `?search=`, whose refusal (a null character, which PostgreSQL cannot compare) names `search` rather
    than `non_field_errors`."""

    def get_search_terms(self, request):
        try:
            return super().get_search_terms(request)
        except exceptions.ValidationError as error:
            raise exceptions.ValidationError({self.search_param: error.detail}) from None
