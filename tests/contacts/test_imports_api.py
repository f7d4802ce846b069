"""The imports API: multipart upload, detail with counters, error report, cancel; end to end with a real worker."""

import csv
import io
import json
import os
import time

import pytest

from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from contacts.imports import contact_import_run
from contacts.models import Contact, ContactImport, Tag
from tests.factories import ProviderAccountFactory, SenderFactory, TagFactory

CONTENT = "Mobile,Name,City\n9812345678,Asha,Pune\nnope,Bad,\n9812345679,Ravi,Delhi\n"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


def client_with(*codenames) -> APIClient:
    """A client of a user with these permissions: codenames of contacts, or "app_label.codename"."""
    user = User.objects.create_user(f"user{User.objects.count()}")
    labelled = [name if "." in name else f"contacts.{name}" for name in codenames]
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in={name.split(".")[0] for name in labelled},
            codename__in=[name.split(".")[1] for name in labelled],
        )
    )
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(db, media) -> APIClient:
    return client_with(
        "add_contactimport", "view_contactimport", "change_contactimport", "add_contact", "change_contact",
        "view_contact", "add_unsubscriber",
    )  # fmt: skip


def upload(api, content=CONTENT, name="contacts.csv", **data):
    return api.post(
        "/api/v1/imports/", {"file": SimpleUploadedFile(name, content.encode()), **data}, format="multipart"
    )


def test_import_upload_answers_201_with_the_waiting_import(api):
    response = upload(api, tags=["diwali", "vip"], mapping='{"Name": "last_name"}', default_region="in")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["kind"] == "contacts" and body["percent"] is None
    assert body["tags"] == ["diwali", "vip"] and body["default_region"] == "IN"
    assert body["mapping"] == {"Mobile": "phone", "Name": "last_name", "City": "attributes.city"}
    assert body["error_report_url"] is None and body["error_report_status"] == "none" and body["created_by"] == "user0"


def test_an_opt_out_import_for_a_tag_or_sender_nobody_has_says_it_suppresses_nothing(api):
    """`{"scope": "tag", "value": "newsleter"}` imported a DND list that suppressed nobody, without a word."""
    TagFactory(name="newsletter")
    SenderFactory(name="HERALD")
    numbers = "+919876543210\n"

    def warnings(scope, value):
        response = upload(
            api, numbers, "dnd.txt", kind="unsubscribers", options=json.dumps({"scope": scope, "value": value})
        )
        assert response.status_code == 201, response.json()
        assert api.get(f"/api/v1/imports/{response.json()['id']}/").json()["warnings"] == response.json()["warnings"]
        return response.json()["warnings"]

    said = (
        "No {} is named {!r}: the opt-outs this import records for it (every row without a scope of its own) "
        "suppress nothing until one is. Check the spelling."
    )
    assert warnings("tag", "newsleter") == [said.format("tag", "newsleter")]
    assert warnings("sender", "HERLAD") == [said.format("sender", "HERLAD")]
    assert warnings("tag", "Newsletter") == warnings("sender", "herald") == warnings("all", "") == []
    assert upload(api).json()["warnings"] == []


def test_import_upload_takes_tags_separated_by_commas_as_the_admin_does(api):
    response = upload(api, tags="diwali, Vip")

    assert response.status_code == 201, response.json()
    assert response.json()["tags"] == ["Vip", "diwali"]


