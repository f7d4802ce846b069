"""The imports admin: the upload page starts an import through the service; its page follows progress."""

import io
import os
import re
import time

import openpyxl
import pytest

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.imports import contact_import_create, contact_import_run
from contacts.models import Contact, ContactImport, Tag
from providers.dlt_import import NO_ACCOUNT_CHOSEN
from providers.models import ProviderAccount
from tests.factories import ContactFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_admin_upload_page_renders_with_each_kinds_options(staff):
    ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting")

    response = staff.get(reverse("admin:contacts_contactimport_add"))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page and 'name="file"' in page
    assert 'data-import-kind="unsubscribers"' in page and 'name="unsubscribers__scope"' in page
    assert 'data-import-kind="dlt_templates"' in page and "MOBtexting" in page
    assert "herald/import-admin.js" in page
    assert 'id="import-columns"' in page and "{#" not in page  # the column table, and no template comment shown
    # The mode's help said only what it does to contacts, whichever kind was chosen; an opt-out import, which only
    # ever adds, has no mode to choose (the page hides it for that kind).
    assert "DLT templates already there are updated" in page
    assert '<div class="form-row field-mode" data-import-kinds="contacts dlt_templates">' in page
    # The optional mapping starts empty (Django's JSON field showed `null` in it).
    assert re.search(r'<textarea name="mapping"[^>]*>\s*</textarea>', page), "the mapping box is not empty"


def test_the_upload_page_marks_every_field_it_needs_as_required(staff):
    """Only the DLT import's provider account was marked (a bold label): the file, kind and mode, which the upload
    needs as much, were not, the form asking for them in clean()."""
    ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting")

    page = staff.get(reverse("admin:contacts_contactimport_add")).content.decode()

    marked = set(re.findall(r'<label for="id_(\w+)" class="required">', page))
    assert marked == {"file", "kind", "mode", "dlt_templates__account_id"}
    assert '<label for="id_tags">Tags:</label>' in page  # the others are not


def test_a_refused_upload_shows_the_mapping_as_it_was_typed(staff):
    """Valid JSON comes back as JSON, a typo as typed, with the error on the field; an empty box stays empty."""
    url = reverse("admin:contacts_contactimport_add")
    page = staff.post(url, {"kind": "contacts", "mode": "create_update", "mapping": '{"Mobile": "phone"}'})
    assert re.search(
        r'<textarea name="mapping"[^>]*>\s*\{&quot;Mobile&quot;: &quot;phone&quot;\}</textarea>', page.content.decode()
    )
    page = staff.post(url, {"kind": "contacts", "mode": "create_update", "mapping": '{"Mobile": phone}'})
    assert re.search(
        r'<textarea name="mapping"[^>]*>\s*\{&quot;Mobile&quot;: phone\}</textarea>', page.content.decode()
    )
    assert "Enter a valid JSON." in page.content.decode()
    page = staff.post(url, {"kind": "contacts", "mode": "create_update", "mapping": ""})
    assert re.search(r'<textarea name="mapping"[^>]*>\s*</textarea>', page.content.decode())


def test_the_upload_page_does_not_grow_with_the_tags_and_searches_them(staff):
    """The tags field listed every tag in the page (a two-list picker): with thousands of tags the page was heavy and
    the lists hard to use. It is a search box now: the page holds only the tags chosen, and the search finds any."""
    url = reverse("admin:contacts_contactimport_add")
    before = len(staff.get(url).content)
    Tag.objects.bulk_create(Tag(name=f"campaign-tag-{n:04d}") for n in range(3000))
    page = staff.get(url).content.decode()
    assert len(page) - before < 2000, len(page) - before
    assert "campaign-tag-" not in page
    assert 'data-model-name="contacttag"' in page and 'data-field-name="tag"' in page
    query = {"app_label": "contacts", "model_name": "contacttag", "field_name": "tag", "term": "tag-2999"}
    found = staff.get("/admin/autocomplete/", query).json()["results"]
    assert [row["text"] for row in found] == ["campaign-tag-2999"]
    # Sent back with an error, the page shows the tag that was chosen (and no other).
    chosen = Tag.objects.get(name="campaign-tag-2999")
    again = staff.post(url, {"kind": "contacts", "mode": "create_update", "tags": [chosen.pk]}).content.decode()
    assert f'<option value="{chosen.pk}" selected>campaign-tag-2999</option>' in again
    assert again.count("campaign-tag-") == 1


