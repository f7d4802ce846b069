"""The campaigns API: CRUD, the action endpoints (501 until the engine lands), messages read-only."""

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

ACTIONS = [("post", "estimate"), ("post", "launch"), ("post", "pause"), ("post", "resume"), ("post", "cancel"),
           ("get", "stats")]  # fmt: skip


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

    @pytest.mark.parametrize(("method", "name"), ACTIONS)
    def test_the_action_endpoints_exist_and_answer_501(self, api, method, name):
        campaign = CampaignFactory()
        response = getattr(api, method)(f"/api/v1/campaigns/{campaign.pk}/{name}/")
        assert response.status_code == 501
        assert response.json()["detail"]

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

    def test_messages_are_read_only_for_now(self, api):
        message = MessageFactory()
        assert api.post("/api/v1/messages/", {}).status_code == 405
        assert api.delete(f"/api/v1/messages/{message.pk}/").status_code == 405

    def test_pages_follow_the_cursor(self, api):
        campaign = CampaignFactory()
        made = [MessageFactory(campaign=campaign).pk for _ in range(5)]
        seen, url = [], "/api/v1/messages/?page_size=2"
        while url:
            page = api.get(url).json()
            seen += [m["id"] for m in page["results"]]
            url = page["next"]
        assert seen == sorted(made, reverse=True)
