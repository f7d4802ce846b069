"""Contacts, tags, segments, suppressions and contact imports (DESIGN §2, contacts)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils.text import capfirst

from config.validators import validate_storable_json
from contacts.phones import PhoneNumberField
from contacts.validators import (
    TIME_ZONE_ABBREVIATIONS,
    time_zone_named,
    validate_attributes,
    validate_tag_name,
    validate_time_zone,
)

# What a taken name, phone… is told, in the admin and the API alike: one sentence per unique field, "A <thing> with
# this <field> already exists." (Django's own, "segment with this name already exists." in the API and "Contact with
# this Phone already exists." in the admin, differed in capitals and in words from model to model).
TAG_NAME_TAKEN = "A tag with this name already exists (in capitals or not)."
CONTACT_PHONE_TAKEN = "A contact with this phone number already exists."
SEGMENT_NAME_TAKEN = "A segment with this name already exists."
UNSUBSCRIBED_ALREADY = "This address is already unsubscribed in this scope."


class Tag(models.Model):
    name = models.CharField(
        max_length=100, unique=True, validators=[validate_tag_name], error_messages={"unique": TAG_NAME_TAKEN}
    )
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["name"]
        # "VIP" and "vip" are one tag: naming a tag in another case finds it (services.tags_get_or_create).
        constraints = [
            models.UniqueConstraint(
                Lower("name"), name="tag_name_unique_any_case",
                violation_error_message=TAG_NAME_TAKEN,
            )
        ]  # fmt: skip

    def __str__(self):
        return self.name

    def validate_unique(self, exclude=None):
        """A taken name is told once, by the constraint that takes it in any case (and so as typed too): the two said
        it twice on the admin's page."""
        super().validate_unique(exclude={*(exclude or ()), "name"})


class Contact(models.Model):
    phone = PhoneNumberField(
        unique=True, error_messages={"unique": CONTACT_PHONE_TAKEN},
        help_text="E.164, e.g. +919812345678; national numbers are read in the default region.",
    )  # fmt: skip
    email = models.EmailField(blank=True, default="", db_default="")
    first_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    last_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    identity = models.CharField(
        "external identity",
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="Your own id for this person.",
    )
    country = models.CharField(max_length=2, blank=True, default="", db_default="", help_text="ISO 3166 code, e.g. IN.")
    language = models.CharField(max_length=10, blank=True, default="", db_default="")
    timezone = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="e.g. Asia/Kolkata",
        validators=[validate_time_zone],
    )  # fmt: skip
    attributes = models.JSONField(
        default=dict, blank=True, db_default={}, help_text="Free fields, usable in texts as {{name}}.",
        validators=[validate_attributes, validate_storable_json],
    )  # fmt: skip
    is_active = models.BooleanField("active", default=True, db_default=True)
    tags = models.ManyToManyField(Tag, through="ContactTag", related_name="contacts", blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    # Imports write up to a million contacts at a time, and each index entry costs (bench/bench_import.py):
    # - e-mail and identity are looked up by value (API filters), never as empty, so the many contacts
    #   without one take no entry; e-mail in any case (selectors.email_q), so its index holds it lower-cased;
    # - phone has its unique index only: Django also makes a `varchar_pattern_ops` copy of it for prefix LIKE,
    #   which nothing here runs (search is by the number or icontains), so migration 0003 drops it.
    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(Lower("email"), name="contact_email_lower_idx", condition=~models.Q(email="")),
            models.Index(fields=["identity"], name="contact_identity_idx", condition=~models.Q(identity="")),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} ({self.phone})" if name else self.phone

    def clean(self):
        """A time zone is taken in any case (validate_time_zone) and stored as the tz database spells it; an
        abbreviation as the zone it means in the contact's country, else its number's ("IST" is Asia/Kolkata for
        a contact in India)."""
        if not self.timezone:
            return
        try:
            self.timezone = time_zone_named(self.timezone, country=self.country, phone=self.phone)
        except ValueError as exc:
            if self.timezone.strip().upper() in TIME_ZONE_ABBREVIATIONS:  # left to this by validate_time_zone
                if self._timezone_as_stored():
                    return  # stored before the rule: an edit of another field keeps it (as the import would)
                raise ValidationError({"timezone": f"{self.timezone!r} is {exc}."}) from None
            # any other unknown one: validate_time_zone has said so on the field

    def _timezone_as_stored(self) -> bool:
        """The zone is the one already stored (read only when it cannot be resolved: a rare row)."""
        if self._state.adding or self.pk is None:
            return False
        return type(self).objects.filter(pk=self.pk, timezone=self.timezone).exists()