def test_admin_upload_starts_the_import_and_shows_its_page(staff, django_capture_on_commit_callbacks, broker_queue):
    Tag.objects.create(name="existing")
    data = {
        "file": SimpleUploadedFile("list.csv", b"Mobile,Name\n9812345678,Asha\nbad,X\n"),
        "kind": "contacts",
        "tags": [Tag.objects.get().pk],
        "new_tags": "fresh, other",
        "mode": "create_update",
        "default_region": "IN",
        "mapping": "",
        "unsubscribers__scope": "all",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("admin:contacts_contactimport_add"), data)

    contact_import = ContactImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:contacts_contactimport_change", args=[contact_import.pk])
    assert broker_queue() == [("contacts.tasks.contact_import_run_task", [contact_import.pk])]
    assert sorted(contact_import.tags.values_list("name", flat=True)) == ["existing", "fresh", "other"]
    assert contact_import.created_by.username == "admin"

    contact_import_run(import_id=contact_import.pk)
    page = staff.get(response["Location"]).content.decode()
    progress = staff.get(reverse("admin:contacts_contactimport_progress", args=[contact_import.pk])).json()
    report = staff.get(reverse("admin:contacts_contactimport_errors", args=[contact_import.pk]))

    assert 'id="import-progress"' in page and "Download the error report" in page
    assert progress | {"id": 0} == {
        "id": 0, "status": "completed", "status_display": "completed", "finished": True, "cancel_requested": False,
        "percent": 100, "rows_total": 2, "rows_read": 2, "created": 1, "updated": 0, "unchanged": 0, "invalid": 1,
        "duplicates": 0, "error_message": "", "has_error_report": True, "error_report_removed": False,
    }  # fmt: skip
    assert b"".join(report.streaming_content).decode("utf-8-sig").splitlines()[1].startswith("3,Mobile,bad,")
    assert Contact.objects.get().first_name == "Asha"


@pytest.mark.parametrize(
    ("kind", "content", "name"),
    [
        ("contacts", "Mobile\n9812345678\n", "contacts import"),
        ("unsubscribers", "Mobile\n9812345678\n", "opt-out import"),
        ("dlt_templates", "Template ID,Header,Type,Body\n1107170000000000014,HERALD,T,Hello\n", "DLT template import"),
    ],
)
def test_an_import_is_named_alike_in_its_message_title_heading_and_breadcrumbs(staff, kind, content, name):
    """A DLT import's page was titled "View DLT template import" over "DLT templates import #1", a contacts import
    was "contacts import #4" on its page: the kind's label, lower case, where the title said the import's name."""
    account = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting")
    data = {"file": SimpleUploadedFile("list.csv", content.encode()), "kind": kind, "mode": "create_update"}

    page = staff.post(
        reverse("admin:contacts_contactimport_add"), {**data, "dlt_templates__account_id": account.pk}, follow=True
    ).content.decode()

    named = f"{name[0].upper()}{name[1:]} #{ContactImport.objects.get().pk} (list.csv)"
    assert f"{named} is queued; this page follows its progress." in page
    assert f"<h1>View {name}</h1>" in page
    assert f"<h2>{named}</h2>" in page
    assert f"&rsaquo; {named}\n</div>" in page


def test_admin_upload_shows_the_services_errors_on_the_form(staff):
    data = {"file": SimpleUploadedFile("list.csv", b"Name\nAsha\n"), "kind": "contacts", "mode": "create_update"}

    response = staff.post(reverse("admin:contacts_contactimport_add"), data)

    assert response.status_code == 200
    assert "No phone column" in response.content.decode()
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [{"mapping": '{"Mobile": "phone"'}, {"mapping": '{"Mobile": "phone"}'}, {"default_region": "INDIA"}],
    ids=["mapping-no-json", "mapping-no-such-column", "region-too-long"],
)
def test_admin_upload_coming_back_with_errors_asks_for_the_file_again_by_name(staff, fields):
    """A browser cannot keep a chosen file when the page comes back: the file field says so, naming the file."""
    data = {"file": SimpleUploadedFile("customers.csv", b"Phone\n9812345678\n"), "kind": "contacts", **fields}
    data.setdefault("mode", "create_update")

    response = staff.post(reverse("admin:contacts_contactimport_add"), data)

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "Choose customers.csv again: the browser does not keep a chosen file when the page comes back."
    ]
    assert not ContactImport.objects.exists()


def test_admin_dlt_upload_without_an_account_says_so_on_the_account_field(staff):
    ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting")
    data = {"file": SimpleUploadedFile("dlt.csv", DLT), "kind": "dlt_templates", "mode": "create_update"}

    response = staff.post(reverse("admin:contacts_contactimport_add"), data)

    assert response.status_code == 200
    assert response.context["form"].errors["dlt_templates__account_id"] == [NO_ACCOUNT_CHOSEN]
    assert not ContactImport.objects.exists()