def test_import_upload_spooled_to_disk_is_read_the_same(api, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # as a large upload: Django keeps it in a temporary file

    response = upload(api)
    contact_import_run(import_id=response.json()["id"])

    assert response.status_code == 201, response.json()
    assert ContactImport.objects.get().created == 2


def test_import_upload_takes_empty_mapping_and_options_fields_as_not_given(api):
    """An HTML form, or `curl -F mapping=`, sends an empty field: no mapping, not a JSON error."""
    response = upload(api, mapping="", options=" ")

    assert response.status_code == 201, response.json()
    assert response.json()["mapping"] == {"Mobile": "phone", "Name": "first_name", "City": "attributes.city"}


def test_import_detail_shows_counters_and_serves_the_error_report(api):
    import_id = upload(api).json()["id"]
    contact_import_run(import_id=import_id)

    body = api.get(f"/api/v1/imports/{import_id}/").json()
    report = api.get(f"/api/v1/imports/{import_id}/errors/")

    assert body["status"] == "completed" and body["percent"] == 100
    assert {k: body[k] for k in ("rows_total", "rows_read", "created", "updated", "unchanged", "invalid", "duplicates")} == {
        "rows_total": 3, "rows_read": 3, "created": 2, "updated": 0, "unchanged": 0, "invalid": 1, "duplicates": 0,
    }  # fmt: skip
    assert body["error_report_url"] == f"http://testserver/api/v1/imports/{import_id}/errors/"
    assert body["error_report_status"] == "available"
    assert report.status_code == 200 and report["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows == [
        ["row", "column", "value", "reason"],
        ["3", "Mobile", "nope", "not a valid phone number (E.164, or national for IN)"],
    ]


def test_import_error_report_takes_the_permission_to_view_what_the_import_writes(api):
    """The report holds the bad rows' values: a client that may view imports but not contacts gets neither its URL
    nor the file, as in the admin."""
    import_id = upload(api).json()["id"]
    contact_import_run(import_id=import_id)
    viewer = client_with("view_contactimport")

    body = viewer.get(f"/api/v1/imports/{import_id}/").json()
    response = viewer.get(f"/api/v1/imports/{import_id}/errors/")

    assert (body["error_report_url"], body["error_report_status"]) == (None, "available")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "The error report shows the file's bad rows as they were written: reading it needs the permission "
        "to view contacts."
    }
    assert (
        client_with("view_contactimport", "view_contact").get(f"/api/v1/imports/{import_id}/errors/").status_code == 200
    )


def test_import_errors_is_404_without_a_report(api):
    import_id = upload(api, "Mobile\n9812345678\n").json()["id"]

    response = api.get(f"/api/v1/imports/{import_id}/errors/")

    assert response.status_code == 404 and "no error report" in response.json()["detail"]


def test_import_errors_is_404_when_the_reports_file_is_gone(api):
    import_id = upload(api).json()["id"]
    os.remove(contact_import_run(import_id=import_id).error_report.path)  # media cleaned, or not shared

    response = api.get(f"/api/v1/imports/{import_id}/errors/")
    body = api.get(f"/api/v1/imports/{import_id}/").json()
    listed = api.get("/api/v1/imports/").json()["results"][0]

    assert (body["error_report_url"], body["error_report_status"]) == (None, "removed"), "no link to a 404"
    assert (listed["error_report_url"], listed["error_report_status"]) == (None, "removed")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "The error report of this import is no longer available: its file is gone from the server's "
        "media storage."
    }


