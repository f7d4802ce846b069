"""Send a test before launch (campaigns/services/send_test.py): through the sandbox over HTTP, the API and the admin."""

import json
import time

import pytest

from django.db import connection, connections
from django.urls import reverse

from campaigns.models import Campaign, CampaignTestSend, Message
from campaigns.services import campaign_launch, campaign_prepare, status_events_apply, status_events_store
from contacts.models import Contact
from providers.backends.base import StatusUpdate, UpdateKind
from providers.models import DltTemplate, ProviderAccount, Sender
from providers.sandbox.client import SandboxClient
from providers.services import provider_account_setup
from tests.factories import (
    CREDENTIALS,
    CampaignFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

DLT_ENTITY = "1101234567890123456"


def _account(sandbox, kind: str) -> ProviderAccount:
    """An account of `kind` on the sandbox with an approved sender (no reports reach Herald: they are applied by
    hand here)."""
    sandbox.configure(callbacks=False)
    account = ProviderAccount.objects.create(
        kind=kind, name=f"{kind} sandbox", base_url=sandbox.base_url(kind), credentials=dict(CREDENTIALS[kind]),
        channels=["sms"], rate_limit=1000,
    )  # fmt: skip
    SandboxClient(sandbox.url).console_settings(account)
    provider_account_setup(account=account)
    indian = kind == "mobtexting"
    Sender.objects.create(
        account=account, name="HERALD", service="T" if indian else "", status="approved",
        country="IN" if indian else "", dlt_entity_id=DLT_ENTITY if indian else "",
    )  # fmt: skip
    return account


def _campaign(account: ProviderAccount, contacts: list[Contact], text: str, **fields) -> Campaign:
    campaign = Campaign.objects.create(
        name="Autumn news", account=account, sender=account.senders.get(), text=text, **fields
    )
    campaign.contacts.set(contacts)
    return campaign


def _sent(sandbox, vendor: str) -> list[dict]:
    """The bodies of the sends the vendor took."""
    return [json.loads(r.body) for r in sandbox.state.requests if r.vendor == vendor and "send" in r.path]


def _delivered(account: ProviderAccount, message: Message) -> None:
    """The vendor's delivery report of `message`, stored and applied as a webhook's would be."""
    status_events_store(
        account=account,
        updates=[StatusUpdate(kind=UpdateKind.STATUS, raw_status="DELIVERED", status="delivered",
                              external_ref=str(message.external_ref))],
        source="webhook",
    )  # fmt: skip
    status_events_apply()


@pytest.fixture
def octopush(sandbox):
    return _account(sandbox, "octopush")


@pytest.fixture
def french(octopush):
    """Three French contacts, the campaign's audience."""
    return [
        Contact.objects.create(phone=f"+3361234567{n}", first_name=name, attributes={"city": city})
        for n, name, city in [(1, "Zoé", "Lyon"), (2, "Anne", "Paris"), (3, "Marc", "Nice")]
    ]


def test_a_test_goes_through_the_campaigns_account_filled_from_each_numbers_contact_or_the_first_recipient(
    octopush, french, sandbox
):
    """A number that is a contact gets its own fields; another number the first recipient's. Each is sent with the
    campaign's sender and name (Octopush's list_name), and answered with the vendor's ticket."""
    campaign = _campaign(octopush, french, "Bonjour {{first_name}} de {{city}}")
    api = api_client_for(UserFactory(superuser=True))
    response = api.post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+33 6 12 34 56 72", "+33699999999"]}, format="json"
    )
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [(r["to"], r["status"], r["text"], r["filled_from"]) for r in results] == [
        ("+33612345672", "submitted", "Bonjour Anne de Paris", french[1].pk),
        ("+33699999999", "submitted", "Bonjour Zoé de Lyon", french[0].pk),
    ]
    assert all(r["provider_message_id"].startswith("sms_") for r in results)
    assert results[0]["status_url"].endswith(f"/api/v1/messages/{results[0]['message']}/")
    bodies = _sent(sandbox, "octopush")  # sent side by side: in either order
    assert sorted((b["recipients"][0]["phone_number"], b["text"], b["sender"], b["list_name"]) for b in bodies) == [
        ("+33612345672", "Bonjour Anne de Paris", "HERALD", "Autumn news"),
        ("+33699999999", "Bonjour Zoé de Lyon", "HERALD", "Autumn news"),
    ]
    assert CampaignTestSend.objects.filter(campaign=campaign).count() == 2


