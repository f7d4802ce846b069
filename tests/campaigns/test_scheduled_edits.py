"""Editing a scheduled campaign: beat launches it at its send time, when nobody is there to fix it, so a save it
could not be launched with is refused then and there (API and admin), with launching's words on their fields."""

import threading
from datetime import timedelta

import pytest

from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import campaign_cancel
from contacts.models import Tag
from tests.concurrency import second_waits_on_first
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
    MessageFactory,
    ProviderAccountFactory,
    SenderFactory,
    TagFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db

STOP = "Spring sale: -20% on everything. STOP au 30101"


def scheduled(state=Campaign.State.SCHEDULED, **fields) -> Campaign:
    """A promotional Octopush campaign to two people, tomorrow, that launching accepts as it is."""
    account = ProviderAccountFactory(kind="octopush")
    news, _ = Tag.objects.get_or_create(name="news")
    ContactFactory(tags=[news])
    ContactFactory(tags=[news])
    fields = {"text": STOP, "purpose": "promotional", "send_at": timezone.now() + timedelta(days=1), **fields}
    return CampaignFactory(account=account, sender=SenderFactory(account=account, country="FR"), tags=[news],
                           state=state, **fields)  # fmt: skip


def api():
    return api_client_for(UserFactory(superuser=True))


# Each edit makes the campaign one that launching refuses, on the field named.
EDITS = {
    "text the vendor refuses": ({"text": "Spring sale: -20% on everything."}, "text", "STOP au XXXXX"),
    "deadline before the send time": ({"send_by": "2001-01-01T10:00:00Z"}, "send_by", "send-by deadline"),
    "nobody to send to": ({"tags": ["empty"]}, "tags", "No one to send to"),
    "frame over the vendor's limit": ({"frame_size": 5000}, "frame_size", "at most 500"),
}


class TestApi:
    @pytest.mark.parametrize(("edit", "field", "words"), EDITS.values(), ids=EDITS.keys())
    def test_an_edit_launching_would_refuse_is_a_400_on_its_field_and_changes_nothing(self, edit, field, words):
        campaign = scheduled()
        TagFactory(name="empty")
        response = api().patch(f"/api/v1/campaigns/{campaign.pk}/", edit, format="json")
        assert response.status_code == 400, response.json()
        assert words in " ".join(response.json()[field])
        saved = Campaign.objects.get(pk=campaign.pk)
        assert (saved.text, saved.send_by, saved.frame_size, saved.state) == (STOP, None, None, "scheduled")
        assert [t.name for t in saved.tags.all()] == ["news"]

    def test_a_put_is_checked_as_a_patch_is(self):
        campaign = scheduled()
        client = api()
        body = client.get(f"/api/v1/campaigns/{campaign.pk}/").json()
        response = client.put(f"/api/v1/campaigns/{campaign.pk}/", {**body, "text": "Sale!"}, format="json")
        assert response.status_code == 400
        assert "text" in response.json()

    def test_a_recurring_campaign_is_checked_too(self):
        campaign = scheduled(recurrence="daily")
        response = api().patch(f"/api/v1/campaigns/{campaign.pk}/", {"text": "Sale!"}, format="json")
        assert response.status_code == 400
        assert "text" in response.json()

    @pytest.mark.parametrize(
        ("switched_off", "field", "words"),
        [("account", "account", "is not active"), ("sender", "sender", "not approved")],
        ids=["account switched off", "sender rejected"],
    )
    def test_what_changed_since_it_was_scheduled_is_named_when_it_is_saved(self, switched_off, field, words):
        campaign = scheduled()
        if switched_off == "account":
            campaign.account.is_active = False
            campaign.account.save()
        else:
            campaign.sender.status = "rejected"
            campaign.sender.save()
        response = api().patch(f"/api/v1/campaigns/{campaign.pk}/", {"name": "Spring"}, format="json")
        assert response.status_code == 400
        assert words in " ".join(response.json()[field])
        assert Campaign.objects.get(pk=campaign.pk).name != "Spring"

    def test_account_options_sending_would_fail_on_stop_the_launch_and_a_scheduled_save(self):
        """Options checked only when the account is saved (sms_type Octopush does not send, saved before the rule
        or by a path that skipped it) made every frame fail at send time; launching names them on the account."""
        campaign = scheduled(state=Campaign.State.DRAFT)
        campaign.account.options = {"sms_type": "premium"}
        campaign.account.save()
        client = api()
        response = client.post(f"/api/v1/campaigns/{campaign.pk}/launch/")
        assert response.status_code == 400, response.json()
        said = " ".join(response.json()["account"])
        assert "sms_type must be sms_premium or sms_low_cost" in said and campaign.account.name in said
        assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT
        assert not campaign.messages.exists()

        on_time = scheduled()
        on_time.account.options = {"sms_type": "premium"}
        on_time.account.save()
        response = client.patch(f"/api/v1/campaigns/{on_time.pk}/", {"name": "Spring"}, format="json")
        assert response.status_code == 400
        assert "sms_type must be" in " ".join(response.json()["account"])

        # A transactional send through the account is held to the same check (message_problems), before anything
        # is written or sent.
        send = {"account": campaign.account.pk, "to": "+33612345678", "text": "Your code is 4711"}
        response = client.post("/api/v1/messages/", send, HTTP_IDEMPOTENCY_KEY="otp-1")
        assert response.status_code == 400 and "sms_type must be" in " ".join(response.json()["account"])
        assert not Message.objects.filter(account=campaign.account).exists()

        campaign.account.options = {"sms_type": "sms_low_cost"}  # fixed: the launch goes ahead
        campaign.account.save()
        problems = client.post(f"/api/v1/campaigns/{campaign.pk}/estimate/").json()["problems"]
        assert [p for p in problems if p["field"] == "account"] == []

    def test_a_dlt_template_the_text_no_longer_matches(self):
        account = ProviderAccountFactory(kind="mobtexting")
        sender = SenderFactory(account=account)
        template = DltTemplateFactory(account=account, senders=[sender], body="Your OTP is {#var#}. - Herald")
        news = TagFactory(name="news")
        ContactFactory(tags=[news])
        campaign = CampaignFactory(account=account, sender=sender, template=template, text="Your OTP is 4711. - Herald",
                                   tags=[news], state="scheduled", send_at=timezone.now() + timedelta(hours=3))  # fmt: skip
        client = api()
        assert client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"name": "OTP"}, format="json").status_code == 200
        response = client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"text": "Your code: 4711"}, format="json")
        assert response.status_code == 400
        assert "text" in response.json()

    def test_a_good_edit_is_saved_and_a_draft_is_saved_half_done(self):
        campaign = scheduled()
        response = api().patch(f"/api/v1/campaigns/{campaign.pk}/", {"text": STOP + " !"}, format="json")
        assert (response.status_code, response.json()["text"]) == (200, STOP + " !")
        draft = scheduled(state=Campaign.State.DRAFT)
        response = api().patch(f"/api/v1/campaigns/{draft.pk}/", {"text": "Sale!", "tags": []}, format="json")
        assert (response.status_code, response.json()["text"]) == (200, "Sale!")

    def test_clearing_the_send_time_of_a_broken_one_makes_it_a_draft(self):
        """The way out for someone who means to fix it later: a draft is not checked."""
        campaign = scheduled()
        response = api().patch(f"/api/v1/campaigns/{campaign.pk}/", {"text": "Sale!", "send_at": None}, format="json")
        assert (response.status_code, response.json()["state"]) == (200, "draft")


