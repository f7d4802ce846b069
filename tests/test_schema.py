"""The OpenAPI schema generates without a warning and documents every resource and action."""

import io
import json
import re

import pytest
import yaml

from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import UserFactory, api_client_for

RESOURCES = [
    "contacts", "tags", "segments", "unsubscribers", "provider-accounts", "senders", "templates", "campaigns",
    "messages",
]  # fmt: skip
ACTIONS = [
    "/api/v1/contacts/tag/",
    "/api/v1/contacts/untag/",
    "/api/v1/segments/{id}/contacts/",
    "/api/v1/segments/{id}/count/",
    "/api/v1/templates/{id}/render/",
    "/api/v1/templates/{id}/match/",
    *(f"/api/v1/campaigns/{{id}}/{name}/" for name in ("estimate", "launch", "pause", "resume", "cancel", "stats")),
]


@pytest.fixture(scope="module")
def schema() -> dict:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_every_resource_has_its_list_and_detail_paths(schema):
    for resource in RESOURCES:
        assert f"/api/v1/{resource}/" in schema["paths"]
        assert f"/api/v1/{resource}/{{id}}/" in schema["paths"]


def test_every_action_is_documented(schema):
    missing = [path for path in ACTIONS if path not in schema["paths"]]
    assert not missing


def test_credentials_are_documented_as_write_and_masked_read(schema):
    account = schema["components"]["schemas"]["ProviderAccount"]["properties"]
    assert "masked" in account["credentials"]["description"]
    assert account["webhook_url"]["readOnly"] is True


@pytest.mark.django_db
def test_the_schema_and_swagger_ui_are_served(client):
    client.force_login(UserFactory(superuser=True))
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_schema_and_swagger_ui_need_a_signed_in_user_as_the_api_does(client):
    """Both were open to anyone, while every other path of the API needs a token: the schema now takes a token (or
    the admin's session) and answers a 401 in JSON without; Swagger UI sends a browser to the admin's login."""
    anonymous = client.get("/api/schema/")
    assert (anonymous.status_code, anonymous["WWW-Authenticate"]) == (401, "Token")
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    docs = client.get("/api/docs/")
    assert (docs.status_code, docs["Location"]) == (302, "/admin/login/?next=/api/docs/")

    token = api_client_for(UserFactory())  # no model permission: the schema shows no data
    assert token.get("/api/schema/", {"format": "json"}).json()["info"]["title"] == "Herald API"


@pytest.mark.django_db
def test_swagger_ui_is_served_by_herald_itself_not_a_cdn(client):
    """A self-hosted Herald often cannot reach the internet: /api/docs/ was blank, its scripts on cdn.jsdelivr.net."""
    from django.contrib.staticfiles import finders

    client.force_login(UserFactory(superuser=True))
    html = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets and not [url for url in assets if "://" in url], assets
    for url in assets:
        assert finders.find(url.removeprefix(settings.STATIC_URL).removeprefix("/" + settings.STATIC_URL)), url


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                yield path, method.upper(), operation


def _is_list(path: str, method: str) -> bool:
    return method == "GET" and path in {f"/api/v1/{resource}/" for resource in [*RESOURCES, "imports"]}


def test_every_operation_documents_the_errors_it_can_answer(schema):
    missing = []
    for path, method, operation in _operations(schema):
        expected = set()
        if method in ("POST", "PUT", "PATCH") or _is_list(path, method):  # a bad body; a bad filter or ordering
            expected.add("400")
        if path != "/api/v1/auth/token/":
            expected |= {"401", "403"}
        if "{id}" in path or _is_list(path, method):  # no such object; a page past the end
            expected.add("404")
        if absent := expected - set(operation["responses"]):
            missing.append(f"{method} {path}: {sorted(absent)}")
    assert not missing


def test_an_answer_s_fields_are_all_required_as_every_answer_has_them(schema):
    """A response component listed as required only what a request must give: a client generated from the schema
    typed a contact's email or tags, or a campaign's text, as possibly absent, though every answer carries them."""
    components = schema["components"]["schemas"]
    assert {"email", "tags", "attributes"} <= set(components["Contact"]["required"])
    assert "region" not in components["Contact"]["properties"]  # write-only: in ContactRequest only
    for name, component in components.items():
        if name.endswith("Request") or "properties" not in component:
            continue
        assert sorted(component.get("required", [])) == sorted(component["properties"]), name
    # What a request must give is unchanged: a PATCH gives what it changes, a POST of a contact its phone.
    assert "required" not in components["PatchedContactRequest"]
    assert components["ContactRequest"]["required"] == ["phone"]


