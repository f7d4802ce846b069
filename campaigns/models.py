"""Campaigns, their messages, the frames that carry them and the delivery reports (DESIGN §2, campaigns)."""

import os
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from contacts.models import Contact, Operator, Segment, Tag
from providers.backends.base import FAILURE_STATUSES, Status
from providers.models import Channel, DltTemplate, ProviderAccount, Sender

MessageStatus = models.TextChoices("MessageStatus", [(s.name, s.value) for s in Status])
# The error_code of a failure Herald assumed, not one the vendor reported: an answer was lost and nothing
# proved the vendor got the message. A delivery report that arrives later overturns it (services/reports.py).
IN_DOUBT = "in_doubt"  # Frame.response: the refs an uncertain frame's lost answers concerned (absent: all)
OUTCOME_UNKNOWN = "outcome-unknown"
# The error_code of a message Herald expired because no final report came within the account's report window
# (services/reports.py messages_expire_unreported): a guess too, which the vendor's final report overturns.
NO_REPORT = "no-report"
# The error_code of a message Herald closed before it was ever sent: its campaign was cancelled or failed, or the
# send-by deadline passed (services/lifecycle.py messages_close_unsent). No provider had it, so it counts in no
# delivery rate; Campaign.not_sent counts them.
NOT_SENT = "not-sent"


def closed_unsent(status: str, error_code: str) -> bool:
    """A failed message Herald closed before it was sent (NOT_SENT): "not sent" wherever the admin names its status
    (campaigns.selectors.listed_status, Message.__str__), apart from the failures."""
    return status in FAILURE_STATUSES and error_code == NOT_SENT


# 0 was taken as "the account's frame size", as empty is: a client that sent it meant something else, or nothing.
FRAME_SIZE_TOO_SMALL = "Give 1 or more recipients per request, or leave it empty (null) for the account's frame size."
IDEMPOTENCY_KEY_CONSTRAINT = "message_idempotency_key_unique"  # named by the service that catches its violation


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "draft"
        SCHEDULED = "scheduled", "scheduled"
        PREPARING = "preparing", "preparing"
        SENDING = "sending", "sending"
        PAUSED = "paused", "paused"
        COMPLETED = "completed", "completed"
        CANCELLED = "cancelled", "cancelled"
        FAILED = "failed", "failed"
        # Deleted by a user; its messages and frames are being deleted in the background (services/editing.py
        # campaign_purge). Hidden from the API and the admin meanwhile; nothing sends it any more.
        DELETING = "deleting", "being deleted"

    class Purpose(models.TextChoices):
        TRANSACTIONAL = "transactional", "transactional"
        SERVICE = "service", "service"
        PROMOTIONAL = "promotional", "promotional"

    class Recurrence(models.TextChoices):
        NONE = "", "once"
        DAILY = "daily", "daily"
        WEEKLY = "weekly", "weekly"

    name = models.CharField(max_length=150)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SMS)
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="campaigns")
    sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    template = models.ForeignKey(
        DltTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns",
        help_text="A DLT template; the text must match it.",
    )  # fmt: skip
    text = models.TextField(blank=True, help_text="Variables: {{first_name}}, {{last_name}} or any contact attribute.")
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.TRANSACTIONAL)

    # Audience: contacts with the tags (any/all), in the segments, or listed; minus the excluded tags.
    tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    tags_operator = models.CharField(max_length=3, choices=Operator.choices, default=Operator.ANY)
    segments = models.ManyToManyField(Segment, blank=True, related_name="+")
    excluded_tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    contacts = models.ManyToManyField(Contact, blank=True, related_name="+", help_text="Explicit recipients.")

    send_at = models.DateTimeField(null=True, blank=True, help_text="Empty: send when launched.")
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, blank=True, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs",
        help_text="The recurring campaign this run was created from.",
    )  # fmt: skip
    recurrence_time = models.TimeField(
        null=True, blank=True, editable=False,
        help_text="The time of day on TIME_ZONE's clock that a recurring campaign's runs keep, written by the schedule "
        "with each next send time: one that a daylight-saving change skips (02:30 on the night the clocks go forward) "
        "is sent an hour on, and the runs after it come back to it.",
    )  # fmt: skip
    smooth_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Spread the frames evenly over this many minutes."
    )
    send_by = models.DateTimeField(null=True, blank=True, help_text="Messages not sent by then expire.")
    frame_size = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1, FRAME_SIZE_TOO_SMALL)],
        help_text="Recipients per request to the provider, 1 or more; empty (null) for the account's frame size.",
    )  # fmt: skip

    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    state_reason = models.CharField(max_length=500, blank=True, help_text="Why it is paused, deferred or failed.")
    counters = models.JSONField(default=dict, blank=True, help_text="Messages per status, kept current by the engine.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    audience_size = models.PositiveIntegerField(null=True, blank=True)
    not_sent = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Messages closed before they were sent (cancelled, failed campaign, send-by deadline), with the "
        "error code not-sent: counted among the failed and expired counters, but in no delivery rate.",
    )
    parts = models.PositiveSmallIntegerField(null=True, blank=True)
    encoding = models.CharField(max_length=8, blank=True)
    cost_estimate = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    cost_actual = models.DecimalField(max_digits=14, decimal_places=4, default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Every id its messages have lies in message_ids_from..message_ids_to (either end unknown: None): the first is
    # set when it is launched (services/lifecycle.py), the second once they are written (services/prepare.py). A
    # list of one campaign's messages reads that range of the primary key (selectors.messages_of_campaign); newest
    # first, a campaign sent a month ago was otherwise looked for through every message sent since (0.4 s a million).
    message_ids_from = models.BigIntegerField(null=True, blank=True, editable=False)
    message_ids_to = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "send_at"], name="campaign_state_send_at_idx")]

    def __str__(self):
        return self.name


