"""The admin's autocomplete widgets (the search box of a relation's select), as every Herald form uses them.

Django's widgets look the submitted values up by the related model's key to show them again beside the form's
errors. A value that is no key ("france" in a hand-made POST, or "²", a digit to str.isdigit() but no number to int())
raised ValueError in that lookup: a 500, where the form had its own error to show ("“france” is not a valid value.",
"Select a valid choice."). These leave such values out of the lookup, which they could never match."""

from django.contrib.admin import widgets
from django.core.exceptions import ValidationError


class KeysOnlyMixin:
    """Look up only the values that can be keys of the related model (see the module's docstring)."""

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if self._may_be_key(v)], attr)

    def _may_be_key(self, value) -> bool:
        model = self.field.remote_field.model
        key = model._meta.get_field(getattr(self.field.remote_field, "field_name", None) or model._meta.pk.name)
        try:
            key.get_prep_value(value)
        except (TypeError, ValueError, ValidationError):
            return False
        return True


class AutocompleteSelect(KeysOnlyMixin, widgets.AutocompleteSelect):
    pass


class AutocompleteSelectMultiple(KeysOnlyMixin, widgets.AutocompleteSelectMultiple):
    pass