def test_test_messages_never_count_in_the_campaign_nor_keep_its_launch_from_anyone(octopush, french, sandbox):
    """The tested contact still gets the campaign's own message at launch, and the counters know only those."""
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/test/", {"to": [french[0].phone]}, format="json")
    assert response.json()["results"][0]["status"] == "submitted"
    campaign.refresh_from_db()
    assert campaign.counters == {} and campaign.cost_actual == 0
    assert not Message.objects.filter(campaign=campaign).exists()
    campaign_launch(campaign_id=campaign.pk)
    campaign_prepare(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.counters == {"pending": 3}
    assert Message.objects.filter(campaign=campaign, contact=french[0], status="pending").exists()


def test_an_opted_out_number_is_answered_suppressed_and_not_sent(octopush, french, sandbox):
    UnsubscriberFactory(address="+33612345673", scope="all")
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    response = api.post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+33612345673", "+33612345671"]}, format="json"
    )
    results = response.json()["results"]
    assert [(r["to"], r["status"], r["reason"]) for r in results] == [
        ("+33612345673", "suppressed", "unsubscribed"),
        ("+33612345671", "submitted", ""),
    ]
    assert [b["recipients"][0]["phone_number"] for b in _sent(sandbox, "octopush")] == ["+33612345671"]


def test_a_refusal_by_the_vendor_is_answered_in_its_words(octopush, french, sandbox):
    sandbox.vendors["octopush"].control("account", {"api_login": octopush.credentials["login"], "balance": 0})
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    result = api.post(f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+33612345671"]}, format="json").json()
    (only,) = result["results"]
    assert only["status"] in ("rejected", "failed") and "out of credit" in only["reason"], only


def test_a_mobtexting_test_carries_the_campaigns_dlt_template_entity_and_service(sandbox):
    account = _account(sandbox, "mobtexting")
    template = DltTemplate.objects.create(
        account=account, name="greeting", dlt_template_id="1107000000000000042",
        body="Hello {#var#}, your code is {#var#}. - Herald",
    )  # fmt: skip
    template.senders.set([account.senders.get()])
    asha = Contact.objects.create(phone="+919812345678", first_name="Asha")
    campaign = _campaign(account, [asha], "Hello {{first_name}}, your code is 4711. - Herald", template=template)
    api = api_client_for(UserFactory(superuser=True))
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+919800000001"]}, format="json")
    (result,) = response.json()["results"]
    assert (result["status"], result["text"]) == ("submitted", "Hello Asha, your code is 4711. - Herald"), result
    (body,) = _sent(sandbox, "mobtexting")
    root = body.get("root", body)
    assert (root["template_id"], root["entity_id"], root["service"]) == ("1107000000000000042", DLT_ENTITY, "T")
    # A contact whose fields make a DLT variable over 30 characters: the campaign would fail them; the test says so.
    long = Contact.objects.create(phone="+919800000002", first_name="Maharajadhiraja Raghunatha Singh")
    response = api.post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+919800000001"], "contact": long.pk}, format="json"
    )
    assert response.status_code == 400 and "first_name is over 30 characters" in response.json()["contact"][0]
    assert len(_sent(sandbox, "mobtexting")) == 1


def test_a_report_reaches_the_test_message_and_not_the_campaign(octopush, french, sandbox):
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    (result,) = api.post(f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+33612345671"]}, format="json").json()[
        "results"
    ]
    message = Message.objects.get(pk=result["message"])
    _delivered(octopush, message)
    followed = api.get(result["status_url"]).json()
    assert (followed["status"], followed["campaign"], followed["test_of"]) == ("delivered", None, campaign.pk)
    assert api.get(f"/api/v1/messages/?campaign={campaign.pk}").json()["results"] == []
    campaign.refresh_from_db()
    assert campaign.counters == {}


def test_a_vendor_that_does_not_answer_holds_the_test_for_one_timeout_not_one_per_number(
    octopush, french, sandbox, settings
):
    """The numbers' requests wait for the vendor side by side: four numbers to a vendor that hangs are answered
    after one timeout, `pending` (a worker tries again), not after four."""
    settings.PROVIDER_HTTP_TIMEOUT = 1.0
    sandbox.configure(rate_timeout=1.0, hang_seconds=2.0)
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    started = time.monotonic()
    response = api.post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": [f"+3361234567{n}" for n in range(1, 5)]}, format="json"
    )
    took = time.monotonic() - started
    assert [r["status"] for r in response.json()["results"]] == ["pending"] * 4, response.json()
    assert took < 3.0, f"{took:.1f} s for four numbers: one vendor timeout each, in turn"