def test_import_cancel_of_a_waiting_import(api):
    import_id = upload(api).json()["id"]

    response = api.post(f"/api/v1/imports/{import_id}/cancel/")
    again = api.post(f"/api/v1/imports/{import_id}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert again.status_code == 400 and "too late to cancel" in again.json()["status"][0]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"file": SimpleUploadedFile("c.csv", b"Name\nAsha\n")}, "mapping"),
        ({"file": SimpleUploadedFile("c.doc", b"x")}, "file"),
        ({"file": SimpleUploadedFile("c.csv", b"Mobile\n1\n"), "kind": "orders"}, "kind"),
        ({"file": SimpleUploadedFile("c.csv", b"Mobile\n1\n"), "mapping": "{not json"}, "mapping"),
        ({"file": SimpleUploadedFile("c.csv", b"Mobile\n1\n"), "mapping": "[" * 100_000 + "]" * 100_000}, "mapping"),
        (
            {"file": SimpleUploadedFile("c.csv", b"Mobile,Note\n1,x\n"), "mapping": '{"Note": "attributes.a\\u0000"}'},
            "mapping",
        ),
        (
            {
                "file": SimpleUploadedFile("c.csv", b"Mobile\n1\n"),
                "kind": "unsubscribers",
                "options": '{"reason": "a\\u0000"}',
            },
            "options",
        ),
        ({"file": SimpleUploadedFile("u.txt", b"+919876543210\n"), "kind": "unsubscribers", "tags": ["vip"]}, "tags"),
        # A JSON type the option does not take: a list was kept as its Python repr, "['moved']".
        (
            {
                "file": SimpleUploadedFile("u.txt", b"+919876543210\n"),
                "kind": "unsubscribers",
                "options": '{"reason": ["moved"]}',
            },
            "options",
        ),
        ({}, "file"),
    ],
)
def test_import_upload_refuses_bad_input_naming_the_field(api, data, field):
    response = api.post("/api/v1/imports/", data, format="multipart")

    assert response.status_code == 400
    assert field in response.json()
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(
    ("scope", "said"),
    [
        ("tag", "A tag scope needs a value (which tag): the file has no value column."),
        ("service", "A service scope needs a value (the purpose or service code): the file has no value column."),
    ],
)
def test_an_opt_out_imports_scope_without_a_value_is_told_in_the_scope_the_client_sent(api, scope, said):
    """It was told in the admin's option labels: "Scope 'one tag' needs a value (which tag): …" to a client that sent
    "tag", and "Scope 'one service (purpose)' needs a value (which service (purpose)): …"."""
    response = upload(api, "+919876543210\n", "dnd.txt", kind="unsubscribers", options=json.dumps({"scope": scope}))

    assert response.status_code == 400
    assert response.json() == {"options": [said]}
    assert not ContactImport.objects.exists()


def test_a_dlt_import_for_an_account_id_that_is_not_a_whole_number_is_refused(db, media):
    """int() read 1.5 as 1: the templates went to another account than the one meant, instead of a 400."""
    account = ProviderAccountFactory()
    api = client_with(
        "add_contactimport", "providers.add_dlttemplate", "providers.change_dlttemplate", "providers.view_dlttemplate"
    )
    content = b"template_id,type,body\n1107000000000000001,T,Hi {#var#}\n"
    for wrong in (f"{account.pk}.5", "true"):
        response = api.post(
            "/api/v1/imports/",
            {"file": SimpleUploadedFile("t.csv", content), "kind": "dlt_templates",
             "options": f'{{"account_id": {wrong}}}'},
            format="multipart",
        )  # fmt: skip
        assert response.status_code == 400, response.content
        assert response.json() == {"options": ["account_id must be the id of a provider account."]}
    assert not ContactImport.objects.exists()


def test_import_list_filters_by_status(api):
    upload(api)
    cancelled = upload(api).json()["id"]
    api.post(f"/api/v1/imports/{cancelled}/cancel/")

    response = api.get("/api/v1/imports/", {"status": "cancelled"})

    assert [item["id"] for item in response.json()["results"]] == [cancelled]


def test_import_api_needs_the_model_permissions(db, media):
    viewer = client_with("view_contactimport")
    uploader = client_with("view_contactimport", "add_contactimport", "add_contact", "change_contact")

    assert upload(viewer).status_code == 403
    assert viewer.get("/api/v1/imports/").status_code == 200
    assert client_with().get("/api/v1/imports/").status_code == 403
    import_id = upload(uploader).json()["id"]
    assert uploader.post(f"/api/v1/imports/{import_id}/cancel/").status_code == 403  # cancelling is a change


UNSUBSCRIBERS = "phone\n+919812345679\n"
DLT = "Template ID,Template Type,Header,Template Content\n1107161234567890123,T,HERALD,Your OTP is {#var#}.\n"
NEEDS_CHANGE = "You need permission to change contacts to import in 'create and update' mode."


