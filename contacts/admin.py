"""Admin for contacts, tags, segments and suppressions.

A contact's page shows its tags, its opt-outs with their source and, added by the campaigns app, its message
history; a segment's page counts and previews its contacts live while its rule is edited.
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import HttpResponseNotAllowed, JsonResponse, QueryDict
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from config.admin_mixins import (
    AutocompleteAdmin,
    TimesAfterAddAdmin,
    UncountedListAdmin,
    UniqueRaceAdmin,
    ViewOnlyAdmin,
    id_from,
)
from config.form_fields import StorableJSONField
from config.pagination import DeepPagePaginator
from config.widgets import AutocompleteSelectMultiple
from contacts import selectors, services
from contacts.imports import admin as _imports_admin  # noqa: F401  (registers the ContactImport admin)
from contacts.models import Contact, ContactTag, Operator, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from contacts.phones import InvalidPhone, normalize_address
from contacts.validators import country_code, tag_names_split

PREVIEW_SIZE = 20


class TagListFilter(admin.SimpleListFilter):
    """Filter contacts by one tag with an EXISTS, so a contact never appears twice and no DISTINCT is needed.

    There can be thousands of tags, so the panel does not list them all: a box takes part of a name (`tag_q`) and
    lists the tags that contain it, a name typed whole filters at once, and `tag` takes a tag's id (the tag list's
    counts link to it)."""

    title = "tag"
    parameter_name = "tag"
    search_parameter = "tag_q"
    template = "admin/contacts/tag_filter.html"
    shown = 20

    def __init__(self, request, params, model, model_admin):
        searched = params.pop(self.search_parameter, None)
        # Without NUL characters, which PostgreSQL cannot take in a query (config.views.AdminAutocompleteView).
        self.search = searched[-1].replace("\x00", "").strip() if searched else ""
        super().__init__(request, params, model, model_admin)
        if self.search:
            self.used_parameters[self.search_parameter] = self.search

    def lookups(self, request, model_admin):
        found = selectors.tags_matching(self.search, limit=self.shown + 1)  # one more: whether typing more would help
        self.found, self.more = found[: self.shown], len(found) > self.shown
        if self.value() is None and self.found and self.found[0].rank == 0:
            self.used_parameters[self.parameter_name] = str(self.found[0].pk)  # the name typed whole (tags_matching)
        chosen = id_from(self.value() or "")
        shown = {tag.pk: tag.name for tag in self.found}
        if chosen is not None and chosen not in shown:
            shown = {pk: name for pk, name in Tag.objects.filter(pk=chosen).values_list("pk", "name")} | shown
        return [(str(pk), name) for pk, name in shown.items()]

    def has_output(self):
        return bool(self.search or self.lookup_choices) or Tag.objects.exists()

    def expected_parameters(self):
        return [self.parameter_name, self.search_parameter]

    def choices(self, changelist):
        kept = QueryDict(changelist.get_query_string(remove=[*self.expected_parameters(), PAGE_VAR])[1:])
        self.kept_parameters = [(name, value) for name, values in kept.lists() for value in values]
        choices = super().choices(changelist)
        everyone = next(choices)  # "All" drops the typed text too
        yield {**everyone, "query_string": changelist.get_query_string(remove=self.expected_parameters())}
        yield from choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if id_from(self.value()) is None:
            raise IncorrectLookupParameters(f"No tag with id {self.value()!r}.")
        return queryset.filter(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag_id=self.value())))


class HeldDeleteAdmin(admin.ModelAdmin):
    """Deleting a tag or segment: the confirmation page names what still selects people by it, and then refuses
    (contacts.services says why), and it counts what goes with it instead of listing every contact's link."""

    delete_confirmation_template = "admin/contacts/held/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/contacts/held/delete_selected_confirmation.html"

    def holders(self, ids: list[int]) -> list:
        raise NotImplementedError

    def delete_objects(self, objs) -> None:
        raise NotImplementedError

    def also_deleted(self, objs: list) -> list[str]:
        return []

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        opts = self.opts
        protected = [_linked(request, held) for held in self.holders([o.pk for o in objs])]
        deleted = [f"{capfirst(opts.verbose_name)}: {obj}" for obj in objs] + self.also_deleted(objs)
        perms_needed = set() if self.has_delete_permission(request) else {opts.verbose_name}
        return deleted, {opts.verbose_name_plural: len(objs)}, perms_needed, protected

    def delete_model(self, request, obj):
        self.delete_objects([obj])

    def delete_queryset(self, request, queryset):
        self.delete_objects(queryset)


