"""What every editable admin page shares."""

from decimal import Decimal

from psycopg.errors import UniqueViolation

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import formats

from config.widgets import AutocompleteSelect, AutocompleteSelectMultiple


def grouped_count(field: str, description: str):
    """A list column of a count, written as the rest of the admin writes numbers ("57,300"): Django's own column of
    an integer field wrote "57300" (USE_THOUSAND_SEPARATOR is off, so that ids stay as typed)."""

    @admin.display(description=description, ordering=field)
    def shown(model_admin, obj) -> str:
        value = getattr(obj, field)
        return (
            model_admin.get_empty_value_display()
            if value is None
            else formats.number_format(value, force_grouping=True)
        )

    return shown


def money_shown(amount: Decimal | str, currency: str, *, places: int = 2) -> str:
    """An amount of money as the admin's pages write it, grouped as their counts are, to `places` decimals and in its
    currency: "9,272.50 RUB", where "9272.50 RUB" was hard to read at a glance. The pages' templates write the same
    with `floatformat:"2g"`, and campaign-progress.js and campaign-composer.js with toLocaleString("en-US")."""
    return f"{formats.number_format(Decimal(amount), decimal_pos=places, force_grouping=True)} {currency}".rstrip()


def id_from(value) -> int | None:
    """An object id from a query string or a form, or None for anything else: "²" is a digit to str.isdigit() but
    no number to int(), which then raised (a 500); str.isdecimal() takes only what int() reads."""
    text = str(value or "")
    return int(text) if text.isdecimal() else None


class AutocompleteAdmin:
    """An admin whose `autocomplete_fields` use Herald's autocomplete widgets (config/widgets.py): a hand-made POST
    of a value that is no id gets the form back with its error, where Django's widgets made it a 500."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class UncountedChangeList(ChangeList):
    """The list of an admin that does not count its whole table on each page (show_full_result_count off, for large
    tables): Django then said "6 results (Show all)" beside the search box of every list, one that no filter or
    search narrowed too (its link led to the same list). An unfiltered list's count is the whole table's."""

    def get_results(self, request):
        super().get_results(request)
        if self.full_result_count is None and self.queryset.query.where == self.root_queryset.query.where:
            self.full_result_count = self.result_count


class UncountedListAdmin:
    """An admin whose list does not count its whole table on each page (see UncountedChangeList)."""

    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return UncountedChangeList


class ViewOnlyAdmin:
    """Rows written by Herald itself (the engine's messages, frames and reports; removed opt-outs): nobody adds, edits
    or deletes them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UniqueRaceAdmin:
    """A save that lost a race on a unique value gets the form back with the field's message, not a 500.

    The form checks uniqueness with a query, so two staff saving the same value at once both pass it, and the
    database's unique index stops the second: IntegrityError (or a service's refusal raised from it, which answers
    an API client as its check would), and the admin's transaction rolls back (nothing is saved). The page is then
    handled once more, and this time the form's check sees the winner's row and names the field, with what the
    person typed still in the form."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (IntegrityError, ValidationError) as error:
            database = error.__cause__ if isinstance(error, ValidationError) else error
            if (
                request.method != "POST"
                or not isinstance(database, IntegrityError)
                or not isinstance(database.__cause__, UniqueViolation)
            ):
                raise
            return super().changeform_view(request, object_id, form_url, extra_context)


class TimesAfterAddAdmin(admin.ModelAdmin):
    """The database sets a record's creation time when it is saved: its add page leaves the field out instead of
    showing the placeholder that stands for it ("<…DatabaseDefault object at 0x…>"), in declared fieldsets too."""

    database_times = ("created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            return fieldsets
        kept = []
        for name, options in fieldsets:
            fields = [line for line in map(self._without_times, options.get("fields", ())) if line]
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept

    def _without_times(self, line):
        """A line of a fieldset (a name, or names shown side by side) without the database's times."""
        if isinstance(line, list | tuple):
            return tuple(name for name in line if name not in self.database_times)
        return None if line in self.database_times else line
