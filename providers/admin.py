"""Admin for provider accounts, senders and DLT templates. Secrets are never shown in clear.

An account's page shows its health: the webhook URL to copy into the vendor's console, when the last delivery
report arrived, and the last connection test, with buttons to test the connection, set the account up at the
vendor and (MOBtexting) sync its sender IDs and DLT templates.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from config.admin_mixins import AutocompleteAdmin, TimesAfterAddAdmin, UniqueRaceAdmin, id_from
from config.deletion import counted_text, deleted_with, protected_users
from providers import dlt, services, sync
from providers.forms import DltTemplateForm, ProviderAccountForm, SenderForm
from providers.models import DltTemplate, ProviderAccount, Sender


class SenderInlineFormSet(BaseInlineFormSet):
    def save_existing(self, form, obj, commit=True):
        """A sender changed in its row is saved through the service, as on its own page: a rename gives its opt-outs
        to the new name (sender_update). The form has set the fields on the sender."""
        if not commit:
            return super().save_existing(form, obj, commit=False)
        return services.sender_update(sender=form.instance)

    def save_new(self, form, commit=True):
        """A sender added in a row is saved through the service, as on its own page: it is linked to the account's
        DLT templates whose imported headers name it (sender_add). The formset has set its account."""
        sender = super().save_new(form, commit=False)
        if commit:
            services.sender_add(sender=sender)
        return sender


class SenderInline(admin.TabularInline):
    model = Sender
    form = SenderForm
    formset = SenderInlineFormSet
    extra = 0
    fields = ["name", "channel", "service", "country", "dlt_entity_id", "status"]
    show_change_link = True

    def get_queryset(self, request):
        # Each row is titled by the sender's label, which names its account (Sender.__str__): one query, not one a row.
        return super().get_queryset(request).select_related("account")


@admin.register(ProviderAccount)
class ProviderAccountAdmin(UniqueRaceAdmin, admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "kind", "is_active", "channel_list", "price_per_part", "currency", "last_check_ok", "last_dlr_at"]  # fmt: skip
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "base_url"]
    inlines = [SenderInline]
    actions = ["test_connection", "set_up_at_vendor"]
    change_form_template = "admin/providers/provideraccount/change_form.html"
    readonly_fields = [
        "masked_credentials", "last_check_at", "last_check_ok", "last_check_message",
        "last_dlr_at", "last_sync_at", "last_sync_ok", "last_sync_message", "created_at", "updated_at",
    ]  # fmt: skip

    def lookup_allowed(self, lookup, value, request=None):
        """No filtering by a secret (`?webhook_secret__startswith=GNt`): whether an account is listed would spell the
        secret out, a character at a time, to whoever may only view accounts (who sees it masked)."""
        if lookup.split("__")[0] in ("webhook_secret", "credentials"):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_deleted_objects(self, objs, request):
        """An account that campaigns, frames or messages still use is listed as protected by them, counted
        (Django's own list would load every one of its messages, millions of them). One nothing uses goes with its
        senders, templates and delivery reports, summarised counted for the same reason (config.deletion)."""
        accounts = list(objs)
        protected = [f"{account}: {users}" for account in accounts for users in protected_users(account)]
        if protected:
            # No page deletes a transactional message (it is the record of what was sent): said, with the way out.
            way_out = (
                "Delete those campaigns first (their messages and frames go with them). A message sent without a "
                "campaign (transactional) is kept: to stop using an account that sent one, untick Active on its page "
                "instead; it then sends nothing and still takes the delivery reports due."
            )
            return [], {}, set(), [*protected, way_out]
        going = deleted_with(accounts)
        listed = [
            format_html(
                'Provider account: <a href="{}">{}</a>',
                reverse("admin:providers_provideraccount_change", args=[a.pk]),
                a,
            )
            for a in accounts
        ]
        summary = {"provider accounts": f"{len(accounts):,}"} | {
            str(model._meta.verbose_name_plural): counted_text(count) for model, count in going.items()
        }
        # What the account owns here (senders, DLT templates) needs the permission to delete it; the delivery
        # reports kept about it are records that go with it (nobody may delete them one by one).
        perms_needed = {
            str(model._meta.verbose_name)
            for model in going
            if model._meta.app_label == ProviderAccount._meta.app_label
            and not request.user.has_perm(f"{model._meta.app_label}.delete_{model._meta.model_name}")
        }
        return listed, summary, perms_needed, []

    def get_readonly_fields(self, request, obj=None):
        # The kind decides the webhook URL and the backend: fixed once the account exists.
        return [*self.readonly_fields, "kind"] if obj is not None else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        connection = ["base_url", "login", "api_key", "options"]
        if obj is not None:
            connection.insert(1, "masked_credentials")
        fieldsets = [
            (None, {"fields": ["kind", "name", "is_active"]}),
            ("Connection", {"fields": connection, "description": (
                "Secrets are write-only: leave a field blank to keep what is stored." if obj is not None
                else "Secrets are write-only: once saved, they are shown masked.")}),
            ("Sending", {"fields": ["channels", "max_recipients_per_request", "rate_limit",
                                   ("price_per_part", "currency")]}),
        ]  # fmt: skip
        if obj is not None:
            fieldsets += [
                # The health panel above the form shows the webhook URL, whose end is the account's webhook key
                # (`uuid`), with its Copy button, the last check and the last delivery report.
                ("History", {"fields": [("created_at", "updated_at")], "classes": ["collapse"]}),
            ]
        return fieldsets

    class Media:
        css = {"all": ["herald/admin.css"]}
        js = ["herald/copy.js"]

    def save_model(self, request, obj, form, change):
        obj.credentials = services.credentials_merge(current=obj.credentials, changes=form.credential_changes())
        super().save_model(request, obj, form, change)

    def get_object(self, request, object_id, from_field=None):
        """The account, with its webhook URL as this user may see it (the secret masked for view-only staff)."""
        account = super().get_object(request, object_id, from_field)
        if account is not None:
            account.webhook_url_shown = services.provider_account_webhook_url(account=account, user=request.user)
        return account

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["account_tools"] = self.has_change_permission(request, obj)
            context["syncable"] = obj.kind in sync.SYNCABLE_KINDS
            context["sync_stalled"] = sync.registries_sync_stalled(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/tool/<slug:tool>/", wrap(self.tool_view), name="providers_provideraccount_tool"),
            *super().get_urls(),
        ]

    def tool_view(self, request, pk, tool):
        """POST from an account's page: test the connection, set up at the vendor, or sync its registries."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        account = get_object_or_404(ProviderAccount, pk=pk)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        if tool == "test":
            self.test_connection(request, [account])
        elif tool == "setup":
            self.set_up_at_vendor(request, [account])
        elif tool == "sync":
            self._sync(request, account)
        else:
            raise PermissionDenied
        return redirect("admin:providers_provideraccount_change", account.pk)

    def _sync(self, request, account: ProviderAccount) -> None:
        try:
            sync.registries_sync_start(account_id=account.pk)
        except ValidationError as exc:
            self.message_user(request, f"{account.name}: {' '.join(exc.messages)}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"{account.name}: syncing sender IDs, DLT templates and opt-outs in the background. Health, below,"
                " says how it went once it is done (reload the page).",
                messages.SUCCESS,
            )

    @admin.action(description="Test connection (credentials and balance)", permissions=["change"])
    def test_connection(self, request, queryset):
        for account in queryset:
            result = services.provider_account_test_connection(account=account)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{account.name}: {result.message}", level)

    @admin.action(description="Set up at the vendor (webhook, scenario task)", permissions=["change"])
    def set_up_at_vendor(self, request, queryset):
        for account in queryset:
            try:
                stored = services.provider_account_setup(account=account)
            except ValidationError as exc:
                self.message_user(request, f"{account.name}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                done = ", ".join(f"{k} = {v}" for k, v in stored.items()) or "nothing was needed"
                self.message_user(request, f"{account.name}: ready ({done}).", messages.SUCCESS)

    @admin.display(description="channels")
    def channel_list(self, account: ProviderAccount) -> str:
        return ", ".join(account.channels or [])

    @admin.display(description="stored credentials")
    def masked_credentials(self, account: ProviderAccount) -> str:
        masked = services.credentials_masked(account.credentials)
        if not masked:
            return "none"
        return format_html_join(", ", "{}: <code>{}</code>", masked.items())


class RegistrationsDeletedAdmin:
    """Deleting DLT templates or senders deletes the rows that register a template for a sender. Django's delete page
    listed them in the words of the link table ("Dlttemplate-sender relationship: DltTemplate_senders object (1)"),
    which read as if the senders went with a template: the page names each registration instead, and says that the
    sender (or template) on its other side stays."""

    def registrations(self, objs) -> list[str]:
        raise NotImplementedError

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            return deleted, counts, perms_needed, protected
        link = DltTemplate.senders.through._meta
        counts = {what: n for what, n in counts.items() if str(what) != str(link.verbose_name_plural)}
        deleted = [*_without_items(deleted, f"{capfirst(link.verbose_name)}: "), *self.registrations(objs)]
        return deleted, counts, perms_needed, protected


def _without_items(items: list, prefix: str) -> list:
    """Django's nested list of what a delete takes, without the entries that start with `prefix`."""
    kept = []
    for item in items:
        if isinstance(item, list):
            if inner := _without_items(item, prefix):
                kept.append(inner)
        elif not str(item).startswith(prefix):
            kept.append(item)
    return kept


def _registrations(**lookup):
    return DltTemplate.senders.through.objects.filter(**lookup).select_related("dlttemplate", "sender__account")


@admin.register(Sender)
class SenderAdmin(AutocompleteAdmin, RegistrationsDeletedAdmin, UniqueRaceAdmin, TimesAfterAddAdmin):
    form = SenderForm
    list_display = ["name", "account", "channel", "service", "country", "dlt_entity_id", "status"]
    list_filter = ["status", "channel", "service", "account"]
    search_fields = ["name", "dlt_entity_id", "dlt_entity_name", "remote_id"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        # A sender's label names its account (Sender.__str__): the autocomplete of a DLT template's senders lists
        # them by it, a query per sender without this.
        return super().get_queryset(request).select_related("account")

    def save_model(self, request, obj, form, change):
        if change:  # a rename gives the sender's opt-outs to its new name; the form has set the fields on obj
            services.sender_update(sender=obj)
        elif linked := services.sender_add(sender=obj):
            self.message_user(
                request, f"Linked to {linked} DLT template(s) whose headers, as imported, name {obj.name}."
            )

    def get_search_results(self, request, queryset, search_term):
        """The DLT template form's senders search (the admin's autocomplete) offers the senders of the account the
        form has chosen (its script sends `account`): a template's sender of another account is refused on save."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        field = (request.GET.get("model_name"), request.GET.get("field_name"))
        account = id_from(request.GET.get("account", ""))
        if field == ("dlttemplate", "senders") and account is not None:
            queryset = queryset.filter(account_id=account)
        return queryset, may_have_duplicates

    def registrations(self, objs) -> list[str]:
        return [
            f"Registration of the DLT template {link.dlttemplate} for {link.sender} (the template stays)"
            for link in _registrations(sender__in=objs)
        ]


@admin.register(DltTemplate)
class DltTemplateAdmin(AutocompleteAdmin, RegistrationsDeletedAdmin, UniqueRaceAdmin, TimesAfterAddAdmin):
    form = DltTemplateForm
    # The variables are on the template's page: with them the senders ran past a 1400-pixel window's edge.
    list_display = ["name", "dlt_template_id", "type", "status", "account_name", "sender_names"]
    list_filter = ["type", "status", "is_english", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "dlt_template_id", "body", "remote_id"]
    list_select_related = ["account"]
    autocomplete_fields = ["account", "senders"]
    readonly_fields = ["variable_list", "preview", "headers", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "dlt_template_id", ("type", "status"), "account", "senders", "headers"]}),
        ("Text", {"fields": ["body", "variable_list", "preview", "is_english"]}),
        ("Sync", {"fields": ["remote_id", ("created_at", "updated_at")]}),
    ]

    class Media:
        css = {"all": ["herald/admin.css"]}
        # The senders' search follows the account chosen; the preview follows the body as it is typed.
        js = ["herald/dlt-template-admin.js"]

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="providers_dlttemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """POST a body (the form's, saved or not) with sample values (`value:<variable>`) or a campaign's `text`: what
        it makes, its SMS parts and its problems, as JSON (services.dlt_template_preview)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_view_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        values = {name.removeprefix("value:"): v for name, v in request.POST.items() if name.startswith("value:")}
        preview = services.dlt_template_preview(
            body=request.POST.get("body", ""), values=values, text=request.POST.get("text", "")
        )
        return JsonResponse(preview)

    @admin.display(description="preview")
    def preview(self, template: DltTemplate) -> str:
        """The panel the page's script fills (herald/dlt-template-admin.js); its inputs have no names, so the form
        saves none of them."""
        return format_html(
            '<div id="dlt-preview" data-url="{}">'
            '<p class="help">Try the body above as it is typed: a value for each variable, or a campaign\'s text to '
            "check against it. Shown: the text, its SMS parts, and what DLT scrubbing would refuse (a variable over "
            "{} characters, a text off the template), as a campaign's estimate says it.</p>"
            '<div class="dlt-preview-values"></div>'
            '<p><label for="dlt-preview-text">Or a campaign\'s text:</label><br>'
            '<textarea id="dlt-preview-text" rows="3" cols="60" class="vLargeTextField"></textarea></p>'
            '<div class="dlt-preview-result" aria-live="polite"></div></div>',
            reverse("admin:providers_dlttemplate_preview"),
            dlt.MAX_VARIABLE_LENGTH,
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("senders__account")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "senders":  # shown by their labels, which name their accounts (Sender.__str__)
            kwargs.setdefault("queryset", Sender.objects.select_related("account"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def registrations(self, objs) -> list[str]:
        return [
            f"Registration of {link.dlttemplate} for the sender {link.sender} (the sender stays)"
            for link in _registrations(dlttemplate__in=objs)
        ]

    @admin.display(description="variables")
    def variable_list(self, template: DltTemplate) -> str:
        return ", ".join(dlt.template_variables(template.body or "")) or "none"

    @admin.display(description="account", ordering="account__name", empty_value="-")
    def account_name(self, template: DltTemplate) -> str | None:
        """The account by its name: its kind, which `str()` adds, is MOBtexting for any DLT template, and the longer
        label pushed the senders past the edge of the list."""
        return template.account.name if template.account_id else None

    @admin.display(description="senders")
    def sender_names(self, template: DltTemplate) -> str:
        """Each sender by name, with its account when that is not the template's (a template without an account may
        be registered for HERALD on two accounts)."""
        return ", ".join(
            sorted(services.sender_named(sender, template.account_id) for sender in template.senders.all())
        )
