"""The campaign composer's endpoints: the approved senders of an account and channel, the templates of a sender,
the live estimate of an unsaved form, and saving through the services."""

import re
from datetime import timedelta

import pytest

from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import campaign_estimate
from campaigns.services.lifecycle import campaign_launch
from campaigns.services.prepare import campaign_prepare
from contacts.audience import AudienceSpec
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
    ProviderAccountFactory,
    SegmentFactory,
    SenderFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db

ESTIMATE = reverse("admin:campaigns_campaign_estimate")
SENDERS = reverse("admin:campaigns_campaign_senders")
TEMPLATES = reverse("admin:campaigns_campaign_templates")


@pytest.fixture
def client():
    return admin_client_for()


def staff(*permissions):
    """A staff member with only these permissions."""
    user = UserFactory(is_staff=True, permissions=list(permissions))
    return admin_client_for(user)


def form_data(account=None, **fields):
    """The composer's fields as the browser posts them (the add page)."""
    data = {
        "name": "Spring", "channel": "sms", "purpose": "transactional", "account": account.pk if account else "",
        "sender": "", "template": "", "text": "", "tags_operator": "any", "recurrence": "",
        "send_at_0": "", "send_at_1": "", "send_by_0": "", "send_by_1": "", "smooth_minutes": "", "frame_size": "",
    }  # fmt: skip
    for name, value in fields.items():
        data[name] = [v.pk if hasattr(v, "pk") else v for v in value] if isinstance(value, list) else value
        if hasattr(value, "pk"):
            data[name] = value.pk
    return data


@pytest.fixture
def setting():
    """An account with an approved DLT sender, a pending one, a sender of another account, and an audience."""
    account = ProviderAccountFactory(kind="mobtexting", price_per_part="0.25", currency="INR")
    sender = SenderFactory(account=account, name="HERALD")
    news = TagFactory(name="news")
    people = [ContactFactory(tags=[news], first_name=name) for name in ("Asha", "Ravi", "Meera")]
    UnsubscriberFactory(address=people[2].phone)
    return {"account": account, "sender": sender, "news": news, "people": people}


class TestSenders:
    def test_only_the_approved_senders_of_the_account_and_channel(self, client, setting):
        account = setting["account"]
        SenderFactory(account=account, name="PENDNG", status="pending")
        SenderFactory(account=account, name="VIBER1", channel="viber")
        SenderFactory(name="OTHERS")
        body = client.get(SENDERS, {"account": account.pk, "channel": "sms"}).json()
        assert [s["name"] for s in body["results"]] == ["HERALD"]
        assert set(body["results"][0]) == {"id", "name", "label", "service", "country", "dlt_entity_id"}

    def test_a_sender_reads_with_its_channel_account_and_route_not_codes(self, client, setting):
        # The composer offered "HERALD (service T, IN)": neither the channel nor the account, and a code to decode.
        account = setting["account"]
        SenderFactory(account=account, name="HRLDPR", service="P")
        octopush = SenderFactory(account__name="Octopush FR", name="Herald", service="", country="FR")
        body = client.get(SENDERS, {"account": account.pk, "channel": "sms"}).json()
        labels = [f"HERALD (SMS on {account.name}; transactional, IN)", f"HRLDPR (SMS on {account.name}; promotional, IN)"]  # fmt: skip
        assert [s["label"] for s in body["results"]] == labels
        assert [s["name"] for s in body["results"]] == ["HERALD", "HRLDPR"], "the name is the name"
        # The page's own choices (a saved campaign's) read the same, and so does the sender elsewhere in the admin.
        campaign = CampaignFactory(account=account, sender=setting["sender"])
        html = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
        assert f'<option value="{setting["sender"].pk}" selected>{labels[0]}</option>' in html
        assert str(octopush) == "Herald (SMS on Octopush FR; FR)"
        # MOBtexting's other product codes, as its API document names them ("S TransScrub SMS", "G Global SMS").
        assert str(SenderFactory(account=account, name="HRLDSV", service="S")).endswith("; service (TransScrub), IN)")
        assert str(SenderFactory(account=account, name="HRLDGL", service="G")).endswith("; global, IN)")

    @pytest.mark.parametrize("junk", ["x", "²"])  # "²": a digit to str.isdigit(), not a number to int() (a 500)
    def test_no_account_no_senders(self, client, junk):
        assert client.get(SENDERS, {"account": junk}).json() == {"results": []}
        assert client.get(TEMPLATES, {"sender": junk}).json() == {"results": []}

    def test_one_query_whatever_the_number_of_senders(self, client, setting, django_assert_max_num_queries):
        for n in range(10):
            SenderFactory(account=setting["account"], name=f"S{n}")
        with django_assert_max_num_queries(4):  # session, user, senders
            assert len(client.get(SENDERS, {"account": setting["account"].pk}).json()["results"]) == 11


