"""The campaign pages' views beyond Django's own: the composer's form and its JSON endpoints (senders, templates,
live estimate), the live progress endpoint, the confirmation pages of the actions (launch, send now, unschedule,
pause, resume, cancel, duplicate), the CSV export of messages, the admin index's dashboard and the message history on
a contact's page.

Each view checks the permission, validates its input, calls one selector or service and presents the result;
CampaignAdmin (campaigns/admin.py) routes them through `get_urls`.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Q
from django.forms.models import construct_instance
from django.http import Http404, HttpResponseBadRequest, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from campaigns import services
from campaigns.dashboard import dashboard_figures
from campaigns.models import Campaign
from campaigns.rendering import text_variables
from campaigns.selectors import (
    FAILURE_STATUSES,
    LISTED_STATUS_CHOICES,
    MESSAGE_CSV_COLUMNS,
    MESSAGE_CSV_OUTSIDE_TEXT,
    NOT_SENT_SHOWN,
    SHOWN_STATUS_CHOICES,
    background_status,
    campaign_estimate,
    campaign_first_recipient,
    campaign_message_rows,
    campaign_progress,
    campaign_test_sends,
    composer_senders,
    composer_templates,
    contact_message_history,
    estimate_fills_sample,
    failure_words,
    listed_status,
    listed_status_query,
    state_reason_shown,
)
from campaigns.services.editing import (
    campaign_check,
    deferred_reason,
    past_send_at_problem,
    recurrence_dropped,
    recurring_send_at_problem,
    scheduled_edit_errors,
    scheduled_reason,
)
from campaigns.services.lifecycle import send_now_refusal
from campaigns.services.send_test import (
    NO_CONTACT_FIELDS,
    TEST_NUMBERS_MAX,
    TEST_STATES,
    SendTestThrottled,
    campaign_send_test,
    send_test_region_words,
)
from config.admin_mixins import id_from
from config.spreadsheet import inert
from config.times import time_shown, zoned_time_shown
from config.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from contacts.audience import AudienceSpec
from contacts.models import Contact
from providers.models import DltTemplate, ProviderAccount, Sender

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

State = Campaign.State
EDITABLE_FIELDS = (
    "name", "channel", "account", "sender", "template", "text", "purpose", "tags", "tags_operator", "segments",
    "excluded_tags", "contacts", "send_at", "recurrence", "smooth_minutes", "send_by", "frame_size",
)  # fmt: skip


# --- The composer's form ----------------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    """The composer: only approved senders of the chosen account and channel, only the templates registered for the
    chosen sender; the editing rules are campaign_check's, the same as the API's, with errors on their fields."""

    refusal: ValidationError | None = None  # what the services refused at a save this form comes back after
    # Whether clean() holds a scheduled campaign to launching's checks (scheduled_edit_errors), as a save does. The
    # estimate runs them itself, on the values as typed (composer_estimate): refused by the form, a field kept its
    # saved value, and the panel showed the saved text's parts and cost under "Write the message text".
    launch_checked = True
    REFUSED = (
        "Nothing was saved: the campaign, or something it uses, changed while this page was open (another person, or "
        "the scheduler launching it)."
    )

    class Meta:
        model = Campaign
        fields = EDITABLE_FIELDS
        widgets = {"text": forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "composer-text"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        for name in ("send_at", "send_by"):  # typed on the site's clock: said, not left to the browser's zone
            if name in self.fields:
                field = self.fields[name]
                field.help_text = f"{field.help_text} In {timezone.get_current_timezone_name()} time, the site's."
        if "account" in self.fields:
            field = self.fields["account"]
            field.queryset = ProviderAccount.objects.filter(Q(is_active=True) | Q(pk=instance.account_id))
            field.empty_label = "Choose an account"
            field.error_messages["required"] = "Choose a provider account."
        if "sender" in self.fields:
            field = self.fields["sender"]
            offered = Q(pk=instance.sender_id)
            if self._chosen("account"):
                channel = self._chosen("channel") or "sms"
                of_account = Q(account_id=self._chosen("account"), channel=channel)
                offered |= of_account & Q(status=Sender.Status.APPROVED)
                if self.is_bound and self._chosen("sender"):
                    # The sender posted stays chosen when it is no longer approved (clean_sender says so), and so does
                    # the template chosen for it: not emptied to be chosen again.
                    offered |= of_account & Q(pk=self._chosen("sender"))
            field.queryset = Sender.objects.filter(offered).select_related("account").order_by("name")  # str() reads it
            field.empty_label = "Choose a sender" if self._chosen("account") else "Choose an account first"
            field.error_messages["invalid_choice"] = "Choose an approved sender of this account and channel."
            field.help_text = "Only the approved sender IDs of the account, on the channel chosen."
        if "template" in self.fields:
            field = self.fields["template"]
            offered = Q(pk=instance.template_id)
            if self._chosen("sender"):
                offered |= Q(senders=self._chosen("sender"), status=DltTemplate.Status.APPROVED)
            field.queryset = DltTemplate.objects.filter(offered).distinct().order_by("name")
            field.error_messages["invalid_choice"] = "Choose an approved DLT template registered for this sender."
            field.empty_label = "No template (free text)"
            field.help_text = "The DLT templates registered for the sender; empty for a free text."

    def clean_sender(self):
        sender = self.cleaned_data.get("sender")
        if sender is not None and sender.status != Sender.Status.APPROVED and sender.pk != self.instance.sender_id:
            raise ValidationError(
                f"{sender.name} is not approved ({sender.get_status_display()}): choose an approved sender of this "
                "account and channel."
            )
        return sender

    def _chosen(self, name: str):
        """The value the form is about: what was posted, else the campaign's own."""
        if self.is_bound:
            value = self.data.get(self.add_prefix(name)) or None
            if name == "channel":
                return value
            return id_from(value)  # junk chooses nothing; its field says so
        if name == "channel":
            return self.initial.get("channel") or self.instance.channel
        return self.initial.get(name) or getattr(self.instance, f"{name}_id", None)

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("account") or (self.instance.account if self.instance.account_id else None)
        try:
            campaign_check(
                account=account,
                sender=cleaned.get("sender"),
                template=cleaned.get("template"),
                channel=cleaned.get("channel") or self.instance.channel,
                instance=self.instance if self.instance.pk else None,
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else NON_FIELD_ERRORS, problems)
        edited = {"send_at": cleaned.get("send_at"), "recurrence": cleaned.get("recurrence", self.instance.recurrence)}
        setting = "send_at" in self.changed_data or recurrence_dropped(
            campaign=self.instance, recurrence=edited["recurrence"]
        )
        if setting and (problem := past_send_at_problem(**edited)):
            self.add_error("send_at", problem)
        if self.instance.pk and "send_at" in self.changed_data and "send_at" not in self.errors:
            recurrence = cleaned.get("recurrence", self.instance.recurrence)
            problem = recurring_send_at_problem(
                campaign=self.instance, send_at=cleaned.get("send_at"), recurrence=recurrence
            )
            if problem:
                self.add_error("send_at", problem)
        if self.instance.pk and not self.errors and self.launch_checked:
            # A scheduled campaign is held to launching's checks when saved (scheduled_edit_errors), on the edited
            # values: a copy of the campaign takes them, as the save would (the form's own instance takes them later).
            edited = construct_instance(self, copy.copy(self.instance))
            for field, problems in scheduled_edit_errors(campaign=edited, audience=self.audience()).items():
                self.add_error(field if field in self.fields else NON_FIELD_ERRORS, problems)
        if self.refusal is not None:
            self._add_refusal(self.refusal)
        return cleaned

    def _add_refusal(self, refusal: ValidationError) -> None:
        """The services' refusal of the save this form comes back after, on its fields: the words the form's own
        checks did not say already (a race the form could not see, or one that happened again)."""
        self.add_error(None, self.REFUSED)
        problems = refusal.message_dict if hasattr(refusal, "error_dict") else {NON_FIELD_ERRORS: refusal.messages}
        for field, words in problems.items():
            field = field if field in self.fields else NON_FIELD_ERRORS
            said = self.errors.get(field, [])
            if new := [message for message in words if message not in said]:
                self.add_error(field, new)

    def audience(self) -> AudienceSpec:
        """The audience the form describes (valid fields only), for the estimate of an unsaved campaign."""
        cleaned = getattr(self, "cleaned_data", {})

        def ids(name):
            return [obj.pk for obj in cleaned.get(name) or []]

        return AudienceSpec(
            tag_ids=ids("tags"),
            tags_operator=cleaned.get("tags_operator") or "any",
            segment_ids=ids("segments"),
            excluded_tag_ids=ids("excluded_tags"),
            contact_ids=ids("contacts"),
        )