def test_admin_upload_passes_the_chosen_kinds_options(staff):
    data = {
        "file": SimpleUploadedFile("stop.txt", b"9812345678\n"),
        "kind": "unsubscribers",
        "mode": "create_update",
        "unsubscribers__scope": "sender",
        "unsubscribers__value": "HERALD",
    }

    staff.post(reverse("admin:contacts_contactimport_add"), data)

    assert ContactImport.objects.get().options == {"scope": "sender", "value": "HERALD", "reason": ""}


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (
            {"unsubscribers__scope": "tag"}, "unsubscribers__value",
            "A tag scope needs a value (which tag): the file has no value column.",
        ),
        (
            {"unsubscribers__scope": "service"}, "unsubscribers__value",
            "A service scope needs a value (the purpose or service code): the file has no value column.",
        ),
        (
            {"unsubscribers__scope": "channel", "unsubscribers__value": "telegram"}, "unsubscribers__value",
            "Unknown channel 'telegram'; use one of sms, viber, whatsapp, rcs, push, email, voice_sms.",
        ),
    ],
)  # fmt: skip
def test_an_opt_out_uploads_option_problem_is_said_on_its_field(staff, options, field, message):
    """It was said above the form, of the stored scope: "Scope 'tag' needs a value (the tag): the file has no value
    column.", where the page offers "one tag" and a Value field to fill in."""
    data = {"file": SimpleUploadedFile("stop.txt", b"9812345678\n"), "kind": "unsubscribers", **options}

    response = staff.post(reverse("admin:contacts_contactimport_add"), data)

    form = response.context["form"]
    assert form.errors == {
        field: [message],
        "file": ["Choose stop.txt again: the browser does not keep a chosen file when the page comes back."],
    }
    assert not ContactImport.objects.exists()


