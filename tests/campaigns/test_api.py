"""The campaigns API: CRUD, the action endpoints, messages (read, and transactional sends)."""

import base64
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest

from django.utils import timezone

from campaigns.models import Campaign, Frame, Message
from campaigns.services import message_send_transactional_once
from campaigns.services.editing import UNSCHEDULED_REASON
from providers.models import DltTemplate, Sender
from tests.concurrency import second_waits_on_first
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
    UserFactory,
    api_client_for,
)

pytestmark = pytest.mark.django_db


def _last_sunday(year: int, month: int) -> date:
    """Europe's clocks change on the last Sunday of March and of October."""
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


# Next year's: a send time must still be to come (one past is refused), whenever the tests run.
YEAR = timezone.now().year + 1
SPRING, AUTUMN = _last_sunday(YEAR, 3), _last_sunday(YEAR, 10)  # the nights Paris's clocks skip and repeat 02:00-03:00


def free_text_account(**kwargs):
    """An account that takes a free text to an Indian number: on MOBtexting, Indian traffic needs a DLT template."""
    return ProviderAccountFactory(kind="octopush", **kwargs)


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

    def test_a_frame_size_of_0_is_a_400_naming_it_and_null_is_the_accounts(self, api):
        """0 was taken as the account's frame size, as null is: refused now, as the composer refuses it."""
        account = ProviderAccountFactory()
        response = api.post("/api/v1/campaigns/", {"name": "X", "account": account.pk, "frame_size": 0}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "frame_size": [
                "Give 1 or more recipients per request, or leave it empty (null) for the account's frame size."
            ]
        }
        assert not Campaign.objects.exists()
        for given in (None, 1):
            response = api.post(
                "/api/v1/campaigns/", {"name": "X", "account": account.pk, "frame_size": given}, format="json"
            )
            assert (response.status_code, response.json()["frame_size"]) == (201, given)
        response = api.patch(f"/api/v1/campaigns/{response.json()['id']}/", {"frame_size": 0}, format="json")
        assert list(response.json()) == ["frame_size"]

    def test_a_frame_size_of_0_is_told_with_a_past_send_time(self, api):
        """The frame size's own check was told alone; the send time, refused by the campaign's rules, came in the
        next request (the admin's composer tells both at once)."""
        account = ProviderAccountFactory()
        wrong_year = timezone.now() - timedelta(days=365)
        payload = {"name": "X", "account": account.pk, "frame_size": 0, "send_at": wrong_year.isoformat()}
        response = api.post("/api/v1/campaigns/", payload, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "frame_size": [
                "Give 1 or more recipients per request, or leave it empty (null) for the account's frame size."
            ],
            "send_at": [
                f"{timezone.localtime(wrong_year):%Y-%m-%d %H:%M %Z} has passed: choose a later send time, or leave it "
                "empty to send when you launch."
            ],
        }
        assert not Campaign.objects.exists()
        campaign = CampaignFactory(account=account)
        response = api.patch(f"/api/v1/campaigns/{campaign.pk}/", payload, format="json")
        assert set(response.json()) == {"frame_size", "send_at"}

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

    def test_a_scheduled_campaign_follows_its_send_time_and_goes_back_to_draft_without_one(self, api):
        """Cleared, the send time left the campaign 'scheduled' for ever: the beat launches by send time."""
        account = free_text_account()  # a campaign launching accepts: a scheduled one is held to its checks
        campaign = CampaignFactory(
            account=account, sender=SenderFactory(account=account), tags=[ContactFactory(tags=[TagFactory()]).tags.get()],
            state=Campaign.State.SCHEDULED, send_at=timezone.now() + timedelta(hours=2),
        )  # fmt: skip
        later = timezone.now() + timedelta(days=1)

        response = api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"send_at": later.isoformat()}, format="json")
        assert response.json()["state"] == "scheduled"
        assert response.json()["state_reason"] == f"Scheduled for {timezone.localtime(later):%Y-%m-%d %H:%M %Z}."

        response = api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"send_at": None}, format="json")
        assert (response.json()["state"], response.json()["state_reason"]) == ("draft", UNSCHEDULED_REASON)
        assert Campaign.objects.get(pk=campaign.pk).send_at is None

    def test_a_past_send_time_is_refused_as_in_the_admin(self, api):
        """The admin's composer refused a send time in the past (a wrong year) on its field; the API took it, and
        launching sent at once, not when the integrator meant."""
        account = ProviderAccountFactory()
        wrong_year = (timezone.now() - timedelta(days=365)).isoformat()
        created = api.post("/api/v1/campaigns/", {"name": "X", "account": account.pk, "send_at": wrong_year})
        assert created.status_code == 400, created.json()
        assert "has passed: choose a later send time" in created.json()["send_at"][0]
        assert not Campaign.objects.exists()

        campaign = CampaignFactory(account=account, send_at=timezone.now() + timedelta(hours=2))
        url = f"/api/v1/campaigns/{campaign.pk}/"
        moved = api.patch(url, {"send_at": wrong_year}, format="json")
        assert moved.status_code == 400 and "send_at" in moved.json()
        assert Campaign.objects.get(pk=campaign.pk).send_at > timezone.now()
        # A recurring campaign may start from a past time; a saved send time that has passed since does not stop
        # an edit of something else (a PUT sends it again, as it is).
        daily = api.post("/api/v1/campaigns/", {"name": "Daily", "account": account.pk, "send_at": wrong_year,
                                                "recurrence": "daily"})  # fmt: skip
        assert daily.status_code == 201, daily.json()
        passed = timezone.now() - timedelta(minutes=5)
        Campaign.objects.filter(pk=campaign.pk).update(send_at=passed)
        again = api.patch(url, {"name": "Renamed", "send_at": passed.isoformat()}, format="json")
        assert again.status_code == 200, again.json()
        # A recurring campaign made one that sends once keeps a start long past: launched, it went out at once.
        one_off = api.patch(f"/api/v1/campaigns/{daily.json()['id']}/", {"recurrence": ""}, format="json")
        assert one_off.status_code == 400 and "has passed" in one_off.json()["send_at"][0], one_off.json()
        assert Campaign.objects.get(pk=daily.json()["id"]).recurrence == "daily"

    @pytest.mark.parametrize(
        ("given", "stored", "said"),
        [
            (f"{YEAR}-12-01T09:00:00", f"{YEAR}-12-01T08:00:00+00:00", None),  # on the site's clock, Paris's
            (f"{YEAR}-12-01T09:00:00+05:30", f"{YEAR}-12-01T03:30:00+00:00", None),
            (f"{SPRING}T03:30:00+02:00", f"{SPRING}T01:30:00+00:00", None),
            (f"{SPRING}T02:30:00", None, f"{SPRING} 02:30 does not exist in Europe/Paris (the clocks skip it)"),
            (f"{AUTUMN}T02:30:00", None, f"{AUTUMN} 02:30 comes twice in Europe/Paris (the clocks go back): give "
             "its UTC offset, +02:00 or +01:00."),
        ],
    )  # fmt: skip
    def test_a_send_time_without_an_offset_is_on_the_sites_clock_and_one_it_skips_or_repeats_is_refused(
        self, api, settings, given, stored, said
    ):
        """It was taken, read as another time: 02:30 on the night the clocks skip it as 03:30, and 02:30 on the night
        they show it twice as the first, where the admin's form refuses both."""
        settings.TIME_ZONE = "Europe/Paris"
        account = ProviderAccountFactory()
        response = api.post("/api/v1/campaigns/", {"name": "X", "account": account.pk, "send_at": given}, format="json")
        if said is None:
            assert response.status_code == 201, response.json()
            assert Campaign.objects.get().send_at.isoformat() == stored
        else:
            assert response.status_code == 400
            assert response.json()["send_at"][0].startswith(said)
            assert not Campaign.objects.exists()

    def test_a_send_time_or_deadline_years_ahead_is_refused_on_its_field_not_a_500_at_the_estimate(self, api):
        """Year 9999 was taken; a promotional campaign's estimate and launch then counted the window's next opening
        past the calendar's end (OverflowError, a 500), and a daily run's next time would have too."""
        account = free_text_account()
        tag = ContactFactory(tags=[TagFactory()]).tags.get()
        campaign = CampaignFactory(
            account=account, sender=SenderFactory(account=account), tags=[tag], purpose="promotional",
            text="Sale! STOP au 30101",
        )  # fmt: skip
        url = f"/api/v1/campaigns/{campaign.pk}/"
        for field in ("send_at", "send_by"):
            response = api.patch(url, {field: "9999-12-31T23:59:59Z", "recurrence": "daily"}, format="json")
            assert response.status_code == 400, response.content
            assert response.json() == {field: ["9999-12-31 is more than 10 years ahead: check the year."]}
        created = api.post(
            "/api/v1/campaigns/",
            {"name": "Far", "account": account.pk, "send_at": (timezone.now() + timedelta(days=3700)).isoformat()},
            format="json",
        )
        assert created.status_code == 400 and list(created.json()) == ["send_at"]
        campaign.refresh_from_db()
        assert (campaign.send_at, campaign.send_by, campaign.recurrence) == (None, None, "")
        assert api.post(f"{url}estimate/").status_code == 200
        in_a_year = (timezone.now() + timedelta(days=365)).isoformat()
        assert api.patch(url, {"send_at": in_a_year, "send_by": in_a_year}, format="json").status_code == 200

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

    def test_the_estimate_of_a_campaign_without_a_text_counts_no_parts_and_no_cost(self, api):
        """It said `parts: 0` a message and `parts_total` one a recipient, costed: 0 in all now, as 0 each."""
        campaign = CampaignFactory(
            account=free_text_account(price_per_part="0.05"), text="", contacts=[ContactFactory() for _ in range(3)]
        )
        body = api.post(f"/api/v1/campaigns/{campaign.pk}/estimate/").json()
        assert body["sendable"] == 3
        assert (body["parts"], body["parts_total"], body["parts_least"], body["parts_most"]) == (0, 0, 0, 0)
        assert (body["cost"], body["parts_summary"]) == ("0.00", "")
        assert "text" in {problem["field"] for problem in body["problems"]}

    def test_estimate_fills_its_text_sample_only_for_whom_may_view_contacts(self):
        """The sample is one contact's data (the first recipient's name in the text), as in the admin's composer."""
        campaign = CampaignFactory(
            account=free_text_account(), text="Hi {{first_name}}", contacts=[ContactFactory(first_name="Asha")]
        )
        url = f"/api/v1/campaigns/{campaign.pk}/estimate/"
        composer = api_client_for(UserFactory(permissions=["campaigns.change_campaign", "campaigns.view_campaign"]))
        viewer = api_client_for(
            UserFactory(permissions=["campaigns.change_campaign", "campaigns.view_campaign", "contacts.view_contact"])
        )

        body = composer.post(url).json()

        assert (body["text_sample"], body["length"], body["sendable"]) == ("Hi {{first_name}}", 7, 1)
        assert viewer.post(url).json()["text_sample"] == "Hi Asha"

    def test_launch_refuses_with_a_field_named_error(self, api):
        campaign = CampaignFactory(text="")
        response = api.post(f"/api/v1/campaigns/{campaign.pk}/launch/")
        assert response.status_code == 400
        assert "text" in response.json()

    def test_a_scheduled_campaign_is_sent_now_or_unscheduled(self, api):
        """The admin's Send now… and Unschedule…: `launch/` on a scheduled campaign only checks it again."""
        news = TagFactory()
        ContactFactory.create_batch(2, tags=[news])
        send_at = timezone.now() + timedelta(days=1)
        scheduled = {"state": "scheduled", "send_at": send_at, "tags": [news], "account__kind": "octopush",
                     "sender__country": "FR", "text": "Hi"}  # fmt: skip
        first, second, daily = (CampaignFactory(**scheduled) for _ in range(3))
        Campaign.objects.filter(pk=daily.pk).update(recurrence="daily")

        body = api.post(f"/api/v1/campaigns/{first.pk}/launch/").json()
        assert (body["state"], body["send_at"]) == ("scheduled", send_at.isoformat().replace("+00:00", "Z"))
        body = api.post(f"/api/v1/campaigns/{first.pk}/send-now/").json()
        assert (body["state"], body["send_at"]) == ("preparing", None)

        body = api.post(f"/api/v1/campaigns/{second.pk}/unschedule/").json()
        assert (body["state"], body["state_reason"]) == (
            "draft",
            "Unscheduled by a user: nothing is sent until you launch it.",
        )
        assert Campaign.objects.get(pk=second.pk).send_at == send_at
        response = api.post(f"/api/v1/campaigns/{second.pk}/send-now/")
        assert (response.status_code, response.json()) == (
            400,
            {"state": ["A draft campaign cannot be sent now: launch it."]},
        )

        response = api.post(f"/api/v1/campaigns/{daily.pk}/send-now/")
        assert response.status_code == 400 and "recurring" in response.json()["recurrence"][0]
        assert Campaign.objects.get(pk=daily.pk).state == "scheduled"
        response = api.post(f"/api/v1/campaigns/{daily.pk}/unschedule/", {"at": "now"}, format="json")
        assert (response.status_code, list(response.json())) == (400, ["at"])

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