def test_texts_sent_in_the_last_hour_do_not_stop_a_campaign_sent_tomorrow():
    """The seventh identical text within the hour is refused when it would go out within that hour, not when the
    campaign is scheduled for tomorrow (the check looks at the hour before its send time)."""
    campaign = scheduled(purpose="service", text="Flash sale today only")
    earlier = CampaignFactory(account=campaign.account, sender=campaign.sender, text=campaign.text)
    someone = campaign.tags.get().contacts.first()
    for _ in range(6):
        MessageFactory(campaign=earlier, contact=None, account=campaign.account, address=someone.phone,
                       text=campaign.text, status="delivered", submitted_at=timezone.now())  # fmt: skip
    client = api()
    assert client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"name": "Flash"}, format="json").status_code == 200
    soon = (timezone.now() + timedelta(minutes=20)).isoformat()
    response = client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"send_at": soon}, format="json")
    assert "already got this text" in " ".join(response.json()["text"])


def admin_form(campaign: Campaign, **fields) -> dict:
    """The change form as the browser posts it."""
    at = timezone.localtime(campaign.send_at)
    data = {
        "name": campaign.name, "channel": campaign.channel, "purpose": campaign.purpose,
        "account": campaign.account_id, "sender": campaign.sender_id, "template": campaign.template_id or "",
        "text": campaign.text, "tags_operator": "any", "tags": [t.pk for t in campaign.tags.all()],
        "recurrence": campaign.recurrence, "send_at_0": f"{at:%Y-%m-%d}", "send_at_1": f"{at:%H:%M:%S}",
        "send_by_0": "", "send_by_1": "", "smooth_minutes": "", "frame_size": "",
    }  # fmt: skip
    return {**data, **fields}


