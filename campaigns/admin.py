"""Admin for campaigns, and read-only views of their messages, frames and delivery reports.

Messages, frames and status events are written by the engine only; they grow to millions of rows,
so their change lists avoid COUNT(*) scans, order by the primary key and search exact values only.
"""

import uuid

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from campaigns.models import Campaign, Frame, Message, StatusEvent

EDITABLE_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED)
ESTIMATE_ABOVE = 100_000  # below this many rows an exact COUNT(*) is cheap enough


class EstimatedCountPaginator(Paginator):
    """An unfiltered list of a huge table takes its size from PostgreSQL's statistics, not a COUNT(*) scan."""

    @cached_property
    def count(self):
        if not self.object_list.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return int(row[0])
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: the engine writes these rows; nobody adds, edits or deletes them by hand."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ["-id"]  # the primary key index; the models' default orderings would sort millions of rows

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """A plain campaign form; the composer, estimate panel and action buttons extend this class."""

    list_display = ["name", "state", "purpose", "channel", "account", "sender", "audience_size", "send_at", "created_at"]  # fmt: skip
    list_filter = ["state", "purpose", "channel", "account"]
    search_fields = ["name"]
    list_select_related = ["account", "sender"]
    autocomplete_fields = ["account", "sender", "template", "tags", "segments", "excluded_tags", "contacts"]
    engine_fields = [
        "state", "state_reason", "counters", "audience_size", "parts", "encoding", "cost_estimate", "cost_actual",
        "consecutive_failures", "launched_at", "completed_at", "parent", "created_by", "created_at", "updated_at",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["name", ("channel", "purpose"), "account", "sender", "template", "text"]}),
        ("Audience", {"fields": [("tags_operator", "tags"), "segments", "excluded_tags", "contacts"],
                      "description": "Contacts with the tags, in the segments or listed, minus the excluded tags."}),
        ("Schedule", {"fields": ["send_at", "recurrence", "smooth_minutes", "send_by", "frame_size"]}),
        ("Progress", {"fields": ["state", "state_reason", "messages_link", "audience_size", "counters",
                                 ("parts", "encoding"), ("cost_estimate", "cost_actual"), "consecutive_failures",
                                 ("launched_at", "completed_at"), "parent", "created_by", ("created_at", "updated_at")]}),
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state not in EDITABLE_STATES:
            # A campaign that has started is a record of what was sent: nothing about it changes by hand.
            return [field.name for field in Campaign._meta.fields] + ["tags", "segments", "excluded_tags", "contacts", "messages_link"]  # fmt: skip
        return [*self.engine_fields, "messages_link"]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="messages")
    def messages_link(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "—"
        url = reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}"
        return format_html('<a href="{}">See the messages of this campaign</a>', url)


class ExactSearchMixin:
    """Search exact values only (indexed), plus `uuid_field` when the term is a UUID."""

    uuid_field = ""

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if self.uuid_field:
            try:
                value = uuid.UUID(search_term.strip())
            except ValueError:
                return results, may_have_duplicates
            results = results | queryset.filter(**{self.uuid_field: value})
        return results, may_have_duplicates


@admin.register(Message)
class MessageAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "address", "status", "campaign", "account", "parts", "provider_message_id", "created_at", "final_at"]  # fmt: skip
    list_filter = ["status", "channel", "account"]
    list_select_related = ["campaign", "account"]
    search_fields = ["=address", "=provider_message_id"]
    search_help_text = "Exact phone (E.164), provider message id or Herald reference (UUID)."
    uuid_field = "external_ref"


@admin.register(Frame)
class FrameAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "campaign", "seq", "account", "state", "size", "attempts", "next_attempt_at", "ticket", "error_code"]  # fmt: skip
    list_filter = ["state", "account"]
    list_select_related = ["campaign", "account"]
    search_fields = ["=ticket"]
    search_help_text = "Exact vendor ticket or idempotency key (UUID)."
    uuid_field = "key"


@admin.register(StatusEvent)
class StatusEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "account", "source", "kind", "raw_status", "status", "outcome", "provider_message_id", "message"]  # fmt: skip
    list_filter = ["source", "outcome", "status", "kind", "account"]
    list_select_related = ["account", "message"]
    search_fields = ["=provider_message_id", "=external_ref", "=address", "=ticket"]
    search_help_text = "Exact provider message id, Herald reference, phone or ticket."