def test_admin_upload_takes_no_mode_for_opt_outs_and_asks_for_one_for_contacts(staff):
    """The page hides the mode of an opt-out import (only ever added), so the browser sends none: it was refused as
    required, on a hidden field, and the import could not be started from the admin."""
    url = reverse("admin:contacts_contactimport_add")
    staff.post(url, {"file": SimpleUploadedFile("stop.txt", b"9812345678\n"), "kind": "unsubscribers"})
    assert ContactImport.objects.get().kind == "unsubscribers"

    response = staff.post(url, {"file": SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n"), "kind": "contacts"})
    assert response.context["form"].errors["mode"] == ["This field is required."]
    assert ContactImport.objects.count() == 1


def test_admin_upload_of_opt_outs_for_a_sender_nobody_has_warns_that_they_suppress_nothing(staff):
    data = {
        "file": SimpleUploadedFile("stop.txt", b"9812345678\n"),
        "kind": "unsubscribers",
        "mode": "create_update",
        "unsubscribers__scope": "sender",
        "unsubscribers__value": "HERLAD",
    }

    response = staff.post(reverse("admin:contacts_contactimport_add"), data, follow=True)

    warning = (
        "No sender is named &#x27;HERLAD&#x27;: the opt-outs this import records for it (every row without a scope of "
        "its own) suppress nothing until one is. Check the spelling."
    )
    assert response.content.decode().count(warning) == 1


def test_an_opt_out_imports_page_warns_of_a_tag_nobody_has_each_time_it_is_opened(staff):
    """The warning was a one-off message after the upload: opened again, the page said only "Scope: one tag; Value:
    promo2", while the API's `warnings` still had it. Right after the upload it is said once, not twice."""
    data = {
        "file": SimpleUploadedFile("stop.txt", b"9812345678\n"),
        "kind": "unsubscribers",
        "unsubscribers__scope": "tag",
        "unsubscribers__value": "promo2",
    }
    warning = (
        "No tag is named &#x27;promo2&#x27;: the opt-outs this import records for it (every row without a scope of "
        "its own) suppress nothing until one is. Check the spelling."
    )

    after_upload = staff.post(reverse("admin:contacts_contactimport_add"), data, follow=True).content.decode()
    page_url = reverse("admin:contacts_contactimport_change", args=[ContactImport.objects.get().pk])
    opened_again = [staff.get(page_url).content.decode() for _ in range(2)]

    assert after_upload.count(warning) == 1
    assert [page.count(warning) for page in opened_again] == [1, 1]
    assert "Scope: one tag; Value: promo2" in opened_again[-1]

    Tag.objects.create(name="promo2")
    assert "No tag is named" not in staff.get(page_url).content.decode()


def test_admin_cancel_button_and_list_page(staff):
    contact_import = contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n"))

    response = staff.post(reverse("admin:contacts_contactimport_cancel", args=[contact_import.pk]))
    listing = staff.get(reverse("admin:contacts_contactimport_changelist"))

    assert response.status_code == 302
    assert ContactImport.objects.get().status == ContactImport.Status.CANCELLED
    assert listing.status_code == 200 and "c.csv" in listing.content.decode()
    assert staff.get(reverse("admin:contacts_contactimport_cancel", args=[contact_import.pk])).status_code == 405


def upload_as(client, perms, kind, content, **data):
    user = UserFactory(is_staff=True, permissions=["contacts.add_contactimport", "contacts.view_contactimport", *perms])
    client.force_login(user)
    data = {"file": SimpleUploadedFile("f.csv", content), "kind": kind, "mode": "create_update", **data}
    return client.post(reverse("admin:contacts_contactimport_add"), data)


CONTACTS = b"phone,first_name\n+919812345678,Mallory\n"
UNSUBSCRIBERS = b"phone\n+919812345679\n"
DLT = b"Template ID,Template Type,Header,Template Content\n1107161234567890123,T,HERALD,Your OTP is {#var#}.\n"


@pytest.mark.parametrize(
    ("kind", "content", "perms", "data", "field", "message"),
    [
        ("contacts", CONTACTS, [], {}, "kind", "You need permission to add contacts to import them."),
        (
            "contacts", CONTACTS, ["contacts.add_contact"], {}, "mode",
            "You need permission to change contacts to import in 'create and update' mode.",
        ),
        (
            "contacts", CONTACTS, ["contacts.add_contact"], {"mode": "create_only", "new_tags": "vip"}, "tags",
            "You need permission to change contacts to tag them: the import's tags go to the file's contacts that "
            "exist already too.",
        ),
        ("unsubscribers", UNSUBSCRIBERS, [], {}, "kind", "You need permission to add opt-outs to import them."),
        ("dlt_templates", DLT, [], {}, "kind", "You need permission to add DLT templates to import them."),
        (
            "unsubscribers", UNSUBSCRIBERS, ["contacts.add_unsubscriber"], {"new_tags": "vip"}, "tags",
            "A suppression import applies no tags: tags go to contacts, so leave them out here.",
        ),
    ],
)  # fmt: skip
def test_admin_upload_is_refused_without_the_permissions_of_what_it_writes(
    client, kind, content, perms, data, field, message
):
    response = upload_as(client, perms, kind, content, **data)

    assert response.status_code == 200
    assert message in response.context["form"].errors[field]
    assert not ContactImport.objects.exists() and not Tag.objects.exists()


@pytest.mark.parametrize(
    ("kind", "content", "perms", "data"),
    [
        ("contacts", CONTACTS, ["contacts.add_contact", "contacts.change_contact"], {"new_tags": "vip"}),
        ("unsubscribers", UNSUBSCRIBERS, ["contacts.add_unsubscriber"], {}),
        ("dlt_templates", DLT, ["providers.add_dlttemplate", "providers.change_dlttemplate"], {"account": True}),
    ],
)
def test_admin_upload_is_accepted_with_the_permissions_of_what_it_writes(client, kind, content, perms, data):
    data = dict(data)
    if data.pop("account", False):  # a DLT import names the account whose senders its headers are
        data["dlt_templates__account_id"] = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting").pk

    response = upload_as(client, perms, kind, content, **data)

    assert response.status_code == 302
    assert ContactImport.objects.get().kind == kind


def test_admin_upload_without_the_change_permission_leaves_existing_contacts_alone(client):
    ContactFactory(phone="+919812345678", first_name="Asha")

    response = upload_as(client, ["contacts.add_contact"], "contacts", CONTACTS)

    assert "change contacts to import in &#x27;create and update&#x27; mode" in response.content.decode()
    assert not ContactImport.objects.exists()
    assert Contact.objects.get().first_name == "Asha"


def test_admin_error_report_whose_file_is_gone_goes_back_to_the_import_saying_so(staff):
    contact_import = contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\nbad\n"))
    contact_import = contact_import_run(import_id=contact_import.pk)
    os.remove(contact_import.error_report.path)  # the media directory cleaned, or not shared with the workers

    response = staff.get(reverse("admin:contacts_contactimport_errors", args=[contact_import.pk]), follow=True)

    assert response.redirect_chain == [(reverse("admin:contacts_contactimport_change", args=[contact_import.pk]), 302)]
    assert "The error report of this import is no longer available" in response.content.decode()


def test_admin_import_page_writes_its_counts_as_its_refreshes_do(staff):
    """1,200,000 rows read, as import-admin.js writes them once the page refreshes, not 1200000 until then."""
    contact_import = contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n"))
    ContactImport.objects.filter(pk=contact_import.pk).update(
        rows_read=1_200_000, rows_total=1_500_000, created=1_150_000
    )
    page = staff.get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk])).content.decode()
    assert '<td data-field="rows_read">1,200,000</td>' in page
    assert '<td data-field="rows_total">1,500,000</td>' in page and '<td data-field="created">1,150,000</td>' in page


