"""Query-string filter pieces shared by the apps' filtersets (django-filter).

django-filter's boolean filter takes "true" and "false" (and "True", "False", "2", "3") and ignores
anything else: `?is_active=maybe` or `?is_active=0` answered every row. Here a boolean parameter takes
true/false, 1/0 or yes/no in any case, and anything else is a 400 naming the parameter.
"""

import django_filters
from django import forms
from django.db import models
from django.forms.utils import ErrorDict
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import SuffixedMultiWidget

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


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose filtersets made from a view's `filterset_fields` use the FilterSet above."""

    filterset_base = FilterSet
