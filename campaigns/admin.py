"""Admin for campaigns, and read-only views of their messages, frames and delivery reports.

Messages, frames and status events are written by the engine only; they grow to millions of rows,
so their change lists avoid COUNT(*) scans, order by the primary key and search exact values only:
messages by address, provider message id or reference, frames by key and reports by reference through
indexes; a frame's ticket and a report's provider message id, address or ticket have no index (the
report path pays for every index), so a search by them compares whole values but reads the table.
"""

from functools import partial

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.db import connection
from django.shortcuts import redirect
from django.urls import path, re_path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from campaigns import admin_views
from campaigns.admin_views import (
    BACKGROUND_STATES,
    EDITABLE_FIELDS,
    CampaignForm,
    campaign_actions,
    composer_words,
    export_query,
)
from campaigns.filters import VISIBLE_STATES
from campaigns.models import Campaign, Frame, Message, StatusEvent
from campaigns.selectors import (
    FAILURE_STATUSES,
    FAILURES_SHOWN,
    IN_FLIGHT_STATUSES,
    LISTED_STATUS_CHOICES,
    background_status,
    campaign_progress,
    campaign_records_counts,
    composer_account_channels,
    composer_variables,
    delivery_rate_of,
    estimate_fills_sample,
    failure_words,
    frames_matching,
    listed_status,
    listed_status_query,
    messages_matching,
    messages_of_campaign,
    messages_shown,
    messages_with_status,
    state_reason_shown,
    status_events_matching,
)
from campaigns.services.editing import (
    EDITABLE_STATES,
    RUNNING_STATES,
    campaign_create,
    campaign_update,
    campaigns_delete,
)
from campaigns.services.send_test import TEST_STATES
from config.admin_mixins import (
    AutocompleteAdmin,
    UncountedChangeList,
    UniqueRaceAdmin,
    ViewOnlyAdmin,
    grouped_count,
    id_from,
    money_shown,
)
from config.pagination import DeepPagePaginator
from config.times import time_shown
from contacts.admin import ContactAdmin
from providers.backends.base import UpdateKind

ESTIMATE_ABOVE = 100_000  # below this many rows an exact COUNT(*) is cheap enough


class AtLeast(int):
    """A count that stopped at its cap: pages as that many rows, reads "100,000+" on the page."""

    def __str__(self):
        return f"{int(self):,}+"


class About(int):
    """A count taken from PostgreSQL's statistics: pages as that many rows, reads "about 1,016,722" on the page."""

    def __str__(self):
        return f"about {int(self):,}"


class EstimatedCountPaginator(DeepPagePaginator):
    """Never a COUNT(*) of a huge table: an unfiltered list takes its size from PostgreSQL's statistics, and any
    other counts at most ESTIMATE_ABOVE + 1 rows (SELECT count(*) FROM (… LIMIT n)).

    A count that reaches the cap reads "100,000+ messages" and pages through the first 100,000 rows, which is as
    deep as anyone pages; a filter or search narrows the rest. The cap bounds the rows counted, not always the rows
    read: a filter that few rows match still reads the table to find them, as the page itself does."""

    count_cap = ESTIMATE_ABOVE
    unfiltered = False  # set by ReadOnlyAdmin: the list is its admin's whole queryset, whatever that excludes

    @cached_property
    def count(self):
        if self.unfiltered or not self.object_list.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return About(row[0])
        counted = self.object_list.order_by()[: self.count_cap + 1].count()
        return AtLeast(self.count_cap) if counted > self.count_cap else counted


class SortableByChangeList(UncountedChangeList):
    """A list sorted only by the columns its admin's `sortable_by` names: Django leaves the other headers without a
    sort link, but still sorts by any column a URL asks for (`?o=2`: a bookmark, a link kept from before)."""

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


class ReadOnlyAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """View only: the engine writes these rows; nobody adds, edits or deletes them by hand."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a facet is a COUNT(*) per choice of every filter
    ordering = ["-id"]  # the primary key index; the models' default orderings would sort millions of rows
    sortable_by = ["id"]  # the same: a click on any other column's header sorted the whole table (ids grow with time)

    def get_changelist(self, request, **kwargs):
        return SortableByChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """Unfiltered is what no filter or search narrows: the messages' list always leaves out a campaign being
        deleted, and so counted 100,001 messages on every load to read "100,000+" instead of taking the estimate."""
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        paginator.unfiltered = queryset.query.where == self.get_queryset(request).query.where
        return paginator


class CampaignStateFilter(admin.SimpleListFilter):
    """The states a listed campaign can be in: one being deleted is not listed (get_queryset)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return VISIBLE_STATES

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