def test_admin_import_page_says_the_error_report_is_gone_instead_of_linking_to_it(staff):
    contact_import = contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\nbad\n"))
    contact_import = contact_import_run(import_id=contact_import.pk)
    errors_url = reverse("admin:contacts_contactimport_errors", args=[contact_import.pk])
    page_url = reverse("admin:contacts_contactimport_change", args=[contact_import.pk])
    assert f'href="{errors_url}"' in staff.get(page_url).content.decode()
    os.remove(contact_import.error_report.path)  # the media directory cleaned, or not shared with the workers

    page = staff.get(page_url).content.decode()
    progress = staff.get(reverse("admin:contacts_contactimport_progress", args=[contact_import.pk])).json()

    assert f'href="{errors_url}"' not in page
    assert page.count("The error report of this import is no longer available") == 2  # the panel and the record
    assert "Download" not in page
    assert (progress["has_error_report"], progress["error_report_removed"]) == (False, True)


def test_admin_error_report_takes_the_permission_to_view_what_the_import_writes(client):
    """The report holds the bad rows' values (numbers, names): viewing imports alone neither links nor serves it."""
    contact_import = contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n98-MALLORY\n"))
    contact_import = contact_import_run(import_id=contact_import.pk)
    errors_url = reverse("admin:contacts_contactimport_errors", args=[contact_import.pk])
    page_url = reverse("admin:contacts_contactimport_change", args=[contact_import.pk])
    client.force_login(UserFactory(is_staff=True, permissions=["contacts.view_contactimport"]))

    page = client.get(page_url).content.decode()
    download = client.get(errors_url)

    assert f'href="{errors_url}"' not in page
    assert page.count("reading it needs the permission to view contacts") == 2  # the panel and the record
    assert download.status_code == 403 and b"98-MALLORY" not in download.getvalue()

    client.force_login(UserFactory(is_staff=True, permissions=["contacts.view_contactimport", "contacts.view_contact"]))
    assert f'href="{errors_url}"' in client.get(page_url).content.decode()
    assert "98-MALLORY" in b"".join(client.get(errors_url).streaming_content).decode("utf-8-sig")


@pytest.mark.parametrize(("perms", "offered"), [([], False), (["contacts.change_contactimport"], True)])
def test_admin_import_list_offers_the_cancel_action_only_to_who_may_cancel(client, perms, offered):
    contact_import_create(file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n"))
    client.force_login(UserFactory(is_staff=True, permissions=["contacts.view_contactimport", *perms]))
    listing = reverse("admin:contacts_contactimport_changelist")

    page = client.get(listing).content.decode()
    response = client.post(
        listing, {"action": "cancel_imports", "_selected_action": [ContactImport.objects.get().pk]}, follow=True
    )

    assert ('value="cancel_imports"' in page) is offered
    assert response.status_code == 200, "never a 403 for an action the page offered"
    assert (ContactImport.objects.get().status == ContactImport.Status.CANCELLED) is offered


def test_admin_import_page_links_each_of_its_tags_to_the_contacts_that_carry_it(staff):
    contact_import = contact_import_create(
        file=SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n"), tags=["imported", "march"]
    )
    imported, march = Tag.objects.get(name="imported"), Tag.objects.get(name="march")

    page = staff.get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk])).content.decode()

    contacts = reverse("admin:contacts_contact_changelist")
    assert f'<a href="{contacts}?tag={imported.pk}">imported</a>, <a href="{contacts}?tag={march.pk}">march</a>' in page


COLUMNS = reverse("admin:contacts_contactimport_columns")


def test_admin_columns_of_a_chosen_file_say_what_each_becomes_with_its_first_value(staff):
    upload = SimpleUploadedFile("c.csv", b"Mobile;Customer;Ville\n9812345678;Asha;Pune\n")

    answer = staff.post(COLUMNS, {"file": upload, "kind": "contacts"}).json()

    assert answer["has_header"] is True
    assert answer["columns"] == [
        {"key": "Mobile", "name": "Mobile", "target": "phone", "attribute": "attributes.mobile", "sample": "9812345678"},
        {"key": "Customer", "name": "Customer", "target": "attributes.customer", "attribute": "attributes.customer",
         "sample": "Asha"},
        {"key": "Ville", "name": "Ville", "target": "attributes.ville", "attribute": "attributes.ville",
         "sample": "Pune"},
    ]  # fmt: skip
    assert answer["fields"][:3] == ["phone", "email", "first_name"]
    assert answer["problem"] == ""