class TestTemplates:
    def test_only_approved_templates_registered_for_the_sender_with_their_variables(self, client, setting):
        sender = setting["sender"]
        DltTemplateFactory(account=setting["account"], name="OTP", senders=[sender],
                           body="Hello {#var#}, code {#var#}. {{brand}}")  # fmt: skip
        DltTemplateFactory(account=setting["account"], name="Pending", senders=[sender], status="pending")
        DltTemplateFactory(account=setting["account"], name="Other sender", senders=[SenderFactory()])
        body = client.get(TEMPLATES, {"sender": sender.pk}).json()
        assert [(t["name"], t["variables"]) for t in body["results"]] == [("OTP", ["var1", "var2", "brand"])]
        assert body["results"][0]["body"] == "Hello {#var#}, code {#var#}. {{brand}}"


class TestEstimate:
    def test_an_unsaved_form_gets_audience_suppressions_parts_and_cost(self, client, setting):
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi {{first_name}}")
        body = client.post(ESTIMATE, data).json()
        assert (body["audience"], body["sendable"], body["suppressed"]) == (3, 2, {"unsubscribed": 1})
        assert (body["encoding"], body["parts"], body["cost"], body["currency"]) == ("GSM-7", 1, "0.50", "INR")
        assert body["text_sample"] == "Hi Asha"
        assert not Campaign.objects.exists(), "the estimate never saves"
        # MOBtexting to an Indian DLT sender needs a template: the one problem, on its field.
        assert [p["field"] for p in body["problems"]] == ["template"]
        assert body["ok"] is False

    def test_a_non_gsm_character_switches_to_ucs2_and_is_named(self, client, setting):
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Code 4711 ✓")
        body = client.post(ESTIMATE, data).json()
        assert (body["encoding"], body["ucs2_character"], body["ucs2_position"]) == ("UCS-2", "✓", 10)

    def test_a_promotional_send_deferred_to_the_window_says_when_in_its_zone_and_the_sites(self, client, setting):
        # 20:00 UTC is 01:30 in India: MOBtexting's promotional window (09:00 IST) opens at 03:30 UTC the day after.
        day = timezone.localdate() + timedelta(days=1)
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Sale",
                         purpose="promotional", send_at_0=f"{day:%Y-%m-%d}", send_at_1="20:00")  # fmt: skip
        body = client.post(ESTIMATE, data).json()
        assert body["deferred_until_display"] == f"{day + timedelta(days=1):%Y-%m-%d} 09:00 IST (03:30 UTC)"
        transactional = client.post(ESTIMATE, {**data, "purpose": "transactional"}).json()
        assert transactional["deferred_until"] is None and "deferred_until_display" not in transactional

    def test_every_problem_names_its_field(self, client):
        body = client.post(ESTIMATE, form_data(None)).json()
        assert body == {"empty": True, "ok": False, "problems": [{"field": "account", "message": "Choose a provider account."}],
                        "problems_heading": "Before you can launch", "ready": "Ready to launch."}  # fmt: skip
        account = ProviderAccountFactory(kind="octopush")
        body = client.post(ESTIMATE, form_data(account, send_by_0="2001-01-01", send_by_1="10:00")).json()
        fields = {p["field"] for p in body["problems"]}
        assert {"sender", "text", "tags", "send_by"} <= fields

    def test_a_sender_of_another_account_is_refused_in_words(self, client, setting):
        data = form_data(setting["account"], sender=SenderFactory(), tags=[setting["news"]], text="Hi")
        problems = {p["field"]: p["message"] for p in client.post(ESTIMATE, data).json()["problems"]}
        assert problems["sender"] == "Choose an approved sender of this account and channel."

    @pytest.mark.parametrize("junk", ["abc", "²"])  # "²": a digit to str.isdigit(), not a number to int()
    @pytest.mark.parametrize("field", ["account", "sender", "template"])
    def test_a_choice_that_is_no_id_is_no_choice_not_a_500(self, client, setting, field, junk):
        data = {
            **form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi"),
            field: junk,
        }
        response = client.post(ESTIMATE, data)
        assert response.status_code == 200
        assert field in {p["field"] for p in response.json()["problems"]}

    def test_unsaved_edits_of_a_saved_campaign(self, client, setting):
        campaign = CampaignFactory(account=setting["account"], sender=setting["sender"], tags=[setting["news"]])
        url = reverse("admin:campaigns_campaign_estimate", args=[campaign.pk])
        data = form_data(setting["account"], sender=setting["sender"], tags=[], segments=[SegmentFactory()],
                         text="Привет")  # fmt: skip
        body = client.post(url, data).json()
        assert body["encoding"] == "UCS-2"
        campaign.refresh_from_db()
        assert campaign.text == "Hello {{first_name}}" and list(campaign.tags.all()) == [setting["news"]]

    def test_the_estimate_runs_a_fixed_number_of_queries(self, client, setting, django_assert_max_num_queries):
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi {{first_name}}")
        with django_assert_max_num_queries(25) as few:
            client.post(ESTIMATE, data)
        for _ in range(30):
            ContactFactory(tags=[setting["news"]])
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert client.post(ESTIMATE, data).json()["sendable"] == 32

    def test_only_get_is_refused(self, client):
        assert client.get(ESTIMATE).status_code == 405