RECURRENCE_STEP = {Campaign.Recurrence.DAILY: timedelta(days=1), Campaign.Recurrence.WEEKLY: timedelta(weeks=1)}

# A campaign in these states may still send (or be launched): what it selects people by must stay as it is.
UNFINISHED_STATES = (
    Campaign.State.DRAFT, Campaign.State.SCHEDULED, Campaign.State.PREPARING, Campaign.State.SENDING,
    Campaign.State.PAUSED,
)  # fmt: skip


class Frame(models.Model):
    """One provider request: up to the backend's maximum of recipients, sent under one idempotency key."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting"  # to send, possibly after a retry delay (next_attempt_at)
        SENDING = "sending", "sending"  # a request is (or was, if its worker died) in flight
        SENT = "sent", "sent"
        FAILED = "failed", "failed"  # permanently failed: its messages are failed with the reason
        CANCELLED = "cancelled", "cancelled"

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="frames")
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="frames")
    seq = models.PositiveIntegerField(help_text="Order within the campaign.")
    size = models.PositiveIntegerField(default=0)
    key = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Idempotency key, the same on every retry.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    uncertain = models.BooleanField(
        default=False, help_text="The last attempt's answer was lost: reconcile with the vendor before resending."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    reports_open = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Some of its messages may still wait for a delivery report (expiry and polling look only here).",
    )
    ticket = models.CharField(max_length=100, blank=True, help_text="The vendor's request id (sms_ticket, group_id).")
    response = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["campaign", "seq"]
        constraints = [models.UniqueConstraint(fields=["campaign", "seq"], name="frame_seq_unique")]
        indexes = [
            models.Index(
                fields=["campaign", "seq"], name="frame_open_idx", condition=models.Q(state__in=["pending", "sending"])
            ),
            models.Index(
                fields=["account", "finished_at"], name="frame_reports_open_idx", condition=models.Q(reports_open=True)
            ),
        ]

    def __str__(self):
        # "frame 2 of 1" read as the second of one frame; "frame 0" as no frame.
        if self.campaign_id is None:
            return f"transactional frame {self.pk} ({self.state})"
        return f"frame {self.number} of campaign {self.campaign_id} ({self.state})"

    @property
    def number(self) -> int | None:
        """Its place among the campaign's frames as people count, from 1 (`seq` counts from 0); None for a
        transactional send's frame, which is one of its own (their `seq` is always 0)."""
        return self.seq + 1 if self.campaign_id else None