def test_admin_columns_follow_a_mapping_and_say_what_the_upload_would_refuse(staff):
    def columns(content: bytes, name="c.csv", **data):
        return staff.post(COLUMNS, {"file": SimpleUploadedFile(name, content), "kind": "contacts", **data}).json()

    mapped = columns(b"Mobile,Customer\n9812345678,Asha\n", mapping='{"Customer": "first_name"}')
    assert [column["target"] for column in mapped["columns"]] == ["phone", "first_name"]
    headerless = columns(b"9812345678,Asha\n9812345679,Ravi\n")
    assert headerless["has_header"] is False
    assert [(c["key"], c["target"], c["sample"]) for c in headerless["columns"]] == [
        ("column 1", "phone", "9812345678"), ("column 2", "attributes.column_2", "Asha"),
    ]  # fmt: skip
    assert columns(b"Mobile,City\n1,2\n", mapping='{"Mobile": "phone", "City": "phone"}')["errors"] == {
        "mapping": ["Columns 'Mobile' and 'City' are both mapped to phone."]
    }
    assert columns(b"Mobile\n1\n", mapping='{"Mobile": ')["errors"] == {"mapping": ["Enter a valid JSON."]}
    no_phone = columns(b"Contact,Name\n9812345678,Asha\n")  # the columns, to choose the phone from
    assert [(c["name"], c["target"]) for c in no_phone["columns"]] == [
        ("Contact", "attributes.contact"), ("Name", "first_name"),
    ]  # fmt: skip
    assert no_phone["problem"].startswith("No phone column: name one 'phone' or 'mobile'")
    assert columns(b"", name="empty.csv")["errors"] == {"file": ["The file is empty."]}
    assert columns(b"Mobile\n1\n", kind="nonsense")["errors"]["kind"][0].startswith("Unknown kind 'nonsense'")
    stop = staff.post(COLUMNS, {"file": SimpleUploadedFile("stop.txt", b"9812345678\n"), "kind": "unsubscribers"})
    assert [(c["key"], c["target"]) for c in stop.json()["columns"]] == [("address", "address")]


def test_admin_columns_and_upload_name_the_field_of_a_mapping_or_file_they_cannot_read_not_a_500(staff):
    """A mapping key of digits str.isdigit() takes and int() does not ("²"), and a UTF-16 file (its BOM) broken in its
    first bytes, answered the column table and the upload with a 500."""
    csv = b"Mobile,City\n9812345678,Pune\n"
    answer = staff.post(
        COLUMNS, {"file": SimpleUploadedFile("c.csv", csv), "kind": "contacts", "mapping": '{"²": "phone"}'}
    )
    assert answer.json()["errors"] == {"mapping": ["The file has no column '²'; its columns are 'Mobile', 'City'."]}
    broken = b"\xff\xfeM\x00o\x00\x00"  # UTF-16 with a byte missing
    answer = staff.post(COLUMNS, {"file": SimpleUploadedFile("c.csv", broken), "kind": "contacts"})
    assert answer.json()["errors"]["file"][0].startswith("The file could not be read as utf-16: ")
    page = staff.post(reverse("admin:contacts_contactimport_add"), {"file": SimpleUploadedFile("c.csv", broken),
                                                                    "kind": "contacts", "mode": "create_update"})  # fmt: skip
    assert page.status_code == 200 and "The file could not be read as utf-16" in page.content.decode()
    assert not ContactImport.objects.exists()


def test_admin_columns_take_the_permission_to_import_and_a_post(client):
    client.force_login(UserFactory(is_staff=True))
    upload = SimpleUploadedFile("c.csv", b"Mobile\n9812345678\n")
    assert client.post(COLUMNS, {"file": upload, "kind": "contacts"}).status_code == 403
    assert client.get(COLUMNS).status_code in (403, 405)


def test_admin_import_list_offers_to_import_a_file_in_those_words(staff):
    page = staff.get(reverse("admin:contacts_contactimport_changelist")).content.decode()
    assert f'href="{reverse("admin:contacts_contactimport_add")}" class="addlink">Import a file</a>' in page
    assert "Add contact import" not in page


def test_an_imports_page_says_cancel_requested_only_of_one_someone_cancelled(staff):
    """Every finished import showed "Cancel requested:" with a red ✗, read as a failure."""
    done = contact_import_run(
        import_id=contact_import_create(file=SimpleUploadedFile("a.csv", b"phone\n+919812345678\n")).pk
    )
    asked = contact_import_create(file=SimpleUploadedFile("b.csv", b"phone\n+919812345679\n"))
    ContactImport.objects.filter(pk=asked.pk).update(cancel_requested=True)

    def shown(contact_import):
        page = staff.get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk]))
        return "Cancel requested" in page.content.decode()

    assert (shown(done), shown(asked)) == (False, True)