# The campaign's times, read-only: said as the launch page and the composer say them (time_shown), not in Django's
# default format without a zone. The send time and deadline are read-only once the campaign has started.
ENGINE_TIMES = ("launched_at", "completed_at", "created_at", "updated_at")
TIMES = ("send_at", "send_by", *ENGINE_TIMES)
# Its costs, read-only: in the account's currency and grouped, as its pages say them (money_shown), not the column's
# four places alone ("9272.5000").
COSTS = ("cost_estimate", "cost_actual")


def _time_column(name: str):
    @admin.display(description=Campaign._meta.get_field(name).verbose_name, ordering=name)
    def shown(model_admin, campaign: Campaign) -> str:
        return time_shown(getattr(campaign, name)) or model_admin.get_empty_value_display()

    shown.__name__ = f"{name}_shown"
    return shown


def _times_shown(fieldsets: list, names) -> list:
    """The fieldsets with each of these times as its _shown column."""

    def one(field):
        if isinstance(field, (list, tuple)):
            return tuple(one(f) for f in field)
        return f"{field}_shown" if field in names else field

    return [(title, {**options, "fields": [one(f) for f in options["fields"]]}) for title, options in fieldsets]


def _audience_unchosen(campaign: Campaign) -> set:
    """The composer's audience fields left empty on this campaign (the tags with their operator as one row)."""
    unchosen = {name for name in ("segments", "excluded_tags", "contacts") if not getattr(campaign, name).exists()}
    if not campaign.tags.exists():
        unchosen.add(("tags_operator", "tags"))
    return unchosen


