"""Writes to provider accounts, senders and DLT templates; the API and admin call these.

Credentials are write-only everywhere: a change carries only the secrets being replaced (a blank
value keeps the stored one), and whatever shows an account shows `credentials_masked`.
"""

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from config.deletion import StillUsed, protected_users
from config.log import redact_url_secrets
from contacts.models import Unsubscriber
from contacts.services import opt_outs_follow_rename
from contacts.validators import country_code
from providers import dlt
from providers.backends import get_backend
from providers.backends.base import BackendError, CheckResult, ConfigError
from providers.crypto import mask
from providers.models import SENDER_SERVICES, SENDER_UNIQUE_CONSTRAINT, Channel, DltTemplate, ProviderAccount, Sender
from providers.promo_window import promo_window_parse
from providers.sms import sms_parts

ACCOUNT_FIELDS = (
    "kind", "name", "base_url", "options", "channels", "max_recipients_per_request", "rate_limit", "price_per_part",
    "currency", "is_active",
)  # fmt: skip
SENDER_FIELDS = (
    "account", "name", "channel", "dlt_entity_id", "dlt_entity_name", "country", "service", "status", "remote_id",
)  # fmt: skip
SENDER_COUNTRY_EXPECTED = "Not a country: give its two-letter code (ISO 3166), e.g. IN, or leave it empty."
TEMPLATE_FIELDS = ("account", "name", "dlt_template_id", "type", "body", "status", "is_english", "remote_id")


def _unknown(fields: Mapping, allowed: Iterable[str], entity: str) -> None:
    if unknown := set(fields) - set(allowed):
        raise TypeError(f"Unknown {entity} fields: {', '.join(sorted(unknown))}")


# --- Credentials -----------------------------------------------------------------------------------


def credentials_masked(credentials: Mapping[str, object]) -> dict[str, str]:
    """Every credential masked ('••••••3f9a'): enough to recognise a key, never enough to use it."""
    return {name: mask(str(value)) for name, value in sorted((credentials or {}).items()) if value not in ("", None)}


def provider_account_webhook_url(*, account: ProviderAccount, user) -> str:
    """The account's webhook URL as `user` may see it. Its ?secret= lets whoever holds it post delivery reports and
    opt-outs for the account, so it is given whole only to who may change the account (to paste it in the vendor's
    console); anyone who may only look at the account sees it masked."""
    url = account.webhook_url
    if user is not None and user.has_perm("providers.change_provideraccount"):
        return url
    return redact_url_secrets(url)


