"""Admin for imports: an upload page that starts an import through the service, and a read-only page per
import with a live progress bar (polling a small JSON view), its counters, the error report and a cancel button."""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from config.widgets import AutocompleteSelectMultiple
from contacts.imports.registry import IMPORTERS, import_name
from contacts.imports.selectors import (
    REPORT_NEEDS,
    REPORT_REMOVED,
    ErrorReportStatus,
    ErrorReportUnavailable,
    contact_import_error_report,
    contact_import_error_report_permission,
    contact_import_error_report_refusal,
    contact_import_error_report_status,
    contact_import_percent,
    contact_import_progress,
    contact_import_warnings,
)
from contacts.imports.services import (
    contact_import_cancel,
    contact_import_columns_kept,
    contact_import_create_uploaded,
    contact_import_permission_errors,
)
from contacts.models import ContactImport, ContactTag, Tag
from contacts.validators import tag_names_split

Status = ContactImport.Status
OPTION_SEPARATOR = "__"


class OptionalJSONField(forms.JSONField):
    """A JSON field that shows an empty box, not Django's `null`, when it holds nothing."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class ContactImportUploadForm(forms.Form):
    """The upload page. Each kind's importer contributes its option fields, named "<kind>__<option>"."""

    file = forms.FileField(
        required=False,  # or `staged`: a workbook sent once already, when its columns were read (import-admin.js)
        help_text="csv (any delimiter, UTF-8 or Latin-1), txt (one number per line, or tab-separated columns), xls or xlsx.",
    )
    staged = forms.CharField(required=False, widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=ContactImport.Kind.choices, initial=ContactImport.Kind.CONTACTS)
    tags = forms.ModelMultipleChoiceField(
        Tag.objects.all(),
        required=False,
        # A search box (the admin's autocomplete, through the contact-tag link's relation to tags): the page holds the
        # chosen tags only, where a two-list picker put every tag in it (thousands of options).
        widget=AutocompleteSelectMultiple(ContactTag._meta.get_field("tag"), admin.site),
        help_text="Applied to every contact of the file: type to search the tags.",
    )
    new_tags = forms.CharField(
        required=False, label="New tags", help_text="Names of tags to create and apply, separated by commas."
    )
    mode = forms.ChoiceField(
        choices=ContactImport.Mode.choices,
        initial=ContactImport.Mode.CREATE_UPDATE,
        required=False,  # for the kinds that have one (Importer.has_mode): the page sends none for the others
    )  # its help is the chosen kind's (kind_helps)
    default_region = forms.CharField(
        max_length=2, required=False, help_text="Country of numbers written without +country code, e.g. IN."
    )
    mapping = OptionalJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )  # its help is the chosen kind's (kind_helps)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["default_region"].initial = settings.DEFAULT_PHONE_REGION
        self.tag_kinds = " ".join(kind for kind, importer in IMPORTERS.items() if importer.takes_tags)
        self.region_kinds = " ".join(kind for kind, importer in IMPORTERS.items() if importer.reads_phones)
        self.mode_kinds = " ".join(kind for kind, importer in IMPORTERS.items() if importer.has_mode)
        # (field, kinds, help): a field's help in the words of the kind chosen, shown for that kind as the fields are
        # (data-import-kinds); kinds that say the same share one.
        self.kind_helps = []
        for name, attribute in (("mode", "mode_help"), ("mapping", "mapping_help")):
            helps = {}
            for kind, importer in IMPORTERS.items():
                if text := getattr(importer, attribute):
                    helps.setdefault(text, []).append(kind)
            self.kind_helps += [(name, " ".join(kinds), text) for text, kinds in helps.items()]
        self.option_groups = []
        self.required_options = set()  # marked so on the page; asked for, with its field's words, when its kind is
        # The fields marked required on the page, as the admin marks one (a bold label): the kind, each kind's
        # required options, and the file and the mode, which clean() asks for as they are needed only sometimes (the
        # file unless a workbook is staged, the mode for a kind that has one: the page hides it for the others).
        self.required_marked = {"file", "mode", *(name for name, field in self.fields.items() if field.required)}
        for kind, importer in IMPORTERS.items():
            names = []
            for name, field in importer.option_fields().items():
                if field.required:
                    self.required_options.add(f"{kind}{OPTION_SEPARATOR}{name}")
                field.required = False  # only the chosen kind's options count; its importer checks them
                self.fields[f"{kind}{OPTION_SEPARATOR}{name}"] = field
                names.append(f"{kind}{OPTION_SEPARATOR}{name}")
            if names:
                self.option_groups.append((kind, ContactImport.Kind(kind).label, [self[name] for name in names]))
        self.required_marked |= self.required_options

    def clean(self):
        """Refuse, on the field concerned, an import that writes what the user may not add or change."""
        data = super().clean()
        if not data.get("file") and not data.get("staged") and not self.has_error("file"):
            self.add_error("file", forms.Field.default_error_messages["required"])
        if not data.get("mode") and data.get("kind") in IMPORTERS and not self.has_error("mode"):
            if IMPORTERS[data["kind"]].has_mode:
                self.add_error("mode", forms.Field.default_error_messages["required"])
            else:  # an opt-out is only ever added: the page hides (and so does not send) the mode
                data["mode"] = self.fields["mode"].initial
        chosen = f"{data.get('kind')}{OPTION_SEPARATOR}"
        for name in sorted(self.required_options):
            if name.startswith(chosen) and data.get(name) in (None, "", [], ()) and not self.has_error(name):
                self.add_error(name, self.fields[name].error_messages["required"])
        if "kind" in data and "mode" in data:
            tagged = bool(data.get("tags") or self._new_tags())
            errors = contact_import_permission_errors(
                user=self.user, kind=data["kind"], mode=data["mode"], tagged=tagged
            )
            for field, messages_ in errors.items():
                self.add_error(field, messages_)
        return data

    def _new_tags(self) -> list[str]:
        return tag_names_split(self.cleaned_data.get("new_tags", ""))

    def service_arguments(self) -> dict:
        """The cleaned form as keyword arguments of contact_import_create."""
        data = self.cleaned_data
        prefix = data["kind"] + OPTION_SEPARATOR
        options = {}
        for name, value in data.items():
            if name.startswith(prefix) and value not in (None, ""):
                options[name.removeprefix(prefix)] = getattr(value, "pk", value)
        return {
            "file": data["file"] or None,
            "staged": data["staged"],
            "kind": data["kind"],
            "mapping": data["mapping"] or None,
            "tags": [*data["tags"], *self._new_tags()],
            "mode": data["mode"],
            "default_region": data["default_region"],
            "options": options,
        }

    def ask_for_the_file_again(self) -> None:
        """The page comes back with errors: a browser cannot keep the file chosen, so say to choose it again."""
        upload = self.files.get("file")
        if upload and not self.has_error("file") and not self.data.get("staged"):
            self.add_error(
                "file", f"Choose {upload.name} again: the browser does not keep a chosen file when the page comes back."
            )

    def add_service_errors(self, error: ValidationError) -> None:
        """The service's errors on their fields; one on `options` on the option it names by its code (an opt-out
        import's value, Importer.clean_options), else on the chosen kind's option field when it has one (a DLT
        import's account), else above the form."""
        errors = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
        prefix = f"{self.cleaned_data.get('kind', '')}{OPTION_SEPARATOR}"
        kind_options = [name for name in self.fields if name.startswith(prefix)]
        for field, errors_ in errors.items():
            for error_ in errors_:
                where = field
                if field == "options" and f"{prefix}{error_.code}" in kind_options:
                    where = f"{prefix}{error_.code}"
                elif field == "options" and len(kind_options) == 1:
                    where = kind_options[0]
                self.add_error(where if where in self.fields else None, error_)


