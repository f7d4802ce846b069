"""Admin for contacts, tags, segments and suppressions."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils.html import format_html, format_html_join

from contacts import selectors, services
from contacts.imports import admin as _imports_admin  # noqa: F401  (registers the ContactImport admin)
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber
from contacts.phones import InvalidPhone, normalize_phone

PREVIEW_SIZE = 20


class TagListFilter(admin.SimpleListFilter):
    """Filter contacts by one tag with an EXISTS, so a contact never appears twice and no DISTINCT is needed."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Tag.objects.values_list("pk", "name")[:200]]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag_id=self.value())))


class ContactTagInline(admin.TabularInline):
    model = ContactTag
    extra = 0
    autocomplete_fields = ["tag"]
    fields = ["tag", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name = "tag"
    verbose_name_plural = "tags"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["phone", "name", "email", "country", "tag_names", "is_active", "created_at"]
    list_display_links = ["phone", "name"]
    list_filter = ["is_active", TagListFilter, "created_at"]
    search_fields = ["phone", "email", "first_name", "last_name", "identity"]
    search_help_text = "Phone (any format), e-mail, name or external identity."
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ContactTagInline]
    show_full_result_count = False  # contact tables get large; a second COUNT(*) per page is not worth it
    actions = ["make_active", "make_inactive"]
    fieldsets = [
        (None, {"fields": ["phone", ("first_name", "last_name"), "email", "identity", "is_active"]}),
        ("Locale", {"fields": [("country", "language", "timezone")]}),
        ("Attributes", {"fields": ["attributes"], "description": "Free fields, usable in texts as {{name}}."}),
        ("History", {"fields": [("created_at", "updated_at")]}),
    ]

    def get_queryset(self, request):
        return selectors.contacts_with_tags(super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        """Also find a contact by its number written in any format (a national one in the default region)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = normalize_phone(search_term)
        except InvalidPhone:
            return results, may_have_duplicates
        return results | queryset.filter(phone=phone), may_have_duplicates

    @admin.display(description="name", ordering="last_name")
    def name(self, contact: Contact) -> str:
        return f"{contact.first_name} {contact.last_name}".strip()

    @admin.display(description="tags")
    def tag_names(self, contact: Contact) -> str:
        return ", ".join(sorted(tag.name for tag in contact.tags.all()))

    @admin.action(description="Mark the selected contacts active", permissions=["change"])
    def make_active(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=True)} contacts marked active.")

    @admin.action(description="Mark the selected contacts inactive", permissions=["change"])
    def make_inactive(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=False)} contacts marked inactive.")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "contact_count", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return selectors.tags_with_contact_count()

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, tag: Tag) -> int:
        return tag.contact_count


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "rule", "updated_at"]
    search_fields = ["name", "description"]
    autocomplete_fields = ["positive_tags", "negative_tags"]
    readonly_fields = ["live_count", "preview", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("positive_tags", "negative_tags")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "description"]}),
            ("Who is in it", {"fields": [("positive_operator", "positive_tags"), ("negative_operator", "negative_tags")],
                              "description": "Contacts with any/all of the positive tags (none: everyone), "
                                             "minus those with any/all of the negative tags."}),
        ]  # fmt: skip
        if obj is not None:
            fieldsets.append(("Contacts now", {"fields": ["live_count", "preview", ("created_at", "updated_at")]}))
        return fieldsets

    @admin.display(description="rule")
    def rule(self, segment: Segment) -> str:
        def side(operator, tags):
            names = sorted(tag.name for tag in tags)
            return f"{operator} of {', '.join(names)}" if names else ""

        positive = side(segment.positive_operator, segment.positive_tags.all()) or "everyone"
        negative = side(segment.negative_operator, segment.negative_tags.all())
        return f"{positive} minus {negative}" if negative else positive

    @admin.display(description="contacts")
    def live_count(self, segment: Segment) -> str:
        return f"{selectors.segment_count(segment):,}"

    @admin.display(description=f"first {PREVIEW_SIZE} contacts")
    def preview(self, segment: Segment) -> str:
        contacts = selectors.segment_preview(segment, limit=PREVIEW_SIZE)
        if not contacts:
            return "No contact matches."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (c.phone, f"{c.first_name} {c.last_name}".strip(), c.email, "yes" if c.is_active else "no")
                for c in contacts
            ),
        )
        return format_html(
            '<table class="segment-preview"><thead><tr><th>phone</th><th>name</th><th>e-mail</th><th>active</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )


class UnsubscriberForm(forms.ModelForm):
    """Normalises the address and checks scope/value with the service's own check, errors on the field."""

    class Meta:
        model = Unsubscriber
        fields = ["address", "scope", "value", "source", "reason"]

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
            )
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


@admin.register(Unsubscriber)
class UnsubscriberAdmin(admin.ModelAdmin):
    form = UnsubscriberForm
    list_display = ["address", "scope", "value", "source", "reason", "created_at"]
    list_filter = ["scope", "source", "created_at"]
    search_fields = ["address", "value", "reason"]
    readonly_fields = ["created_at"]
    show_full_result_count = False