def time_ordered_uuid() -> uuid.UUID:
    """A version-7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits.

    Messages written together get neighbouring references, so the unique index takes each frame's on a
    few pages instead of one page each (when the frame's outcome is recorded, and when it is reported). The
    database default, herald_time_ordered_uuid() (migration 0008), makes the same for messages written in SQL."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)


class Message(models.Model):
    """One recipient of one campaign (or one transactional send), from materialisation to final status."""

    # Materialising a million messages writes every index and checks every foreign key once per row
    # (bench/bench_audience.py), so this table is kept lean:
    # - no index of their own for campaign, account and frame: the indexes below lead with them already;
    # - no database foreign-key constraints: PostgreSQL checks them one row at a time at commit (a third of
    #   the time of materialising). Messages are written only by set-based SQL from the campaign, account,
    #   frames and contacts it has just read (or by the ORM from validated ones), and Django still applies
    #   on_delete (cascade, set null, protect) when those are deleted, as for ContactTag.
    # Applying a delivery report (bench/bench_dlr.py) is a heap-only (HOT) update: no index entry is written,
    # because no index holds `status`, in its columns or its condition, and pages keep room for the new row
    # version (fillfactor 50, migration 0012). Messages still waiting for a report are found through their
    # frames (Frame.reports_open), failed ones through `is_failure`, which a delivered report leaves unchanged.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="messages", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    account = models.ForeignKey(
        ProviderAccount, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    frame = models.ForeignKey(
        Frame, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SMS, db_default="sms")
    address = models.CharField(max_length=254, help_text="The phone or e-mail at the time of sending.")
    text = models.TextField(blank=True, default="", db_default="", help_text="As sent.")
    status = models.CharField(max_length=12, choices=MessageStatus.choices, default=Status.PENDING)
    reason = models.CharField(max_length=255, blank=True, default="", db_default="")
    error_code = models.CharField(max_length=32, blank=True, default="", db_default="")
    provider_message_id = models.CharField(max_length=100, blank=True, default="", db_default="")
    external_ref = models.UUIDField(
        default=time_ordered_uuid, db_default=models.Func(function="herald_time_ordered_uuid", output_field=models.UUIDField()),
        unique=True, editable=False,
        help_text="Herald's id for this message, sent to the provider wherever it takes one.",
    )  # fmt: skip
    parts = models.PositiveSmallIntegerField(null=True, blank=True)
    encoding = models.CharField(max_length=8, blank=True, default="", db_default="")
    cost = models.DecimalField(max_digits=10, decimal_places=5, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    queued_at = models.DateTimeField(null=True, blank=True)  # its frame's claim, written with the outcome
    submitted_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    sender_name = models.CharField(
        max_length=32, blank=True, default="", db_default="",
        help_text="A transactional send's sender ID, kept on a suppressed one too (it has no frame); a campaign's "
        "messages are from their campaign's sender.",
    )  # fmt: skip
    purpose = models.CharField(
        max_length=16, blank=True, default="", db_default="",
        help_text="A transactional send's purpose (transactional, service or promotional), kept on a suppressed one "
        "too, as its sender is: a retry with its Idempotency-Key is compared with it. Empty on a campaign's messages "
        "(their campaign's) and on those sent before it was kept.",
    )  # fmt: skip
    dlt_template_id = models.CharField(
        "DLT template id", max_length=32, blank=True, default="", db_default="",
        help_text="A transactional send's DLT template (its DLT id), kept with its purpose for the same reason.",
    )  # fmt: skip
    idempotency_key = models.CharField(
        max_length=255, blank=True, default="", db_default="",
        help_text="A transactional send's Idempotency-Key: a retry with the same key gets this message back, not a second send.",
    )  # fmt: skip
    is_failure = models.GeneratedField(
        expression=models.Q(status__in=sorted(s.value for s in FAILURE_STATUSES)),
        output_field=models.BooleanField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="message_one_per_contact"),
            # Partial: a campaign's messages have no key and take no entry.
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name=IDEMPOTENCY_KEY_CONSTRAINT,
                condition=~models.Q(idempotency_key=""),
            ),
        ]  # fmt: skip
        indexes = [
            # Only failed messages: the progress page's breakdown of failures reads them, and its latest failures by
            # id (newest first, from the end of the campaign's entries: without the id, the latest five of a big
            # campaign were looked for through every newer message of the table). Keyed on `is_failure`, not on
            # status, so that a report moving a message to delivered changes no indexed value (see below).
            models.Index(
                fields=["campaign", "id"], name="message_campaign_failure_idx", condition=models.Q(is_failure=True)
            ),
            models.Index(fields=["frame"], name="message_frame_idx"),
            models.Index(
                fields=["account", "provider_message_id"], name="message_provider_id_idx",
                condition=~models.Q(provider_message_id=""),
            ),
            models.Index(fields=["account", "address"], name="message_account_address_idx"),
        ]  # fmt: skip

    def __str__(self):
        # The admin's page title and breadcrumbs, beside the Status field's "Not sent" (listed_status).
        return f"{self.address} ({'not sent' if closed_unsent(self.status, self.error_code) else self.status})"


class StatusEvent(models.Model):
    """A delivery report or opt-out as received (webhook or poll), applied to its message idempotently.

    Applying an event marks it (its message, outcome and time) with a heap-only (HOT) update, which writes no
    index entry (bench/bench_dlr.py): no index holds a column that marking changes, in its columns or its
    condition, and pages keep room for the new row version (fillfactor 50, migration 0013). So:
    - the events still to apply are found through their own queue, PendingStatusEvent, not an index here;
    - the link to the message has no index and no database constraint (PostgreSQL checked it one row at a time
      at commit; nothing looks a message's events up by it). An event of a deleted message keeps that message's
      id, which no other message takes again;
    - the reports that gave up matching are indexed by `match_attempts`, which a report that matches at once
      leaves at 0, not by their outcome."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "webhook"
        POLL = "poll", "poll"
        ENGINE = "engine", "engine"

    class Outcome(models.TextChoices):
        APPLIED = "applied", "applied"
        IGNORED = "ignored", "ignored (older or duplicate)"
        UNMATCHED = "unmatched", "no such message"
        OPT_OUT = "opt_out", "opt-out recorded"
        UNKNOWN = "unknown", "unknown event"

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="status_events")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEBHOOK)
    kind = models.CharField(max_length=10, default="status")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    provider_message_id = models.CharField(max_length=100, blank=True)
    external_ref = models.CharField(max_length=100, blank=True)
    address = models.CharField(max_length=254, blank=True)
    ticket = models.CharField(max_length=100, blank=True)
    raw_status = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=MessageStatus.choices, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_text = models.CharField(max_length=255, blank=True)
    optout_scope = models.CharField(max_length=10, blank=True)
    optout_value = models.CharField(max_length=150, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    match_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["account", "external_ref"], name="status_event_ref_idx", condition=~models.Q(external_ref="")
            ),
            # Reports that found no message, by number: a frame settled after its answer was lost looks for its
            # own among those that gave up (services/reports.py status_events_rematch). Only events that missed
            # a match take an entry.
            models.Index(
                fields=["account", "address"],
                name="status_event_missed_idx",
                condition=models.Q(match_attempts__gt=0),
            ),
        ]

    def __str__(self):
        return f"{self.raw_status or self.kind} for {self.provider_message_id or self.external_ref or self.address}"