def _option_value(field: forms.Field | None, value) -> str:
    """An option's value as a person reads it: a choice's label, a chosen object by its name (linked to its admin
    page), else the value."""
    if isinstance(field, forms.ModelChoiceField):
        model = field.queryset.model
        chosen = model._default_manager.filter(pk=value).first()
        if chosen is None:
            return f"#{value} (deleted)"
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[chosen.pk])
        except NoReverseMatch:
            return str(chosen)
        return format_html('<a href="{}">{}</a>', url, chosen)
    if isinstance(field, forms.ChoiceField):
        return str(dict(field.choices).get(value, value))
    return str(value)


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    # The counts share one column ("rows"): five of them, headed "unchanged", "duplicates"…, pushed the list past a
    # 1400-pixel window's edge, cutting "Duplicates" and hiding who and when.
    list_display = ["id", "original_name", "kind", "status", "progress", "rows", "created_by", "created_at"]
    list_display_links = ["id", "original_name"]
    list_filter = ["status", "kind", "mode", "created_at"]
    search_fields = ["original_name"]
    actions = ["cancel_imports"]
    fieldsets = [
        (None, {"fields": ["original_name", "kind", "file_format", "status", "error_message", "error_report_link"]}),
        ("Settings", {"fields": ["mode", "default_region", "tag_links", "mapping", "options"]}),
        ("History", {"fields": ["created_by", ("created_at", "started_at", "finished_at"), "cancel_requested"]}),
    ]  # fmt: skip
    change_form_template = "admin/contacts/contactimport/change_form.html"
    # (the counts are on the page's progress panel, live; a "Counts" box of the stored row stayed at 0 while it ran)

    class Media:
        css = {"all": ["herald/admin.css", "herald/import-admin.css"]}
        js = ["herald/import-admin.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.get_fields() if field.concrete] + [
            "error_report_link",
            "error_report_unlinked",
            "tag_links",
            "options_shown",
        ]

    def get_fieldsets(self, request, obj=None):
        """The settings the import's kind has (a DLT import reads no phone number, takes no tags), its options in
        words, "Cancel requested" once it was; the error report is linked only for whoever may read it (contact_import_error_report_refusal)."""
        if obj is None:
            return self.fieldsets
        importer = IMPORTERS[obj.kind]
        shown = {
            "error_report_link": "error_report_unlinked"
            if contact_import_error_report_refusal(user=request.user, contact_import=obj)
            else "error_report_link",
            "default_region": "default_region" if importer.reads_phones else None,
            "mode": "mode" if importer.has_mode else None,
            "tag_links": "tag_links" if importer.takes_tags else None,
            "options": "options_shown" if importer.option_fields() else None,
            # said only of an import someone asked to cancel: a red ✗ "Cancel requested" on every finished one read
            # as a failure
            "cancel_requested": "cancel_requested" if obj.cancel_requested else None,
        }
        return [
            (name, {**options, "fields": [shown.get(f, f) for f in options["fields"] if shown.get(f, f)]})
            for name, options in self.fieldsets
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The mapping's help in the words of the import's kind, as the upload page gives it (the model's own help
        speaks of no kind's fields)."""
        if obj is not None and (text := IMPORTERS[obj.kind].mapping_help):
            kwargs["help_texts"] = {"mapping": text, **kwargs.get("help_texts", {})}
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False  # an import's record is the history of a run; cancel is the one change, through its own view

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("columns/", wrap(self.columns_view), name=f"{prefix}_columns"),
            path("<int:pk>/progress/", wrap(self.progress_view), name=f"{prefix}_progress"),
            path("<int:pk>/cancel/", wrap(self.cancel_view), name=f"{prefix}_cancel"),
            path("<int:pk>/errors/", wrap(self.errors_view), name=f"{prefix}_errors"),
            *super().get_urls(),
        ]

    @admin.display(description="progress")
    def progress(self, obj):
        percent = contact_import_percent(obj)
        if percent is None:
            return "–" if obj.status == Status.PENDING else f"{obj.rows_read:,} rows"
        return format_html('<progress max="100" value="{}"></progress> {}%', percent, percent)

    @admin.display(description="rows", ordering="rows_read")
    def rows(self, obj):
        """Its counts that are not 0, as the page's progress panel names them: "1,200 created, 3 invalid, 1 duplicate"
        (they add up to the rows read). Each count stays beside its word when the cell wraps."""
        counts = [(getattr(obj, name), name) for name in ("created", "updated", "unchanged", "invalid")]
        counts.append((obj.duplicates, "duplicate" if obj.duplicates == 1 else "duplicates"))
        shown = [
            f"{formats.number_format(count, force_grouping=True)}\N{NO-BREAK SPACE}{name}"
            for count, name in counts
            if count
        ]
        return ", ".join(shown) or self.get_empty_value_display()

    @admin.display(description="tags")
    def tag_links(self, obj):
        """The tags the import applies, each linked to the list of the contacts that carry it."""
        url = reverse("admin:contacts_contact_changelist")
        tags = obj.tags.order_by("name")
        return format_html_join(", ", '<a href="{}?tag={}">{}</a>', ((url, tag.pk, tag.name) for tag in tags)) or "–"

    @admin.display(description="options")
    def options_shown(self, obj):
        """The kind's options as its upload page names them: "Provider account: <its link>", "Scope: sender"."""
        fields = IMPORTERS[obj.kind].option_fields()
        shown = [
            (capfirst(fields[name].label or name) if name in fields else name, _option_value(fields.get(name), value))
            for name, value in (obj.options or {}).items()
            if value not in (None, "")
        ]
        return format_html_join("; ", "{}: {}", shown) or "–"

    @admin.display(description="error report")
    def error_report_link(self, obj):
        status = contact_import_error_report_status(obj)
        if status == ErrorReportStatus.REMOVED:
            return REPORT_REMOVED
        if status == ErrorReportStatus.NONE:
            return "–"
        url = reverse("admin:contacts_contactimport_errors", args=[obj.pk])
        # Not "the N bad rows": the rows left out as duplicates are in it too, counted apart.
        return format_html('<a href="{}">Download the error report (CSV: row, column, value, reason)</a>', url)

    @admin.display(description="error report")
    def error_report_unlinked(self, obj):
        """The report, for whoever may view imports but not what this one writes: said, not linked."""
        status = contact_import_error_report_status(obj)
        if status != ErrorReportStatus.AVAILABLE:
            return self.error_report_link(obj)
        _permission, what = contact_import_error_report_permission(obj)
        return REPORT_NEEDS.format(what=what)

    @admin.action(description="Cancel the selected imports", permissions=["cancel"])
    def cancel_imports(self, request, queryset):
        cancelled = 0
        for pk in queryset.filter(status__in=[Status.PENDING, Status.RUNNING]).values_list("pk", flat=True):
            contact_import_cancel(import_id=pk)
            cancelled += 1
        self.message_user(request, f"{cancelled} import(s) cancelled or asked to stop; rows already imported stay.")

    def add_view(self, request, form_url="", extra_context=None):
        """The upload page: checks the file through contact_import_create and shows the new import's progress."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        # ?kind=unsubscribers: the opt-out and DLT template lists' "Import a file" buttons open the page on their kind.
        kind = request.GET.get("kind")
        initial = {"kind": kind} if kind in ContactImport.Kind.values else {}
        form = ContactImportUploadForm(request.POST or None, request.FILES or None, user=request.user, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                contact_import = contact_import_create_uploaded(**form.service_arguments(), user=request.user)
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                # Its warnings (a value naming no tag or sender) are the import's page's own: said each time it opens.
                self.message_user(
                    request, f"{contact_import} is queued; this page follows its progress.", messages.SUCCESS
                )
                return redirect("admin:contacts_contactimport_change", contact_import.pk)
        if request.method == "POST":
            form.ask_for_the_file_again()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import a file",
            "columns_url": reverse("admin:contacts_contactimport_columns"),
            "form": form,
            "media": self.media + form.media,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/contacts/contactimport/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contact_import = self.get_object(request, object_id)
        extra = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        if contact_import is not None:
            extra |= {
                "title": f"View {import_name(contact_import.kind)}",
                "progress": contact_import_progress(contact_import),
                "warnings": contact_import_warnings(contact_import),  # as the API's `warnings`
                "progress_url": reverse("admin:contacts_contactimport_progress", args=[contact_import.pk]),
                "cancel_url": reverse("admin:contacts_contactimport_cancel", args=[contact_import.pk]),
                "errors_url": reverse("admin:contacts_contactimport_errors", args=[contact_import.pk]),
                "report_removed": REPORT_REMOVED,
                "report_refusal": contact_import_error_report_refusal(user=request.user, contact_import=contact_import),
                "may_cancel": self.has_cancel_permission(request),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def columns_view(self, request):
        """POST a file (or its first rows), its kind and a mapping: how its columns would be read, as JSON, for the
        upload page's column table (import-admin.js). What the upload would refuse is an answer too, not a failed
        request: {"errors": {field: [messages]}}. With keep=1 the file is kept and its token answered as `staged`,
        which the upload form and later questions give instead of the file (a workbook is then sent once)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            mapping = json.loads(request.POST.get("mapping") or "{}")
        except ValueError:
            return JsonResponse({"errors": {"mapping": ["Enter a valid JSON."]}})
        try:
            columns = contact_import_columns_kept(
                file=request.FILES.get("file"),
                staged=request.POST.get("staged", ""),
                keep=request.POST.get("keep") == "1",
                user=request.user,
                kind=request.POST.get("kind", ""),
                mapping=mapping,
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            return JsonResponse({"errors": errors})
        return JsonResponse(columns)

    def progress_view(self, request, pk):
        """Status and counters as JSON, polled by import-admin.js every 1.5 s while the import runs."""
        return JsonResponse(contact_import_progress(self._get_visible(request, pk)))

    def errors_view(self, request, pk):
        """The error report as a download; without one (or with its file gone), back to the import, saying so."""
        contact_import = self._get_visible(request, pk)
        if refusal := contact_import_error_report_refusal(user=request.user, contact_import=contact_import):
            raise PermissionDenied(refusal)
        try:
            report = contact_import_error_report(contact_import)
        except ErrorReportUnavailable as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return redirect("admin:contacts_contactimport_change", contact_import.pk)
        return FileResponse(
            report,
            as_attachment=True,
            filename=f"import-{contact_import.pk}-errors.csv",
            content_type="text/csv",
        )

    def has_cancel_permission(self, request) -> bool:
        """Cancelling is the one change to an import (has_change_permission is False: the record is not edited), so
        it takes the change permission; the list's action and the page's button are offered only with it."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def cancel_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        try:
            contact_import = contact_import_cancel(import_id=get_object_or_404(ContactImport, pk=pk).pk)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.WARNING)
        else:
            stopped = contact_import.status == Status.CANCELLED
            self.message_user(
                request,
                "Import cancelled."
                if stopped
                else "The import stops before its next chunk is saved; rows already imported stay.",
            )
        return redirect("admin:contacts_contactimport_change", pk)

    def _get_visible(self, request, pk) -> ContactImport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(ContactImport, pk=pk)
