"""The campaigns API: CRUD, the action endpoints, messages (read, and transactional sends)."""

import pytest

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
    UserFactory,
    api_client_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(superuser=True)


@pytest.fixture
def api(user):
    return api_client_for(user)


class TestCampaigns:
    def test_create_with_an_audience(self, api, user):
        account = ProviderAccountFactory()
        sender = SenderFactory(account=account)
        template = DltTemplateFactory(account=account, senders=[sender])
        segment = SegmentFactory()
        TagFactory(name="vip")
        TagFactory(name="staff")
        contacts = [ContactFactory(), ContactFactory()]
        response = api.post(
            "/api/v1/campaigns/",
            {
                "name": "OTP blast",
                "account": account.pk,
                "sender": sender.pk,
                "template": template.pk,
                "text": "Your OTP is {{otp}}. Valid for 10 minutes. - Herald",
                "purpose": "transactional",
                "tags": ["vip"],
                "tags_operator": "all",
                "segments": [segment.pk],
                "excluded_tags": ["staff"],
                "contacts": [c.pk for c in contacts],
            },
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["state"], body["tags"], body["excluded_tags"]) == ("draft", ["vip"], ["staff"])
        assert sorted(body["contacts"]) == sorted(c.pk for c in contacts)
        assert Campaign.objects.get().created_by == user

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "X", "account": 999999}, "account"),
            ({"name": "X", "contacts": [999999]}, "contacts"),
            ({"name": "X", "tags": ["ghost"]}, "tags"),
            ({"name": "X", "purpose": "spam"}, "purpose"),
            ({"name": "X", "channel": "viber"}, "channel"),
        ],
    )
    def test_bad_input_is_400_naming_the_field(self, api, payload, field):
        payload.setdefault("account", ProviderAccountFactory().pk)
        response = api.post("/api/v1/campaigns/", payload)
        assert response.status_code == 400
        assert field in response.json()

    def test_a_sender_of_another_account_is_refused(self, api):
        response = api.post(
            "/api/v1/campaigns/", {"name": "X", "account": ProviderAccountFactory().pk, "sender": SenderFactory().pk}
        )
        assert response.status_code == 400
        assert "sender" in response.json()

    def test_retrieve_update_list_filter_and_delete(self, api):
        campaign = CampaignFactory(purpose="promotional")
        CampaignFactory(state="completed")
        url = f"/api/v1/campaigns/{campaign.pk}/"
        assert api.get(url).json()["name"] == campaign.name
        response = api.patch(url, {"name": "Renamed", "state": "completed"})
        assert response.status_code == 200
        assert (response.json()["name"], response.json()["state"]) == ("Renamed", "draft")  # state is read-only
        assert api.get("/api/v1/campaigns/?state=draft").json()["count"] == 1
        assert api.get("/api/v1/campaigns/?purpose=promotional").json()["count"] == 1
        assert api.get(f"/api/v1/campaigns/?account={campaign.account_id}").json()["count"] == 1
        assert api.get("/api/v1/campaigns/?search=Renamed").json()["count"] == 1
        assert api.delete(url).status_code == 204

    def test_a_running_campaign_is_neither_edited_nor_deleted(self, api):
        campaign = CampaignFactory(state="sending")
        url = f"/api/v1/campaigns/{campaign.pk}/"
        assert "state" in api.patch(url, {"name": "New"}).json()
        assert api.delete(url).status_code == 400
        assert Campaign.objects.filter(pk=campaign.pk).exists()

    def test_the_list_does_not_query_per_campaign(self, api, django_assert_max_num_queries):
        tags = [TagFactory(), TagFactory()]
        CampaignFactory(tags=tags, contacts=[ContactFactory()])
        with django_assert_max_num_queries(12) as few:
            api.get("/api/v1/campaigns/")
        for _ in range(10):
            CampaignFactory(tags=tags, contacts=[ContactFactory()])
        with django_assert_max_num_queries(len(few.captured_queries)):
            api.get("/api/v1/campaigns/")

    def test_estimate_reports_problems_by_field_without_changing_the_campaign(self, api):
        campaign = CampaignFactory(text="")
        body = api.post(f"/api/v1/campaigns/{campaign.pk}/estimate/").json()
        assert body["ok"] is False
        assert {p["field"] for p in body["problems"]} >= {"text", "tags"}
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.DRAFT

    def test_launch_refuses_with_a_field_named_error(self, api):
        campaign = CampaignFactory(text="")
        response = api.post(f"/api/v1/campaigns/{campaign.pk}/launch/")
        assert response.status_code == 400
        assert "text" in response.json()

    @pytest.mark.parametrize("name", ["pause", "resume"])
    def test_a_draft_cannot_be_paused_or_resumed(self, api, name):
        campaign = CampaignFactory()
        response = api.post(f"/api/v1/campaigns/{campaign.pk}/{name}/")
        assert response.status_code == 400
        assert "draft" in response.json()["state"][0]

    def test_cancel_a_draft(self, api):
        campaign = CampaignFactory()
        body = api.post(f"/api/v1/campaigns/{campaign.pk}/cancel/").json()
        assert body["state"] == "cancelled"

    def test_stats_of_a_draft(self, api):
        campaign = CampaignFactory()
        body = api.get(f"/api/v1/campaigns/{campaign.pk}/stats/").json()
        assert (body["state"], body["total"], body["progress"]) == ("draft", 0, 0.0)

    def test_actions_need_the_change_permission(self):
        campaign = CampaignFactory()
        viewer = api_client_for(UserFactory(permissions=["campaigns.view_campaign", "campaigns.add_campaign"]))
        assert viewer.post(f"/api/v1/campaigns/{campaign.pk}/launch/").status_code == 403


class TestMessages:
    def test_list_filter_and_retrieve(self, api):
        campaign = CampaignFactory()
        first = MessageFactory(campaign=campaign, status="delivered")
        MessageFactory(campaign=campaign, status="failed")
        MessageFactory()
        page = api.get(f"/api/v1/messages/?campaign={campaign.pk}").json()
        assert len(page["results"]) == 2
        assert "next" in page and "count" not in page  # cursor pages: no COUNT(*) over millions of rows
        assert [m["id"] for m in api.get("/api/v1/messages/?status=delivered").json()["results"]] == [first.pk]
        assert len(api.get("/api/v1/messages/?status=delivered&status=failed").json()["results"]) == 2
        body = api.get(f"/api/v1/messages/{first.pk}/").json()
        assert (body["address"], body["status"]) == (first.address, "delivered")

    def test_messages_cannot_be_changed_or_deleted(self, api):
        message = MessageFactory()
        assert api.delete(f"/api/v1/messages/{message.pk}/").status_code == 405
        assert api.patch(f"/api/v1/messages/{message.pk}/", {"status": "delivered"}).status_code == 405

    def test_a_transactional_send_with_a_bad_number_names_the_field(self, api):
        account = ProviderAccountFactory()
        response = api.post("/api/v1/messages/", {"account": account.pk, "to": "12", "text": "Your OTP is 1234"})
        assert response.status_code == 400
        assert "to" in response.json()

    def test_pages_follow_the_cursor(self, api):
        campaign = CampaignFactory()
        made = [MessageFactory(campaign=campaign).pk for _ in range(5)]
        seen, url = [], "/api/v1/messages/?page_size=2"
        while url:
            page = api.get(url).json()
            seen += [m["id"] for m in page["results"]]
            url = page["next"]
        assert seen == sorted(made, reverse=True)