@pytest.mark.parametrize(
    ("perms", "data", "refused"),
    [
        ([], {"mode": "create_only"}, {"kind": ["You need permission to add contacts to import them."]}),
        (["add_contact"], {"mode": "create_update"}, {"mode": [NEEDS_CHANGE]}),
        (["change_contact"], {}, {"kind": ["You need permission to add contacts to import them."]}),
        (
            ["add_contact"],
            {"mode": "create_only", "tags": ["vip"]},
            {
                "tags": [
                    "You need permission to change contacts to tag them: the import's tags go to the file's "
                    "contacts that exist already too."
                ]
            },
        ),  # fmt: skip
        (
            ["change_unsubscriber"],
            {"kind": "unsubscribers", "content": UNSUBSCRIBERS},
            {"kind": ["You need permission to add opt-outs to import them."]},
        ),
        (
            ["providers.add_dlttemplate"],
            {"kind": "dlt_templates", "mode": "create_only", "content": DLT},
            {
                "kind": [
                    "You need permission to change DLT templates to import them: the file's headers are linked "
                    "to its templates that exist already, in either mode."
                ]
            },
        ),  # fmt: skip
    ],
)
def test_import_upload_is_refused_without_the_permissions_of_what_it_writes(db, media, perms, data, refused):
    api = client_with("add_contactimport", "view_contactimport", *perms)

    response = upload(api, **data)

    assert (response.status_code, response.json()) == (403, refused)
    assert not ContactImport.objects.exists() and not Tag.objects.exists()


@pytest.mark.parametrize(
    ("perms", "data"),
    [
        (["add_contact"], {"mode": "create_only"}),
        (["add_contact", "change_contact"], {"mode": "create_update", "tags": ["vip"]}),
        (["add_unsubscriber"], {"kind": "unsubscribers", "mode": "create_update", "content": UNSUBSCRIBERS}),
        (
            ["providers.add_dlttemplate", "providers.change_dlttemplate"],
            {"kind": "dlt_templates", "mode": "create_only", "content": DLT, "account": True},
        ),
    ],
)
def test_import_upload_is_accepted_with_the_permissions_of_what_it_writes(db, media, perms, data):
    api = client_with("add_contactimport", "view_contactimport", *perms)
    data = dict(data)
    if data.pop("account", False):  # a DLT import names the account whose senders its headers are
        data["options"] = f'{{"account_id": {ProviderAccountFactory().pk}}}'

    response = upload(api, **data)

    assert response.status_code == 201, response.json()
    assert ContactImport.objects.get().kind == data.get("kind", "contacts")


def test_import_upload_in_create_only_mode_adds_without_changing_existing_contacts(db, media):
    Contact.objects.create(phone="+919812345678", first_name="Asha")
    api = client_with("add_contactimport", "view_contactimport", "add_contact")

    refused = upload(api, "phone,first_name\n+919812345678,Mallory\n+919812345679,Ravi\n")
    accepted = upload(api, "phone,first_name\n+919812345678,Mallory\n+919812345679,Ravi\n", mode="create_only")
    contact_import_run(import_id=accepted.json()["id"])

    assert refused.status_code == 403 and refused.json() == {"mode": [NEEDS_CHANGE]}
    assert dict(Contact.objects.values_list("phone", "first_name")) == {
        "+919812345678": "Asha",
        "+919812345679": "Ravi",
    }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_import_upload_runs_to_completion_on_a_real_worker(celery_worker):  # both store uploads in session_media
    api = client_with("add_contactimport", "view_contactimport", "add_contact", "change_contact")

    import_id = upload(api, tags=["worker"]).json()["id"]
    deadline = time.monotonic() + 30
    while (body := api.get(f"/api/v1/imports/{import_id}/").json())["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, body
        time.sleep(0.2)

    assert body["status"] == "completed", body["error_message"]
    assert (body["created"], body["invalid"]) == (2, 1)
    assert set(Tag.objects.get(name="worker").contacts.values_list("phone", flat=True)) == set(
        Contact.objects.values_list("phone", flat=True)
    )
