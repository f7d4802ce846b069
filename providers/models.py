"""Provider accounts, sender IDs and DLT templates (DESIGN §2, providers)."""

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from config.validators import validate_storable_json
from contacts.models import Channel  # re-exported: providers and campaigns import it from here
from providers.crypto import EncryptedJSONField


def _webhook_secret() -> str:
    return secrets.token_urlsafe(24)


def _default_channels() -> list[str]:
    return ["sms"]


class ProviderAccount(models.Model):
    """Credentials and limits for one account at one vendor. Secrets are encrypted and never shown in full."""

    class Kind(models.TextChoices):
        MOBTEXTING = "mobtexting", "MOBtexting"
        OCTOPUSH = "octopush", "Octopush"
        DEVINO = "devino", "Devino OMNI"
        HYBER = "hyber", "Hyber / GMS"

    uuid = models.UUIDField(
        "webhook key", default=uuid.uuid4, unique=True, editable=False,
        help_text="The end of the webhook URL (shown above): it tells Herald which account a delivery report is for.",
    )  # fmt: skip
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(
        max_length=100, unique=True, error_messages={"unique": "A provider account with this name already exists."}
    )
    base_url = models.URLField(blank=True, help_text="Leave empty for the vendor's own API; the sandbox URL for tests.")
    credentials = EncryptedJSONField(blank=True, default=dict, help_text="Encrypted at rest.")
    options = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_storable_json],
        help_text="Vendor settings that are not secret (client id, task id, product type…).",
    )
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=_default_channels)
    max_recipients_per_request = models.PositiveIntegerField(
        null=True, blank=True, help_text="Frame size; empty for the vendor's default (Octopush 500, Hyber 1…)."
    )
    rate_limit = models.FloatField(default=20.0, help_text="Requests per second, shared by every worker.")
    price_per_part = models.DecimalField(max_digits=10, decimal_places=5, default=0, help_text="For cost estimates.")
    currency = models.CharField(max_length=3, default="INR")
    webhook_secret = models.CharField(
        max_length=64, default=_webhook_secret, help_text="Authenticates delivery reports."
    )
    is_active = models.BooleanField("active", default=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_message = models.CharField(max_length=255, blank=True)
    last_dlr_at = models.DateTimeField("last delivery report", null=True, blank=True)
    # MOBtexting's registries (sender IDs, DLT templates, opt-outs): when they were last synced, by the account
    # page's button or beat's hourly run, and how it went (providers.sync.registries_sync).
    last_sync_at = models.DateTimeField("last registry sync", null=True, blank=True)
    last_sync_ok = models.BooleanField(null=True, blank=True)
    last_sync_message = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def as_backend_account(self):
        """The plain dataclass a backend takes (backends never see this model)."""
        from providers.backends import get_backend
        from providers.backends.base import Account

        backend = get_backend(self.kind)
        return Account(
            kind=self.kind,
            base_url=(self.base_url or backend.default_base_url).rstrip("/"),
            credentials=dict(self.credentials or {}),
            options=dict(self.options or {}),
            webhook_url=self.webhook_url,
            webhook_secret=self.webhook_secret,
            uuid=str(self.uuid),
            timeout=float(settings.PROVIDER_HTTP_TIMEOUT),
        )

    @property
    def webhook_url(self) -> str:
        """Where the vendor should send delivery reports; paste it in the vendor's console."""
        from providers.backends import get_backend

        base = f"{settings.HERALD_PUBLIC_URL}/hooks/{self.kind}/{self.uuid}/"
        return base + (f"?secret={self.webhook_secret}" if get_backend(self.kind).secret_in_url else "")


# MOBtexting's product codes for SMS, in words as its API document names them ("S TransScrub SMS": service texts,
# the DLT service implicit/explicit templates; "G Global SMS": outside India).
SENDER_SERVICES = {"T": "transactional", "P": "promotional", "S": "service (TransScrub)", "G": "global"}


def sender_label(*, name: str, channel: str, account: str = "", service: str = "", country: str = "") -> str:
    """A sender as an operator reads it among choices: its name, the channel and account it sends on, then the
    MOBtexting service (in words) and country where it has them, e.g. "HERALD (SMS on MOBtexting sandbox;
    transactional, IN)". Sender.__str__ and the campaign composer's choices say it so."""
    on = Channel.label_of(channel)
    if account:
        on = f"{on} on {account}"
    route = SENDER_SERVICES.get(service, f"service {service}" if service else "")
    details = ", ".join(part for part in (route, country) if part)
    return f"{name} ({on}; {details})" if details else f"{name} ({on})"


SENDER_UNIQUE_CONSTRAINT = "sender_unique_per_account"  # named by the service that catches its violation


class Sender(models.Model):
    """A sender ID (DLT header in India) registered on an account for one channel."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="senders")
    name = models.CharField(max_length=32, help_text="As recipients see it, e.g. HERALD.")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SMS)
    dlt_entity_id = models.CharField("DLT entity (PE) id", max_length=32, blank=True)
    dlt_entity_name = models.CharField("DLT entity name", max_length=150, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO code, e.g. IN.")
    service = models.CharField(max_length=8, blank=True, help_text="MOBtexting service: T, P, S or G.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    remote_id = models.CharField(max_length=64, blank=True, help_text="The vendor's id, once synced.")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "channel", "name"], name=SENDER_UNIQUE_CONSTRAINT)]

    def __str__(self):
        return sender_label(
            name=self.name, channel=self.channel, account=self.account.name, service=self.service, country=self.country
        )

    def validate_constraints(self, exclude=None):
        """Its one constraint, a name once per account and channel, is checked by providers.services.sender_check,
        which says it on `name`: the constraint's own words came under no field, on the admin's page beside the
        API's 400 on `name`. The database still refuses a second (a race: sender_add answers it as the check)."""
        super().validate_constraints(exclude={*(exclude or ()), "name"})


class DltTemplate(models.Model):
    """A template registered on India's DLT platform; texts sent under it must match it."""

    class Type(models.TextChoices):
        TRANSACTIONAL = "T", "transactional"
        PROMOTIONAL = "P", "promotional"
        SERVICE_IMPLICIT = "SI", "service implicit"
        SERVICE_EXPLICIT = "SE", "service explicit"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    account = models.ForeignKey(
        ProviderAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="dlt_templates"
    )
    name = models.CharField("name / alias", max_length=150)
    dlt_template_id = models.CharField(
        "DLT template id", max_length=32, unique=True,
        error_messages={"unique": "A DLT template with this DLT template id already exists."},
    )  # fmt: skip
    type = models.CharField(max_length=2, choices=Type.choices, default=Type.TRANSACTIONAL)
    body = models.TextField(help_text="Variables as {#var#} (DLT) or {{name}} (MOBtexting).")
    senders = models.ManyToManyField(Sender, blank=True, related_name="dlt_templates")
    headers = ArrayField(
        models.CharField(max_length=32),
        default=list,
        db_default=models.Value([], output_field=ArrayField(models.CharField(max_length=32))),
        blank=True,
        editable=False,
        verbose_name="headers in the DLT portal's export",
        help_text="The headers an import of the DLT portal's export named for it, in capitals: a sender of one of "
        "these names added to its account later is linked to it.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPROVED)
    is_english = models.BooleanField(
        "English text", default=True, help_text="Off for a text in Hindi or another language (MOBtexting's is_english)."
    )
    remote_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        ordering = ["name"]
        verbose_name = "DLT template"

    def __str__(self):
        return f"{self.name} ({self.dlt_template_id})"