class TestAdmin:
    def test_an_edit_launching_would_refuse_is_shown_on_its_field_and_not_saved(self):
        campaign = scheduled()
        url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        response = admin_client_for().post(url, admin_form(campaign, text="Spring sale!", frame_size="5000"))
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "STOP au XXXXX" in " ".join(errors["text"]) and "at most 500" in " ".join(errors["frame_size"])
        assert Campaign.objects.get(pk=campaign.pk).text == STOP

    def test_an_audience_emptied_in_the_form_is_refused(self):
        campaign = scheduled()
        url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        response = admin_client_for().post(url, admin_form(campaign, tags=[TagFactory(name="empty").pk]))
        assert "No one to send to" in " ".join(response.context["adminform"].form.errors["tags"])
        assert [t.name for t in Campaign.objects.get(pk=campaign.pk).tags.all()] == ["news"]

    def test_a_good_edit_is_saved_and_a_draft_is_saved_half_done(self):
        client = admin_client_for()
        campaign = scheduled()
        url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        assert client.post(url, admin_form(campaign, text=STOP + " !")).status_code == 302
        assert Campaign.objects.get(pk=campaign.pk).text == STOP + " !"
        draft = scheduled(state=Campaign.State.DRAFT)
        url = reverse("admin:campaigns_campaign_change", args=[draft.pk])
        assert client.post(url, admin_form(draft, text="Sale!")).status_code == 302
        assert Campaign.objects.get(pk=draft.pk).text == "Sale!"

    def test_its_estimate_panel_follows_the_form_as_a_drafts_does(self):
        """Its text emptied in the form, the panel showed the saved text's parts, cost and sample under "Write the
        message text"; its send time cleared, it said "Ready: it is sent at its send time." of a campaign that goes
        back to draft when saved."""
        campaign = scheduled()
        client = admin_client_for()
        url = reverse("admin:campaigns_campaign_estimate", args=[campaign.pk])
        saved = client.post(url, admin_form(campaign)).json()
        assert (saved["ok"], saved["parts"], saved["text_sample"]) == (True, 1, STOP)
        assert saved["ready"] == "Ready: it is sent at its send time."

        emptied = client.post(url, admin_form(campaign, text="")).json()
        assert [p["field"] for p in emptied["problems"]] == ["text"]
        assert (emptied["parts"], emptied["cost"], emptied["text_sample"]) == (0, "0.00", "")
        assert emptied["problems_heading"] == "Before it can be sent"
        longer = client.post(url, admin_form(campaign, text=f"{STOP} {'x' * 150}")).json()
        assert (longer["ok"], longer["parts"]) == (True, 2), "the text as typed"
        Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.DRAFT)
        as_draft = client.post(url, admin_form(campaign, text="")).json()
        words = ("problems_heading", "ready")
        assert {k: v for k, v in as_draft.items() if k not in words} == {
            k: v for k, v in emptied.items() if k not in words
        }, "what a draft's panel says of the same form"
        Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SCHEDULED)

        unscheduled = client.post(url, admin_form(campaign, send_at_0="", send_at_1="")).json()
        assert unscheduled["ok"] is True
        assert unscheduled["ready"] == "Ready to launch: saved without a send time, it goes back to draft."
        assert unscheduled["problems_heading"] == "Before you can launch"
        assert Campaign.objects.get(pk=campaign.pk).text == STOP, "the estimate never saves"

    @pytest.mark.django_db(transaction=True)
    def test_a_campaign_cancelled_while_its_page_was_saved_is_said_so_not_a_500(self):
        """The form passes; the save waits for the campaign's lock, held by someone cancelling it; then the service
        refuses the edit: the page comes back saying why."""
        campaign = scheduled()
        url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        client, responses = admin_client_for(), []
        second_waits_on_first(
            lambda: campaign_cancel(campaign_id=campaign.pk),
            lambda: responses.append(client.post(url, admin_form(campaign, name="Renamed"))),
            statement='SELECT "campaigns_campaign"',
        )
        assert responses[0].status_code == 200
        html = responses[0].content.decode()
        assert "A cancelled campaign cannot be edited." in html and "changed while this page was open" in html
        assert html.count("A cancelled campaign cannot be edited.") == 1, "said once, by the form and the service"
        assert Campaign.objects.get(pk=campaign.pk).name == campaign.name

    @pytest.mark.django_db(transaction=True)
    def test_a_campaign_that_changes_under_the_form_at_each_save_is_said_so_not_a_500(self):
        """The race of the test above, twice in one save: beat launches the campaign as the save takes its lock, the
        page is handled once more, and the campaign is again scheduled when the form reads it and launched when the
        save locks it. The page comes back saying what happened; nothing is saved."""
        campaign = scheduled()
        url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

        def elsewhere(state):  # another connection changes the campaign, committed before the page's statement
            def change():
                try:
                    Campaign.objects.filter(pk=campaign.pk).update(state=state)
                finally:
                    connection.close()

            thread = threading.Thread(target=change)
            thread.start()
            thread.join(10)

        def meanwhile(execute, sql, params, many, context):
            read = sql.startswith("SELECT") and 'FROM "campaigns_campaign" WHERE' in sql
            if read and '"campaigns_campaign"."id" =' in sql:
                elsewhere("preparing" if sql.rstrip().endswith("FOR UPDATE") else "scheduled")
            return execute(sql, params, many, context)

        client = admin_client_for()
        with connection.execute_wrapper(meanwhile):
            response = client.post(url, admin_form(campaign, name="Renamed"))
        assert response.status_code == 200
        html = response.content.decode()
        assert "changed while this page was open" in html and "A preparing campaign cannot be edited." in html
        assert Campaign.objects.get(pk=campaign.pk).name == campaign.name
