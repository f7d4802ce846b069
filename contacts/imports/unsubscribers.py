"""Suppressions: addresses (phones to E.164, e-mails lower-cased) that must not be messaged, in a scope.

The scope and its value come from the file's `scope` / `value` columns where a row fills them in,
else from the import's options (default: everything). An address already suppressed in that scope
is left as it is (counted unchanged).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst

from contacts.imports.base import STAGE, Importer, RowError, option_error
from contacts.imports.readers import reason_unless_rounded, whole_number
from contacts.models import Unsubscriber
from contacts.phones import InvalidPhone, normalize_address
from contacts.selectors import suppression_names_known
from contacts.services import (
    EVERYTHING_TAKES_NO_VALUE,
    suppression_value,
    suppression_value_missing,
    suppression_value_problem,
)

Scope = Unsubscriber.Scope
SCOPES = {**{scope.value: scope.value for scope in Scope}, **{scope.label: scope.value for scope in Scope}}
VALUE_MAX = Unsubscriber._meta.get_field("value").max_length
REASON_MAX = Unsubscriber._meta.get_field("reason").max_length


def scope_value_check(scope: str, value: str) -> str | None:
    """Why this scope and value cannot go together (the table's check constraint, a known channel or service), or
    None."""
    if scope == Scope.ALL and value:
        return EVERYTHING_TAKES_NO_VALUE[0].lower() + EVERYTHING_TAKES_NO_VALUE[1:]  # a row's reason, as below
    if scope != Scope.ALL and not value:
        missing = suppression_value_missing(scope)
        return missing[0].lower() + missing[1:]  # a row's reason: "a tag scope needs a value (which tag)"
    if len(value) > VALUE_MAX:
        return f"value longer than {VALUE_MAX} characters"
    return suppression_value_problem(scope, value)


class UnsubscriberImporter(Importer):
    label = "suppression"
    import_name = "opt-out import"
    model = Unsubscriber
    fields = ("address", "scope", "value", "reason")
    required = ("address",)
    key_field = "address"
    key_words = "address and scope"
    mapping_help = (
        'Optional: {"Mobile": "address", "Why": "reason", "Notes": ""}. Without it, columns named phone, mobile, '
        "email, scope, value and reason… are recognised and the others are left out."
    )
    synonyms = {
        "address": ("phone", "mobile", "msisdn", "number", "phone number", "mobile number", "mobile no", "email",
                    "e mail", "email address", "contact", "phone numbers", "mobile numbers", "numbers", "contact no",
                    "emails", "email addresses"),
        "scope": ("suppression scope",),
        "value": ("scope value",),
        "reason": ("comment", "note"),
    }  # fmt: skip
    stage_columns = (("address", "text"), ("scope", "text"), ("value", "text"), ("reason", "text"))

    @classmethod
    def clean_options(cls, options: dict) -> dict:
        unknown = set(options) - {"scope", "value", "reason"}
        if unknown:
            raise ValidationError({"options": f"Unknown option {sorted(unknown)[0]!r}; use scope, value and reason."})
        # Each a text (or null): a list or an object was written as its Python repr, `"reason": ["moved"]` giving every
        # suppression the reason "['moved']"; a number, as the text it is.
        for name in ("scope", "value", "reason"):
            if isinstance(options.get(name), list | dict | bool):
                raise option_error(name, f"{name} must be a text, not {type(options[name]).__name__}.")
        scope = SCOPES.get(str(options.get("scope") or Scope.ALL).strip().lower())
        if scope is None:
            raise option_error("scope", f"Unknown scope {options['scope']!r}; use one of {', '.join(Scope.values)}.")
        value, reason = (
            suppression_value(scope, str(options.get("value") or "")),
            str(options.get("reason") or "").strip(),
        )
        if (value or scope == Scope.ALL) and (problem := scope_value_check(scope, value)):  # else each row gives one
            raise option_error("value", problem[0].upper() + problem[1:] + ".")
        if len(reason) > REASON_MAX:
            raise option_error("reason", f"The reason is longer than {REASON_MAX} characters.")
        return {"scope": scope, "value": value, "reason": reason}

    has_mode = False  # an opt-out is only ever added

    @classmethod
    def changes_existing(cls, mode: str, tagged: bool) -> None:
        """Either mode only adds: a suppression that exists already is left as it is."""
        return None

    @classmethod
    def check_layout(cls, options: dict, layout) -> None:
        """A scope that needs a value, with none given and no column in the file to give one: every row would fail."""
        if options["scope"] != Scope.ALL and not options["value"] and not {"scope", "value"} & set(layout.fields):
            raise option_error("value", f"{suppression_value_missing(options['scope'])}: the file has no value column.")

    @classmethod
    def option_fields(cls) -> dict[str, forms.Field]:
        """Labelled as the opt-out's own page labels its fields (without a label the page wrote the field's name,
        "Unsubscribers  scope")."""

        def label(name: str) -> str:
            return capfirst(Unsubscriber._meta.get_field(name).verbose_name)

        return {
            "scope": forms.ChoiceField(  # not given: everything (clean_options)
                choices=Scope.choices,
                initial=Scope.ALL,
                required=False,
                label=label("scope"),
                help_text="Unless a row says otherwise.",
            ),
            "value": forms.CharField(
                required=False,
                max_length=VALUE_MAX,
                label=label("value"),
                help_text="The channel, sender, tag or service of that scope.",
            ),
            "reason": forms.CharField(required=False, max_length=REASON_MAX, label=label("reason")),
        }

    def __init__(self, contact_import, layout):
        super().__init__(contact_import, layout)
        self.address_index, self.address_column = self.column("address")
        self.scope_index, self.scope_column = self.column("scope")
        self.value_index, self.value_column = self.column("value")
        self.reason_index, self.reason_column = self.column("reason")
        options = self.clean_options(self.options)
        self.scope, self.value, self.reason = options["scope"], options["value"], options["reason"]
        # Read here, on the import's own connection: clean() runs in the file's reader thread.
        self.known_names = {scope: suppression_names_known(scope) for scope in (Scope.TAG, Scope.SENDER)}

    def clean(self, cells: list[str]) -> list[str]:
        def cell(index):
            return cells[index].strip() if index is not None and index < len(cells) else ""

        raw = cell(self.address_index)
        if not raw:
            raise RowError(self.address_column, "", "no address")
        try:
            address = normalize_address(whole_number(raw), self.region)
        except InvalidPhone:
            reason = reason_unless_rounded(raw, "not a valid phone number or e-mail address")
            raise RowError(self.address_column, raw, reason) from None
        scope_text = cell(self.scope_index)
        scope = SCOPES.get(scope_text.lower()) if scope_text else self.scope
        if scope is None:
            raise RowError(self.scope_column, scope_text, f"unknown scope; use one of {', '.join(Scope.values)}")
        value_text = cell(self.value_index)
        value = suppression_value(scope, value_text or (self.value if not scope_text else ""))
        if problem := scope_value_check(scope, value):
            raise RowError(self.value_column if self.value_index is not None else self.scope_column, value, problem)
        reason = cell(self.reason_index) or self.reason
        if len(reason) > REASON_MAX:
            raise RowError(self.reason_column, reason, f"longer than {REASON_MAX} characters")
        values = [f"{address}\x1f{scope}\x1f{value}", address, scope, value, reason]
        if value_text and (warning := self.names_no_one(scope, value)):
            raise RowError(self.value_column, value_text, warning, kept=values)
        return values

    def names_no_one(self, scope: str, value: str) -> str | None:
        """What the error report says of a row whose own sender or tag value no sender or tag has (a typo, or one not
        added yet), or None. The row is imported all the same (RowError's `kept`), as the admin and the API record
        such an opt-out with a warning: the person opted out of it, and it suppresses from when one is named so. The
        options' one value for the whole file is warned of on the import instead (contact_import_warnings)."""
        known = self.known_names.get(scope)
        if known is None or value.casefold() in known:
            return None
        return (
            f"no {scope} is named {value!r}: this opt-out suppresses nothing until one is; check the spelling (the "
            "opt-out is imported all the same)"
        )

    def merge(self, cursor) -> tuple[int, int]:
        cursor.execute(
            f"WITH merged AS (INSERT INTO {Unsubscriber._meta.db_table} (address, scope, value, source, reason, created_at)"
            f" SELECT address, scope, value, %s, reason, now() FROM {STAGE} ORDER BY address, scope, value"
            " ON CONFLICT (address, scope, value) DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM merged",
            [Unsubscriber.Source.IMPORT],
        )
        return cursor.fetchone()[0], 0