class TestPermissions:
    @pytest.mark.parametrize("url", [ESTIMATE, SENDERS, TEMPLATES])
    def test_anonymous_users_go_to_the_login_page(self, url):
        response = Client().post(url) if url == ESTIMATE else Client().get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    @pytest.mark.parametrize("url", [ESTIMATE, SENDERS, TEMPLATES])
    def test_staff_who_may_not_compose_are_refused(self, url):
        viewer = staff("campaigns.view_campaign")
        response = viewer.post(url) if url == ESTIMATE else viewer.get(url)
        assert response.status_code == 403

    def test_staff_who_may_add_campaigns_may_compose(self, setting):
        composer = staff("campaigns.add_campaign")
        assert composer.get(SENDERS, {"account": setting["account"].pk}).status_code == 200
        assert composer.post(ESTIMATE, form_data(setting["account"])).status_code == 200

    def test_the_text_sample_shows_a_contacts_fields_only_to_whom_may_view_contacts(self, setting):
        """The sample is the first recipient's text, their name in it: a composer who may not view contacts sees
        the text with its variables as written (and no character of a name pointed at), its parts still theirs."""
        setting["people"][0].first_name = "Аша"  # Cyrillic: the first recipient's text is UCS-2
        setting["people"][0].save()
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi {{first_name}}")
        composer = staff("campaigns.add_campaign")

        body = composer.post(ESTIMATE, data).json()
        page = composer.get(reverse("admin:campaigns_campaign_add")).content.decode()
        viewer = staff("campaigns.add_campaign", "contacts.view_contact").post(ESTIMATE, data).json()

        assert body["text_sample"] == "Hi {{first_name}}"
        assert (body["encoding"], body["length"], body["ucs2_character"], body["ucs2_position"]) == ("UCS-2", 6, "", -1)
        assert "Аша" not in str(body) and "As the first recipient gets it" not in page
        assert (viewer["text_sample"], viewer["ucs2_character"]) == ("Hi Аша", "А")
        assert {k: v for k, v in body.items() if not k.startswith(("text_sample", "ucs2"))} == {
            k: v for k, v in viewer.items() if not k.startswith(("text_sample", "ucs2"))
        }

    def test_the_estimate_of_a_saved_campaign_needs_the_change_permission(self, setting):
        campaign = CampaignFactory(account=setting["account"])
        url = reverse("admin:campaigns_campaign_estimate", args=[campaign.pk])
        assert staff("campaigns.add_campaign", "campaigns.view_campaign").post(url).status_code == 403
        user = UserFactory(is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="change_campaign"))
        assert admin_client_for(user).post(url, form_data(setting["account"])).status_code == 200


