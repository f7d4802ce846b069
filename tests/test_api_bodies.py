"""An operation whose schema takes no body (`@extend_schema(request=None)`: launch, pause, cancel, duplicate,
test-connection, sync…) refuses one with fields, naming them, before it does anything: `{"dry_run": true}` sent to
`launch/` launched the campaign for real."""

import pytest

from campaigns.models import Campaign
from contacts.models import Contact
from tests.factories import CampaignFactory, ProviderAccountFactory, UserFactory, api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return api_client_for(UserFactory(superuser=True))


def test_a_launch_with_a_body_is_refused_naming_its_fields_and_launches_nothing(api):
    campaign = CampaignFactory(state="draft")

    refused = api.post(f"/api/v1/campaigns/{campaign.pk}/launch/", {"dry_run": True}, format="json")

    assert refused.status_code == 400, refused.content
    assert refused.json() == {"dry_run": ["Unknown field; this operation takes no body."]}
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


@pytest.mark.parametrize("action", ["estimate", "send-now", "unschedule", "pause", "resume", "cancel", "duplicate"])
def test_every_campaign_action_refuses_a_body(api, action):
    campaign = CampaignFactory(state="draft")
    answer = api.post(f"/api/v1/campaigns/{campaign.pk}/{action}/", {"name": "copy name"}, format="json")
    assert (answer.status_code, answer.json()) == (400, {"name": ["Unknown field; this operation takes no body."]})
    assert Campaign.objects.count() == 1, "no copy made"


def test_a_list_as_the_body_is_refused_and_an_empty_body_or_object_is_taken(api):
    account = ProviderAccountFactory()
    url = f"/api/v1/provider-accounts/{account.pk}/sync/"
    listed = api.post(url, [1], format="json")
    assert (listed.status_code, listed.json()) == (400, {"non_field_errors": ["This operation takes no body."]})
    assert api.post(url, {"full": True}, format="json").json() == {
        "full": ["Unknown field; this operation takes no body."]
    }
    campaign = CampaignFactory(state="draft")
    assert api.post(f"/api/v1/campaigns/{campaign.pk}/duplicate/").status_code == 201, "no body at all"
    assert api.post(f"/api/v1/campaigns/{campaign.pk}/duplicate/", {}, format="json").status_code == 201


def test_the_operations_that_take_a_body_still_take_it(api):
    campaign = CampaignFactory(state="draft")
    answer = api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"name": "Renamed"}, format="json")
    assert answer.status_code == 200, answer.content
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_a_form_body_is_refused_as_no_json_instead_of_making_the_contact_inactive(api, content_type):
    """DRF read a form without `is_active` as a checkbox left unticked: the contact was made inactive (201), and no
    campaign ever sent to it. Bodies are JSON (docs/API.md); only an import's upload is multipart."""
    body = "phone=%2B33612345679" if content_type.startswith("application") else "--x--\r\n"
    answer = api.generic("POST", "/api/v1/contacts/", body, content_type=content_type)
    assert answer.status_code == 415, answer.content
    assert "Unsupported media type" in answer.json()["detail"]
    assert not Contact.objects.exists()
    assert api.post("/api/v1/contacts/", {"phone": "+33612345679"}).json()["is_active"] is True