def credentials_merge(*, current: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """Apply a credentials change: a non-blank value replaces, a blank one keeps the stored secret, None removes it."""
    if not isinstance(changes, Mapping):
        raise ValidationError({"credentials": "Give an object of credential names to values."})
    merged = dict(current or {})
    for name, value in changes.items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError({"credentials": "Credential names must be non-empty strings."})
        if value is None:
            merged.pop(name, None)
        elif not isinstance(value, str | int):
            raise ValidationError({"credentials": f"The credential {name!r} must be a string."})
        elif str(value).strip():
            if CONTROL_CHARACTER.search(str(value).strip()):
                raise ValidationError(
                    {"credentials": f"The credential {name!r} holds a line break or another control character, "
                     "which cannot be sent to the vendor; type it again."}
                )  # fmt: skip
            merged[name] = str(value).strip()
    return merged


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def credentials_missing(*, kind: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The credentials the vendor of `kind` needs that `credentials` lacks, each with what to give, in words for
    staff: {"login": "Octopush needs its API login: the e-mail address of the Octopush account."}."""
    backend = get_backend(kind)
    return {
        field.name: f"{backend.label or kind} needs its {field.label}"
        + (f": {sentence_inside(field.help_text)}" if field.help_text else ".")
        for field in backend.credential_fields
        if not str((credentials or {}).get(field.name) or "").strip()
    }


def sentence_inside(text: str) -> str:
    """A sentence to go after a colon: its first letter in lower case, unless it starts a capitalised word (HTTP)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


# --- Provider accounts -----------------------------------------------------------------------------


def provider_account_check(*, account: ProviderAccount) -> None:
    """Check an account's settings against its vendor, normalising channels and currency in place.

    Every problem the settings show is raised at once, each on its field (a person fixes them in one go). The admin
    form runs it on the instance it built, so the admin and the API refuse the same things.
    """
    if account.kind not in ProviderAccount.Kind.values:
        raise ValidationError({"kind": f"Choose one of: {', '.join(ProviderAccount.Kind.values)}."})
    backend = get_backend(account.kind)
    vendor = backend.label or backend.kind
    errors: dict[str, str] = {}
    if not isinstance(account.options, dict):
        errors["options"] = "Give an object of option names to values."
    elif problem := _options_problem(account, backend):
        errors["options"] = problem
    channels = list(dict.fromkeys(account.channels or []))
    if not channels:
        errors["channels"] = "Enable at least one channel."
    elif bad := [c for c in channels if c not in Channel.values]:
        errors["channels"] = f"Unknown channel {bad[0]!r}; choose from {', '.join(Channel.values)}."
    elif bad := [c for c in channels if c not in backend.channels]:
        errors["channels"] = f"{vendor} does not send {bad[0]}; it sends {', '.join(backend.channels)}."
    else:
        account.channels = channels
    frame = account.max_recipients_per_request
    if frame is not None and not 1 <= frame <= backend.max_recipients:
        errors["max_recipients_per_request"] = f"{vendor} takes 1 to {backend.max_recipients} recipients per request."
    if not (account.rate_limit or 0) > 0:
        errors["rate_limit"] = "Give a positive number of requests per second."
    if Decimal(account.price_per_part or 0) < 0:
        errors["price_per_part"] = "A price cannot be negative."
    # Empty: the vendor's (a new account is created so when none is given, provider_account_create).
    currency = (account.currency or "").strip().upper() or backend.default_currency
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = (
            f"Give a three-letter ISO currency code, e.g. {backend.default_currency or 'EUR'}, or leave it empty for "
            "the vendor's."
        )
    else:
        account.currency = currency
    if errors:
        raise ValidationError(errors)


def provider_account_problems(*, account: ProviderAccount) -> dict[str, list[str]]:
    """provider_account_check's problems by field ({} if none), for a caller that adds its own to them before it
    refuses; an account whose kind is none is refused at once (there is no vendor to check the rest against)."""
    try:
        provider_account_check(account=account)
    except ValidationError as error:
        if "kind" in error.message_dict:
            raise
        return error.message_dict
    return {}


def _options_problem(account: ProviderAccount, backend) -> str:
    """What is wrong with the account's options (a dict), in words for staff, or ""."""
    stored = ProviderAccount.objects.filter(pk=account.pk).values_list("options", flat=True).first() or {}
    stored = stored if isinstance(stored, dict) else {}
    # What was saved before a rule existed is not refused again (the account can still be switched off, renamed…);
    # sending with it says what is wrong. A new account has nothing saved: a problem is refused even when no options
    # at all have it too (an option the vendor needs, such as Hyber's client_id).
    problem = backend.options_problem(account.options)
    if problem and (account.pk is None or problem != backend.options_problem(stored)):
        return problem
    # PATCH {"options": {"promo_window": …}} replaced them all, and Devino's task_id (MOBtexting's webhook_id), which
    # the setup stored and sending reads, went with the rest: the account's next frames failed.
    if dropped := [name for name in backend.setup_options if name in stored and name not in account.options]:
        them = "them" if len(dropped) > 1 else "it"
        return (
            f"{' and '.join(dropped)} would be lost: the account's setup stored {them} and sending needs {them}. Keep "
            f"{them} in the options with your change."
        )
    window = account.options.get("promo_window")  # empty: the kind's window (settings.PROMOTIONAL_WINDOWS)
    if window and window != stored.get("promo_window"):  # a saved one is not refused again
        try:
            promo_window_parse(window)
        except ValueError as exc:
            return f"promo_window: {exc}."
    return ""


def _account_problems(account: ProviderAccount, fields: dict, credentials: Mapping | None) -> dict[str, list[str]]:
    """Set `fields` and `credentials` on the account (in memory) and return every problem of the settings and the
    credentials, each on its field, as the admin's form shows them (an API client fixed them one request at a time:
    the settings, then the credentials)."""
    _unknown(fields, ACCOUNT_FIELDS, "account")
    if account.pk and "kind" in fields and fields["kind"] != account.kind:
        # Told alone: the other fields were written for the other vendor, and its rules are not this account's. Said
        # so only when there are other fields: a PATCH of the kind alone was told of fields it never sent.
        unchecked = (
            " (the other fields were checked for their type and length only, not against a vendor's rules)"
            if fields.keys() - {"kind"} or credentials
            else ""
        )
        raise ValidationError({"kind": f"An account's kind cannot change; create another account instead{unchecked}."})
    for name, value in fields.items():
        setattr(account, name, value)
    errors = provider_account_problems(account=account)
    if credentials is not None:
        # A misspelt name ("apikey") was stored beside the real one, which went on unchanged: a key "rotated" that
        # was not. A name given null is removed, a stray one included; given blank, it keeps what is stored.
        names = [field.name for field in get_backend(account.kind).credential_fields]
        if unknown := sorted(name for name, value in credentials.items() if name not in names and value):
            errors["credentials"] = [
                f"Unknown credential {unknown[0]!r}; {account.get_kind_display()} takes {', '.join(names)}."
            ]
        else:
            try:
                account.credentials = credentials_merge(current=account.credentials, changes=credentials)
            except ValidationError as error:
                errors |= error.message_dict
    # A new account needs what its vendor signs in with, as the admin's add page asks (ProviderAccountForm.check):
    # saved without it, it looked ready and failed its first test and every send. A saved one keeps what it has, but
    # such a credential may not be removed from it (given null), which left it failing every send the same way.
    missing = credentials_missing(kind=account.kind, credentials=account.credentials)
    if account.pk:
        missing = {name: words for name, words in missing.items() if (credentials or {}).get(name, "") is None}
    if missing and "credentials" not in errors:
        errors["credentials"] = [f"{name}: {words}" for name, words in missing.items()]
    try:
        account.full_clean(exclude=list(errors))
    except ValidationError as error:
        errors |= error.message_dict
    return errors


def _account_write(account: ProviderAccount, fields: dict, credentials: Mapping | None) -> ProviderAccount:
    if errors := _account_problems(account, fields, credentials):
        raise ValidationError(errors)
    account.save()
    return account


def provider_account_write_problems(
    *, account: ProviderAccount | None, credentials: Mapping[str, str | None] | None = None, **fields
) -> dict[str, list[str]]:
    """What provider_account_create (no account) or provider_account_update would refuse in these fields, by field,
    without writing; fields left out are the new account's defaults or the stored ones. For the API, which tells
    them with the fields that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    if account is None:
        return _account_problems(ProviderAccount(), _new_account_fields(fields), credentials or {})
    return _account_problems(ProviderAccount.objects.get(pk=account.pk), fields, credentials)


def _new_account_fields(fields: dict) -> dict:
    """A new account's fields: without a `currency` it prices in its vendor's (Backend.default_currency: Octopush
    EUR, MOBtexting INR…), not the model's default."""
    return {"currency": "", **fields}


@transaction.atomic
def provider_account_create(
    *, kind: str, name: str, credentials: Mapping[str, str] | None = None, **fields
) -> ProviderAccount:
    """Create an account; `credentials` are stored encrypted, e.g. {"login": …, "api_key": …}. Without a `currency`
    it prices in its vendor's (Backend.default_currency: Octopush EUR, MOBtexting INR…), not the model's default."""
    return _account_write(
        ProviderAccount(), _new_account_fields({"kind": kind, "name": name, **fields}), credentials or {}
    )


@transaction.atomic
def provider_account_update(
    *, account: ProviderAccount, credentials: Mapping[str, str | None] | None = None, **fields
) -> ProviderAccount:
    """Change an account; credentials given are merged (blank keeps a secret, None removes it)."""
    account = ProviderAccount.objects.select_for_update().get(pk=account.pk)
    return _account_write(account, fields, credentials)


# What an account's 409 advises. The API deletes a campaign, and its messages and frames with it, but no message sent
# without one (transactional): those are the record of what was sent, which no user deletes one by one. So the way
# out for an account that sent some is to deactivate it, which refuses every send through it and keeps its history.
ACCOUNT_WAY_OUT = (
    "delete those campaigns first (their messages and frames go with them). A message sent without a campaign "
    "(transactional) is kept as the record of what was sent: retire an account that sent one by deactivating it "
    '("is_active": false), after which it sends nothing and still takes the delivery reports due'
)


def provider_account_delete(*, account: ProviderAccount) -> None:
    """Delete an account nothing uses any more, with its senders and templates; StillUsed (a 409 naming them,
    counted, and saying to deactivate the account instead) while campaigns, frames or messages refer to it. Checked
    first, because Django's own check loads every message of the account to name them."""
    if users := protected_users(account):
        raise StillUsed(account, users, ACCOUNT_WAY_OUT)
    account.delete()


# --- Senders ---------------------------------------------------------------------------------------


def sender_check(*, sender: Sender) -> None:
    """Check a sender against its account, normalising name, country and service code in place; every problem is
    raised at once, each on its field (sender_problems)."""
    if problems := sender_problems(sender=sender):
        raise ValidationError(problems)


def sender_problems(*, sender: Sender) -> dict[str, list[str]]:
    """sender_check's problems by field ({} if none), normalising name, country and service code in place."""
    errors: dict[str, list[str]] = {}
    sender.name = (sender.name or "").strip()
    try:
        sender.country = _sender_country(sender)
    except ValidationError as error:
        errors |= error.message_dict
    sender.service = (sender.service or "").strip().upper()
    if sender.service and sender.service not in SENDER_SERVICES:
        errors["service"] = [f"Choose one of: {', '.join(SENDER_SERVICES)} (or leave empty)."]
    if sender.pk and Sender.objects.filter(pk=sender.pk).exclude(account_id=sender.account_id).exists():
        # Its campaigns and DLT templates are on its account: moved, they would name a sender the account lacks (and
        # what follows would be checked against an account it cannot have).
        errors["account"] = ["A sender's account cannot change; register the sender on the other account."]
        return errors
    if sender.account_id and sender.channel not in (sender.account.channels or []):
        errors["channel"] = [
            f"The account {sender.account.name!r} does not have {Channel.label_of(sender.channel)} enabled."
        ]
    if (
        sender.account_id
        and Sender.objects.filter(account_id=sender.account_id, channel=sender.channel, name=sender.name)
        .exclude(pk=sender.pk)
        .exists()
    ):
        # Checked here, by field: the unique constraint (sender_unique_per_account) was checked under no field.
        errors["name"] = [sender_name_taken(sender)]
        return errors
    # A name the vendor refuses would fail every message sent through the sender. One saved before the rule is not
    # refused again while its name, service and country stay (its account's page, which saves every sender shown,
    # can still be saved; it can be switched to rejected); the pre-flight names it on every campaign through it. The
    # rule reads the service and country: not checked against ones refused above.
    backend = get_backend(sender.account.kind) if sender.account_id else None
    if (
        backend
        and not errors.keys() & {"service", "country"}
        and (problem := backend.sender_problem(sender.name, service=sender.service, country=sender.country))
    ):
        stored = Sender.objects.filter(pk=sender.pk).values_list("name", "service", "country").first()
        kept = stored is not None and (stored[0].strip(), stored[1].strip().upper(), stored[2].strip().upper()) == (
            sender.name, sender.service, sender.country,
        )  # fmt: skip
        if not kept:
            errors["name"] = [problem]
    return errors


def sender_name_taken(sender: Sender) -> str:
    """The refusal of a sender named as one its account has on the same channel (read from the sender as it is: said
    also once the database refused its insert, in a transaction that can no longer query)."""
    return (
        f"The account {sender.account.name!r} has a sender named {sender.name!r} on {Channel.label_of(sender.channel)} "
        "already."
    )


def _sender_country(sender: Sender) -> str:
    """The sender's country as stored: a contact's rule (two letters that are a code, UK read as GB). One stored
    before the rule is kept while it stays, as a name is, so that its account's page can still be saved."""
    country = (sender.country or "").strip().upper()
    if not country:
        return ""
    try:
        return country_code(country)
    except ValueError:
        stored = Sender.objects.filter(pk=sender.pk).values_list("country", flat=True).first() if sender.pk else None
        if stored is not None and stored.strip().upper() == country:
            return country
        raise ValidationError({"country": SENDER_COUNTRY_EXPECTED}) from None


def sender_name_exists(name: str) -> bool:
    """Whether a sender of this name exists, in any case as the audience matches a sender's opt-out: PostgreSQL's
    lower() of both (contacts.audience.suppression_match_sql), not iexact's upper(), which is more lenient."""
    return Sender.objects.annotate(lower_name=Lower("name")).filter(lower_name=Lower(Value(name))).exists()


def sender_names() -> Iterable[str]:
    """Every sender's name (an opt-out import checks its rows' sender values against them)."""
    return Sender.objects.values_list("name", flat=True).iterator()


def _sender_all_problems(sender: Sender, fields: dict) -> dict[str, list[str]]:
    """Set `fields` on the sender (in memory) and return its problems, the model's own limits with sender_check's."""
    _unknown(fields, SENDER_FIELDS, "sender")
    for name, value in fields.items():
        setattr(sender, name, value)
    errors = sender_problems(sender=sender)
    try:
        sender.full_clean(exclude=list(errors))  # (its name once per account and channel: sender_problems says it)
    except ValidationError as error:
        errors |= error.message_dict
    return errors


def _sender_write(sender: Sender, fields: dict) -> Sender:
    """Called within a transaction (sender_add, sender_update), which a refusal leaves."""
    if errors := _sender_all_problems(sender, fields):
        raise ValidationError(errors)
    try:
        sender.save()
    except IntegrityError as error:
        # Two writes of one name at once both pass the check (neither sees the other's uncommitted sender): the
        # constraint stops the second, which is told what the check tells, on `name` (the API answered the
        # constraint's words under non_field_errors). Its transaction can take no query: the words come from the
        # sender as it is. Raised from the error, as the admin knows a race it lost (UniqueRaceAdmin).
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", "") != SENDER_UNIQUE_CONSTRAINT:
            raise
        raise ValidationError({"name": sender_name_taken(sender)}) from error
    return sender


def sender_write_problems(*, sender: Sender | None, **fields) -> dict[str, list[str]]:
    """What sender_create (no sender) or sender_update would refuse in these fields, by field, without writing;
    fields left out are the new sender's defaults or the stored ones. For the API, which tells them with the fields
    that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    sender = Sender() if sender is None else Sender.objects.select_related("account").get(pk=sender.pk)
    return _sender_all_problems(sender, fields)


def sender_create(*, account: ProviderAccount, name: str, **fields) -> Sender:
    """Register a sender ID (a DLT header in India) on an account, linked to the account's DLT templates whose
    imported headers name it (sender_add, in one transaction)."""
    _unknown(fields, SENDER_FIELDS, "sender")
    sender = Sender(account=account, name=name, **fields)
    sender_add(sender=sender)
    return sender


@transaction.atomic
def sender_add(*, sender: Sender) -> int:
    """Save a new sender whose fields are set (by sender_create, or by a form: the admin's sender page and account
    page), checked, and link it to its account's DLT templates whose imported headers name it. Returns the number
    of templates linked."""
    _sender_write(sender, {})
    return dlt_templates_link_headers(sender_ids=[sender.pk])


def dlt_templates_link_headers(*, sender_ids: Iterable[int]) -> int:
    """Link new SMS senders to the DLT templates of their account whose headers, as an import of the DLT portal's
    export recorded them (DltTemplate.headers), name them: the export often comes before the senders are added.
    Every path that adds senders calls it (the API, the admin's sender page and account page, the vendor sync), not
    one that changes them: a link staff removed stays removed. A template the sender may not carry (a transactional one
    for a promotional, service P, sender: dlt_template_sender_problem, as the template's page refuses it) is not
    linked. Returns the number of links made."""
    sender_ids = list(sender_ids)
    if not sender_ids:  # a sync that added none
        return 0
    refusals = dlt_sender_refusals(
        Sender.objects.filter(pk__in=sender_ids, channel=Channel.SMS).select_related("account")
    )
    senders = DltTemplate.senders.field
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {senders.m2m_db_table()} ({senders.m2m_column_name()}, {senders.m2m_reverse_name()})"
            f" SELECT t.id, snd.id FROM {Sender._meta.db_table} snd"
            f" JOIN {DltTemplate._meta.db_table} t"
            "  ON t.account_id = snd.account_id AND upper(snd.name) = ANY (t.headers)"
            f" WHERE snd.id = ANY (%s) AND snd.channel = %s AND {DLT_LINK_ALLOWED} ORDER BY 1, 2"
            " ON CONFLICT DO NOTHING",
            [sender_ids, Channel.SMS, *dlt_refused_params(refusals)],
        )
        return cursor.rowcount


@transaction.atomic
def sender_update(*, sender: Sender, **fields) -> Sender:
    """Change a sender's name, channel, DLT entity, status… A sender-scoped opt-out names its sender, so a rename
    gives its opt-outs to the new name as well (recipients opted out of this sender, whatever it is called now)."""
    old_name = Sender.objects.select_for_update().values_list("name", flat=True).get(pk=sender.pk)
    sender = _sender_write(sender, fields)
    opt_outs_follow_rename(scope=Unsubscriber.Scope.SENDER, old=old_name, new=sender.name, keep_old=True)
    return sender


# --- DLT templates ---------------------------------------------------------------------------------


def sender_named(sender: Sender, account_id: int | None) -> str:
    """A sender's name, with its account's when that is not `account_id`: HERALD may be on several accounts."""
    return sender.name if sender.account_id == account_id else f"{sender.name} ({sender.account.name})"


def dlt_template_check(*, template: DltTemplate, senders: Iterable[Sender] | None = None) -> None:
    """Check a template's body (well-formed variables) and its senders (on its account, and allowed to carry its
    type); every problem is raised at once, each on its field (dlt_template_problems)."""
    if problems := dlt_template_problems(template=template, senders=senders):
        raise ValidationError(problems)


def dlt_template_problems(*, template: DltTemplate, senders: Iterable[Sender] | None = None) -> dict[str, list[str]]:
    """dlt_template_check's problems by field ({} if none)."""
    errors: dict[str, list[str]] = {}
    try:
        dlt.template_check_body(template.body)
    except ValidationError as error:
        errors |= error.message_dict
    senders = list(senders or [])
    strangers = _template_strangers(template, senders)
    if problems := ([strangers] if strangers else []) + _template_misfits(template, senders):
        errors["senders"] = problems
    return errors


def _template_strangers(template: DltTemplate, senders: Iterable[Sender]) -> str:
    """The refusal of the senders that are not on the template's account, or ""."""
    strangers = sorted(
        sender_named(s, template.account_id)
        for s in senders
        if template.account_id and s.account_id != template.account_id
    )
    return f"Not on this template's account: {', '.join(strangers)}." if strangers else ""


def _template_misfits(template: DltTemplate, senders: Iterable[Sender]) -> list[str]:
    """What each sender's vendor would refuse in the template's type going out through it."""
    return [problem for s in senders if (problem := dlt_template_sender_problem(template=template, sender=s))]


def dlt_template_sender_problem(*, template: DltTemplate, sender: Sender) -> str:
    """What the sender's vendor (DLT) would refuse in the template going out through it, or "": a promotional template
    through a transactional header, or the other way round (MOBtexting, India)."""
    return get_backend(sender.account.kind).template_sender_problem(
        template.type, name=sender.name, service=sender.service, country=sender.country
    )


def dlt_sender_refusals(senders: Iterable[Sender]) -> dict[tuple[int, str], str]:
    """For each sender and each DLT template type it may not carry, keyed (sender id, type): the refusal a template's
    page gives (dlt_template_sender_problem). What links are made set-based (an import, a sender added later) leaves
    these out through DLT_LINK_ALLOWED; the senders' accounts are read (select_related("account") spares a query
    each)."""
    return {
        (sender.pk, template_type): problem
        for sender in senders
        for template_type in DltTemplate.Type.values
        if (problem := dlt_template_sender_problem(template=DltTemplate(type=template_type), sender=sender))
    }


# The condition that keeps, in a set-based link of DLT templates `t` to senders `snd`, only the pairs the template
# page allows: its parameters are dlt_refused_params() of dlt_sender_refusals() of the senders it may link.
DLT_LINK_ALLOWED = (
    "NOT EXISTS (SELECT FROM unnest(%s::bigint[], %s::text[]) refused (sender, type)"
    " WHERE refused.sender = snd.id AND refused.type = t.type)"
)


def dlt_refused_params(refusals: Mapping[tuple[int, str], str]) -> list[list]:
    """DLT_LINK_ALLOWED's parameters: the refused senders' ids and the template types each may not carry."""
    return [[sender for sender, _ in refusals], [template_type for _, template_type in refusals]]


def _template_problems(template: DltTemplate, fields: dict, senders: list[Sender] | None) -> dict[str, list[str]]:
    """Set `fields` on the template (in memory) and return every problem of them and of `senders`, each on its field,
    the model's own limits with dlt_template_check's (a taken DLT template id was told, and the senders of another
    account only in the next request)."""
    _unknown(fields, TEMPLATE_FIELDS, "template")
    for name, value in fields.items():
        setattr(template, name, value)
    errors = dlt_template_problems(template=template, senders=senders)
    if senders is None and template.pk and fields.keys() & {"account", "type"}:
        kept = list(template.senders.select_related("account"))
        # Moved to another account with the senders it had: a PATCH of `account` alone kept senders of the old one.
        if "account" in fields and (strangers := _template_strangers(template, kept)):
            errors["account"] = [f"{strangers} Give the senders of its new account with it."]
        # A new type for the senders it has: a PATCH of `type` alone made a promotional template of a transactional
        # header's.
        if "type" in fields and (misfits := _template_misfits(template, kept)):
            errors["type"] = misfits
    try:
        template.full_clean(exclude=list(errors))
    except ValidationError as error:
        errors |= error.message_dict
    return errors


def _template_write(template: DltTemplate, fields: dict, senders: Iterable[Sender] | None) -> DltTemplate:
    senders = None if senders is None else list(senders)
    if errors := _template_problems(template, fields, senders):
        raise ValidationError(errors)
    template.save()
    if senders is not None:
        template.senders.set(senders)
    return template


def dlt_template_write_problems(
    *, template: DltTemplate | None, senders: Iterable[Sender] | None = None, **fields
) -> dict[str, list[str]]:
    """What dlt_template_create (no template) or dlt_template_update would refuse in these fields, by field, without
    writing; fields left out are the new template's defaults or the stored ones. For the API, which tells them with
    the fields that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    template = DltTemplate() if template is None else DltTemplate.objects.get(pk=template.pk)
    return _template_problems(template, fields, None if senders is None else list(senders))


@transaction.atomic
def dlt_template_create(
    *, name: str, dlt_template_id: str, body: str, senders: Iterable[Sender] = (), **fields
) -> DltTemplate:
    """Record a template registered on DLT, with the senders it is registered for."""
    fields = {"name": name, "dlt_template_id": dlt_template_id, "body": body, **fields}
    return _template_write(DltTemplate(), fields, senders)


@transaction.atomic
def dlt_template_update(*, template: DltTemplate, senders: Iterable[Sender] | None = None, **fields) -> DltTemplate:
    """Change a template; `senders`, when given, replace the registered senders."""
    return _template_write(template, fields, senders)


def dlt_template_render(*, template: DltTemplate, values: Mapping[str, object] | list, field: str = "values") -> str:
    """The template's text with its variables filled (each at most 30 characters); a ValidationError is under
    `field`, the name the caller gave the values by."""
    try:
        return dlt.template_render(template.body, values)
    except ValidationError as exc:
        if field == "values":
            raise
        raise ValidationError({field: [m for messages in exc.message_dict.values() for m in messages]}) from None


def dlt_template_match(*, template: DltTemplate, text: str) -> dict[str, str]:
    """The variable values if `text` matches the template, else ValidationError({"text": where it departs})."""
    return dlt.template_match(template.body, text)


def dlt_template_preview(*, body: str, values: Mapping[str, str] | None = None, text: str = "") -> dict:
    """What a template body makes, for staff trying it on its page (saved or not): with `text` (a campaign's), whether
    it matches and with which variable values; else the body filled with `values` (a variable without one keeps its
    slot). Either way the text's SMS parts and each problem the estimate would name (a variable over 30 characters, the
    text off the template), with the same matching and counting as the estimate (dlt.template_slots, sms_parts): a
    variable holding {{first_name}}… is measured for each recipient by the campaign's estimate, not here."""
    try:
        variables = dlt.template_check_body(body)
    except ValidationError as exc:
        return {"variables": [], "problems": [{"field": "body", "message": m} for m in exc.messages]}
    parsed = dlt.template_parse(body)
    problems = []
    matches = None
    if text:
        try:
            found = dlt.template_slots(body, text)
            matches = True
        except ValidationError as exc:
            found, matches = {}, False
            problems += [{"field": "text", "message": m} for m in exc.messages]
        shown = text
    else:
        found = {key: str(value) for key, value in (values or {}).items() if key in variables and str(value) != ""}
        if missing := [key for key in variables if key not in found]:
            problems.append({"field": "values", "message": f"No value yet for {', '.join(map(repr, missing))}."})
        shown = dlt.template_fill(parsed, found)
        problems += [
            {"field": key, "message": problem}
            for key, value in found.items()
            if (problem := dlt.variable_too_long(key, value))
        ]
    parts = sms_parts(shown)
    return {
        "variables": variables,
        "values": found,
        "lengths": {key: len(value) for key, value in found.items()},
        "max_length": dlt.MAX_VARIABLE_LENGTH,
        "text": shown,
        "matches": matches,
        "problems": problems,
        "parts": {
            "encoding": parts.encoding, "length": parts.length, "parts": parts.parts, "per_part": parts.per_part,
            "first_ucs2_char": parts.first_ucs2_char,
        },
    }  # fmt: skip


def provider_account_test_connection(*, account: ProviderAccount) -> CheckResult:
    """Ask the vendor whether the credentials work (and the balance, where it tells); remember the answer."""
    backend = get_backend(account.kind)
    try:
        result = backend.check(account.as_backend_account())
    except BackendError as exc:
        result = CheckResult(ok=False, message=exc.message)
    ProviderAccount.objects.filter(pk=account.pk).update(
        last_check_at=timezone.now(), last_check_ok=result.ok, last_check_message=result.message[:255]
    )
    return result


def _setup_error(label: str, exc: BackendError) -> ValidationError:
    """The setup's failure on the account's field to fix: credentials the vendor refused, an option, or none
    (the vendor could not be reached: nothing is wrong with the account, and trying again may work)."""
    if exc.retryable:
        return ValidationError(
            f"{label} could not be reached to set up the account, so nothing was changed; try again in a while ({exc.message})."
        )
    if isinstance(exc, ConfigError):
        return ValidationError({exc.field: exc.message} if exc.field else exc.message)
    if exc.status_code in (401, 403):
        return ValidationError({"credentials": f"{label} refused the credentials: {exc.message}"})
    return ValidationError(f"{label} refused the setup: {exc.message}")


def provider_account_setup(*, account: ProviderAccount) -> dict:
    """Create what the vendor needs once (Devino's scenario task, MOBtexting's webhook) and store it in options."""
    backend = get_backend(account.kind)
    try:
        options = backend.setup(account.as_backend_account())
    except BackendError as exc:
        raise _setup_error(backend.label, exc) from None
    if options:
        with transaction.atomic():
            locked = ProviderAccount.objects.select_for_update().get(pk=account.pk)
            locked.options = {**locked.options, **options}
            locked.save(update_fields=["options", "updated_at"])
        account.options = locked.options
    return options
