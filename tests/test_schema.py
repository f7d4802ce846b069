"""The OpenAPI schema generates without a warning and documents every resource and action."""

import io

import pytest
import yaml

from django.core.management import call_command

from tests.factories import UserFactory

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