def test_only_a_draft_or_scheduled_campaign_with_a_sender_is_tested_and_a_wrong_number_is_named(
    octopush, french, sandbox
):
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    url = f"/api/v1/campaigns/{campaign.pk}/test/"
    response = api.post(url, {"to": ["+33612345671", "not a number"]}, format="json")
    assert response.status_code == 400 and "not a number" in response.json()["to"][0], response.json()
    response = api.post(url, {"to": [f"+3361234560{n}" for n in range(6)]}, format="json")
    assert response.status_code == 400 and "to" in response.json()
    # Without a sender the vendor's default would bring the test, from an ID the launch never uses (it refuses this).
    Campaign.objects.filter(pk=campaign.pk).update(sender=None)
    response = api.post(url, {"to": ["+33612345671"]}, format="json")
    assert response.status_code == 400 and response.json()["sender"] == ["Choose a sender ID."], response.json()
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENDING)
    response = api.post(url, {"to": ["+33612345671"]}, format="json")
    assert response.status_code == 400 and "draft or a scheduled" in response.json()["state"][0]
    # A launched campaign's prepare holds its row while it writes the messages (seconds a million recipients): a
    # test is refused at once, not after waiting for the prepare.
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PREPARING)
    prepare = connections.create_connection("default")
    prepare.set_autocommit(False)
    try:
        with prepare.cursor() as holding, connection.cursor() as own:
            holding.execute("SELECT id FROM campaigns_campaign WHERE id = %s FOR UPDATE", [campaign.pk])
            own.execute("SET lock_timeout = '2s'")  # waiting for the row fails the test, not hangs it
            response = api.post(url, {"to": ["+33612345671"]}, format="json")
            own.execute("RESET lock_timeout")
    finally:
        prepare.rollback()
        prepare.close()
    assert response.status_code == 400 and "A preparing campaign is not tested" in response.json()["state"][0]
    assert not _sent(sandbox, "octopush") and not Message.objects.exists()


def test_tests_are_limited_per_campaign_and_minute(octopush, french, sandbox, settings):
    settings.CAMPAIGN_TESTS_PER_MINUTE = 2
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    api = api_client_for(UserFactory(superuser=True))
    url = f"/api/v1/campaigns/{campaign.pk}/test/"
    for _ in range(2):
        assert api.post(url, {"to": ["+33612345671", "+33612345672"]}, format="json").status_code == 200
    response = api.post(url, {"to": ["+33612345671"]}, format="json")
    assert response.status_code == 429, response.json()
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert response.json()["detail"].endswith(f"the most it may be: try again in {wait} s."), response.json()
    settings.CAMPAIGN_TESTS_PER_MINUTE = 0  # no limit, as 0 is for the sign-in limits
    assert api.post(url, {"to": ["+33612345671"]}, format="json").status_code == 200
    assert len(_sent(sandbox, "octopush")) == 5


def test_sending_a_test_takes_the_permission_to_launch(octopush, french, sandbox):
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    viewer = UserFactory(permissions=["campaigns.view_campaign"])
    response = api_client_for(viewer).post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["+33612345671"]}, format="json"
    )
    assert response.status_code == 403
    assert not _sent(sandbox, "octopush")


def test_the_admin_sends_a_test_from_the_campaigns_page_and_shows_each_numbers_outcome(octopush, french, sandbox):
    """Staff go from the campaign's page to its test page, type a number and pick a contact, and see what became of
    each: sent with the vendor's id, or suppressed; later the delivery report."""
    UnsubscriberFactory(address="+33612345673", scope="all")
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    admin = admin_client_for()
    page = admin.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    url = reverse("admin:campaigns_campaign_test", args=[campaign.pk])
    assert f'href="{url}"' in page
    empty = admin.get(url).content.decode()
    assert "No test has been sent yet." in empty and "The first recipient is Zoé (+33612345671)." in empty
    response = admin.post(url, {"numbers": "+33 6 99 99 99 99", "contacts": [french[2].pk], "contact": french[1].pk})
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    page = admin.get(url).content.decode()
    assert "Test of “Autumn news” sent. +33699999999: submitted; +33612345673: suppressed (unsubscribed)." in page
    sent = Message.objects.get(address="+33699999999")
    assert sent.text == "Bonjour Anne" and sent.provider_message_id in page
    assert page.count('class="send-test-row"') == 2
    _delivered(octopush, sent)
    page = admin.get(url).content.decode()
    assert 'herald-status-delivered">Delivered' in page, page
    contact_page = admin.get(reverse("admin:contacts_contact_change", args=[french[2].pk])).content.decode()
    assert f'test of <a href="{url}">Autumn news</a>' in contact_page