def test_a_400_is_documented_as_messages_by_field(schema):
    field_errors = schema["components"]["schemas"]["FieldErrors"]
    assert {"type": "array", "items": {"type": "string"}} in field_errors["additionalProperties"]["oneOf"]
    body = schema["paths"]["/api/v1/contacts/"]["post"]["responses"]["400"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/FieldErrors"}


def test_a_delete_refused_while_in_use_documents_its_409(schema):
    for resource in ("tags", "segments", "senders", "templates", "provider-accounts"):
        assert "409" in schema["paths"][f"/api/v1/{resource}/{{id}}/"]["delete"]["responses"], resource
    assert "400" in schema["paths"]["/api/v1/campaigns/{id}/"]["delete"]["responses"]


def test_the_token_endpoint_documents_its_refusals(schema):
    responses = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert {"200", "400", "429"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert "401" not in responses


@pytest.mark.django_db
def test_the_api_answers_as_the_schema_says(schema):
    """Each resource read, written and refused: every answer's status is documented and its body validates."""
    from campaigns.models import Campaign
    from tests.factories import (
        CampaignFactory,
        ContactFactory,
        DltTemplateFactory,
        MessageFactory,
        ProviderAccountFactory,
        SegmentFactory,
        SenderFactory,
        TagFactory,
        UnsubscriberFactory,
        api_client_for,
    )
    from tests.openapi import answer_problems

    account = ProviderAccountFactory(kind="octopush")
    sender = SenderFactory(account=account, country="FR", service="")
    template = DltTemplateFactory(account=account, senders=[sender])
    tag = TagFactory(name="vip")
    contact = ContactFactory(tags=[tag])
    ContactFactory(email="")
    SegmentFactory(positive_tags=[tag])
    UnsubscriberFactory()
    campaign = CampaignFactory(account=account, sender=sender, tags=[tag])
    sending = CampaignFactory(account=account, sender=sender, state=Campaign.State.SENDING)
    message = MessageFactory(campaign=campaign, contact=contact)
    api = api_client_for(UserFactory(superuser=True))
    nobody = api_client_for(UserFactory())

    calls = [(api, "GET", f"/api/v1/{resource}/", None) for resource in [*RESOURCES, "imports"]]
    calls += [
        (api, "GET", f"/api/v1/contacts/{contact.pk}/", None),
        (api, "GET", f"/api/v1/messages/{message.pk}/", None),
        (api, "GET", f"/api/v1/campaigns/{campaign.pk}/", None),
        (api, "POST", f"/api/v1/campaigns/{campaign.pk}/estimate/", None),
        (api, "GET", f"/api/v1/campaigns/{campaign.pk}/stats/", None),
        (api, "POST", f"/api/v1/templates/{template.pk}/render/", {"variables": {"var1": "4711"}}),
        (api, "POST", "/api/v1/contacts/tag/", {"contacts": [contact.pk], "tags": ["new"]}),
        (api, "POST", "/api/v1/tags/", {"name": "Fresh"}),
        (api, "POST", "/api/v1/contacts/", {"phone": "+919812345678", "tags": ["vip"]}),
        # refusals
        (api, "POST", "/api/v1/contacts/", {"phone": "not a number"}),
        (api, "POST", "/api/v1/contacts/", [1, 2]),
        (api, "POST", "/api/v1/contacts/", "{not json"),
        (api, "POST", "/api/v1/imports/", {"file": "a.csv"}),  # a file goes as multipart: 415
        (api, "POST", "/api/v1/campaigns/", {"name": "x", "account": "abc"}),
        (api, "POST", "/api/v1/contacts/tag/", {"contacts": [contact.pk, "a"], "tags": ["vip"]}),  # by position
        (api, "POST", f"/api/v1/campaigns/{sending.pk}/launch/", None),
        (api, "DELETE", f"/api/v1/campaigns/{sending.pk}/", None),
        (api, "DELETE", f"/api/v1/senders/{sender.pk}/", None),
        (api, "GET", "/api/v1/contacts/?is_active=maybe", None),
        (api, "GET", "/api/v1/messages/?status=lost", None),
        (api, "GET", "/api/v1/campaigns/?ordering=-nothing", None),
        (api, "GET", "/api/v1/contacts/?page=99", None),
        (api, "GET", "/api/v1/contacts/abc/", None),
        (api, "GET", "/api/v1/messages/0/", None),
        (nobody, "GET", "/api/v1/contacts/", None),
        (APIClient(), "GET", "/api/v1/campaigns/", None),
        (APIClient(), "POST", "/api/v1/auth/token/", {"username": "nobody", "password": "wrong"}),
    ]
    problems = []
    importer = api_client_for(UserFactory(permissions=["contacts.add_contactimport", "contacts.add_contact"]))
    for client in (importer, nobody):  # refused by field (create_update changes contacts), or at all
        response = client.post("/api/v1/imports/", {"file": io.BytesIO(b"phone\n+919812345678\n")}, format="multipart")
        assert response.status_code == 403
        problems += answer_problems(schema, "POST", "/api/v1/imports/", response)
    for client, method, path, body in calls:
        data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        response = client.generic(method, path, data, "application/json")
        assert response.status_code < 500, (method, path)
        problems += answer_problems(schema, method, path, response)
    assert not problems


def test_a_transactional_send_documents_the_headers_it_answers(schema):
    headers = schema["paths"]["/api/v1/messages/"]["post"]["responses"]["202"]["headers"]
    assert {"Location", "Idempotent-Replayed"} <= set(headers)


def test_a_generated_client_knows_the_bounds_of_pages_and_keys(schema):
    """What the server refuses or assumes, the schema says as numbers, not only in prose: a page size from 1 to 1000
    (100 messages, 50 of anything else, unless given), an Idempotency-Key up to 255 characters; and its examples of
    links are URLs (DRF's cursor example ended in a stray quote)."""
    sizes = {
        path: next(p["schema"] for p in ops["get"]["parameters"] if p["name"] == "page_size")
        for path, ops in schema["paths"].items()
        if path in ("/api/v1/messages/", "/api/v1/contacts/")
    }
    assert sizes == {
        "/api/v1/messages/": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        "/api/v1/contacts/": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
    }
    (key,) = [p for p in schema["paths"]["/api/v1/messages/"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["schema"] == {"type": "string", "maxLength": 255}
    links = schema["components"]["schemas"]["PaginatedMessageList"]["properties"]
    assert [links[name]["example"].endswith('"') for name in ("next", "previous")] == [False, False]