class ContactTag(models.Model):
    """The contact-tag link, explicit so that imports and audiences can write it with INSERT … SELECT."""

    # Imports write millions of links, so this table is kept lean (measured in bench/bench_import.py):
    # - keyed by the pair itself: a surrogate id cost each link a sequence value and an index entry that nothing
    #   read (migration 0011: +13 % on the import). Django's forms cannot edit such a model, so the contact's
    #   admin page picks its tags in one field (ContactForm.tag_list), not an inline of links;
    # - no single-column indexes: the key (contact, tag) and (tag, contact) below serve both lookups;
    # - no database foreign-key constraints: PostgreSQL checks them one row at a time at commit, which
    #   cost more than the inserts themselves. Django still cascades deletes of contacts and tags, and
    #   links are only ever written by set-based SQL from ids it has just selected.
    pk = models.CompositePrimaryKey("contact", "tag")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["tag", "contact"], name="contact_tag_by_tag_idx")]

    def __str__(self):
        return f"{self.contact_id} → {self.tag_id}"


class Operator(models.TextChoices):
    ANY = "any", "any of"
    ALL = "all", "all of"


class Segment(models.Model):
    """Contacts carrying the positive tags (any/all of them) and not the negative ones (any/all)."""

    name = models.CharField(max_length=150, unique=True, error_messages={"unique": SEGMENT_NAME_TAKEN})
    description = models.CharField(max_length=255, blank=True)
    positive_tags = models.ManyToManyField(Tag, related_name="+", blank=True, help_text="Leave empty for everyone.")
    positive_operator = models.CharField(max_length=3, choices=Operator.choices, default=Operator.ANY)
    negative_tags = models.ManyToManyField(Tag, related_name="+", blank=True)
    negative_operator = models.CharField(max_length=3, choices=Operator.choices, default=Operator.ANY)
    # The last count of its contacts and when it was taken (services.segments_count): lists show it as it was then,
    # since counting every segment on every page load would evaluate each rule over all contacts.
    contact_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    counted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Channel(models.TextChoices):
    """How a message reaches a contact. Defined here because a suppression can be scoped to one (contacts cannot
    import providers); providers.models re-exports it, and providers and campaigns import it from there."""

    SMS = "sms", "SMS"
    VIBER = "viber", "Viber"
    WHATSAPP = "whatsapp", "WhatsApp"
    RCS = "rcs", "RCS"
    PUSH = "push", "Push"
    EMAIL = "email", "E-mail"
    VOICE = "voice_sms", "Voice SMS"

    @classmethod
    def label_of(cls, value: str) -> str:
        """The channel as people write it ("WhatsApp"), or the value as given when it is none of them."""
        return cls(value).label if value in cls.values else value


class Unsubscriber(models.Model):
    """A suppression: never message this address within the scope (MOBtexting's unsubscriber model)."""

    class Scope(models.TextChoices):
        ALL = "all", "everything"
        CHANNEL = "channel", "one channel"
        SENDER = "sender", "one sender ID"
        TAG = "tag", "one tag"
        SERVICE = "service", "one service (purpose)"

    class Source(models.TextChoices):
        ADMIN = "admin", "admin"
        API = "api", "API"
        IMPORT = "import", "import"
        PROVIDER = "provider", "provider webhook"
        INBOUND = "inbound", "inbound STOP"

    address = models.CharField(max_length=254, help_text="Phone (E.164) or e-mail.")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    value = models.CharField(
        max_length=150, blank=True, default="", help_text="Channel, sender name, tag name or service; empty for 'all'."
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)
    reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["address", "scope", "value"],
                name="unsubscriber_unique",
                violation_error_message=UNSUBSCRIBED_ALREADY,
            ),
            models.CheckConstraint(
                condition=models.Q(scope="all", value="") | ~models.Q(scope="all") & ~models.Q(value=""),
                name="unsubscriber_value_matches_scope",
                violation_error_message="An opt-out from everything takes no value; every other scope needs one.",
            ),
        ]
        verbose_name = "opt-out"
        verbose_name_plural = "opt-outs"

    def __str__(self):
        return opt_out_named(self)