@pytest.mark.parametrize(
    ("kind", "content", "help_shown"),
    [
        ("unsubscribers", b"phone\n9812345678\n", 'Optional: {"Mobile": "address", "Why": "reason", "Notes": ""}.'),
        ("contacts", b"phone\n9812345678\n", 'Optional: {"Mobile": "phone", "City": "attributes.city", "Notes": ""}.'),
    ],
)
def test_the_imports_pages_name_an_import_and_its_kind_as_people_do(staff, kind, content, help_shown):
    """The list was titled "Select contact import to view" (the sidebar said "Contact imports") though it lists opt-out
    and DLT template imports too; an opt-out import's kind showed as "unsubscribers", and its mapping's help spoke of
    contacts' fields whatever the kind: 'Column → field, e.g. {"Mobile": "phone", "Name": "first_name"}.'"""
    contact_import = contact_import_run(
        import_id=contact_import_create(file=SimpleUploadedFile("stop.csv", content), kind=kind).pk
    )

    listing = staff.get(reverse("admin:contacts_contactimport_changelist"))
    page = staff.get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk]))

    listed = listing.content.decode()
    assert listing.context["title"] == "Select import to view"
    assert ">Imports</a>" in listed and "ontact import" not in listed  # the sidebar, the breadcrumbs
    assert re.search(r'<a href="\?kind__exact=unsubscribers"[^>]*>opt-outs</a>', listed)  # the kind's filter
    shown = {"unsubscribers": "opt-outs", "contacts": "contacts"}[kind]
    assert f'<td class="field-kind">{shown}</td>' in listed
    html = page.content.decode()
    assert f'<div class="readonly">{shown}</div>' in html
    assert help_shown in html and "first_name" not in html
    assert "ontact import" not in html


@pytest.mark.parametrize(
    ("listing", "kind"),
    [("contacts_contact", ""), ("contacts_unsubscriber", "unsubscribers"), ("providers_dlttemplate", "dlt_templates")],
)
def test_each_importable_list_offers_to_import_a_file_with_the_upload_page_on_its_kind(staff, listing, kind):
    # Opt-outs and DLT templates had no such button: staff had to find the import page and choose the kind.
    page = staff.get(reverse(f"admin:{listing}_changelist")).content.decode()
    link = reverse("admin:contacts_contactimport_add") + (f"?kind={kind}" if kind else "")
    assert f'<a href="{link}" class="addlink">Import a file</a>' in page
    upload = staff.get(link).content.decode()
    assert re.search(rf'<option value="{kind or "contacts"}" selected>', upload)


def test_the_upload_page_ignores_a_kind_it_does_not_know(staff):
    upload = staff.get(reverse("admin:contacts_contactimport_add") + "?kind=nonsense").content.decode()
    assert '<option value="contacts" selected>' in upload


def test_an_importable_list_has_no_import_button_for_staff_who_may_not_import(client):
    client.force_login(UserFactory(is_staff=True, permissions=["contacts.view_unsubscriber"]))
    page = client.get(reverse("admin:contacts_unsubscriber_changelist")).content.decode()
    assert "Import a file" not in page