class PendingStatusEvent(models.Model):
    """A stored event still to be applied, and from when: the appliers' queue (services/reports.py).

    Stored with its event and removed by the statement that applies it; an event that found no message yet
    stays, due again later. A queue of its own, so that applying changes no indexed column of the event."""

    event = models.OneToOneField(
        StatusEvent, primary_key=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    due_at = models.DateTimeField(default=timezone.now, db_default=Now())

    def __str__(self):
        return f"event {self.event_id} due {self.due_at:%Y-%m-%d %H:%M:%S}"


class CampaignTestSend(models.Model):
    """One number a campaign was tried on before launch ("Send a test", services/send_test.py).

    Its message is a transactional one (no campaign: never in the campaign's counters, progress or cost, and never
    in the way of the campaign's own message to that contact); this row ties it to the campaign it tried, and
    says who asked and whose fields filled the text."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="test_sends")
    # No cascade from messages: deleting a campaign's messages (services/editing.py) would then read each of them
    # for its test row. A test's message belongs to no campaign, and nothing deletes those.
    message = models.OneToOneField(Message, on_delete=models.DO_NOTHING, related_name="test_send", db_constraint=False)
    batch = models.UUIDField(help_text="The request it was part of (one test: up to five numbers).")
    filled_from = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The contact whose fields filled the text (none: the text's variables were left empty).",
    )  # fmt: skip
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["campaign", "created_at"], name="campaign_test_send_recent_idx")]

    def __str__(self):
        return f"test of {self.campaign_id} to {self.message_id}"