def _number(count: int, noun: str = "") -> str:
    """1,200, or "1,200 contacts" / "1 contact" given the noun."""
    number = formats.number_format(count, force_grouping=True)
    return f"{number} {noun}{'' if count == 1 else 's'}" if noun else number


class ContactActionForm(ActionForm):
    """The contact list's action bar, with the tag names that "Add tags" and "Remove tags" take."""

    tags = forms.CharField(
        label="Tags:", required=False, max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "names, comma-separated", "size": 24}),
    )  # fmt: skip

    def tag_names(self) -> list[str]:
        return tag_names_split(self.data.get("tags") or "")


class ContactForm(forms.ModelForm):
    # The contact's tags, picked in one search box (the admin's autocomplete) and written by contact_tags_set in
    # ContactAdmin.save_related. Not the model's `tags`: the admin takes no many-to-many field whose link is a model
    # of its own, and the link, keyed by (contact, tag), cannot be edited in an inline either.
    tag_list = forms.ModelMultipleChoiceField(
        Tag.objects.all(),
        required=False,
        label="Tags",
        widget=AutocompleteSelectMultiple(ContactTag._meta.get_field("tag"), admin.site),
        help_text="Type to search the tags. New tags are made on the Tags page.",
    )
    # Wider than the stored two letters: a name ("India") is read as its code (clean_country)
    country = forms.CharField(required=False, max_length=60, help_text="ISO 3166 code, e.g. IN, or the name: India.")

    class Meta:
        field_classes = {"attributes": StorableJSONField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and not self.is_bound:
            self.initial["tag_list"] = [tag.pk for tag in self.instance.tags.all()]

    def clean_country(self) -> str:
        """Two letters in capitals, a name read as its code, as the API and the import store it."""
        value = self.cleaned_data["country"]
        if value == self.initial.get("country", ""):  # kept as stored (checked when it is changed, as the API does)
            return value
        try:
            return country_code(value) if value else ""
        except ValueError as error:
            raise ValidationError(f"{value!r} is {error}.") from None


@admin.register(Contact)
class ContactAdmin(UncountedListAdmin, UniqueRaceAdmin, admin.ModelAdmin):
    form = ContactForm
    list_display = ["phone", "name", "email", "country", "tag_names", "is_active", "created_at"]
    list_display_links = ["phone", "name"]
    list_filter = ["is_active", TagListFilter, "created_at"]
    search_fields = ["phone", "email", "first_name", "last_name", "identity"]
    search_help_text = (
        "A whole number (any format), e-mail (any case) or identity is matched whole; otherwise any part of a phone,"
        " e-mail, name or identity."
    )
    readonly_fields = ["created_at", "updated_at", "tagged"]
    # UncountedListAdmin: contact tables get large; a second COUNT(*) per page is not worth it
    paginator = DeepPagePaginator
    change_form_template = "admin/contacts/contact/change_form.html"
    change_list_template = "admin/contacts/contact/change_list.html"
    delete_selected_confirmation_template = "admin/contacts/contact/delete_selected_confirmation.html"
    # Sections other apps add to a contact's page: callables (request, contact) → HTML. The campaigns app adds
    # the message history here, so that contacts never imports campaigns (DESIGN §1).
    page_sections: list[Callable] = []
    actions = ["delete_selected", "add_tags", "remove_tags", "opt_out", "make_active", "make_inactive"]
    action_form = ContactActionForm
    fieldsets = [
        (None, {"fields": ["phone", ("first_name", "last_name"), "email", "identity", "tag_list", "is_active"]}),
        ("Locale", {"fields": [("country", "language", "timezone")]}),
        ("Attributes", {"fields": ["attributes"], "description": 'Written as JSON: {"city": "Pune", "plan": "gold"}.'}),
        ("History", {"fields": [("created_at", "updated_at"), "tagged"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        # A contact being added has no history yet (its timestamps are the database's defaults).
        return self.fieldsets if obj is not None else self.fieldsets[:-1]

    class Media:
        css = {"all": ["herald/admin.css"]}

    def get_queryset(self, request):
        return selectors.contacts_with_tags(super().get_queryset(request))

    def save_model(self, request, obj, form, change):
        old = (form.initial.get("phone") or "", form.initial.get("email") or "") if change else None
        super().save_model(request, obj, form, change)
        if old is not None and (
            carried := services.opt_outs_follow_contact(
                old=old, new=(obj.phone or "", obj.email or ""), source=Unsubscriber.Source.ADMIN
            )
        ):
            self.message_user(
                request,
                f"The contact's old address had {_number(carried, 'opt-out')} that the new one lacked: "
                f"{'it holds' if carried == 1 else 'they hold'} for the new one too.",
                messages.WARNING,
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if "tag_list" in form.cleaned_data:
            services.contact_tags_set(contact=form.instance, names=[tag.name for tag in form.cleaned_data["tag_list"]])

    @admin.display(description="tags")
    def tag_list(self, contact: Contact) -> str:
        """The tags, for a user who may only view the contact (the form's field for one who may change it)."""
        return self.tag_names(contact) or "–"

    @admin.display(description="tagged")
    def tagged(self, contact: Contact) -> str:
        """When each tag was put on the contact (by hand, an import or the API)."""
        links = selectors.contact_tag_links(contact) if contact.pk else []
        return (
            ", ".join(f"{link.tag.name} ({formats.localize(timezone.localtime(link.created_at))})" for link in links)
            or "–"
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contact = self.get_object(request, object_id)
        extra = {}
        if contact is not None:
            extra["opt_outs"] = selectors.contact_unsubscriptions(contact)
            extra["opt_outs_removed"] = selectors.contact_opt_out_removals(contact)
            extra["may_add_opt_out"] = request.user.has_perm("contacts.add_unsubscriber")
            extra["may_open_opt_outs"] = any(
                request.user.has_perm(f"contacts.{how}_unsubscriber") for how in ("view", "change")
            )  # else their pages are a 403: the addresses are shown unlinked
            extra["page_sections"] = [html for section in self.page_sections if (html := section(request, contact))]
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def delete_queryset(self, request, queryset):
        services.contacts_delete(contacts=queryset)

    def get_deleted_objects(self, objs, request):
        """Counted, not listed: Django's page listed every contact and tag link it deletes, which for "Select all
        100,000 contacts" took the page most of a minute and a page of 200,000 lines."""
        contacts = objs if isinstance(objs, QuerySet) else Contact.objects.filter(pk__in=[obj.pk for obj in objs])
        count, links, first = selectors.contacts_deletion_summary(contacts)
        named = [f"Contact: {contact}" for contact in first]
        if count > len(first):
            named.append(f"… and {formats.number_format(count - len(first), force_grouping=True)} more contacts.")
        if links:
            whose = "Its tags come off it" if count == 1 else "Their tags come off them"
            named.append(f"{whose} ({_number(links, 'tag link')}).")
        perms_needed = set() if self.has_delete_permission(request) else {self.opts.verbose_name}
        return named, {self.opts.verbose_name_plural: count}, perms_needed, []

    def get_search_results(self, request, queryset, search_term):
        """A whole number (in any format: a national one is read in the default region), e-mail address or identity
        is looked up whole, through the indexes on phone, e-mail and identity. When nothing has it whole, or for any
        other term, the term is looked for inside every search field, which reads the whole table: fine for a
        name, seconds for a million contacts, so not for the common lookups."""
        whole = selectors.contact_whole_match_q(search_term.strip())
        if whole is not None and (found := queryset.filter(whole)).exists():
            return found, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="name", ordering="last_name")
    def name(self, contact: Contact) -> str:
        return f"{contact.first_name} {contact.last_name}".strip()

    @admin.display(description="tags")
    def tag_names(self, contact: Contact) -> str:
        return ", ".join(sorted(tag.name for tag in contact.tags.all()))

    @admin.action(description=admin.actions.delete_selected.short_description, permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's, on the contacts without their tags: the list's prefetch of every selected contact's tags took
        most of the time of deleting 100,000."""
        return admin.actions.delete_selected(self, request, queryset.prefetch_related(None))

    @admin.action(description="Add tags to selected contacts", permissions=["change"])
    def add_tags(self, request, queryset):
        count = queryset.order_by().count()
        try:
            tags = services.contacts_tag(contact_ids=queryset, tag_names=ContactActionForm(request.POST).tag_names())
        except ValidationError as error:
            return self._refused(request, error)
        named = ", ".join(tag.name for tag in tags)
        self.message_user(request, f"Tagged {_number(count, 'contact')} with {named}.", messages.SUCCESS)

    @admin.action(description="Remove tags from selected contacts", permissions=["change"])
    def remove_tags(self, request, queryset):
        try:
            removed = services.contacts_untag(
                contact_ids=queryset, tag_names=ContactActionForm(request.POST).tag_names()
            )
        except ValidationError as error:
            return self._refused(request, error)
        self.message_user(request, f"{_number(removed, 'tag')} taken off the selected contacts.", messages.SUCCESS)

    @admin.action(description="Opt selected contacts out of everything", permissions=["opt_out"])
    def opt_out(self, request, queryset):
        count = queryset.order_by().count()
        recorded = services.contacts_opt_out(contact_ids=queryset)
        already = f"; {_number(count - recorded)} already were" if count > recorded else ""
        self.message_user(request, f"{_number(recorded, 'number')} opted out of everything{already}.", messages.SUCCESS)

    def has_opt_out_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("contacts.add_unsubscriber")

    def _refused(self, request, error: ValidationError) -> None:
        for field, problems in error.message_dict.items():
            self.message_user(request, f"{capfirst(field)}: {' '.join(problems)}", messages.ERROR)

    @admin.action(description="Mark selected contacts active", permissions=["change"])
    def make_active(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=True)} contacts marked active.")

    @admin.action(description="Mark selected contacts inactive", permissions=["change"])
    def make_inactive(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=False)} contacts marked inactive.")


@admin.register(Tag)
class TagAdmin(UniqueRaceAdmin, TimesAfterAddAdmin, HeldDeleteAdmin):
    list_display = ["name", "description", "contact_count", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return selectors.tags_with_contact_count()

    def save_model(self, request, obj, form, change):
        if change:  # a rename takes the tag's opt-outs with it; the form has set the fields on obj
            services.tag_update(tag=obj)
        else:
            super().save_model(request, obj, form, change)

    def holders(self, ids):
        return services.tags_holders(ids)

    def delete_objects(self, objs):
        services.tags_delete(tags=objs)

    def also_deleted(self, objs):
        links = ContactTag.objects.filter(tag__in=objs).count()
        return [f"The tag comes off {formats.number_format(links, force_grouping=True)} contacts."] if links else []

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, tag: Tag) -> str:
        """The number, linked to the list of those contacts."""
        url = reverse("admin:contacts_contact_changelist")
        return format_html(
            '<a href="{}?tag={}">{}</a>', url, tag.pk, formats.number_format(tag.contact_count, force_grouping=True)
        )


class NullsLast(F):
    """A column sorted with its missing values last whichever way the list is sorted (PostgreSQL puts NULL first in
    descending order: the segments never counted came above the biggest ones)."""

    def asc(self, **kwargs):
        return super().asc(nulls_last=True)

    def desc(self, **kwargs):
        return super().desc(nulls_last=True)


@admin.register(Segment)
class SegmentAdmin(AutocompleteAdmin, UniqueRaceAdmin, HeldDeleteAdmin):
    list_display = ["name", "rule", "contacts", "updated_at"]
    actions = ["count_now"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["positive_tags", "negative_tags"]
    readonly_fields = ["created_at", "updated_at"]
    change_form_template = "admin/contacts/segment/change_form.html"

    class Media:
        css = {"all": ["herald/admin.css"]}
        js = ["herald/segment-admin.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("positive_tags", "negative_tags")

    def get_list_display(self, request):
        # The counts are of contacts: shown to whom may see contacts, as the segment's page shows its count.
        shown = super().get_list_display(request)
        return shown if self.has_count_permission(request) else [name for name in shown if name != "contacts"]

    def has_count_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("contacts.view_contact")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.segments_count(segment_ids=[form.instance.pk])  # its tags are saved only now
        rule = {"positive_tags", "positive_operator", "negative_tags", "negative_operator"}
        if change and rule & set(form.changed_data) and (held := services.segments_holders([form.instance.pk])):
            named = ", ".join(f"{capfirst(h._meta.verbose_name)} “{h}”" for h in held)
            self.message_user(
                request,
                f"{named} {'selects' if len(held) == 1 else 'select'} people by this segment: from now on by its new"
                " rule, unless already sending.",
                messages.WARNING,
            )

    @admin.action(description="Count the selected segments' contacts now", permissions=["count"])
    def count_now(self, request, queryset):
        counted = services.segments_count(segment_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, "; ".join(f"{s.name}: {self.contacts(s)}" for s in counted), messages.SUCCESS)

    @admin.display(description="contacts", ordering=NullsLast("contact_count"))
    def contacts(self, segment: Segment) -> str:
        """The last count and when it was taken (the time alone if today): counting every segment on every load
        of this list would evaluate each rule over all contacts. Saving a segment, opening its page or "Count
        now" counts again."""
        if segment.counted_at is None:
            return "not counted yet"
        at = timezone.localtime(segment.counted_at)
        when = formats.time_format(at, "H:i")
        if at.date() != timezone.localdate():
            when = f"{formats.date_format(at, 'Y-m-d')} {when}"
        return f"{formats.number_format(segment.contact_count, force_grouping=True)} (as of {when})"

    def holders(self, ids):
        return services.segments_holders(ids)

    def delete_objects(self, objs):
        services.segments_delete(segments=objs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "description"]}),
            ("Who is in it", {"fields": [("positive_operator", "positive_tags"), ("negative_operator", "negative_tags")],
                              "description": "Contacts with any/all of the positive tags (none: everyone), "
                                             "minus those with any/all of the negative tags."}),
        ]  # fmt: skip
        if obj is not None:
            fieldsets.append(("History", {"fields": [("created_at", "updated_at")], "classes": ["collapse"]}))
        return fieldsets

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The live panel starts with the saved rule's figures; segment-admin.js refreshes them as the rule changes."""
        if obj is not None:  # who a change of the rule changes the audience of, said before it is made
            context["segment_holders"] = [
                (f"{capfirst(held._meta.verbose_name)}: {held}", _admin_url(request, held))
                for held in services.segments_holders([obj.pk])
            ]
        if request.user.has_perm("contacts.view_contact"):
            rule = _segment_rule(obj) if obj is not None else {}
            count, contacts = selectors.segment_rule_preview(**_rule_defaults(rule), limit=PREVIEW_SIZE)
            if obj is not None and request.method == "GET":  # the saved rule, counted: the list shows it from now
                # (a form sent back with errors has the sent operators on obj, not the saved ones)
                services.segment_count_store(segment=obj, count=count)
            context.update(
                segment_preview_url=reverse("admin:contacts_segment_preview"),
                segment_count=count,
                segment_count_shown=_number(count),
                segment_contacts=contacts,
                preview_size=PREVIEW_SIZE,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="contacts_segment_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """POST the rule's fields (saved or not): how many contacts it selects (also as the page shows a number,
        `count_shown`: the same on load and after a refresh, whatever the browser's language) and the newest of them,
        as JSON."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_view_permission(request) and request.user.has_perm("contacts.view_contact")):
            raise PermissionDenied
        form = SegmentRuleForm(request.POST)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors}, status=400)
        count, contacts = selectors.segment_rule_preview(**form.rule(), limit=PREVIEW_SIZE)
        return JsonResponse(
            {
                "count": count,
                "count_shown": _number(count),
                "contacts": [
                    {
                        "phone": contact.phone,
                        "name": f"{contact.first_name} {contact.last_name}".strip(),
                        "email": contact.email,
                        "active": contact.is_active,
                        "url": reverse("admin:contacts_contact_change", args=[contact.pk]),
                    }
                    for contact in contacts
                ],
            }
        )

    @admin.display(description="rule")
    def rule(self, segment: Segment) -> str:
        def side(operator, tags):
            names = sorted(tag.name for tag in tags)
            return f"{operator} of {', '.join(names)}" if names else ""

        positive = side(segment.positive_operator, segment.positive_tags.all()) or "everyone"
        negative = side(segment.negative_operator, segment.negative_tags.all())
        return f"{positive} minus {negative}" if negative else positive


def _admin_url(request, obj) -> str:
    """The object's admin page, or "" when the user may not see it (no link that leads to a 403)."""
    opts = obj._meta
    if not any(request.user.has_perm(f"{opts.app_label}.{how}_{opts.model_name}") for how in ("view", "change")):
        return ""
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def _linked(request, obj) -> str:
    """An object named as Django's delete pages name a related one, "Segment: <a href=…>VIP</a>": linked to its
    admin page for whom may see it (_admin_url), else its name alone."""
    label = capfirst(obj._meta.verbose_name)
    if url := _admin_url(request, obj):
        return format_html('{}: <a href="{}">{}</a>', label, url, obj)
    return f"{label}: {obj}"


class SegmentRuleForm(forms.Form):
    """A segment's rule as the change form posts it, saved or not."""

    positive_tags = forms.ModelMultipleChoiceField(Tag.objects.all(), required=False)
    positive_operator = forms.ChoiceField(choices=Operator.choices, required=False)
    negative_tags = forms.ModelMultipleChoiceField(Tag.objects.all(), required=False)
    negative_operator = forms.ChoiceField(choices=Operator.choices, required=False)

    def rule(self) -> dict:
        return _rule_defaults(self.cleaned_data)


def _segment_rule(segment: Segment) -> dict:
    return {
        "positive_tags": segment.positive_tags.all(),
        "positive_operator": segment.positive_operator,
        "negative_tags": segment.negative_tags.all(),
        "negative_operator": segment.negative_operator,
    }


def _rule_defaults(rule: dict) -> dict:
    return {
        "positive_tag_ids": [tag.pk for tag in rule.get("positive_tags") or []],
        "positive_operator": rule.get("positive_operator") or Operator.ANY,
        "negative_tag_ids": [tag.pk for tag in rule.get("negative_tags") or []],
        "negative_operator": rule.get("negative_operator") or Operator.ANY,
    }


class UnsubscriberForm(forms.ModelForm):
    """Normalises the address and checks scope/value with the service's own check, errors on the field."""

    class Meta:
        model = Unsubscriber
        fields = ["address", "scope", "value", "source", "reason"]
        help_texts = {
            "value": "Empty for everything; else the channel (SMS, WhatsApp…), the sender's name, the tag's name, or the "
            "service: a purpose (transactional, service, promotional) or a sender's service code (T, P, S, G)."
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "source" not in self.fields:
            return
        if self.instance.pk:  # who recorded it stays as recorded
            self.fields["source"].disabled = True
        else:  # a vendor's report alone records `provider` or `inbound`
            self.fields["source"].choices = [
                (value, label) for value, label in self.fields["source"].choices if value not in services.SIGNAL_SOURCES
            ]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned["address"], cleaned["value"] = services.unsubscriber_check(
                address=cleaned["address"],
                scope=cleaned["scope"],
                value=cleaned.get("value", ""),
                source=cleaned["source"],
                stored_source=self.instance.source if self.instance.pk else None,
            )
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


@admin.register(Unsubscriber)
class UnsubscriberAdmin(UncountedListAdmin, UniqueRaceAdmin, TimesAfterAddAdmin):
    form = UnsubscriberForm
    list_display = ["address", "scope", "value", "source", "reason", "created_at"]
    list_filter = ["scope", "source", "created_at"]
    search_fields = ["address", "value", "reason"]
    search_help_text = "Address (a number in any format, or an e-mail), value or reason."
    readonly_fields = ["created_at"]
    paginator = DeepPagePaginator

    def save_model(self, request, obj, form, change):
        if change:  # an edit of address, scope or value lifts the opt-out as it stood: kept as removed, by whom
            fields = {name: form.cleaned_data[name] for name in form.Meta.fields if name in form.cleaned_data}
            services.unsubscriber_update(unsubscriber=obj, user=request.user, via="admin", **fields)
        else:
            super().save_model(request, obj, form, change)
        if warning := selectors.suppression_names_nothing(obj.scope, obj.value):
            self.message_user(request, warning, messages.WARNING)

    def delete_model(self, request, obj):
        services.unsubscribers_remove(unsubscribers=[obj], user=request.user, via="admin")

    def delete_queryset(self, request, queryset):
        services.unsubscribers_remove(unsubscribers=queryset, user=request.user, via="admin")

    def response_add(self, request, obj, post_url_continue=None):
        """An opt-out recorded from a contact's page ("Record an opt-out for …", which passes ?contact=<id>) leads
        back to that contact, where it is now listed; otherwise the admin's usual next page."""
        contact_id = request.GET.get("contact", "")
        wants_other_page = {"_continue", "_addanother", "_popup"} & set(request.POST)
        known = id_from(contact_id) is not None and Contact.objects.filter(pk=contact_id).exists()
        if not wants_other_page and known:
            self.message_user(request, f"The opt-out of {obj.address} is recorded.", messages.SUCCESS)
            return redirect("admin:contacts_contact_change", contact_id)
        return super().response_add(request, obj, post_url_continue)

    def get_search_results(self, request, queryset, search_term):
        """The term inside the address, value or reason, and also an address written any way (a national number)
        as it is stored."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            return results | queryset.filter(address=normalize_address(search_term.strip())), may_have_duplicates
        except InvalidPhone:
            return results, may_have_duplicates


@admin.register(UnsubscriberRemoval)
class UnsubscriberRemovalAdmin(UncountedListAdmin, ViewOnlyAdmin, admin.ModelAdmin):
    """The opt-outs lifted by staff or API clients, as they stood, with who lifted them and when: read only."""

    list_display = ["address", "scope", "value", "source", "reason", "opted_out_at", "removed_at", "removed_by_name",
                    "via", "note"]  # fmt: skip
    list_filter = ["scope", "via", "removed_at"]
    search_fields = ["address", "value", "removed_by_name"]
    search_help_text = "Address (a number in any format, or an e-mail), value or who removed it."

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            return results | queryset.filter(address=normalize_address(search_term.strip())), may_have_duplicates
        except InvalidPhone:
            return results, may_have_duplicates