# A scope that takes a value as a word, before its value or in a sentence: "+919812345678 (tag news)", "A tag scope
# needs a value (which tag)" (contacts.services.suppression_value_missing).
SCOPE_WORDS = {
    Unsubscriber.Scope.CHANNEL: "channel",
    Unsubscriber.Scope.SENDER: "sender",
    Unsubscriber.Scope.TAG: "tag",
    Unsubscriber.Scope.SERVICE: "service",
}


class UnsubscriberRemoval(models.Model):
    """An opt-out as it stood when staff or an API client removed it (or edited it into another), with who removed
    it and when: deleting the opt-out itself left no trace, so "why was this person messaged on the 12th?" had no
    answer. Written by contacts.services.unsubscribers_remove and unsubscriber_update; never edited."""

    class Via(models.TextChoices):
        ADMIN = "admin", "admin"
        API = "api", "API"

    address = models.CharField(max_length=254)
    scope = models.CharField(max_length=10, choices=Unsubscriber.Scope.choices)
    value = models.CharField(max_length=150, blank=True, default="")
    source = models.CharField(max_length=10, choices=Unsubscriber.Source.choices, help_text="Who recorded the opt-out.")
    reason = models.CharField(max_length=255, blank=True, default="", help_text="Why it was recorded.")
    opted_out_at = models.DateTimeField(help_text="When the opt-out was recorded.")
    removed_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    removed_by_name = models.CharField(
        max_length=150, blank=True, default="", help_text="The user's name then (kept if the user is deleted)."
    )
    via = models.CharField(max_length=10, choices=Via.choices)
    note = models.CharField(max_length=400, blank=True, default="", help_text="What it became, when it was edited.")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["address"], name="unsubscriber_removal_address")]
        verbose_name = "removed opt-out"

    def __str__(self):
        return f"{opt_out_named(self)}, removed {self.removed_at:%Y-%m-%d}"


def opt_out_named(opt_out: Unsubscriber | UnsubscriberRemoval) -> str:
    """An opt-out, or one removed, by its address and scope as the list's Scope column words it: "+919812345678
    (everything)", and with the value of a scope that has one, "+919812345678 (tag news)" (a page's title,
    breadcrumbs and delete page; a removed one said "(all)" and "(tag: news)")."""
    if not opt_out.value:
        return f"{opt_out.address} ({opt_out.get_scope_display()})"
    return f"{opt_out.address} ({SCOPE_WORDS.get(opt_out.scope, opt_out.scope)} {opt_out.value})"


def import_upload_path(instance, filename):
    return f"imports/{instance.kind}/{filename}"


class ContactImport(models.Model):
    """One uploaded file being imported by a Celery task: contacts, suppressions or DLT templates (so named "import",
    not "contact import", in the admin)."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", "contacts"
        UNSUBSCRIBERS = "unsubscribers", "opt-outs"  # as its import is named ("opt-out import"), and the README
        DLT_TEMPLATES = "dlt_templates", "DLT templates"

    class Mode(models.TextChoices):
        CREATE_UPDATE = "create_update", "create and update"
        CREATE_ONLY = "create_only", "create only"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting"
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CONTACTS)
    file = models.FileField(upload_to=import_upload_path)
    original_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=8, blank=True, help_text="csv, txt, xls or xlsx; guessed from the name.")
    mapping = models.JSONField(
        default=dict, blank=True, help_text='How the file\'s columns were read: column → field, "" for one left out.'
    )  # the admin's page of an import says it in the words of its kind (Importer.mapping_help)
    default_region = models.CharField(
        max_length=2, blank=True, help_text="For national numbers; default from settings."
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="+", help_text="Applied to every imported contact.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CREATE_UPDATE)
    options = models.JSONField(
        default=dict, blank=True, help_text="Kind-specific: suppression scope/value, DLT account."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    error_report = models.FileField(upload_to="imports/errors/", blank=True)
    error_message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "import"
        verbose_name_plural = "imports"

    def __str__(self):
        """ "Contacts import #4 (customers.csv)", "DLT template import #1 (export.csv)": named as its page is titled
        (the admin's messages, breadcrumbs and headings say this)."""
        from contacts.imports.registry import import_name  # the importers are registered once the apps are ready

        return f"{capfirst(import_name(self.kind))} #{self.pk} ({self.original_name or self.file.name})"