def test_the_admin_test_page_names_what_stops_a_test_on_its_field(octopush, french, sandbox, settings):
    settings.CAMPAIGN_TESTS_PER_MINUTE = 1
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    admin = admin_client_for()
    url = reverse("admin:campaigns_campaign_test", args=[campaign.pk])
    form = admin.post(url, {"numbers": ""}).context["form"]
    assert form.errors == {"numbers": ["Type one to 5 numbers, or pick contacts."]}
    form = admin.post(url, {"numbers": "hello"}).context["form"]
    assert "hello" in form.errors["numbers"][0]
    assert admin.post(url, {"numbers": "+33612345671"}).status_code == 302
    form = admin.post(url, {"numbers": "+33612345671"}).context["form"]
    assert "tested 1 times in the last minute" in form.non_field_errors()[0]
    viewer = UserFactory(is_staff=True, permissions=["campaigns.view_campaign"])
    assert admin_client_for(viewer).get(url).status_code == 403
    page = admin_client_for(viewer).get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert url not in page.content.decode()
    assert len(_sent(sandbox, "octopush")) == 1


@pytest.mark.parametrize("field", ["contacts", "contact"])
def test_the_admin_test_page_refuses_a_contact_that_is_no_id_on_its_field_not_a_500(field):
    """A hand-made POST of a contact by its name was a 500: the contacts' search box looked it up as an id to show
    it again beside the form's error."""
    campaign = CampaignFactory(state="draft")
    url = reverse("admin:campaigns_campaign_test", args=[campaign.pk])
    response = admin_client_for().post(url, {"numbers": "", field: ["Zoé"]})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not CampaignTestSend.objects.exists()


def test_a_tester_who_may_not_view_contacts_gets_no_contacts_fields_in_the_text(octopush, french, sandbox):
    """As the estimate's sample: a number's own contact, the first recipient or a chosen contact would put someone's
    name in the text sent and answered to whom may launch the campaign but not view contacts."""
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    launcher = UserFactory(is_staff=True, permissions=["campaigns.view_campaign", "campaigns.change_campaign"])
    api = api_client_for(launcher)
    url = f"/api/v1/campaigns/{campaign.pk}/test/"

    chosen = api.post(url, {"to": ["+33699999999"], "contact": french[1].pk}, format="json")
    response = api.post(url, {"to": ["+33612345672", "+33699999999"]}, format="json")
    page = admin_client_for(launcher).get(reverse("admin:campaigns_campaign_test", args=[campaign.pk]))

    assert chosen.status_code == 400
    assert chosen.json() == {
        "contact": ["Filling the text from a contact's fields needs the permission to view contacts."]
    }
    assert response.status_code == 200, response.json()
    assert [(r["text"], r["filled_from"]) for r in response.json()["results"]] == [("Bonjour ", None)] * 2
    assert [s["text"] for s in _sent(sandbox, "octopush")] == ["Bonjour ", "Bonjour "]
    assert set(page.context["form"].fields) == {"numbers"}
    assert "Zoé" not in page.content.decode() and "The text&#x27;s variables stay empty" in page.content.decode()


def test_a_national_number_is_read_in_the_senders_country_else_in_the_default_region(octopush, french, sandbox):
    """A French campaign's 06 12 34 56 99 was read in the default region (IN) and refused as no number."""
    Sender.objects.filter(account=octopush).update(country="FR")
    campaign = _campaign(octopush, french, "Bonjour {{first_name}}")
    admin = admin_client_for()
    url = reverse("admin:campaigns_campaign_test", args=[campaign.pk])
    assert "read as numbers of France (the sender&#x27;s country)" in admin.get(url).content.decode()
    response = admin.post(url, {"numbers": "06 12 34 56 99"})
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    response = api_client_for(UserFactory(superuser=True)).post(
        f"/api/v1/campaigns/{campaign.pk}/test/", {"to": ["0612345698"]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert sorted(b["recipients"][0]["phone_number"] for b in _sent(sandbox, "octopush")) == [
        "+33612345698", "+33612345699",
    ]  # fmt: skip
    form = admin.post(url, {"numbers": "98123 45678"}).context["form"]
    assert form.errors["numbers"] == [
        "Not a phone number (E.164, or national of France (the sender's country)): 98123 45678."
    ], "an Indian number is not French; and an SMS campaign is sent to no e-mail address"

    Sender.objects.filter(account=octopush).update(country="")  # no country: the default region's (IN)
    assert "read as numbers of India (the default region)" in admin.get(url).content.decode()
    assert admin.post(url, {"numbers": "98123 45678"}).status_code == 302
    assert Message.objects.filter(address="+919812345678").exists()