def _workbook(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class TestAWorkbookIsUploadedOnce:
    """A workbook's columns are read from the whole file, so the upload page sent it whole to show them and then
    whole again with the form: twice the wait for a 20 MB workbook. The columns view now keeps it, and the form
    gives its token instead of the file."""

    BOOK = staticmethod(lambda: _workbook([("Mobile", "Name"), ("9812345678", "Asha"), ("9812345679", "Ravi")]))

    def _kept(self) -> list[str]:
        folder = os.path.join(settings.MEDIA_ROOT, "imports", "staged")
        return os.listdir(folder) if os.path.isdir(folder) else []

    def test_the_columns_keep_it_and_the_upload_names_it_by_its_token(self, staff, django_capture_on_commit_callbacks):
        book = self.BOOK()
        upload = SimpleUploadedFile("Customers list.xlsx", book)
        answer = staff.post(COLUMNS, {"file": upload, "kind": "contacts", "keep": "1"}).json()
        assert [c["target"] for c in answer["columns"]] == ["phone", "first_name"] and answer["staged"]
        assert len(self._kept()) == 1

        again = staff.post(COLUMNS, {"staged": answer["staged"], "kind": "contacts", "mapping": '{"Name": ""}'})
        assert [c["target"] for c in again.json()["columns"]] == ["phone", ""]

        data = {"staged": answer["staged"], "kind": "contacts", "mode": "create_update", "default_region": "IN"}
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.post(reverse("admin:contacts_contactimport_add"), data)
        contact_import = ContactImport.objects.get()
        assert response["Location"] == reverse("admin:contacts_contactimport_change", args=[contact_import.pk])
        assert contact_import.original_name == "Customers list.xlsx" and contact_import.file_format == "xlsx"
        assert contact_import.file.read() == book
        assert self._kept() == []  # the import has its own copy
        contact_import = contact_import_run(import_id=contact_import.pk)
        assert (contact_import.created, sorted(Contact.objects.values_list("first_name", flat=True))) == (
            2, ["Asha", "Ravi"],
        )  # fmt: skip

    def test_a_csv_or_a_question_without_keep_keeps_nothing(self, staff):
        answer = staff.post(COLUMNS, {"file": SimpleUploadedFile("c.xlsx", self.BOOK()), "kind": "contacts"}).json()
        assert answer["staged"] == "" and self._kept() == []

    def test_a_token_is_its_users_only_and_a_refused_upload_keeps_the_file(self, staff, client):
        upload = SimpleUploadedFile("c.xlsx", self.BOOK())
        token = staff.post(COLUMNS, {"file": upload, "kind": "contacts", "keep": "1"}).json()["staged"]
        refused = staff.post(
            reverse("admin:contacts_contactimport_add"),
            {"staged": token, "kind": "contacts", "mode": "create_update", "default_region": "XX"},
        )
        assert list(refused.context["form"].errors) == ["default_region"]  # no "choose the file again"
        assert f'name="staged" value="{token}"' in refused.content.decode() and len(self._kept()) == 1

        other = UserFactory(is_staff=True, superuser=True)
        client.force_login(other)
        answer = client.post(COLUMNS, {"staged": token, "kind": "contacts"}).json()
        assert answer["errors"] == {
            "file": ["The file chosen earlier is no longer kept (an hour at most): choose it again."]
        }
        page = client.post(reverse("admin:contacts_contactimport_add"), {"staged": token, "kind": "contacts",
                                                                         "mode": "create_update"})  # fmt: skip
        assert page.context["form"].errors["file"] == [
            "The file chosen earlier is no longer kept (an hour at most): choose it again."
        ]
        assert not ContactImport.objects.exists()

    def test_with_the_cache_unreachable_the_columns_are_shown_and_the_file_is_sent_again(self, staff, settings):
        # The token is kept in the cache: with it unreachable, reading a workbook's columns (which needs no cache)
        # was a 500, so the page showed no columns, and the workbook stayed on disk under a token nobody had.
        token = staff.post(
            COLUMNS, {"file": SimpleUploadedFile("c.xlsx", self.BOOK()), "kind": "contacts", "keep": "1"}
        ).json()["staged"]
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
        }
        upload = SimpleUploadedFile("d.xlsx", self.BOOK())
        response = staff.post(COLUMNS, {"file": upload, "kind": "contacts", "keep": "1"})
        assert response.status_code == 200
        answer = response.json()
        assert [c["target"] for c in answer["columns"]] == ["phone", "first_name"]
        assert answer["staged"] == "" and len(self._kept()) == 1  # only the first: the form sends this one again
        # A token given while the cache is unreachable: the file is asked for again, on its field.
        data = {"staged": token, "kind": "contacts", "mode": "create_update", "default_region": "IN"}
        page = staff.post(reverse("admin:contacts_contactimport_add"), data)
        assert page.status_code == 200
        assert page.context["form"].errors["file"] == [
            "The file chosen earlier is no longer kept (an hour at most): choose it again."
        ]
        assert not ContactImport.objects.exists()

    def test_an_upload_with_no_file_nor_token_names_the_file(self, staff):
        page = staff.post(reverse("admin:contacts_contactimport_add"), {"kind": "contacts", "mode": "create_update"})
        assert page.context["form"].errors["file"] == ["This field is required."]

    def test_a_file_kept_over_an_hour_goes_when_another_is_kept(self, staff):
        first = staff.post(
            COLUMNS, {"file": SimpleUploadedFile("a.xlsx", self.BOOK()), "kind": "contacts", "keep": "1"}
        ).json()["staged"]
        [old] = self._kept()
        hour_ago = time.time() - 3601
        os.utime(os.path.join(settings.MEDIA_ROOT, "imports", "staged", old), (hour_ago, hour_ago))
        staff.post(COLUMNS, {"file": SimpleUploadedFile("b.xlsx", self.BOOK()), "kind": "contacts", "keep": "1"})
        assert old not in self._kept() and len(self._kept()) == 1
        assert staff.post(COLUMNS, {"staged": first, "kind": "contacts"}).json()["errors"]["file"]