def _estimate_shown(measured) -> dict:
    """Estimate.as_dict() with the time a promotional send is deferred to as a person reads it, in the window's zone
    with the site's beside it (zoned_time_shown), and the words the launch then says (deferred_reason)."""
    estimate = measured.as_dict()
    if measured.deferred_until:
        estimate["deferred_until_display"] = zoned_time_shown(measured.deferred_until)
        estimate["deferred_reason"] = deferred_reason(opening=measured.deferred_until)
    return estimate


def composer_estimate(form: CampaignForm, user=None) -> dict:
    """The estimate of what the form describes, saved or not, as `user` may see it (campaign_estimate):
    Estimate.as_dict() plus the form's own problems, and what the panel says of them (composer_words), of a draft
    and a scheduled campaign alike."""
    form.launch_checked = False
    form.is_valid()
    problems = [
        {"field": "" if field == NON_FIELD_ERRORS else field, "message": message}
        for field, errors in form.errors.items()
        if field != "name"  # a name is needed to save, not to estimate
        for message in errors
    ]
    campaign = form.instance  # the posted values applied in memory (ModelForm._post_clean); never saved here
    words = composer_words(campaign)
    if not campaign.account_id:
        if not any(p["field"] == "account" for p in problems):
            problems.insert(0, {"field": "account", "message": "Choose a provider account."})
        return {"empty": True, "problems": problems, "ok": False, **words}
    estimate = _estimate_shown(campaign_estimate(campaign=campaign, audience=form.audience(), user=user))
    # A field the form refused keeps the form's word on it (the estimate saw the field as empty).
    refused = {p["field"] for p in problems}
    problems += [p for p in estimate["problems"] if p["field"] not in refused]
    return {**estimate, "empty": False, "problems": problems, "ok": not problems, **words}


