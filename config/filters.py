"""Query-string filter pieces shared by the apps' filtersets (django-filter).

django-filter's boolean filter takes "true" and "false" (and "True", "False", "2", "3") and ignores
anything else: `?is_active=maybe` or `?is_active=0` answered every row. Here a boolean parameter takes
true/false, 1/0 or yes/no in any case, and anything else is a 400 naming the parameter.
"""

import django_filters
from django import forms
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend

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
    """The base of every filterset: model boolean fields get the strict BooleanFilter above."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose filtersets made from a view's `filterset_fields` use the FilterSet above."""

    filterset_base = FilterSet