class TestComposerPage:
    def test_the_add_page_carries_the_composer_and_its_variables(self, client, setting):
        ContactFactory(attributes={"city": "Pune", "plan": "gold"})
        response = client.get(reverse("admin:campaigns_campaign_add"))
        config = response.context["composer_config"]
        assert config["estimate_url"] == ESTIMATE
        assert "first_name" in config["variables"]["fields"]
        assert config["variables"]["attributes"] == ["city", "plan"]
        # Each account's channels: the page offers only those of the account chosen.
        assert config["account_channels"] == {str(setting["account"].pk): setting["account"].channels}
        html = response.content.decode()
        assert 'id="estimate-panel"' in html and "herald/campaign-composer.js" in html
        assert 'name="_saveandlaunch"' in html

    def test_the_send_time_and_deadline_say_which_zone_they_are_typed_in(self, client, settings):
        """A person in Paris on a site whose clock is UTC typed 09:00 and it went at 10:00 their time: nothing on the
        page named the zone (Django's note says only how many hours the browser is from the server)."""
        settings.TIME_ZONE = "Europe/Paris"
        response = client.get(reverse("admin:campaigns_campaign_add"))
        assert "Empty: send when launched. In Europe/Paris time, the site's." in response.content.decode()
        form = response.context["adminform"].form
        assert form.fields["send_by"].help_text.endswith("In Europe/Paris time, the site's.")

    def test_the_sender_choices_follow_the_account(self, client, setting):
        SenderFactory(name="ELSEWHERE")
        campaign = CampaignFactory(account=setting["account"], sender=setting["sender"])
        form = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).context["adminform"].form
        assert [s.name for s in form.fields["sender"].queryset] == ["HERALD"]

    def test_saving_goes_through_the_services_and_save_and_launch_asks_to_confirm(self, client, setting):
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi", _saveandlaunch="1")  # fmt: skip
        response = client.post(reverse("admin:campaigns_campaign_add"), data)
        campaign = Campaign.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"])
        assert list(campaign.tags.all()) == [setting["news"]]
        assert campaign.created_by is not None and campaign.state == "draft"

    def test_a_sender_of_another_account_is_refused_on_its_field(self, client, setting):
        data = form_data(setting["account"], sender=SenderFactory(), text="Hi")
        response = client.post(reverse("admin:campaigns_campaign_add"), data)
        assert "sender" in response.context["adminform"].form.errors
        assert not Campaign.objects.exists()

    def test_a_sender_unapproved_meanwhile_is_refused_in_words_and_the_choices_are_kept(self, client, setting):
        """The sender chosen on the page was approved when it was chosen, and is not when the page is saved: the
        page comes back with that sender and its DLT template still chosen and the sender's field saying why; saved
        again as it stands, the template is still there (it used to come back emptied, to be chosen again)."""
        sender = setting["sender"]
        template = DltTemplateFactory(account=setting["account"], senders=[sender])
        data = form_data(setting["account"], sender=sender, template=template, tags=[setting["news"]],
                         text="Your OTP is 4711. Valid for 10 minutes. - Herald")  # fmt: skip
        sender.status = "pending"
        sender.save()

        def shown(response) -> dict:  # what each choice holds on the page that came back
            selects = re.findall(
                r'<select name="(sender|template)"[^>]*>(.*?)</select>', response.content.decode(), re.S
            )
            options = {name: re.findall(r'<option value="(\d*)"( selected)?', select) for name, select in selects}
            return {name: next((v for v, chosen in found if chosen), "") for name, found in options.items()}

        response = client.post(reverse("admin:campaigns_campaign_add"), data)
        errors = response.context["adminform"].form.errors
        assert list(errors) == ["sender"]
        assert errors["sender"] == [f"{sender.name} is not approved (pending): choose an approved sender of this account and channel."]  # fmt: skip
        assert shown(response) == {"sender": str(sender.pk), "template": str(template.pk)}
        again = client.post(reverse("admin:campaigns_campaign_add"), {**data, **shown(response)})
        assert list(again.context["adminform"].form.errors) == ["sender"]
        assert shown(again)["template"] == str(template.pk)
        assert not Campaign.objects.exists()

    def test_a_past_send_time_is_refused_on_its_field_and_what_was_typed_is_kept(self, client, setting):
        # A wrong year: launched, a campaign with this send time went out at once.
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi",
                         send_at_0="2020-01-01", send_at_1="10:00")  # fmt: skip
        response = client.post(reverse("admin:campaigns_campaign_add"), data)
        form = response.context["adminform"].form
        assert list(form.errors) == ["send_at"]
        assert "has passed: choose a later send time, or leave it empty" in form.errors["send_at"][0]
        assert 'value="2020-01-01"' in response.content.decode()
        assert not Campaign.objects.exists()
        # The live estimate says it too, on the field, before anyone saves.
        problems = client.post(ESTIMATE, data).json()["problems"]
        assert [p["message"] for p in problems if p["field"] == "send_at"] == form.errors["send_at"]
        # A recurring campaign may start from a past time (its first run goes out at launch); a later time is fine.
        later = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%d")
        for name, fields in (("Daily", {"recurrence": "daily"}), ("Tomorrow", {"send_at_0": later})):
            assert (
                client.post(reverse("admin:campaigns_campaign_add"), {**data, "name": name, **fields}).status_code
                == 302
            )
        # A saved send time that has passed since does not stop an edit of something else.
        campaign = Campaign.objects.get(name="Tomorrow")
        passed = timezone.localtime() - timedelta(minutes=5)
        Campaign.objects.filter(pk=campaign.pk).update(send_at=passed.replace(second=0, microsecond=0))
        edited = {**data, "name": "Renamed", "send_at_0": f"{passed:%Y-%m-%d}", "send_at_1": f"{passed:%H:%M}"}
        assert client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), edited).status_code == 302
        assert Campaign.objects.filter(name="Renamed").exists()
        # A recurring campaign made one that sends once keeps its start, long past: launched, it went out at once.
        daily = Campaign.objects.get(name="Daily")
        response = client.post(reverse("admin:campaigns_campaign_change", args=[daily.pk]), {**data, "recurrence": ""})
        assert "has passed" in response.context["adminform"].form.errors["send_at"][0]
        assert Campaign.objects.get(pk=daily.pk).recurrence == "daily"

    def test_a_send_time_of_the_current_minute_is_now_not_the_past(self, client, setting):
        # Typed to the minute, the time it is now ("17:05" at 17:05:40) was refused as passed; the API's clients
        # (an integrator's "now", a clock a few seconds behind) likewise. It sends at launch, as meant.
        now = timezone.localtime()
        data = form_data(setting["account"], sender=setting["sender"], tags=[setting["news"]], text="Hi",
                         send_at_0=f"{now:%Y-%m-%d}", send_at_1=f"{now:%H:%M}")  # fmt: skip
        response = client.post(reverse("admin:campaigns_campaign_add"), data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert Campaign.objects.get().send_at == now.replace(second=0, microsecond=0)
        api = api_client_for(UserFactory(superuser=True))
        moments_ago = (timezone.now() - timedelta(seconds=5)).isoformat()
        answer = api.post("/api/v1/campaigns/", {"name": "X", "account": setting["account"].pk, "send_at": moments_ago})
        assert answer.status_code == 201, answer.json()

    def test_a_saved_campaign_says_at_the_top_whether_it_waits_for_a_launch_or_its_send_time(self, client, setting):
        # Reopened, a scheduled campaign looked like a draft: its state was in the folded "Record" at the bottom.
        def state_line(campaign):
            html = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
            line = re.search(r'<p class="herald-state-line" id="campaign-state">(.*?)</p>', html, re.S)
            return " ".join(re.sub(r"<[^>]+>", " ", line.group(1)).split()) if line else None

        scheduled = CampaignFactory(account=setting["account"], state="scheduled",
                                    state_reason="Recurring; next run 2030-01-02 10:00 UTC.")  # fmt: skip
        assert state_line(scheduled) == "scheduled Recurring; next run 2030-01-02 10:00 UTC."
        assert state_line(CampaignFactory(account=setting["account"])) == "draft Nothing is sent until you launch it."
        assert client.get(reverse("admin:campaigns_campaign_add")).content.decode().count("campaign-state") == 0
        # Staff who may only view see no composer, and so saw no state line: a scheduled campaign looked a draft.
        viewer_html = (
            staff("campaigns.view_campaign")
            .get(reverse("admin:campaigns_campaign_change", args=[scheduled.pk]))
            .content.decode()
        )
        assert "Recurring; next run 2030-01-02 10:00 UTC." in viewer_html.split('id="campaign-state"')[1][:400]

    @pytest.mark.parametrize("junk", ["france", "²"])  # "²": a digit to str.isdigit(), not a number to int()
    def test_an_audience_value_that_is_no_id_is_refused_on_its_field_not_a_500(self, client, setting, junk):
        """A hand-made POST of a tag by its name was a 500: the tags' search box looked "france" up as an id to show
        it again beside the form's error."""
        campaign = CampaignFactory(account=setting["account"], sender=setting["sender"], tags=[setting["news"]])
        data = form_data(setting["account"], sender=setting["sender"], text="Hi", tags=[setting["news"], junk])
        response = client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), data)
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"tags": [f"“{junk}” is not a valid value."]}
        html = response.content.decode()
        assert f'<option value="{setting["news"].pk}" selected>news</option>' in html, "the valid choice is kept"
        assert list(Campaign.objects.get(pk=campaign.pk).tags.all()) == [setting["news"]], "nothing saved"

    def test_a_scheduled_campaigns_estimate_does_not_ask_to_launch_it(self, client, setting):
        """It said "Ready to launch." (and "Before you can launch") of a campaign launched already, which beat sends at
        its send time."""

        def panel(campaign=None):
            url = reverse("admin:campaigns_campaign_change", args=[campaign.pk]) if campaign else None
            html = client.get(url or reverse("admin:campaigns_campaign_add")).content.decode()
            ready = re.search(r'<p class="estimate-ready" data-estimate="ready" hidden>([^<]*)</p>', html).group(1)
            return ready, re.search(r'data-estimate="problems_box" hidden>\s*<h3[^>]*>([^<]*)</h3>', html).group(1)

        send_at = timezone.now() + timedelta(days=1)
        scheduled = CampaignFactory(account=setting["account"], state="scheduled", send_at=send_at)
        recurring = CampaignFactory(account=setting["account"], state="scheduled", send_at=send_at, recurrence="daily")
        assert panel(scheduled) == ("Ready: it is sent at its send time.", "Before it can be sent")
        assert panel(recurring) == ("Ready: a run is sent at each of its send times.", "Before it can be sent")
        assert panel(CampaignFactory(account=setting["account"])) == ("Ready to launch.", "Before you can launch")
        assert panel() == ("Ready to launch.", "Before you can launch"), "the add page"

    def test_the_pages_say_a_campaigns_times_as_the_launch_page_does(self, client, setting):
        # The list and the record read "Nov. 27, 2026, 10 a.m." (Django's default, no zone) where the launch page and
        # the state line say "2026-11-27 10:00 UTC".
        day = timezone.localdate() + timedelta(days=2)
        at = timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 10, 0))
        said = f"{day:%Y-%m-%d} 10:00 UTC"
        draft = CampaignFactory(account=setting["account"], name="Draft", send_at=at)
        sent = CampaignFactory(account=setting["account"], name="Sent", state="sending", send_at=at,
                               send_by=at + timedelta(hours=2), launched_at=at)  # fmt: skip

        listed = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
        assert re.findall(r'<td class="field-send_at_shown">([^<]*)</td>', listed) == [said, said]
        record = client.get(reverse("admin:campaigns_campaign_change", args=[sent.pk])).content.decode()
        readonly = re.findall(r'<div class="readonly">([^<]*)</div>', record)
        assert said in readonly and f"{day:%Y-%m-%d} 12:00 UTC" in readonly, "send at, launched at; send by"
        assert not any(re.search(r"\b(a\.m\.|p\.m\.|noon|midnight)", value) for value in readonly), readonly
        composer = client.get(reverse("admin:campaigns_campaign_change", args=[draft.pk])).content.decode()
        created = timezone.localtime(draft.created_at)
        assert f'<div class="readonly">{created:%Y-%m-%d %H:%M} UTC</div>' in composer, "its record, below the form"

    def test_staff_who_may_only_view_a_draft_read_its_times_as_everyone_does(self, setting):
        # The record (launched, created…) said "2026-11-27 10:00 UTC", but the send time and deadline, the composer's
        # fields, were shown to view-only staff by Django's read-only display: "Nov. 27, 2026, 10 a.m.", no zone.
        day = timezone.localdate() + timedelta(days=2)
        at = timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 10, 0))
        scheduled = CampaignFactory(account=setting["account"], state="scheduled", send_at=at,
                                    send_by=at + timedelta(hours=2))  # fmt: skip
        viewer = staff("campaigns.view_campaign")
        page = viewer.get(reverse("admin:campaigns_campaign_change", args=[scheduled.pk])).content.decode()
        readonly = re.findall(r'<div class="readonly">([^<]*)</div>', page)
        assert f"{day:%Y-%m-%d} 10:00 UTC" in readonly and f"{day:%Y-%m-%d} 12:00 UTC" in readonly, readonly
        assert not any(re.search(r"\b(a\.m\.|p\.m\.|noon|midnight)", value) for value in readonly), readonly

    def test_a_running_campaign_cannot_be_deleted(self, client):
        campaign = CampaignFactory(state="sending")
        assert client.get(reverse("admin:campaigns_campaign_delete", args=[campaign.pk])).status_code == 403
        done = CampaignFactory(state="completed")
        response = client.post(
            reverse("admin:campaigns_campaign_changelist"),
            {"action": "delete_selected", "_selected_action": [campaign.pk, done.pk], "post": "yes"},
        )
        html = response.content.decode()  # the confirmation page again, saying why, with no button
        assert "cancel them first" in html and f"{campaign.name} (sending)" in html and "Yes, I’m sure" not in html
        assert Campaign.objects.filter(pk__in=[campaign.pk, done.pk]).count() == 2

    def test_the_changelist_does_not_query_per_campaign(self, client, django_assert_max_num_queries):
        CampaignFactory(counters={"delivered": 5, "failed": 5})
        with django_assert_max_num_queries(20) as few:
            client.get(reverse("admin:campaigns_campaign_changelist"))
        for _ in range(15):
            CampaignFactory(counters={"pending": 3, "delivered": 1})
        with django_assert_max_num_queries(len(few.captured_queries)):
            html = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
        assert "50.0%" in html and '<progress max="100" value="25">' in html