def test_duplicate_makes_a_draft_copy_for_whoever_may_add_campaigns(api):
    """The admin's Duplicate…, for integrators: the copy of a finished campaign, to send again."""
    vip, staff = TagFactory(name="vip"), TagFactory(name="staff")
    original = CampaignFactory(
        name="Diwali sale", state="completed", tags=[vip], excluded_tags=[staff], send_at=timezone.now(),
        text="Hello {{first_name}}",
    )  # fmt: skip

    response = api.post(f"/api/v1/campaigns/{original.pk}/duplicate/")

    assert response.status_code == 201, response.json()
    copy = response.json()
    assert (copy["name"], copy["state"], copy["send_at"], copy["text"]) == (
        "Copy of Diwali sale", "draft", None, "Hello {{first_name}}",
    )  # fmt: skip
    assert (copy["tags"], copy["excluded_tags"]) == (["vip"], ["staff"])
    assert Campaign.objects.get(pk=original.pk).state == "completed"
    changer = api_client_for(UserFactory(permissions=["campaigns.view_campaign", "campaigns.change_campaign"]))
    assert changer.post(f"/api/v1/campaigns/{original.pk}/duplicate/").status_code == 403
    assert Campaign.objects.count() == 2


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

    def _send(self, api, account, key, to="+919812345678", text="Your OTP is 1234"):
        return api.post("/api/v1/messages/", {"account": account.pk, "to": to, "text": text}, HTTP_IDEMPOTENCY_KEY=key)

    def test_a_retry_with_the_same_idempotency_key_gets_the_first_message_back_and_sends_nothing(self, api):
        account = free_text_account()
        first = self._send(api, account, "order-1001-otp")
        assert first.status_code == 202, first.json()
        assert "Idempotent-Replayed" not in first.headers
        again = self._send(api, account, "order-1001-otp", to="98123 45678")  # the same number, written nationally
        assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert (Message.objects.count(), Frame.objects.count()) == (1, 1)
        assert api.get(first["Location"]).json()["idempotency_key"] == "order-1001-otp"

        other_account = self._send(api, free_text_account(), "order-1001-otp")  # keys are the account's own
        assert other_account.status_code == 202 and other_account.json()["id"] != first.json()["id"]
        unkeyed = [self._send(api, account, "") for _ in range(2)]  # no key: every request sends
        assert len({r.json()["id"] for r in unkeyed}) == 2

    def test_an_idempotency_key_past_its_retention_sends_a_new_message(self, api, settings):
        settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
        account = free_text_account()
        first = self._send(api, account, "order-1001-otp")
        Message.objects.update(created_at=timezone.now() - timedelta(hours=23))
        assert self._send(api, account, "order-1001-otp").headers["Idempotent-Replayed"] == "true"

        Message.objects.update(created_at=timezone.now() - timedelta(hours=25))  # the key's day is over
        again = self._send(api, account, "order-1001-otp", text="Your OTP is 5678")  # a new message: not a 400

        assert again.status_code == 202, again.json()
        assert "Idempotent-Replayed" not in again.headers and again.json()["id"] != first.json()["id"]
        assert (Message.objects.count(), Frame.objects.count()) == (2, 2)
        assert Message.objects.get(pk=first.json()["id"]).idempotency_key == ""
        assert self._send(api, account, "order-1001-otp", text="Your OTP is 5678").headers["Idempotent-Replayed"]

    @pytest.mark.parametrize(
        ("to", "text", "other"),
        [
            ("+919812300000", "Your OTP is 1234", "number"),
            ("+919812345678", "Your OTP is 9999", "text"),
            ("+919812300000", "Your OTP is 9999", "number and text"),
        ],
    )
    def test_an_idempotency_key_reused_for_another_message_is_a_400_naming_what_differs(self, api, to, text, other):
        """It said "with another number, text, channel, sender, DLT template or purpose", whichever it was: the
        client had to compare every part of its request to find which."""
        account = free_text_account()
        first = self._send(api, account, "k-1")
        response = self._send(api, account, "k-1", to=to, text=text)
        assert response.status_code == 400
        assert response.json() == {
            "idempotency_key": [
                f"This Idempotency-Key was used for message {first.json()['id']} to +919812345678 with another "
                f"{other}; use a new key for a new message."
            ]
        }
        assert Message.objects.count() == 1

    def test_an_idempotency_key_reused_from_another_sender_is_a_400(self, api):
        account = free_text_account()
        first_sender, other_sender = SenderFactory(account=account), SenderFactory(account=account)
        payload = {"account": account.pk, "to": "+919812345678", "text": "Your OTP is 1234"}

        def send(sender):
            return api.post("/api/v1/messages/", {**payload, "sender": sender.pk}, HTTP_IDEMPOTENCY_KEY="k-2")

        assert send(first_sender).status_code == 202
        assert send(first_sender).headers["Idempotent-Replayed"] == "true"
        response = send(other_sender)
        assert response.status_code == 400 and "with another sender;" in response.json()["idempotency_key"][0]

    def test_an_idempotency_key_reused_from_another_sender_is_a_400_when_the_first_was_suppressed(self, api):
        account = free_text_account()
        first_sender, other_sender = SenderFactory(account=account), SenderFactory(account=account)
        UnsubscriberFactory(address="+919812345678", scope="sender", value=first_sender.name)
        payload = {"account": account.pk, "to": "+919812345678", "text": "Your OTP is 1234"}

        def send(sender):
            return api.post("/api/v1/messages/", {**payload, "sender": sender.pk}, HTTP_IDEMPOTENCY_KEY="k-3")

        first = send(first_sender)
        assert (first.status_code, first.json()["status"]) == (202, "suppressed")
        assert send(first_sender).headers["Idempotent-Replayed"] == "true"
        response = send(other_sender)  # would not be suppressed: it would send, so it is not the same request
        assert response.status_code == 400 and "with another sender;" in response.json()["idempotency_key"][0]
        assert Message.objects.get().status == "suppressed" and not Frame.objects.exists()
        Message.objects.update(sender_name="")  # suppressed before migration 0015: its sender is unknown
        assert send(first_sender).headers["Idempotent-Replayed"] == "true"

    def test_an_idempotency_key_reused_with_another_purpose_is_a_400_whether_the_first_was_sent_or_suppressed(
        self, api
    ):
        """The purpose was not compared: the retry of a transactional send as a promotional one (its window, its
        opt-outs) was answered with the first message. An address opted out of service messages is suppressed for
        them, and would be sent a transactional one: not the same request either."""
        account = free_text_account()
        UnsubscriberFactory(address="+33699999999", scope="service", value="service")

        def send(key, purpose, to="+33612345678"):
            payload = {"account": account.pk, "to": to, "text": "Your code is 4711", "purpose": purpose}
            return api.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY=key)

        for key, to, status in (("k-sent", "+33612345678", "pending"), ("k-suppressed", "+33699999999", "suppressed")):
            first = send(key, "service", to=to)
            assert (first.status_code, first.json()["status"]) == (202, status), first.json()
            assert send(key, "service", to=to).headers["Idempotent-Replayed"] == "true"
            response = send(key, "transactional", to=to)
            assert response.status_code == 400
            assert response.json() == {
                "idempotency_key": [
                    f"This Idempotency-Key was used for message {first.json()['id']} to {to} with another purpose; "
                    "use a new key for a new message."
                ]
            }
        assert Message.objects.count() == 2

    def test_an_idempotency_key_reused_with_another_template_of_the_same_text_is_a_400(self, api):
        account = ProviderAccountFactory()
        sender = SenderFactory(account=account)
        first_template, other_template = (DltTemplateFactory(account=account, senders=[sender]) for _ in range(2))

        def send(template):
            payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                       "text": "Your OTP is 1234. Valid for 10 minutes. - Herald"}  # fmt: skip
            return api.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="otp-t-2")

        assert send(first_template).status_code == 202
        assert send(first_template).headers["Idempotent-Replayed"] == "true"
        response = send(other_template)
        assert response.status_code == 400 and "with another DLT template;" in response.json()["idempotency_key"][0]
        assert Message.objects.get().dlt_template_id == first_template.dlt_template_id

    def test_a_keyed_retry_is_validated_as_an_unkeyed_request_is(self, api):
        account = free_text_account()
        assert self._send(api, account, "k-4").status_code == 202
        unkeyed, keyed = self._send(api, account, "", text=""), self._send(api, account, "k-4", text="")
        assert keyed.status_code == unkeyed.status_code == 400
        assert keyed.json() == unkeyed.json() == {"text": ["Give the text, or a template and its variables."]}
        assert Message.objects.count() == 1

    def test_an_idempotency_key_reused_with_other_template_variables_is_a_400(self, api):
        account = ProviderAccountFactory()
        sender = SenderFactory(account=account)
        template = DltTemplateFactory(account=account, senders=[sender])

        def send(otp):
            payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                       "variables": {"var": otp}}  # fmt: skip
            return api.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="otp-t-1")

        assert send("1234").status_code == 202
        assert send("1234").headers["Idempotent-Replayed"] == "true"
        response = send("9999")
        assert response.status_code == 400 and "with another text;" in response.json()["idempotency_key"][0]
        assert Message.objects.get().text == "Your OTP is 1234. Valid for 10 minutes. - Herald"

    def test_an_idempotency_key_with_a_null_character_is_a_400_not_a_500(self, api):
        account = free_text_account()
        body = {"account": account.pk, "to": "+33612345678", "text": "Your code is 4711"}
        response = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1\x00")
        assert response.status_code == 400
        assert response.json() == {"idempotency_key": ["The Idempotency-Key cannot contain a null character."]}
        assert not Message.objects.exists()

    def test_an_idempotency_key_over_255_characters_is_a_400(self, api):
        response = self._send(api, ProviderAccountFactory(), "k" * 256)
        assert response.status_code == 400 and "idempotency_key" in response.json()
        assert not Message.objects.exists()

    def test_pages_follow_the_cursor(self, api):
        campaign = CampaignFactory()
        made = [MessageFactory(campaign=campaign).pk for _ in range(5)]
        seen, url = [], "/api/v1/messages/?page_size=2"
        while url:
            page = api.get(url).json()
            seen += [m["id"] for m in page["results"]]
            url = page["next"]
        assert seen == sorted(made, reverse=True)

    @pytest.mark.parametrize("position", ["abc", "1.5", "-", "99999999999999999999"])
    def test_a_made_up_cursor_position_is_a_404_not_a_500(self, api, position):
        """`?cursor=cD1hYmM%3D` (base64 of `p=abc`) was a 500 from the query, where `?cursor=bogus` was a 404."""
        MessageFactory()
        cursor = base64.b64encode(f"p={position}".encode()).decode()
        response = api.get("/api/v1/messages/", {"cursor": cursor})
        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid cursor"}


