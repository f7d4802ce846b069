"""Form fields shared by the admin's forms."""

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from config.validators import DEPTH_MESSAGE, validate_storable_json


class StorableJSONField(forms.JSONField):
    """A JSON value typed in the admin (a contact's attributes, an account's options) that PostgreSQL can store:
    Django's field parsed a value nested ~900 deep into a RecursionError, a 500, where the API answers 400. It is
    refused on its field, with the depth and NUL checks the model runs (validate_storable_json), which told a value
    nested 100 deep twice beside the model's other checks of it."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(DEPTH_MESSAGE, code="nested_too_deep") from None
        validate_storable_json(converted)
        return converted

    def bound_data(self, data, initial):
        """The text as typed, shown again with its error (Django's parses it again, and writes the parsed value out)."""
        try:
            value = super().bound_data(data, initial)
            if not isinstance(value, InvalidJSONInput):
                validate_storable_json(value)
        except (RecursionError, ValidationError):
            return InvalidJSONInput(data)
        return value