@admin.register(Campaign)
class CampaignAdmin(AutocompleteAdmin, UniqueRaceAdmin, admin.ModelAdmin):
    """The composer (dependent choices, template variables, live estimate), the action buttons with their
    confirmation pages, and for a campaign under way its live progress and delivery report (admin_views.py)."""

    form = CampaignForm
    change_form_template = "admin/campaigns/campaign/change_form.html"
    list_display = ["name", "state_badge", "account", "sender_name", "audience_size_shown", "progress", "delivery_rate", "send_at_shown", "created_at_shown"]  # fmt: skip
    list_filter = [CampaignStateFilter, "purpose", "channel", "account"]
    search_fields = ["name"]
    list_select_related = ["account", "sender"]
    audience_size_shown = grouped_count("audience_size", "audience size")
    autocomplete_fields = ["tags", "segments", "excluded_tags", "contacts"]
    engine_fields = [
        "state", "state_reason", "counters", "audience_size", "parts", "encoding", "cost_estimate", "cost_actual",
        "consecutive_failures", "launched_at", "completed_at", "parent", "created_by", "created_at", "updated_at",
    ]  # fmt: skip
    composer_fieldsets = [
        ("Message", {"fields": ["name", ("channel", "purpose"), "account", "sender", "template", "text"],
                     "description": "Choose the account and sender first: the templates and the estimate follow."}),
        ("Audience", {"fields": [("tags_operator", "tags"), "segments", "excluded_tags", "contacts"],
                      "description": "Contacts with the tags, in the segments or listed, minus the excluded tags."}),
        ("Schedule", {"fields": ["send_at", "smooth_minutes", "send_by", "recurrence", "frame_size"],
                      "description": "Leave the send time empty to send when you launch. Promotional messages wait "
                                     "for the allowed hours."}),
    ]  # fmt: skip
    record_fieldset = (
        "Record",
        {"fields": ["state", "state_reason", "messages_link", "frames_link", "runs_link", "audience_size", ("parts", "encoding"),
                    ("cost_estimate_shown", "cost_actual_shown"), ("launched_at", "completed_at"), "parent", "created_by",
                    ("created_at", "updated_at")],
         "classes": ["collapse"]},
    )  # fmt: skip

    class Media:
        css = {"all": ["herald/admin.css"]}

    # --- Pages ---

    def get_queryset(self, request):
        # A campaign being deleted (in the background, campaigns_delete) is gone for its users already.
        return super().get_queryset(request).exclude(state=Campaign.State.DELETING)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.composer_fieldsets
        if obj.state in EDITABLE_STATES:
            # Staff who may only view see the send time and deadline read-only too: said as the record's times.
            editing = self.has_change_permission(request, obj)
            return _times_shown([*self.composer_fieldsets, self.record_fieldset], ENGINE_TIMES if editing else TIMES)
        # A started campaign: what was sent, read-only, below its live progress panel; of its audience only what
        # was chosen (Django shows an empty relation as a label with nothing after it).
        unchosen = _audience_unchosen(obj)
        composed = [
            (name, {**options, "description": "", "fields": fields})
            for name, options in self.composer_fieldsets
            if (fields := [f for f in options["fields"] if f not in unchosen])
        ]
        return _times_shown([self.record_fieldset, *composed], TIMES)

    def get_readonly_fields(self, request, obj=None):
        shown = [f"{name}_shown" for name in (*TIMES, *COSTS)]
        if obj is not None and obj.state not in EDITABLE_STATES:
            # A campaign that has started is a record of what was sent: nothing about it changes by hand.
            return [field.name for field in Campaign._meta.fields] + ["tags", "segments", "excluded_tags", "contacts", "messages_link", "frames_link", "runs_link", *shown]  # fmt: skip
        return [*self.engine_fields, "messages_link", "frames_link", "runs_link", *shown]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.state in RUNNING_STATES:
            return False  # cancel it first (campaigns_delete refuses too)
        return super().has_delete_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        editable = obj is None or obj.state in EDITABLE_STATES
        context["composer"] = editable and (add or self.has_change_permission(request, obj))
        if context["composer"]:
            context["composer_config"] = {
                "senders_url": reverse("admin:campaigns_campaign_senders"),
                "templates_url": reverse("admin:campaigns_campaign_templates"),
                "estimate_url": reverse("admin:campaigns_campaign_estimate", args=[obj.pk] if obj else []),
                "variables": composer_variables(),
                "account_channels": composer_account_channels(),
                "debounce": 400,
            }
            context["estimate_fills_sample"] = estimate_fills_sample(request.user)
            context["composer_words"] = composer_words(obj)
            # Launching is a change; a scheduled campaign is launched already (its page offers "Send now…").
            context["show_save_and_launch"] = self.has_change_permission(request, obj) and (
                obj is None or obj.state == Campaign.State.DRAFT
            )
        if obj is not None:
            context["state_reason_shown"] = state_reason_shown(obj) or (
                "Nothing is sent until you launch it." if obj.state == Campaign.State.DRAFT else ""
            )
            if obj.state in BACKGROUND_STATES:
                context["background"] = background_status()
            may_change = self.has_change_permission(request, obj)
            context["campaign_actions"] = (
                campaign_actions(obj, may_add=self.has_add_permission(request)) if may_change else []
            )
            if may_change and obj.state in TEST_STATES:  # whoever may launch it may test it
                context["send_test_url"] = reverse("admin:campaigns_campaign_test", args=[obj.pk])
            if request.user.has_perm("campaigns.view_message"):
                context["export_url"] = reverse("admin:campaigns_campaign_export", args=[obj.pk])
                context["export_failed_url"] = f"{context['export_url']}?{export_query(FAILURES_SHOWN)}"
            if not editable:
                context["progress"] = campaign_progress(campaign=obj)
                context["progress_config"] = {
                    "url": reverse("admin:campaigns_campaign_progress", args=[obj.pk]),
                    "messages_url": reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={obj.pk}",
                    "interval": 1500,
                }
                context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_saveandlaunch" in request.POST:
            self.message_user(request, f"“{obj}” is saved as a draft. Check the figures, then launch it.")
            return redirect("admin:campaigns_campaign_action", obj.pk, "launch")
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if "_saveandlaunch" in request.POST and obj.state == Campaign.State.DRAFT:  # else launched meanwhile
            self.message_user(request, f"“{obj}” is saved. Check the figures, then launch it.")
            return redirect("admin:campaigns_campaign_action", obj.pk, "launch")
        return super().response_change(request, obj)

    # --- Writes go through the services, as the API's do ---

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A save the services refuse after the form passed is rolled back, and the page handled once more, with the
        refusal on its form (get_form): the page says what stopped the save, on its fields, rather than a 500.
        campaign_update checks again under the campaign's lock, and someone (or beat) may have launched or cancelled
        the campaign, or made it one that launching refuses (scheduled_edit_errors), since the form looked. The
        second pass never saves (its form carries the refusal), so a race that happens again cannot make it a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as refusal:
            if request.method != "POST":
                raise
            request.campaign_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "campaign_refusal", None)
        if refusal is None:
            return form
        return type(form.__name__, (form,), {"refusal": refusal})

    def save_model(self, request, obj, form, change):
        data = {name: value for name, value in form.cleaned_data.items() if name in EDITABLE_FIELDS}
        saved = campaign_update(campaign=obj, data=data) if change else campaign_create(data=data, user=request.user)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # campaign_create / campaign_update set the audience relations; only inline formsets are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_deleted_objects(self, objs, request):
        """The delete pages (one campaign, or the selected ones) summarise what goes: so many messages and frames,
        counted, not Django's list of every related row, which loads them all (minutes for a million messages) and
        asks for the permission to delete messages, which nobody has: they go with their campaign. A running
        campaign is listed as protected (delete_selected_confirmation.html words it): cancel it first."""
        campaigns = list(objs)
        running = [f"{c} ({c.get_state_display()})" for c in campaigns if c.state in RUNNING_STATES]
        if running:
            return [], {}, set(), running
        counts = {"campaigns": len(campaigns), **campaign_records_counts(campaign_ids=[c.pk for c in campaigns])}
        listed = [
            format_html('Campaign: <a href="{}">{}</a>', reverse("admin:campaigns_campaign_change", args=[c.pk]), c)
            for c in campaigns
        ]
        return listed, {name: f"{count:,}" for name, count in counts.items() if count}, set(), []

    def delete_model(self, request, obj):
        self.delete_queryset(request, [obj])

    def delete_queryset(self, request, queryset):
        try:
            deletion = campaigns_delete(campaign_ids=[campaign.pk for campaign in queryset])
        except ValidationError as error:  # launched since get_deleted_objects looked, an instant ago
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        if deletion.background:
            one = deletion.campaigns == 1
            self.message_user(
                request,
                f"{'Its' if one else 'Their'} messages (over {settings.CAMPAIGN_DELETE_INLINE_MAX_MESSAGES:,}) are "
                f"being deleted in the background; until then {'it is' if one else 'they are'} no longer listed.",
                messages.INFO,
            )

    # --- Endpoints (admin_views.py) ---

    def get_urls(self):
        def view(function, **kwargs):
            return self.admin_site.admin_view(partial(function, self, **kwargs))

        return [
            path("estimate/", view(admin_views.estimate_view), name="campaigns_campaign_estimate"),
            path("senders/", view(admin_views.senders_view), name="campaigns_campaign_senders"),
            path("templates/", view(admin_views.templates_view), name="campaigns_campaign_templates"),
            path("dashboard/", view(admin_views.dashboard_view), name="campaigns_campaign_dashboard"),
            path("<int:object_id>/estimate/", view(admin_views.estimate_view), name="campaigns_campaign_estimate"),
            path("<int:object_id>/progress/", view(admin_views.progress_view), name="campaigns_campaign_progress"),
            path("<int:object_id>/messages.csv", view(admin_views.export_view), name="campaigns_campaign_export"),
            path("<int:object_id>/test/", view(admin_views.send_test_view), name="campaigns_campaign_test"),
            re_path(
                r"^(?P<object_id>\d+)/(?P<action>launch|send-now|unschedule|pause|resume|cancel|duplicate)/$",
                view(admin_views.action_view),
                name="campaigns_campaign_action",
            ),
            *super().get_urls(),
        ]

    # --- Columns ---

    send_at_shown = _time_column("send_at")
    send_by_shown = _time_column("send_by")
    launched_at_shown = _time_column("launched_at")
    completed_at_shown = _time_column("completed_at")
    created_at_shown = _time_column("created_at")
    updated_at_shown = _time_column("updated_at")

    @admin.display(description=Campaign._meta.get_field("cost_estimate").verbose_name)
    def cost_estimate_shown(self, campaign: Campaign) -> str:
        if campaign.cost_estimate is None:
            return self.get_empty_value_display()
        return money_shown(campaign.cost_estimate, campaign.account.currency)

    @admin.display(description=Campaign._meta.get_field("cost_actual").verbose_name)
    def cost_actual_shown(self, campaign: Campaign) -> str:
        return money_shown(campaign.cost_actual, campaign.account.currency)

    @admin.display(description="state", ordering="state")
    def state_badge(self, campaign: Campaign) -> str:
        return format_html(
            '<span class="herald-state herald-state-{}" title="{}">{}</span>',
            campaign.state, campaign.state_reason, campaign.get_state_display(),
        )  # fmt: skip

    @admin.display(description="sender", ordering="sender__name")
    def sender_name(self, campaign: Campaign) -> str:
        return campaign.sender.name if campaign.sender else "–"

    @admin.display(description="progress")
    def progress(self, campaign: Campaign) -> str:
        counters = {k: int(v) for k, v in (campaign.counters or {}).items()}
        total = sum(counters.values())
        if not total:
            return "–"
        done = total - sum(counters.get(s, 0) for s in IN_FLIGHT_STATUSES)
        percent = round(100 * done / total)
        return format_html('<progress max="100" value="{}"></progress> {}%', percent, percent)

    @admin.display(description="delivered")
    def delivery_rate(self, campaign: Campaign) -> str:
        counters = {k: int(v) for k, v in (campaign.counters or {}).items()}
        rate = delivery_rate_of(counters=counters, not_sent=campaign.not_sent)
        return "–" if rate is None else f"{rate:.1f}%"

    @admin.display(description="messages")
    def messages_link(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "–"
        url = reverse("admin:campaigns_message_changelist") + f"?campaign__id__exact={campaign.pk}"
        return format_html('<a href="{}">See the messages of this campaign</a>', url)

    @admin.display(description="frames")
    def frames_link(self, campaign: Campaign) -> str:
        """Its requests to the provider, in order: where support looks when a request failed."""
        frames = campaign.frames.count() if campaign.pk else 0
        if not frames:
            return "–"
        url = reverse("admin:campaigns_frame_changelist") + f"?{CampaignChosenFilter.parameter_name}={campaign.pk}"
        return format_html(
            '<a href="{}">{} frame{} (requests to the provider)</a>', url, f"{frames:,}", "" if frames == 1 else "s"
        )

    @admin.display(description="runs")
    def runs_link(self, campaign: Campaign) -> str:
        """A recurring campaign sends a run of itself at each send time: the list of them."""
        runs = campaign.runs.count() if campaign.pk else 0
        if not runs:
            return "–" if not campaign.recurrence else "None yet: the first at its send time."
        url = reverse("admin:campaigns_campaign_changelist") + f"?parent__id__exact={campaign.pk}"
        return format_html('<a href="{}">{} run{} so far</a>', url, runs, "" if runs == 1 else "s")


# The contact page shows the contact's messages; contacts never imports campaigns, so campaigns adds the section.
ContactAdmin.page_sections.append(admin_views.contact_messages_section)


class ExactSearchMixin:
    """Search a value typed whole, through `search_selector` (campaigns/selectors/records.py), which uses the
    indexes; not Django's `=field` search, which compares UPPER(field) with UPPER(term) and so reads the whole
    table. `search_fields` only names the fields, so that the search box shows."""

    search_selector = None  # (queryset, term) -> the rows that have the term

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (self.search_selector(queryset, term) if term else queryset), False


class MessageStatusFilter(admin.SimpleListFilter):
    """The status filter, by the status shown (`sending`: its frame is being sent), and "Not sent" apart from the
    failed statuses as the campaign's page counts them (listed_status_query); a failed status and "Not sent" also
    read the index of failed messages (messages_with_status)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return LISTED_STATUS_CHOICES

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        statuses, not_sent = listed_status_query(self.value())
        return messages_with_status(queryset, statuses, not_sent)


class CampaignChosenFilter(admin.SimpleListFilter):
    """The campaign a list was opened for (a link on its page): named in the sidebar, with "Clear all filters"
    beside it. Its one choice is the chosen campaign, read by its key: nothing lists every campaign."""

    title = "campaign"
    parameter_name = "campaign__id__exact"  # the links of campaign pages (and bookmarks) say so

    campaign = None  # the chosen one, once lookups found it

    @property
    def campaign_name(self) -> str | None:
        return self.campaign.name if self.campaign else None

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        if id_from(value) is None:
            raise IncorrectLookupParameters(f"No campaign with id {value!r}.")
        found = Campaign.objects.filter(pk=value).exclude(state=Campaign.State.DELETING)
        self.campaign = found.only("name", "message_ids_from", "message_ids_to").first()
        return [(value, self.campaign_name if self.campaign else f"#{value} (no such campaign)")]

    def queryset(self, request, queryset):
        return queryset.filter(campaign_id=self.value()) if self.value() else queryset


class MessageCampaignFilter(CampaignChosenFilter):
    """A campaign's messages ("See the messages of this campaign"), found by its range of message ids."""

    def queryset(self, request, queryset):
        if self.campaign is not None:
            return messages_of_campaign(queryset, self.campaign)
        return super().queryset(request, queryset)


# The list's parameters that do not change which messages it shows.
LIST_VIEW_PARAMETERS = {"o", "p", "e", "_facets", "_changelist_filters", "_to_field", "_popup"}


@admin.register(Message)
class MessageAdmin(ExactSearchMixin, ReadOnlyAdmin):
    change_list_template = "admin/campaigns/message/change_list.html"
    list_display = ["id", "address", "status_shown", "reason", "campaign", "account", "parts", "provider_message_id", "created_at", "final_at"]  # fmt: skip
    list_filter = [MessageCampaignFilter, MessageStatusFilter, "channel", "account"]
    list_select_related = ["campaign", "account"]
    search_fields = ["address", "provider_message_id", "external_ref"]
    search_help_text = "Exact phone (any format), e-mail, provider message id or Herald reference (UUID)."
    search_selector = staticmethod(messages_matching)

    def get_queryset(self, request):
        return messages_shown(super().get_queryset(request))

    def changelist_view(self, request, extra_context=None):
        """A list filtered to a campaign is titled with it and offers its messages as CSV, following the status
        filter (the campaign's export streams them: admin_views.export_view)."""
        if "status__exact" in request.GET and "status" not in request.GET:
            # Links that filtered by the stored status (status__exact=rejected) take the status filter, which the
            # sidebar shows and the export follows.
            query = request.GET.copy()
            query.setlist("status", query.pop("status__exact"))
            return redirect(f"{request.path}?{query.urlencode()}")
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data.update(self._campaign_export(request, changelist))
        return response

    def _campaign_export(self, request, changelist) -> dict:
        """The subtitle and the export link of a list filtered to a campaign: "Export these" when the campaign and
        the status filter are all that narrow it, else words saying what the export holds (it follows no search)."""
        spec = next((s for s in changelist.filter_specs if isinstance(s, MessageCampaignFilter)), None)
        if spec is None or spec.campaign_name is None:
            return {}
        context = {"subtitle": f"Messages of the campaign “{spec.campaign_name}”"}
        campaigns = self.admin_site.get_model_admin(Campaign)
        if not (request.user.has_perm("campaigns.view_message") and campaigns.has_view_permission(request)):
            return context
        labels = dict(LISTED_STATUS_CHOICES)
        status = request.GET.get("status") or ""
        if status and status not in labels:
            return context
        used = {name for name, value in request.GET.items() if value}
        if not used - LIST_VIEW_PARAMETERS - {MessageCampaignFilter.parameter_name, "status"}:
            label = "Export these (CSV)"
        elif status:
            words = "failed" if status == FAILURES_SHOWN else labels[status].lower()
            label = f"Export this campaign’s {words} messages (CSV)"
        else:
            label = "Export this campaign’s messages (CSV)"
        url = reverse("admin:campaigns_campaign_export", args=[spec.value()])
        query = export_query(status)
        return {**context, "export_url": url + (f"?{query}" if query else ""), "export_label": label}

    def get_fields(self, request, obj=None):
        """The status as shown in its place, and what a failure means under its reason (Django appends read-only
        fields at the end: the status was shown there a second time)."""
        shown = {"status": "status_shown", "cost": "cost_shown"}
        fields = [
            shown.get(name, name)
            for name in super().get_fields(request, obj)
            if name not in {*shown.values(), "meaning"}
        ]
        fields.insert(fields.index("reason") + 1 if "reason" in fields else len(fields), "meaning")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ["meaning", "status_shown", "cost_shown"]

    @admin.display(description="status")
    def status_shown(self, message: Message) -> str:
        """A pending message whose frame is being sent reads "Sending" (messages_shown). Not sortable: the stored
        status would sort a sending message among the pending, and sorting by the status shown (a CASE over the
        frames' join) would sort every message listed: millions of rows."""
        shown = listed_status(getattr(message, "shown_status", message.status), message.error_code)
        return dict(LISTED_STATUS_CHOICES).get(shown, shown)

    @admin.display(description="cost")
    def cost_shown(self, message: Message) -> str:
        """In the account's currency, to the vendor's precision without the column's trailing zeros (0.045 EUR,
        0.18 INR; the field keeps five places)."""
        if message.cost is None:
            return self.get_empty_value_display()
        places = max(2, -message.cost.normalize().as_tuple().exponent)
        return money_shown(message.cost, message.account.currency, places=places)

    @admin.display(description="what it means")
    def meaning(self, message: Message) -> str:
        if message.status not in FAILURE_STATUSES:
            return "–"
        return failure_words(
            kind=message.account.kind, status=message.status, error_code=message.error_code, reason=message.reason
        )


@admin.register(Frame)
class FrameAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "campaign", "number", "account", "state", "size", "attempts", "next_attempt", "ticket", "error_code"]  # fmt: skip
    list_filter = [CampaignChosenFilter, "state", "account"]
    list_select_related = ["campaign", "account"]
    search_fields = ["key", "ticket"]
    search_help_text = "Exact idempotency key (UUID, indexed) or vendor ticket (not indexed: reads every frame)."
    search_selector = staticmethod(frames_matching)

    def get_fields(self, request, obj=None):
        """Its number in the campaign counted from 1, in the place of the stored `seq` (from 0); its next attempt as
        the list shows it, in the place of the stored time."""
        shown = {"seq": "number", "next_attempt_at": "next_attempt"}
        return [shown.get(name, name) for name in super().get_fields(request, obj) if name not in shown.values()]

    def get_readonly_fields(self, request, obj=None):
        return ["number", "next_attempt"]

    def get_ordering(self, request):
        """One campaign's frames in the order they were numbered (the (campaign, seq) index); every campaign's,
        newest first. Ids do not follow numbers: the prepare's shares number their frames side by side."""
        return ["seq"] if request.GET.get(CampaignChosenFilter.parameter_name) else super().get_ordering(request)

    @admin.display(description="number")
    def number(self, frame: Frame) -> str:
        return str(frame.number) if frame.number is not None else self.get_empty_value_display()

    @admin.display(description="next attempt at")
    def next_attempt(self, frame: Frame) -> str:
        """Only while it may be attempted (waiting, or being sent: a request whose worker died is tried again): the
        stored time of a sent, failed or cancelled frame is the last one it had, a future one for a frame cancelled
        while it waited, though it is never attempted again."""
        if frame.state not in (Frame.State.PENDING, Frame.State.SENDING):
            return self.get_empty_value_display()
        return time_shown(frame.next_attempt_at) or self.get_empty_value_display()


class StatusEventKindFilter(admin.SimpleListFilter):
    """The kinds a backend reports (UpdateKind). Django's filter of a field without choices lists the values
    it finds: SELECT DISTINCT over every report, on every page of the list."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind.value, kind.value.replace("_", "-")) for kind in UpdateKind]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(StatusEvent)
class StatusEventAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "received_at", "account", "source", "kind", "raw_status", "status", "outcome", "provider_message_id", "message"]  # fmt: skip
    list_filter = ["source", "outcome", "status", StatusEventKindFilter, "account"]
    list_select_related = ["account", "message"]
    search_fields = ["external_ref", "provider_message_id", "address", "ticket"]
    search_help_text = (
        "Exact Herald reference (indexed); else exact provider message id, phone or ticket "
        "(not indexed: reads every report)."
    )
    search_selector = staticmethod(status_events_matching)