def test_the_estimate_selector_takes_an_unsaved_campaign_and_its_audience(setting):
    campaign = Campaign(account=setting["account"], sender=setting["sender"], text="Hi {{first_name}}")
    estimate = campaign_estimate(campaign=campaign, audience=AudienceSpec(tag_ids=[setting["news"].pk]))
    assert (estimate.audience, estimate.sendable, estimate.suppressed) == (3, 2, {"unsubscribed": 1})
    assert campaign.pk is None


@pytest.mark.parametrize(
    "text",
    [
        "नमस्ते {{first_name}}, आपका ऑर्डर भेज दिया गया है और कल तक आपके पते पर पहुँच जाएगा। धन्यवाद!",  # UCS-2, 2 parts
        "Dear {{first_name}}, " + "our spring sale starts on Monday with twenty per cent off everything. " * 4,
    ],
    ids=["unicode", "four parts"],
)
def test_the_composers_estimate_is_what_launching_prepares(client, text):
    """Tags and a segment, an excluded tag, unsubscribers of two scopes: the figures the composer shows before
    saving are those of the messages written at launch."""
    account = ProviderAccountFactory(kind="octopush", price_per_part="0.045", currency="EUR")
    sender = SenderFactory(account=account, name="SHOP", country="FR")
    news, vip, staff_tag = TagFactory(name="news"), TagFactory(name="vip"), TagFactory(name="staff")
    people = [ContactFactory(tags=[news], first_name=f"Ana{n}") for n in range(4)]
    people += [ContactFactory(tags=[vip], first_name="Zoë"), ContactFactory(tags=[news, staff_tag])]
    UnsubscriberFactory(address=people[1].phone)
    UnsubscriberFactory(address=people[2].phone, scope="sender", value="SHOP")
    fields = {"sender": sender, "tags": [news], "segments": [SegmentFactory(positive_tags=[vip])],
              "excluded_tags": [staff_tag], "text": text, "purpose": "service"}  # fmt: skip

    shown = client.post(ESTIMATE, form_data(account, **fields)).json()
    client.post(reverse("admin:campaigns_campaign_add"), form_data(account, **fields))
    campaign = Campaign.objects.get()
    campaign_launch(campaign_id=campaign.pk)
    campaign_prepare(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert shown["problems"] == []
    assert (shown["audience"], shown["sendable"], shown["suppressed_total"]) == (5, 3, 2)
    assert campaign.audience_size == shown["audience"]
    assert campaign.counters == {"pending": shown["sendable"], "suppressed": shown["suppressed_total"]}
    assert (campaign.parts, campaign.encoding) == (shown["parts"], shown["encoding"])
    assert f"{campaign.cost_estimate:.2f}" == shown["cost"]
    assert shown["parts"] > 1