class TestTransactionalSendRules:
    """A transactional send is held to the DLT and provider rules a campaign's pre-flight checks."""

    OTP = "Your OTP is 4711. Valid for 10 minutes. - Herald"  # DltTemplateFactory's body, filled in

    @pytest.fixture
    def dlt(self):
        account = ProviderAccountFactory()  # MOBtexting
        sender = SenderFactory(account=account)  # an Indian sender with a DLT entity id
        return account, sender, DltTemplateFactory(account=account, senders=[sender])

    def _refused(self, api, payload, field):
        response = api.post("/api/v1/messages/", payload, format="json")
        assert response.status_code == 400, response.json()
        assert not Message.objects.exists() and not Frame.objects.exists()
        return response.json()[field]

    @pytest.mark.parametrize("kind", ["mobtexting", "devino", "hyber"])
    def test_a_send_without_a_sender_where_the_vendor_has_no_default_is_refused_on_the_field(self, api, kind):
        """MOBtexting took it (202) and refused it on the wire ("nodes.0.sender: The sender field is required.")."""
        account = ProviderAccountFactory(kind=kind)
        label = {"mobtexting": "MOBtexting", "devino": "Devino OMNI", "hyber": "Hyber / GMS"}[kind]
        errors = self._refused(api, {"account": account.pk, "to": "+33612345678", "text": "Hi"}, "sender")
        assert errors == [f"Choose a sender ID: {label} has no default sender."]

    def test_octopush_sends_without_a_sender_under_its_default(self, api):
        account = ProviderAccountFactory(kind="octopush")
        response = api.post("/api/v1/messages/", {"account": account.pk, "to": "+33612345678", "text": "Hi"})
        assert response.status_code == 202, response.json()

    def test_a_text_given_with_a_template_must_match_it(self, api, dlt):
        account, sender, template = dlt
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                   "variables": {"var": "4711"}}  # fmt: skip
        errors = self._refused(api, {**payload, "text": "WIN A FREE PHONE"}, "text")
        assert errors == [
            "The text departs from the template at character 1: expected 'Your OTP is ', found 'WIN A FREE PHONE'."
        ]

        assert api.post("/api/v1/messages/", {**payload, "text": self.OTP}, format="json").status_code == 202
        rendered = api.post("/api/v1/messages/", payload, format="json")  # no text: the template, filled in
        assert rendered.status_code == 202
        assert list(Message.objects.values_list("text", flat=True)) == [self.OTP, self.OTP]

    def test_a_text_and_variables_that_fill_the_template_differently_are_refused(self, api, dlt):
        """The text went and the variables were ignored: an OTP of 4711 in the text, 9999 in the variables."""
        account, sender, template = dlt
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                   "text": self.OTP}  # fmt: skip
        assert self._refused(api, {**payload, "variables": {"var": "9999"}}, "variables") == [
            "The template filled with these variables is not the text given: give the text or the variables, not both."
        ]
        agreeing = api.post("/api/v1/messages/", {**payload, "variables": {"var": "4711"}}, format="json")
        assert agreeing.status_code == 202, agreeing.json()

    def test_a_template_without_its_variables_names_the_variables(self, api, dlt):
        account, sender, template = dlt
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk}
        assert self._refused(api, payload, "variables") == ["No value for the variable 'var'."]

    def test_a_template_of_another_account_is_refused_as_a_campaign_refuses_it(self, api, dlt):
        account, _sender, _template = dlt
        theirs = DltTemplateFactory()
        payload = {"account": account.pk, "to": "+919812345678", "template": theirs.pk, "variables": {"var": "1"}}
        errors = self._refused(api, payload, "template")
        campaign = api.post("/api/v1/campaigns/", {"name": "c", "account": account.pk, "template": theirs.pk})
        assert errors == campaign.json()["template"] == ["This template belongs to another account."]

    def test_a_sender_for_another_channel_is_refused_as_one_of_another_account_is(self, api, dlt):
        account, _sender, template = dlt
        payload = {"account": account.pk, "to": "+919812345678", "template": template.pk, "variables": {"var": "1"}}
        for sender in (SenderFactory(account=account, channel="whatsapp"), SenderFactory()):
            errors = self._refused(api, {**payload, "sender": sender.pk}, "sender")
            assert errors == [f"{sender.name} is not a sms sender of {account.name}."]

    def test_an_e_mail_address_for_an_sms_is_refused_under_to(self, api):
        """Looked up as a contact's phone, it was a 400 under non_field_errors asking for "a valid phone number": no
        field named, and the address was a valid one, for another channel."""
        account = free_text_account()
        payload = {"account": account.pk, "to": "Ann@Example.com", "text": "Your code is 4711"}
        assert self._refused(api, payload, "to") == ["SMS goes to a phone number, not ann@example.com."]

    def test_a_text_with_placeholders_and_no_template_is_refused_not_sent_with_its_braces(self, api):
        """Variables without a template were ignored, and a text's {{name}} went to the phone as written."""
        account = free_text_account()
        payload = {"account": account.pk, "to": "+33612345678", "text": "Hi {{ name }}, your code is 4711"}
        assert self._refused(api, {**payload, "variables": {"name": "Ann"}}, "variables") == [
            "Variables fill a DLT template: give its template too, or write their values into the text."
        ]
        assert self._refused(api, payload, "text") == [
            "{{name}} would reach the recipient as written: a transactional text is sent as given, so write the "
            "value in (or give a template and its variables)."
        ]
        sent = api.post("/api/v1/messages/", {**payload, "text": "Hi Ann, your code is 4711"}, format="json")
        assert sent.status_code == 202, sent.json()

    def test_an_indian_number_on_mobtexting_needs_a_dlt_template(self, api, dlt):
        account = dlt[0]
        payload = {"account": account.pk, "to": "+919812345678", "text": "Your OTP is 4711"}
        assert self._refused(api, payload, "template") == [
            "Indian traffic needs a DLT template registered for the sender."
        ]

    def test_an_indian_sender_without_its_dlt_entity_id_is_refused_before_mobtexting_refuses_every_request(
        self, api, dlt
    ):
        """A sender for India saved without its PE id passed the pre-flight; MOBtexting then refused each request
        (entity_id is required on Indian DLT routes), frame after frame."""
        account, sender, template = dlt
        Sender.objects.filter(pk=sender.pk).update(dlt_entity_id="")
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                   "variables": {"var": "4711"}}  # fmt: skip
        assert self._refused(api, payload, "sender") == [
            f"Sender {sender.name} has no DLT entity (PE) id, which Indian traffic needs: give it on the sender's "
            "page (the Principal Entity id registered on the DLT portal)."
        ]

    def test_a_template_not_approved_by_dlt_is_refused(self, api, dlt):
        account, sender, template = dlt
        template.status = template.Status.PENDING
        template.save()
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                   "variables": {"var": "4711"}}  # fmt: skip
        assert self._refused(api, payload, "template") == [
            f"Template {template.name} is {template.get_status_display()}."
        ]

    def test_a_promotional_template_through_a_transactional_header_is_refused_as_dlt_would(self, api, dlt):
        """DLT sends a promotional template from a numeric (service P) header only, and such a header carries nothing
        else (seed 001:9263, 9285); a registration saved so (a sync, an old import) was sent and refused by DLT."""
        account, sender, template = dlt
        DltTemplate.objects.filter(pk=template.pk).update(type="P")
        payload = {"account": account.pk, "to": "+919812345678", "sender": sender.pk, "template": template.pk,
                   "variables": {"var": "4711"}, "purpose": "transactional"}  # fmt: skip
        assert self._refused(api, payload, "template") == [
            f"Template {template.name} (promotional): {sender.name} is a transactional (service T) sender: a "
            "promotional template goes out from a promotional (service P, numeric) header only."
        ]
        numeric = SenderFactory(account=account, name="777777", service="P")
        template.senders.add(numeric)
        # Through its promotional header, it is a promotion: sent as one, in the promotional window only.
        assert self._refused(api, {**payload, "sender": numeric.pk}, "purpose") == [
            f"Template {template.name} is promotional on DLT: send it as promotional, so that it keeps to the "
            "promotional window."
        ]
        DltTemplate.objects.filter(pk=template.pk).update(type="SI")
        assert self._refused(api, {**payload, "sender": numeric.pk}, "template") == [
            f"Template {template.name} (service implicit): 777777 is a promotional (service P) sender: it carries "
            "promotional templates only, not service implicit ones."
        ]

    def test_a_promotional_send_outside_the_window_is_refused_saying_when_it_opens(self, api):
        tomorrow = (timezone.now() + timedelta(days=1)).astimezone(UTC)
        tomorrow_only = {"tz": "UTC", "start": "00:00", "end": "23:59", "days": [tomorrow.weekday()]}
        account = ProviderAccountFactory(kind="octopush", options={"promo_window": tomorrow_only})
        payload = {"account": account.pk, "to": "+33612345678", "text": "Soldes -50% STOP au 30101",
                   "purpose": "promotional"}  # fmt: skip
        errors = self._refused(api, payload, "purpose")
        assert errors == [
            f"{account.name} sends promotional messages only from 00:00 to 23:59 (UTC); the window opens at "
            f"{tomorrow:%Y-%m-%d} 00:00 UTC."
        ]
        # A window in a zone of its own: said there with the site's time beside it, as a campaign's wait is.
        in_india = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Kolkata")).date()
        indian = ProviderAccountFactory(kind="octopush", options={"promo_window": {
            "tz": "Asia/Kolkata", "start": "00:00", "end": "23:59", "days": [in_india.weekday()]}})  # fmt: skip
        assert self._refused(api, {**payload, "account": indian.pk}, "purpose") == [
            f"{indian.name} sends promotional messages only from 00:00 to 23:59 (Asia/Kolkata); the window opens at "
            f"{in_india:%Y-%m-%d} 00:00 IST ({in_india - timedelta(days=1):%Y-%m-%d} 18:30 UTC)."
        ]
        sent = api.post("/api/v1/messages/", {**payload, "purpose": "transactional"}, format="json")
        assert sent.status_code == 202  # the window is for promotional messages only

    def test_a_promotional_send_to_a_contact_whose_own_window_is_closed_is_refused_saying_when_it_opens_there(
        self, api
    ):
        """The account's window (UTC) is open, but the contact is in Africa/Lagos (UTC+1, no daylight saving), where
        the same hours ended a minute or so ago: before, the promotion went out all the same."""
        now = timezone.now().astimezone(UTC)
        start, end = now - timedelta(hours=1), now + timedelta(hours=1)
        window = {"tz": "UTC", "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
        account = ProviderAccountFactory(kind="octopush", options={"promo_window": window})
        ContactFactory(phone="+33612345678", timezone="Africa/Lagos")
        payload = {"account": account.pk, "to": "+33612345678", "text": "Soldes -50% STOP au 30101",
                   "purpose": "promotional"}  # fmt: skip
        errors = self._refused(api, payload, "purpose")
        # Both open again tomorrow when the account's window opens (Lagos's is open then, an hour ahead).
        opening = start.replace(second=0, microsecond=0) + timedelta(days=1)
        # In the recipient's zone with the site's beside it, as a campaign's wait says it ("… (Africa/Lagos)" before).
        lagos = opening.astimezone(ZoneInfo("Africa/Lagos"))
        site = f"{opening:%H:%M} UTC" if lagos.date() == opening.date() else f"{opening:%Y-%m-%d %H:%M} UTC"
        assert errors == [
            f"{account.name} sends promotional messages only from {start:%H:%M} to {end:%H:%M}, also in the "
            "recipient's own time zone (Africa/Lagos), where it is closed now; it opens there at "
            f"{lagos:%Y-%m-%d %H:%M} WAT ({site})."
        ]
        assert not Message.objects.exists()
        sent = api.post("/api/v1/messages/", {**payload, "to": "+33612345679"}, format="json")
        assert sent.status_code == 202, sent.json()  # a number with no contact (no zone): the account's window

    @pytest.mark.parametrize(
        ("sms_type", "refused", "mention", "accepted"),
        [
            ("", "Soldes -50% no PUB=STOP", "A promotional Octopush premium SMS must carry the opt-out mention 'STOP au XXXXX', "
             "as written (Octopush puts its short number in its place) or with the number, e.g. 'STOP au 30101'.",
             ["Soldes -50% STOP au XXXXX", "Soldes -50% STOP au 30101"]),
            ("sms_low_cost", "Soldes -50% STOP au 30101",
             "A promotional Octopush low-cost SMS must carry the opt-out mention 'no PUB=STOP', as written.", ["Soldes -50% no PUB=STOP"]),
        ],
    )  # fmt: skip
    def test_an_octopush_promotional_send_must_carry_the_stop_mention_its_sms_type_needs(
        self, api, sms_type, refused, mention, accepted
    ):
        """As Octopush asks: before, "STOP au XXXXX", the wording its documents give, was refused, and a premium
        text with only "no PUB=STOP" passed, to be refused by Octopush (121)."""
        always_open = {"tz": "UTC", "start": "00:00", "end": "23:59:59.999999"}
        account = ProviderAccountFactory(kind="octopush", options={"promo_window": always_open, "sms_type": sms_type})
        payload = {"account": account.pk, "to": "+33612345678", "text": refused, "purpose": "promotional"}
        assert self._refused(api, payload, "text") == [mention]
        for text in accepted:
            sent = api.post("/api/v1/messages/", {**payload, "text": text}, format="json")
            assert sent.status_code == 202, sent.json()


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_idempotency_key_at_once_make_one_message():
    """The second finds nothing (the first has not committed), so both insert; the unique index makes the
    second wait, and once the first commits it answers with the first's message instead of sending again."""
    client = api_client_for(UserFactory(superuser=True))
    client.raise_request_exception = False  # a 500 is an answer too
    account = free_text_account()
    answers, firsts = [], []

    def first_request():  # sends with the key; its transaction stays open
        firsts.append(message_send_transactional_once(
            idempotency_key="otp-77", account=account, to="+919812345678", text="Your OTP is 77"
        ))  # fmt: skip

    def second_request():
        answers.append(
            client.post(
                "/api/v1/messages/",
                {"account": account.pk, "to": "+919812345678", "text": "Your OTP is 77"},
                HTTP_IDEMPOTENCY_KEY="otp-77",
            )  # fmt: skip
        )

    second_waits_on_first(first_request, second_request, insert_into="campaigns_message")

    (message, replayed), answer = firsts[0], answers[0]
    assert not replayed
    assert answer.status_code == 202, answer.content
    assert answer.json()["id"] == message.pk and answer.headers["Idempotent-Replayed"] == "true"
    assert (Message.objects.count(), Frame.objects.count()) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_forgets_idempotency_keys_past_their_retention_in_batches(celery_worker):
    """Beat runs idempotency_keys_expire_task; the worker clears the keys of messages older than the retention
    (24 h), whatever their number, and keeps the younger ones and the messages themselves."""
    from campaigns.services import idempotency_keys_expire
    from campaigns.tasks import idempotency_keys_expire_task

    account = free_text_account()
    old = [MessageFactory(campaign=None, account=account, idempotency_key=f"old-{n}") for n in range(5)]
    young = MessageFactory(campaign=None, account=account, idempotency_key="young")
    Message.objects.filter(pk__in=[m.pk for m in old]).update(created_at=timezone.now() - timedelta(hours=25))
    Message.objects.filter(pk=young.pk).update(created_at=timezone.now() - timedelta(hours=23))

    assert idempotency_keys_expire_task.delay().get(timeout=30) == 5
    assert not Message.objects.filter(pk__in=[m.pk for m in old]).exclude(idempotency_key="").exists()
    assert Message.objects.get(pk=young.pk).idempotency_key == "young" and Message.objects.count() == 6

    Message.objects.filter(pk=young.pk).update(created_at=timezone.now() - timedelta(hours=25))
    more = [MessageFactory(campaign=None, account=account, idempotency_key=f"more-{n}") for n in range(4)]
    Message.objects.filter(pk__in=[m.pk for m in more]).update(created_at=timezone.now() - timedelta(hours=30))
    assert idempotency_keys_expire(batch_size=2) == 5
    assert not Message.objects.exclude(idempotency_key="").exists()


def test_duplicating_a_campaign_needs_the_view_permission_too():
    """A copy carries the original's text, audience and options: a client that may add campaigns but not view them
    cannot read a campaign through its copy (the admin's Duplicate… asks for both already)."""
    original = CampaignFactory(name="Secret launch", text="Promo code HUSH-42")
    adder = api_client_for(UserFactory(permissions=["campaigns.add_campaign"]))

    response = adder.post(f"/api/v1/campaigns/{original.pk}/duplicate/")

    assert response.status_code == 403
    assert "HUSH-42" not in response.content.decode()
    assert Campaign.objects.count() == 1
