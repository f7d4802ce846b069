"""Admin forms for provider accounts, senders and DLT templates.

Each form runs the service's own check on the instance it built (after the model's validation),
so the admin refuses exactly what the API refuses, with the error on the field.
"""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import format_html

from config.form_fields import StorableJSONField
from providers import services
from providers.backends import get_backend
from providers.crypto import mask
from providers.models import Channel, DltTemplate, ProviderAccount, Sender


class ServiceCheckedForm(forms.ModelForm):
    """A ModelForm that, once the model is valid, runs `check(instance)` and puts its errors on the fields."""

    # Run the check also when fields have errors, so that every problem is told at once; each of its errors then goes
    # only on a field that has none yet. For a form whose check needs no field that may be missing from the instance.
    check_despite_errors = False

    def check(self, instance) -> None:
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self.errors and not self.check_despite_errors:
            return
        try:
            self.check(self.instance)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                field = field if field in self.fields else None
                if (field or NON_FIELD_ERRORS) not in self.errors:
                    self.add_error(field, messages)


def credential_widget(name: str, *, autocomplete: str) -> forms.Widget:
    """The input of the credential `name`: a password input where a vendor keeps it secret, a text input where none
    does (the Octopush and Hyber logins, CredentialField.secret). It never starts with what is stored (the form has
    no initial value for it); sent back with an error, it shows what the person typed, which they would otherwise
    have to type again without being told."""
    fields = [f for kind in ProviderAccount.Kind.values for f in get_backend(kind).credential_fields if f.name == name]
    if any(field.secret for field in fields):
        return forms.PasswordInput(render_value=True, attrs={"autocomplete": autocomplete})
    return forms.TextInput(attrs={"autocomplete": "off"})


class ProviderAccountForm(ServiceCheckedForm):
    """Secrets are write-only: the inputs start empty, a blank input keeps the stored value."""

    check_despite_errors = True  # the account's check reads fields that always have a value (a default)

    login = forms.CharField(
        required=False,
        widget=credential_widget("login", autocomplete="off"),
        help_text="Leave blank to keep the current login.",
    )
    api_key = forms.CharField(
        label="API key / password",
        required=False,
        widget=credential_widget("api_key", autocomplete="new-password"),
        help_text="Leave blank to keep the current key.",
    )
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text=ProviderAccount._meta.get_field("base_url").help_text,
    )
    channels = forms.MultipleChoiceField(choices=Channel.choices, initial=["sms"], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ProviderAccount
        fields = [
            "kind", "name", "is_active", "base_url", "options", "channels", "max_recipients_per_request",
            "rate_limit", "price_per_part", "currency",
        ]  # fmt: skip
        field_classes = {"options": StorableJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Empty: the vendor's currency, which the check fills in (the model's default, INR, is MOBtexting's only).
        if "currency" in self.fields:  # not for whoever may only view the account
            self.fields["currency"].required = False
            self.fields["currency"].help_text = currency_help()
            if self.instance.pk is None:
                self.instance.currency = self.initial["currency"] = ""
        stored = self.instance.credentials or {}
        for name in ("login", "api_key"):
            if name in self.fields and self.instance.pk is None:  # nothing stored to keep: what each vendor takes
                self.fields[name].help_text = credential_help(name)
            elif name in self.fields and stored.get(name):
                # The admin writes help texts as HTML: the secret's end is the user's text.
                self.fields[name].help_text = format_html("Current: {}. Leave blank to keep it.", mask(stored[name]))

    def check(self, instance: ProviderAccount) -> None:
        problems = services.provider_account_problems(account=instance)
        # A new account needs what its vendor signs in with (a saved one keeps what it has): said with the rest. A
        # credential refused as typed (clean_login) already has its error, which stays the one shown.
        if instance.pk is None:
            typed = {name: self.cleaned_data.get(name) or "" for name in ("login", "api_key")}
            problems |= services.credentials_missing(kind=instance.kind, credentials=typed)
        if problems:
            raise ValidationError(problems)

    def _credential(self, name: str) -> str:
        """A typed secret, refused here as the API refuses it (credentials_merge), rather than when it is saved."""
        value = self.cleaned_data.get(name) or ""
        try:
            services.credentials_merge(current={}, changes={name: value})
        except ValidationError as error:
            raise ValidationError(error.message_dict["credentials"]) from None
        return value

    def clean_login(self) -> str:
        return self._credential("login")

    def clean_api_key(self) -> str:
        return self._credential("api_key")

    def credential_changes(self) -> dict[str, str]:
        """The secrets typed in; blank ones are absent, so the stored values stay."""
        return {name: self.cleaned_data[name] for name in ("login", "api_key") if self.cleaned_data.get(name)}


def currency_help() -> str:
    """What an empty currency becomes: "Empty for the vendor's: MOBtexting INR, Octopush EUR, …"."""
    vendors = ", ".join(f"{label} {get_backend(kind).default_currency}" for kind, label in ProviderAccount.Kind.choices)
    return f"ISO code of the price per part. Empty for the vendor's: {vendors}."


def credential_help(name: str) -> str:
    """What each vendor takes in the credential `name`, for the add page: "Octopush: API login (the e-mail address of
    the Octopush account); … Not used by MOBtexting, Devino OMNI."."""
    said, unused = [], []
    for kind, label in ProviderAccount.Kind.choices:
        field = next((f for f in get_backend(kind).credential_fields if f.name == name), None)
        if field is None:
            unused.append(label)
        else:
            said.append(
                f"{label}: {field.label}"
                + (f" ({services.sentence_inside(field.help_text).rstrip('.')})" if field.help_text else "")
            )
    return "; ".join(said) + "." + (f" Not used by {', '.join(unused)}." if unused else "")


class SenderForm(ServiceCheckedForm):
    class Meta:
        model = Sender
        fields = [
            "account", "name", "channel", "dlt_entity_id", "dlt_entity_name", "country", "service", "status",
            "remote_id",
        ]  # fmt: skip
        help_texts = {
            "status": "Campaigns send only through an approved sender: set it approved once the vendor has approved "
            "the sender ID (a MOBtexting account's page syncs its senders' statuses from MOBtexting).",
            "service": "MOBtexting service: T transactional (for India 6 capitals or digits, e.g. HERALD), P "
            "promotional (for India the 6 digits the operator gives, e.g. 777777; it carries promotional DLT "
            "templates only), S service (TransScrub) or G global.",
            "dlt_entity_id": "The Principal Entity id registered on the DLT portal: Indian traffic needs it.",
        }

    # sender_check reads a field that failed as the new sender's default or the stored value (no account: no rule
    # of an account), so its problems are told with the fields' own, at once, as the API tells them.
    check_despite_errors = True

    def check(self, instance: Sender) -> None:
        services.sender_check(sender=instance)


class DltTemplateForm(ServiceCheckedForm):
    class Meta:
        model = DltTemplate
        fields = ["account", "name", "dlt_template_id", "type", "body", "senders", "status", "is_english", "remote_id"]
        help_texts = {
            "type": "As registered on DLT. A promotional template goes out through a promotional (service P, numeric) "
            "sender only, as a promotional campaign (in the promotional window); the others through transactional or "
            "service senders.",
            "senders": "The headers it is registered for on DLT, senders of its account.",
        }

    # dlt_template_check reads a field that failed as the new template's default or the stored value (no account: no
    # sender is another account's), so its problems are told with the fields' own, at once, as the API tells them.
    check_despite_errors = True

    def check(self, instance: DltTemplate) -> None:
        senders = self.cleaned_data.get("senders")
        services.dlt_template_check(template=instance, senders=None if senders is None else list(senders))