# --- Views (the first argument is the CampaignAdmin) ------------------------------------------------------------


def _may_compose(model_admin: ModelAdmin, request, obj=None) -> bool:
    if obj is not None:
        return model_admin.has_change_permission(request, obj)
    return model_admin.has_add_permission(request) or model_admin.has_change_permission(request)


def _campaign(model_admin: ModelAdmin, request, object_id) -> Campaign:
    # The admin's own queryset: a campaign being deleted in the background is gone for its users (no export).
    campaign = get_object_or_404(
        model_admin.get_queryset(request).select_related("account", "sender", "template"), pk=object_id
    )
    if not model_admin.has_view_permission(request, campaign):
        raise PermissionDenied
    return campaign


def _int_param(request, name: str) -> int | None:
    return id_from(request.GET.get(name))


def estimate_view(model_admin: ModelAdmin, request, object_id=None):
    """POST the composer's fields (saved or not): the live estimate as JSON."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = _campaign(model_admin, request, object_id) if object_id else None
    if not _may_compose(model_admin, request, campaign):
        raise PermissionDenied
    form_class = model_admin.get_form(request, campaign, change=campaign is not None)
    form = form_class(request.POST, instance=campaign or Campaign())
    return JsonResponse(composer_estimate(form, request.user))


def senders_view(model_admin: ModelAdmin, request):
    """GET ?account=&channel=: the approved senders the composer offers."""
    if not _may_compose(model_admin, request):
        raise PermissionDenied
    account_id = _int_param(request, "account")
    if account_id is None:
        return JsonResponse({"results": []})
    return JsonResponse({"results": composer_senders(account_id=account_id, channel=request.GET.get("channel", "sms"))})


def templates_view(model_admin: ModelAdmin, request):
    """GET ?sender=: the approved DLT templates registered for the sender, with their variables."""
    if not _may_compose(model_admin, request):
        raise PermissionDenied
    sender_id = _int_param(request, "sender")
    if sender_id is None:
        return JsonResponse({"results": []})
    return JsonResponse({"results": composer_templates(sender_id=sender_id)})


def progress_view(model_admin: ModelAdmin, request, object_id):
    """GET: counters, progress, rate, errors, failures by reason and the funnel; polled while the campaign runs."""
    return JsonResponse(campaign_progress(campaign=_campaign(model_admin, request, object_id)))


EXPORT_ROWS_A_PIECE = 500


def export_query(status: str) -> str:
    """The export's query string for a status of the admin's message list ("" for every message): its statuses and
    what it does with the not sent (listed_status_query), which export_view reads back."""
    statuses, not_sent = listed_status_query(status) if status else ([], "")
    return urlencode([("status", s) for s in statuses] + ([("not_sent", not_sent)] if not_sent else []))


def export_view(model_admin: ModelAdmin, request, object_id):
    """GET: every message of the campaign as CSV, streamed (never the whole campaign in memory); `?status=` (one
    or more, as the message list shows them: `sending`, `rejected`…) only the messages in those statuses;
    `?not_sent=exclude` none of those closed before they were sent (the campaign's page's failed export: the failures
    its progress panel counts as failed, the not sent apart), `?not_sent=only` those alone (the message list's "Not
    sent"). `?status=not_sent`, the list's own choice, alone: the same as `?not_sent=only`. A row's status is the
    list's, `not_sent` for one closed before it was sent."""
    campaign = _campaign(model_admin, request, object_id)
    if not request.user.has_perm("campaigns.view_message"):
        raise PermissionDenied
    statuses = list(dict.fromkeys(request.GET.getlist("status")))
    known = dict(LISTED_STATUS_CHOICES)
    if unknown := [status for status in statuses if status not in known]:
        return HttpResponseBadRequest(
            f"status: {unknown[0]!r} is not a message status; choose from {', '.join(known)}.",
            content_type="text/plain; charset=utf-8",
        )
    if (not_sent := request.GET.get("not_sent", "")) not in ("", "exclude", "only"):
        return HttpResponseBadRequest(
            f"not_sent: {not_sent!r} is not understood; the values are 'exclude' and 'only'.",
            content_type="text/plain; charset=utf-8",
        )
    which = ""
    if listed := [status for status in statuses if status not in dict(SHOWN_STATUS_CHOICES)]:
        if len(statuses) > 1 or not_sent:
            return HttpResponseBadRequest(
                f"status: {listed[0]!r} goes alone, with no other status and no not_sent; export the others apart.",
                content_type="text/plain; charset=utf-8",
            )
        statuses, not_sent = listed_status_query(listed[0])
        which = f"-{listed[0].replace('_', '-')}"
    outside_text = [MESSAGE_CSV_COLUMNS.index(name) for name in MESSAGE_CSV_OUTSIDE_TEXT]

    def lines():
        """The file in pieces of EXPORT_ROWS_A_PIECE rows: one piece a row cost a write (and its bookkeeping) each."""
        piece = io.StringIO()
        writer = csv.writer(piece)
        writer.writerow([*MESSAGE_CSV_COLUMNS, "meaning"])
        for number, row in enumerate(campaign_message_rows(campaign=campaign, statuses=statuses, not_sent=not_sent), 1):
            # A contact's name in a text, a vendor's error words: never a formula when the file is opened.
            row = list(row)
            for at in outside_text:
                if row[at]:
                    row[at] = inert(row[at])
            writer.writerow(row)
            if number % EXPORT_ROWS_A_PIECE == 0:
                yield piece.getvalue()
                piece.seek(0)
                piece.truncate()
        yield piece.getvalue()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    which = which or "".join(f"-{status}" for status in statuses) + {
        "exclude": "-without-not-sent",
        "only": "-not-sent",
    }.get(not_sent, "")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-messages{which}.csv"'
    return response


ACTIONS = {
    # name: (service, states it applies to, button label, page title, what happens)
    # A scheduled campaign is launched already: it offers "Send now" and "Unschedule", not a launch that would only
    # save the same schedule again.
    "launch": (
        services.campaign_launch,
        (State.DRAFT,),
        "Launch",
        "Launch {name}?",
        "Herald writes one message per recipient and starts sending, or waits for the send time.",
    ),
    "send-now": (
        services.campaign_send_now,
        (State.SCHEDULED,),
        "Send now",
        "Send {name} now?",
        "Herald clears its send time, writes one message per recipient and starts sending now (a promotional campaign "
        "outside its allowed hours: when they open).",
    ),
    "unschedule": (
        services.campaign_unschedule,
        (State.SCHEDULED,),
        "Unschedule",
        "Unschedule {name}?",
        "It goes back to draft and is not sent at its send time: nothing is sent until you launch it again. Its send "
        "time is kept.",
    ),
    "pause": (
        services.campaign_pause,
        (State.PREPARING, State.SENDING),
        "Pause",
        "Pause {name}?",
        "Requests already with the provider finish; nothing else is sent until you resume.",
    ),
    "resume": (
        services.campaign_resume,
        (State.PAUSED,),
        "Resume",
        "Resume {name}?",
        "Sending continues where it stopped.",
    ),
    "cancel": (
        services.campaign_cancel,
        (State.DRAFT, State.SCHEDULED, State.PREPARING, State.SENDING, State.PAUSED),
        "Cancel",
        "Cancel {name}?",
        "Messages not yet sent are never sent; this cannot be undone.",
    ),
    "duplicate": (
        services.campaign_duplicate,
        tuple(State),
        "Duplicate",
        "Duplicate {name}?",
        "Herald makes a draft with the same message, audience and options, without the send time and deadline; "
        "nothing is sent until you launch it.",
    ),
}
CREATING_ACTIONS = ("duplicate",)  # they make a campaign: the add permission, and the new campaign's page after
LAUNCHING_ACTIONS = ("launch", "send-now")  # their pages state the audience and the cost, as the launch will send
BACKGROUND_ACTIONS = (*LAUNCHING_ACTIONS, "resume")  # their pages warn when no worker or beat runs: nothing is sent
# A campaign's page warns in these states: beat must start it (scheduled) or a worker send it.
BACKGROUND_STATES = (Campaign.State.SCHEDULED, Campaign.State.PREPARING, Campaign.State.SENDING)


PAST = {
    "launch": "launched", "send-now": "launched now", "unschedule": "unscheduled", "pause": "paused",
    "resume": "resumed", "cancel": "cancelled", "duplicate": "duplicated",
}  # fmt: skip
CONFIRM = {"send-now": "Yes, send it now"}  # the confirmation button, where "Yes, <label> it" is no English
# The heading over what stops a campaign, by what it stops: the action a page confirms, and on a campaign's own page
# what its estimate leads to (composer_words). One place: the send-now page said "Before you can launch".
PROBLEMS_HEADING = {
    "launch": "Before you can launch", "send-now": "Before you can send it now", "scheduled": "Before it can be sent",
}  # fmt: skip


def composer_words(campaign: Campaign | None) -> dict:
    """What the composer's estimate says of a campaign (None: a new one), saved or as edited, above its problems, and
    when it has none: a draft is launched from its page; a scheduled campaign is launched already, and sent at its
    send time; saved without one, it goes back to draft (campaign_update)."""
    if campaign is None or campaign.state != State.SCHEDULED:
        return {"problems_heading": PROBLEMS_HEADING["launch"], "ready": "Ready to launch."}
    if campaign.send_at is None:
        return {
            "problems_heading": PROBLEMS_HEADING["launch"],
            "ready": "Ready to launch: saved without a send time, it goes back to draft.",
        }
    when = "a run is sent at each of its send times" if campaign.recurrence else "it is sent at its send time"
    return {"problems_heading": PROBLEMS_HEADING["scheduled"], "ready": f"Ready: {when}."}


def campaign_actions(campaign: Campaign, *, may_add: bool = True) -> list[dict]:
    """The action buttons of a campaign page, each with the states it shows in (the page toggles them live). A
    recurring campaign is not sent now (campaign_send_now says why): its page does not offer it."""
    return [
        {
            "name": name,
            "label": label + "…",
            "url": reverse("admin:campaigns_campaign_action", args=[campaign.pk, name]),
            "states": " ".join(states),
            "shown": campaign.state in states,
        }
        for name, (_service, states, label, _title, _what) in ACTIONS.items()
        if (may_add or name not in CREATING_ACTIONS) and not (name == "send-now" and campaign.recurrence)
    ]


def action_view(model_admin: ModelAdmin, request, object_id, action: str):
    """GET: a page stating the audience and the cost and asking to confirm; POST: the service, then the campaign."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    campaign = _campaign(model_admin, request, object_id)
    creating = action in CREATING_ACTIONS
    if not (
        model_admin.has_add_permission(request) if creating else model_admin.has_change_permission(request, campaign)
    ):
        raise PermissionDenied
    service, states, label, title, what = ACTIONS[action]
    change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    if request.method == "POST" and creating:
        created = service(campaign_id=campaign.pk, user=request.user)
        model_admin.message_user(
            request,
            f"“{created.name}” is a draft copy of “{campaign.name}”: check it, then launch it.",
            messages.SUCCESS,
        )
        return redirect("admin:campaigns_campaign_change", created.pk)
    if request.method == "POST":
        try:
            service(campaign_id=campaign.pk)
        except ValidationError as error:
            for message in error.messages:
                model_admin.message_user(request, message, messages.ERROR)
        else:
            campaign.refresh_from_db()
            model_admin.message_user(request, _done_message(action, campaign), messages.SUCCESS)
        return redirect(change_url)
    shown = campaign
    if action == "send-now":  # what it will be once its send time is cleared (campaign_send_now), not saved here
        shown = copy.copy(campaign)
        shown.send_at = None
        refusal = " ".join(send_now_refusal(campaign).values())
    else:
        refusal = (
            "" if campaign.state in states else f"A {campaign.get_state_display()} campaign cannot be {PAST[action]}."
        )
    if action in LAUNCHING_ACTIONS and not refusal:
        summary = {"estimate": _estimate_shown(campaign_estimate(campaign=shown, user=request.user))}
    elif creating or action in ("unschedule", "send-now"):  # nothing is sent: a scheduled campaign has no messages
        summary = {}
    else:
        summary = {"progress": campaign_progress(campaign=campaign)}
    if action in BACKGROUND_ACTIONS and campaign.state in states:  # what they start is done by the workers
        summary["background"] = background_status()
    if action == "resume" and campaign.audience_size is None:  # paused before its audience was all written
        what = "Herald prepares the audience (recipients already written are kept, never doubled), then sends."
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title.format(name=f"“{campaign.name}”"),
        "campaign": campaign,
        "action": action,
        "action_label": label,
        "action_past": PAST[action],
        "confirm_label": CONFIRM.get(action, f"Yes, {label.lower()} it"),
        "problems_heading": PROBLEMS_HEADING.get(action, ""),
        "state_reason_shown": state_reason_shown(campaign),
        "what_happens": what,
        "allowed": not refusal,
        "refusal": refusal,
        "send_time_passed": shown.send_at is not None and shown.send_at <= timezone.now(),
        "send_at_shown": time_shown(shown.send_at),
        "change_url": change_url,
        **summary,
    }
    return TemplateResponse(request, "admin/campaigns/campaign/confirm_action.html", context)


def _done_message(action: str, campaign: Campaign) -> str:
    if action in LAUNCHING_ACTIONS and campaign.state == State.SCHEDULED:
        if campaign.state_reason == scheduled_reason(at=campaign.send_at):
            # One sentence: it read "“Spring” is scheduled. Scheduled for …".
            return f"“{campaign.name}” is scheduled for {time_shown(campaign.send_at)}."
        return f"“{campaign.name}” is scheduled. {campaign.state_reason}"  # deferred to the window, or recurring
    return f"“{campaign.name}” is {PAST[action]}."


class SendTestForm(forms.Form):
    """Send a test: the numbers typed and the contacts picked (together one to five), and optionally the contact
    whose fields fill the text."""

    numbers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
    )
    contacts = forms.ModelMultipleChoiceField(
        queryset=Contact.objects.all(), required=False, help_text="Or pick contacts: their numbers are sent to."
    )
    contact = forms.ModelChoiceField(
        queryset=Contact.objects.all(),
        required=False,
        label="Fill the text from",
        help_text="Empty: for a number that is a contact, that contact's fields; for the others, the first "
        "recipient's.",
    )

    def __init__(self, *args, campaign: Campaign, admin_site, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.fields["numbers"].help_text = (
            f"One per line or separated by commas: E.164 (+33612345678) or national numbers, read as numbers of "
            f"{send_test_region_words(campaign)}."
        )
        if not estimate_fills_sample(user):
            # Contacts are not theirs to see: no contact is picked, named or used to fill the text (campaign_send_test).
            del self.fields["contacts"], self.fields["contact"]
            if text_variables(campaign.text):
                empty = f" The text's variables stay empty ({NO_CONTACT_FIELDS.rstrip('.')})."
                self.fields["numbers"].help_text += empty
            return
        field = Campaign._meta.get_field("contacts")  # the contacts' autocomplete, as the composer's audience has it
        if not text_variables(campaign.text):
            self.fields["contact"].help_text = "The text has no variables: it goes as it is."
        elif first := campaign_first_recipient(campaign):
            name = " ".join(n for n in (first["first_name"], first["last_name"]) if n) or first["phone"]
            self.fields["contact"].help_text += f" The first recipient is {name} ({first['phone']})."
        else:
            self.fields["contact"].help_text += " The audience has nobody to send to yet: the variables stay empty."
        for name, widget in (("contacts", AutocompleteSelectMultiple), ("contact", AutocompleteSelect)):
            self.fields[name].widget = widget(field, admin_site)
            self.fields[name].widget.choices = self.fields[name].choices

    def clean(self):
        cleaned = super().clean()
        typed = [n for n in re.split(r"[,;\n]+", cleaned.get("numbers") or "") if n.strip()]
        email = self.campaign.channel == "email"
        picked = [(c.email if email else c.phone) for c in cleaned.get("contacts") or []]
        cleaned["to"] = typed + [a for a in picked if a]
        if not cleaned["to"] and not self.errors:
            self.add_error(
                "numbers",
                f"Type one to {TEST_NUMBERS_MAX} numbers"
                + (", or pick contacts." if "contacts" in self.fields else "."),
            )
        return cleaned


def send_test_view(model_admin: ModelAdmin, request, object_id):
    """GET: the form and the campaign's latest tests, each with its status now; POST: send the test, then the page
    again with its outcome on top (campaign_send_test)."""
    campaign = _campaign(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, campaign):
        raise PermissionDenied  # whoever may launch it may test it
    form = SendTestForm(request.POST or None, campaign=campaign, admin_site=model_admin.admin_site, user=request.user)
    allowed = campaign.state in TEST_STATES
    if request.method == "POST" and allowed and form.is_valid():
        contact = form.cleaned_data.get("contact")
        try:
            results = campaign_send_test(
                campaign_id=campaign.pk, to=form.cleaned_data["to"], contact_id=contact.pk if contact else None,
                user=request.user,
            )  # fmt: skip
        except SendTestThrottled as exc:
            form.add_error(None, str(exc))
        except ValidationError as error:
            problems = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
            for field, words in problems.items():
                form.add_error({"to": "numbers", "contact": "contact"}.get(field), words)
        else:
            labels = dict(SHOWN_STATUS_CHOICES)
            said = "; ".join(
                f"{r.to}: {labels.get(r.message.shown_status, r.message.shown_status).lower()}"
                + (f" ({r.message.reason})" if r.message.reason else "")
                for r in results
            )
            model_admin.message_user(request, f"Test of “{campaign.name}” sent. {said}.", messages.SUCCESS)
            return redirect("admin:campaigns_campaign_test", campaign.pk)
    labels = dict(SHOWN_STATUS_CHOICES)
    tests = campaign_test_sends(campaign=campaign)
    for test in tests:
        message = test.shown
        message.status_label = labels.get(message.shown_status, message.shown_status)
        message.words = failure_words(
            kind=message.account.kind, status=message.status, error_code=message.error_code, reason=message.reason
        ) if message.status in FAILURE_STATUSES else ""  # fmt: skip
    change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Send a test of “{campaign.name}”",
        "campaign": campaign,
        "form": form,
        "allowed": allowed,
        "tests": tests,
        "numbers_max": TEST_NUMBERS_MAX,
        "per_minute": settings.CAMPAIGN_TESTS_PER_MINUTE,
        "change_url": change_url,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/campaigns/campaign/send_test.html", context)


def dashboard_view(model_admin: ModelAdmin, request):
    """GET: the admin index's dashboard as an HTML fragment (the index page loads and refreshes it)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    figures = dashboard_figures()
    context = {
        "figures": figures,
        "background": background_status(),
        "add_campaign_url": reverse("admin:campaigns_campaign_add") if model_admin.has_add_permission(request) else "",
    }
    return TemplateResponse(request, "admin/herald/dashboard.html", context)


def contact_messages_section(request, contact) -> str:
    """The message history section of a contact's page (ContactAdmin.page_sections)."""
    if not request.user.has_perm("campaigns.view_message"):
        return ""
    history = contact_message_history(contact=contact)
    labels = dict(LISTED_STATUS_CHOICES)
    for message in history:
        # As the message list says it: "Not sent" for one closed before it was sent, its code (ours) no news then.
        message.listed_status = listed_status(message.shown_status, message.error_code)
        message.status_label = labels.get(message.listed_status, message.listed_status)
        message.code_shown = "" if message.listed_status == NOT_SENT_SHOWN else message.error_code
        failed = message.status in FAILURE_STATUSES
        message.words = failure_words(
            kind=message.account.kind, status=message.status, error_code=message.error_code, reason=message.reason
        ) if failed else ""  # fmt: skip
    all_url = reverse("admin:campaigns_message_changelist") + "?" + urlencode({"q": contact.phone})
    return render_to_string(
        "admin/campaigns/contact_messages.html", {"messages": history, "all_url": all_url}, request=request
    )
