"""Providers admin: secrets are write-only (blank keeps), shown masked, never in clear; the webhook URL is shown."""

import re

import pytest

from providers.models import DltTemplate, ProviderAccount, Sender
from tests.concurrency import second_waits_on_first
from tests.factories import DltTemplateFactory, ProviderAccountFactory, SenderFactory, UserFactory, admin_client_for

pytestmark = pytest.mark.django_db

SECRET = "live-key-0123456789abcd"
LOGIN = "very-private-login@example.com"


@pytest.fixture
def client():
    return admin_client_for()


def account_form(**fields) -> dict:
    return {
        "kind": "octopush",
        "name": "Octo",
        "is_active": "on",
        "base_url": "",
        "login": "",
        "api_key": "",
        "options": "{}",
        "channels": ["sms"],
        "rate_limit": "20",
        "price_per_part": "0.045",
        "currency": "EUR",
        "senders-TOTAL_FORMS": "0",
        "senders-INITIAL_FORMS": "0",
        **fields,
    }


def test_adding_an_account_stores_the_typed_secrets(client):
    response = client.post("/admin/providers/provideraccount/add/", account_form(login=LOGIN, api_key=SECRET))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert ProviderAccount.objects.get().credentials == {"login": LOGIN, "api_key": SECRET}


def test_adding_an_account_without_the_credentials_its_vendor_needs_names_them_on_their_fields(client):
    """Saved without them, the account looked ready and failed its first test or send ("The account has no 'login'
    credential"); the add page also said "Leave blank to keep the current login" when nothing was stored."""
    html = client.get("/admin/providers/provideraccount/add/").content.decode()
    assert "keep the current" not in html
    assert "Octopush: API login (the e-mail address of the Octopush account)" in html
    response = client.post("/admin/providers/provideraccount/add/", account_form(api_key=SECRET))
    assert response.context["adminform"].form.errors == {
        "login": ["Octopush needs its API login: the e-mail address of the Octopush account."]
    }
    response = client.post("/admin/providers/provideraccount/add/", account_form(kind="mobtexting", currency="INR"))
    assert response.context["adminform"].form.errors == {
        "api_key": ["MOBtexting needs its API access token: developers → API Keys / Access Tokens."]
    }
    assert not ProviderAccount.objects.exists()
    response = client.post("/admin/providers/provideraccount/add/", account_form(kind="devino", api_key=SECRET))
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_an_account_added_with_no_currency_typed_prices_in_its_vendors(client):
    """The add page offered INR for every vendor: an Octopush account saved as it stood priced its texts in rupees."""
    page = client.get("/admin/providers/provideraccount/add/")
    assert page.context["adminform"].form["currency"].value() == ""
    assert "MOBtexting INR, Octopush EUR, Devino OMNI RUB, Hyber / GMS UAH." in page.content.decode()
    response = client.post(
        "/admin/providers/provideraccount/add/", account_form(login=LOGIN, api_key=SECRET, currency="")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert ProviderAccount.objects.get().currency == "EUR"
    devino = {key: value for key, value in account_form(kind="devino", name="D", api_key=SECRET).items()}
    del devino["currency"]  # a form that leaves it out altogether
    response = client.post("/admin/providers/provideraccount/add/", devino)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert ProviderAccount.objects.get(name="D").currency == "RUB"


def test_adding_a_hyber_account_without_its_client_id_is_an_error_on_the_options(client):
    """Saved without it, the account failed its first test and every send ("needs the 'client_id' option")."""
    form = account_form(kind="hyber", login=LOGIN, api_key=SECRET, currency="UAH")
    response = client.post("/admin/providers/provideraccount/add/", form)
    assert response.context["adminform"].form.errors == {
        "options": ["The Hyber account needs the 'client_id' option (the number at the end of its API URL)."]
    }
    assert not ProviderAccount.objects.exists()
    response = client.post("/admin/providers/provideraccount/add/", {**form, "options": '{"client_id": "1234"}'})
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_the_change_page_shows_secrets_masked_and_the_webhook_url(client):
    account = ProviderAccountFactory(kind="octopush", credentials={"login": LOGIN, "api_key": SECRET, "extra": "x"})
    html = client.get(f"/admin/providers/provideraccount/{account.pk}/change/").content.decode()
    assert SECRET not in html
    assert LOGIN not in html
    assert "••••••abcd" in html
    # Once, in the health panel with its Copy button (a "Delivery reports" fieldset showed it a second time).
    assert html.replace("&amp;", "&").count(f'<code class="webhook-url-top">{account.webhook_url}</code>') == 1
    assert html.count('class="webhook-url') == 1


def test_a_stored_secret_ending_in_markup_is_shown_as_text(client):
    """The end of a secret, shown under its field ("Current: ••••••abcd"), went into the page as HTML (the admin
    writes help texts unescaped): a key ending in "<!--" hid the rest of the account's page from everyone."""
    account = ProviderAccountFactory(kind="octopush", credentials={"login": LOGIN, "api_key": "live-key-0123<!--"})
    html = client.get(f"/admin/providers/provideraccount/{account.pk}/change/").content.decode()
    assert "Current: ••••••&lt;!--. Leave blank to keep it." in html
    assert "••••••<!--" not in html


def test_the_account_page_does_not_query_per_sender(client, django_assert_max_num_queries):
    """Its senders' table names each sender by its label, which reads the sender's account (Sender.__str__): a query
    per sender of the account."""
    account = ProviderAccountFactory()
    SenderFactory(account=account)
    url = f"/admin/providers/provideraccount/{account.pk}/change/"
    with django_assert_max_num_queries(20) as few:
        assert client.get(url).status_code == 200
    for _ in range(12):
        SenderFactory(account=account)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_a_dlt_templates_page_does_not_query_per_registered_sender(client, django_assert_max_num_queries):
    """Its senders' box shows each registered sender by its label, which reads the sender's account: a query per
    sender (8 queries with one, 18 with twelve)."""
    account = ProviderAccountFactory()
    template = DltTemplateFactory(account=account, senders=[SenderFactory(account=account)])
    url = f"/admin/providers/dlttemplate/{template.pk}/change/"
    with django_assert_max_num_queries(20) as few:
        assert client.get(url).status_code == 200
    template.senders.add(*[SenderFactory(account=account) for _ in range(11)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_blank_secret_inputs_keep_the_stored_values_and_other_keys(client):
    account = ProviderAccountFactory(kind="octopush", credentials={"login": LOGIN, "api_key": SECRET, "extra": "x"})
    form = account_form(name=account.name, api_key="replacement-key")
    del form["kind"]  # read-only once the account exists
    response = client.post(f"/admin/providers/provideraccount/{account.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.credentials == {"login": LOGIN, "api_key": "replacement-key", "extra": "x"}


def test_the_service_checks_run_on_the_form_with_the_error_on_the_field(client):
    response = client.post("/admin/providers/provideraccount/add/", account_form(max_recipients_per_request="100000"))
    assert response.status_code == 200
    assert "max_recipients_per_request" in response.context["adminform"].form.errors


def test_a_null_character_in_the_options_is_a_form_error_on_the_field(client):
    response = client.post(
        "/admin/providers/provideraccount/add/", account_form(login=LOGIN, api_key=SECRET, options='{"x": "\\u0000"}')
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"options": ["Null characters are not allowed."]}


def test_options_nested_too_deep_are_a_form_error_on_the_field(client):
    """900 levels were a 500 (RecursionError parsing them)."""
    typed = "[" * 900 + "]" * 900
    response = client.post(
        "/admin/providers/provideraccount/add/", account_form(login=LOGIN, api_key=SECRET, options=typed)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"options": ["Nested deeper than 64 levels."]}


def test_the_changelists_show_no_secret(client):
    ProviderAccountFactory(credentials={"login": LOGIN, "api_key": SECRET})
    html = client.get("/admin/providers/provideraccount/").content.decode()
    assert SECRET not in html and LOGIN not in html


def test_a_template_form_refuses_a_malformed_body_and_foreign_senders(client):
    account = ProviderAccountFactory()
    foreign = SenderFactory()
    template = DltTemplateFactory(account=account)
    form = {
        "name": template.name,
        "dlt_template_id": template.dlt_template_id,
        "type": "T",
        "status": "approved",
        "account": account.pk,
        "senders": [foreign.pk],
        "body": "OTP {#var",
        "is_english": "on",
    }
    response = client.post(f"/admin/providers/dlttemplate/{template.pk}/change/", form)
    assert "body" in response.context["adminform"].form.errors
    response = client.post(f"/admin/providers/dlttemplate/{template.pk}/change/", {**form, "body": "OTP {#var#}"})
    assert "senders" in response.context["adminform"].form.errors


@pytest.mark.parametrize("name", ["My Shop", "Shop!", "Hé", "ThisIsTooLong"])
def test_an_octopush_sender_octopush_would_refuse_is_an_error_on_its_name(client, name):
    """Octopush refuses (106) every message of a sender that is not 3 to 11 letters and digits: saved, such a sender
    looked ready and every campaign through it failed, message by message, at the vendor."""
    account = ProviderAccountFactory(kind="octopush")
    form = {"account": account.pk, "name": name, "channel": "sms", "status": "approved"}
    response = client.post("/admin/providers/sender/add/", form)
    assert response.context["adminform"].form.errors["name"] == [
        "Octopush takes a sender of 3 to 11 letters (a-z, A-Z) and digits, with no accent, space or punctuation."
    ]
    assert not account.senders.exists()
    assert client.post("/admin/providers/sender/add/", {**form, "name": "MyShop2"}).status_code == 302
    assert list(account.senders.values_list("name", flat=True)) == ["MyShop2"]


@pytest.mark.parametrize("name", ["herald2", "HERALD2", "SHOP", "HER-LD"])
def test_a_mobtexting_transactional_indian_sender_of_other_than_6_capitals_or_digits_is_an_error_on_its_name(
    client, name
):
    """MOBtexting (TRAI) refuses with 422 every message to India of a service T sender that is not 6 capitals or
    digits: 'herald2' was saved, looked ready and failed every message at the vendor."""
    account = ProviderAccountFactory(kind="mobtexting")
    form = {"account": account.pk, "name": name, "channel": "sms", "service": "T", "country": "IN",
            "status": "approved"}  # fmt: skip
    response = client.post("/admin/providers/sender/add/", form)
    assert response.context["adminform"].form.errors["name"] == [
        "A transactional (service T) sender ID for India is 6 capital letters or digits, e.g. HERALD (TRAI's rule: "
        "MOBtexting refuses every message sent through any other)."
    ]
    assert not account.senders.exists()
    # The rule is TRAI's, for Indian transactional headers: a foreign sender keeps its name (a promotional one has
    # a rule of its own, below).
    elsewhere = ProviderAccountFactory(kind="mobtexting")
    foreign = {**form, "account": elsewhere.pk, "country": "AE"}
    assert client.post("/admin/providers/sender/add/", foreign).status_code == 302
    assert client.post("/admin/providers/sender/add/", {**form, "name": "HRLD42"}).status_code == 302
    assert sorted(account.senders.values_list("name", "service")) == [("HRLD42", "T")]
    assert list(elsewhere.senders.values_list("name", "country")) == [(name, "AE")]


@pytest.mark.parametrize("name", ["HRLDPR", "77777", "7777777", "HERALD"])
def test_a_mobtexting_promotional_indian_sender_that_is_not_6_digits_is_an_error_on_its_name(client, name):
    """The seed: a promotional sender ID "is numeric and predetermined by the operator. For example, it could be
    777777", and promotions go out from a numeric header only. An alphabetic P header was saved and looked ready."""
    account = ProviderAccountFactory(kind="mobtexting")
    form = {"account": account.pk, "name": name, "channel": "sms", "service": "P", "country": "IN",
            "status": "approved"}  # fmt: skip
    response = client.post("/admin/providers/sender/add/", form)
    assert response.context["adminform"].form.errors["name"] == [
        "A promotional (service P) sender ID for India is the 6 digits the operator gives, e.g. 777777 (TRAI's rule: "
        "promotions go out from a numeric header only)."
    ]
    assert client.post("/admin/providers/sender/add/", {**form, "name": "777777"}).status_code == 302
    assert client.post("/admin/providers/sender/add/", {**form, "country": "AE"}).status_code == 302
    assert sorted(account.senders.values_list("name", "country")) == sorted([("777777", "IN"), (name, "AE")])


@pytest.mark.django_db(transaction=True)
def test_two_staff_adding_one_sender_at_once_the_second_gets_the_form_back_saying_why():
    """Both forms pass the check (neither sees the other's uncommitted sender); the database's unique constraint stops
    the second save, whose page comes back saying why (as it does for a name taken earlier), nothing of it saved, not
    a 500: the service answers that race with a refusal naming `name` (for the API), which the admin takes as it took
    the database's error, by handling the page once more."""
    client = admin_client_for()
    account = ProviderAccountFactory(name="MOB")
    answers = []

    def first_staff():  # adds HERALD; the transaction stays open
        SenderFactory(account=account, name="HERALD")

    def second_staff():
        form = {"account": account.pk, "name": "HERALD", "channel": "sms", "service": "T", "status": "approved"}
        answers.append(client.post("/admin/providers/sender/add/", form))

    second_waits_on_first(first_staff, second_staff, insert_into="providers_sender")

    assert answers[0].status_code == 200
    form = answers[0].context["adminform"].form
    assert form.errors == {"name": ["The account 'MOB' has a sender named 'HERALD' on SMS already."]}
    assert Sender.objects.count() == 1


def test_a_sender_form_tells_a_taken_name_on_its_field_with_the_other_problems_at_once(client):
    """The model's constraint said "Sender with this Account, Channel and Name already exists." under no field (the
    API's 400 says it on `name`), and a bad country beside it hid it until the country was fixed."""
    account = ProviderAccountFactory(name="MOB")
    SenderFactory(account=account, name="HERALD")
    form = {"account": account.pk, "name": "HERALD", "channel": "sms", "service": "T", "status": "approved"}

    page = client.post("/admin/providers/sender/add/", {**form, "country": "ZZ"})

    errors = page.context["adminform"].form.errors
    assert set(errors) == {"name", "country"}, errors
    assert errors["name"] == ["The account 'MOB' has a sender named 'HERALD' on SMS already."]
    assert Sender.objects.count() == 1


def test_a_template_form_tells_a_taken_dlt_id_with_a_sender_of_another_account_at_once(client):
    """The taken DLT template id was told alone: the sender of another account beside it came only once the id was
    fixed (the template's check ran only on a form without errors)."""
    mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
    DltTemplateFactory(account=mumbai, dlt_template_id="1107000000000000001")
    theirs = SenderFactory(account=delhi, name="HRLDDL")
    form = {"name": "OTP", "dlt_template_id": "1107000000000000001", "type": "T", "status": "approved",
            "account": mumbai.pk, "senders": [theirs.pk], "body": "OTP {#var#}", "is_english": "on"}  # fmt: skip

    response = client.post("/admin/providers/dlttemplate/add/", form)

    errors = response.context["adminform"].form.errors
    assert set(errors) == {"dlt_template_id", "senders"}, errors
    assert errors["senders"] == ["Not on this template's account: HRLDDL (Delhi)."]
    assert DltTemplate.objects.count() == 1


def test_a_template_form_refuses_a_sender_of_the_other_route_than_its_type(client):
    """A promotional template registered for a transactional header (or a service one for a numeric P header) was
    saved, offered in the composer and refused by DLT at sending (seed 001:9263, 9285)."""
    account = ProviderAccountFactory(kind="mobtexting")
    herald = SenderFactory(account=account, name="HERALD", service="T")
    numeric = SenderFactory(account=account, name="777777", service="P")
    form = {"name": "Sale", "dlt_template_id": "1107161234567890123", "type": "P", "status": "approved",
            "account": account.pk, "senders": [herald.pk, numeric.pk], "body": "Sale! {#var#} off", "is_english": "on"}  # fmt: skip

    response = client.post("/admin/providers/dlttemplate/add/", form)

    assert response.context["adminform"].form.errors["senders"] == [
        "HERALD is a transactional (service T) sender: a promotional template goes out from a promotional (service P, "
        "numeric) header only."
    ]
    response = client.post("/admin/providers/dlttemplate/add/", {**form, "type": "SE", "senders": [numeric.pk]})
    assert response.context["adminform"].form.errors["senders"] == [
        "777777 is a promotional (service P) sender: it carries promotional templates only, not service explicit ones."
    ]
    assert client.post("/admin/providers/dlttemplate/add/", {**form, "senders": [numeric.pk]}).status_code == 302
    assert (
        client.post(
            "/admin/providers/dlttemplate/add/",
            {**form, "dlt_template_id": "1107161234567890124", "type": "SE", "senders": [herald.pk]},
        ).status_code
        == 302
    )


def test_a_mobtexting_sender_saved_before_the_header_rule_does_not_block_its_account_page_until_renamed(client):
    """'herald2', saved before MOBtexting's header rule was checked, is named by the pre-flight; its account's page
    (which saves every sender it shows) can still be saved, and the sender switched to rejected, but a new name must
    keep the rule."""
    account = ProviderAccountFactory(kind="mobtexting", name="Mumbai", currency="INR")
    sender = Sender.objects.create(account=account, name="herald2", service="T", country="IN", status="approved")
    row = {"id": sender.pk, "account": account.pk, "name": "herald2", "channel": "sms", "service": "T",
           "country": "IN", "dlt_entity_id": "", "status": "approved"}  # fmt: skip

    def save_account(**changes):
        data = account_form(name="Mumbai", currency="INR", is_active="", **{
            "senders-TOTAL_FORMS": "1", "senders-INITIAL_FORMS": "1",
            **{f"senders-0-{field}": value for field, value in {**row, **changes}.items()},
        })  # fmt: skip
        del data["kind"]
        return client.post(f"/admin/providers/provideraccount/{account.pk}/change/", data)

    assert save_account().status_code == 302  # the account switched off, its sender as it was
    assert save_account(status="rejected").status_code == 302
    assert Sender.objects.get(pk=sender.pk).status == "rejected"
    response = save_account(name="herald3")
    assert response.status_code == 200
    assert (
        response.context["inline_admin_formsets"][0]
        .formset.errors[0]["name"][0]
        .startswith("A transactional (service T) sender ID for India is 6 capital letters or digits")
    )
    assert save_account(name="HERALD").status_code == 302
    sender.refresh_from_db()
    account.refresh_from_db()
    assert (sender.name, account.is_active) == ("HERALD", False)


def test_the_dlt_template_senders_search_offers_the_senders_of_the_account_chosen(client):
    """The senders' search box of a DLT template offered every account's senders, and a sender of another account was
    then refused on save; the page's script sends the account chosen, and the search keeps to its senders."""
    mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
    SenderFactory(account=mumbai, name="HERALD")
    SenderFactory(account=mumbai, name="HRLDPR", service="P")
    SenderFactory(account=delhi, name="HERALD")

    def offered(**params):
        query = {"app_label": "providers", "model_name": "dlttemplate", "field_name": "senders", "term": "", **params}
        response = client.get("/admin/autocomplete/", query)
        assert response.status_code == 200
        return sorted(row["text"] for row in response.json()["results"])

    assert offered(account=mumbai.pk) == [
        "HERALD (SMS on Mumbai; transactional, IN)", "HRLDPR (SMS on Mumbai; promotional, IN)",
    ]  # fmt: skip
    assert offered(account=delhi.pk, term="her") == ["HERALD (SMS on Delhi; transactional, IN)"]
    # No account chosen (a template from a DLT import has none), or no account id: every sender.
    assert len(offered()) == len(offered(account="x")) == 3
    assert offered(account="99999999999999999999") == []  # no such account: none, and no error
    page = client.get("/admin/providers/dlttemplate/add/").content.decode()
    assert "herald/dlt-template-admin.js" in page


def test_a_saved_dlt_template_keeps_its_senders_shown(client):
    account = ProviderAccountFactory(name="Mumbai")
    sender = SenderFactory(account=account, name="HERALD")
    template = DltTemplateFactory(account=account, senders=[sender])
    form = client.get(f"/admin/providers/dlttemplate/{template.pk}/change/").context["adminform"].form
    html = str(form["senders"])
    assert f'<option value="{sender.pk}" selected>HERALD (SMS on Mumbai; transactional, IN)</option>' in html


def test_deleting_a_template_or_a_sender_says_which_registrations_go_and_that_the_other_side_stays(client):
    """The delete page listed the link rows in Django's words ("Dlttemplate-sender relationship: DltTemplate_senders
    object (1)"), which read as if a sender went with the template."""
    account = ProviderAccountFactory(name="Mumbai")
    sender = SenderFactory(account=account, name="HERALD")
    template = DltTemplateFactory(account=account, name="OTP", senders=[sender])
    for url, says in [
        (f"/admin/providers/dlttemplate/{template.pk}/delete/", ["for the sender HERALD", "(the sender stays)"]),
        (
            f"/admin/providers/sender/{sender.pk}/delete/",
            ["Registration of the DLT template OTP", "(the template stays)"],
        ),
    ]:
        html = client.get(url).content.decode()
        assert "relationship" not in html
        assert "object (" not in html
        assert all(words in html for words in says), says
    assert client.post(f"/admin/providers/dlttemplate/{template.pk}/delete/", {"post": "yes"}).status_code == 302
    assert list(account.senders.values_list("name", flat=True)) == ["HERALD"]


def test_senders_of_one_name_on_several_accounts_are_told_apart_by_their_account(client):
    """A template without an account (as a DLT import leaves it) may be registered for HERALD on two accounts: the
    list read "HERALD, HERALD", and the form refused "Not on this template's account: HERALD." without saying which
    HERALD was wrong."""
    mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
    ours, theirs = SenderFactory(account=mumbai, name="HERALD"), SenderFactory(account=delhi, name="HERALD")
    DltTemplateFactory(account=None, name="OTP", senders=[ours, theirs])
    DltTemplateFactory(account=mumbai, name="Offer", senders=[ours])
    html = client.get("/admin/providers/dlttemplate/").content.decode()
    assert sorted(re.findall(r"<td class=\"field-sender_names\">([^<]*)</td>", html)) == [
        "HERALD",
        "HERALD (Delhi), HERALD (Mumbai)",
    ]
    template = DltTemplateFactory(account=mumbai)
    form = {
        "name": template.name, "dlt_template_id": template.dlt_template_id, "type": "T", "status": "approved",
        "account": mumbai.pk, "senders": [ours.pk, theirs.pk], "body": template.body,
    }  # fmt: skip
    response = client.post(f"/admin/providers/dlttemplate/{template.pk}/change/", form)
    assert response.context["adminform"].form.errors["senders"] == ["Not on this template's account: HERALD (Delhi)."]


def test_the_sender_page_says_that_campaigns_send_only_through_an_approved_sender_and_who_approves_it(client):
    """A new sender is pending: the composer then refused it ("Sender HERALD is pending, not approved") and nothing
    on the sender's page said that staff set the status once the vendor approves, or that MOBtexting's come by sync."""
    html = client.get("/admin/providers/sender/add/").content.decode()
    assert "Campaigns send only through an approved sender" in html
    assert "syncs its senders" in html and "statuses from MOBtexting" in html


def test_deleting_an_account_campaigns_still_use_lists_them_counted_and_deletes_nothing(client):
    """The delete page names what still uses the account, counted, instead of Django's list of every message."""
    from campaigns.models import Message
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(name="Diwali sale")
    Message.objects.bulk_create(
        Message(campaign=campaign, account=campaign.account, address=f"+9199{n:08d}") for n in range(12)
    )
    url = f"/admin/providers/provideraccount/{campaign.account_id}/delete/"

    html = client.get(url).content.decode()

    assert f"{campaign.account}: 1 campaign (Diwali sale)" in html
    assert f"{campaign.account}: 12 messages (" in html and html.count("+9199") == 3  # three named, not twelve
    assert client.post(url, {"post": "yes"}).status_code == 200  # refused: the page again
    assert ProviderAccount.objects.filter(pk=campaign.account_id).exists()


def test_deleting_an_account_that_sent_a_transactional_message_says_to_deactivate_it_instead(client):
    """No page deletes a transactional message, so "delete them first" led nowhere: the page says to untick Active."""
    from tests.factories import FrameFactory, MessageFactory

    account = ProviderAccountFactory()
    MessageFactory(campaign=None, contact=None, account=account, frame=FrameFactory(campaign=None, account=account))

    html = client.get(f"/admin/providers/provideraccount/{account.pk}/delete/").content.decode()

    assert f"{account}: 1 message (" in html
    assert "to stop using an account that sent one, untick Active on its page instead" in html


def test_deleting_an_account_nothing_uses_takes_its_senders_with_it(client):
    account = ProviderAccountFactory()
    SenderFactory(account=account)

    assert client.post(f"/admin/providers/provideraccount/{account.pk}/delete/", {"post": "yes"}).status_code == 302

    assert not ProviderAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize("kind", ["octopush", "devino", "hyber"])
def test_staff_who_may_only_view_an_account_never_see_its_webhook_secret(kind):
    """The secret in the webhook URL lets whoever holds it post delivery reports and opt-outs for the account:
    staff who may only look at the account see it masked; those who may change the account see it to copy."""
    from tests.factories import UserFactory

    account = ProviderAccountFactory(kind=kind)
    viewer = UserFactory(is_staff=True, permissions=["providers.view_provideraccount"])
    html = admin_client_for(viewer).get(f"/admin/providers/provideraccount/{account.pk}/change/").content.decode()
    assert f"/hooks/{kind}/{account.uuid}/" in html
    # Shown once, as the end of the URL (a field "Webhook key" showed it again under it).
    assert "Webhook key" not in html and ">Uuid:<" not in html
    assert account.webhook_secret not in html
    assert "secret=••••••" in html

    editor = UserFactory(
        is_staff=True, permissions=["providers.view_provideraccount", "providers.change_provideraccount"]
    )
    html = admin_client_for(editor).get(f"/admin/providers/provideraccount/{account.pk}/change/").content.decode()
    assert f'data-copy="{account.webhook_url}"' in html.replace("&amp;", "&")


def test_staff_who_may_only_view_accounts_cannot_filter_them_by_their_webhook_secret():
    """?webhook_secret__startswith= told whether an account's secret begins so: the secret spelt out, a character
    at a time, by staff who see it masked."""
    from tests.factories import UserFactory

    account = ProviderAccountFactory(kind="octopush")
    viewer = admin_client_for(UserFactory(is_staff=True, permissions=["providers.view_provideraccount"]))
    for lookup in ("webhook_secret__startswith", "webhook_secret", "credentials__contains"):
        right, wrong = (
            viewer.get("/admin/providers/provideraccount/", {lookup: value})
            for value in (account.webhook_secret[:5], "zzzzz")
        )
        assert right.status_code == wrong.status_code == 400, lookup
    assert viewer.get("/admin/providers/provideraccount/", {"kind__exact": "octopush"}).status_code == 200


def test_a_key_typed_with_a_line_break_is_an_error_on_its_field_not_a_crash(client):
    response = client.post("/admin/providers/provideraccount/add/", account_form(api_key="live-key\n0123"))

    assert response.status_code == 200
    assert "line break" in str(response.context["adminform"].form.errors["api_key"])
    assert not ProviderAccount.objects.exists()


def test_deleting_an_account_with_many_unmatched_reports_summarises_them_and_deletes(client):
    """Delivery reports nobody matched go with their account; the delete page counts them rather than listing each
    (Django's list loads them all, and, the reports being read-only records, refused the delete outright)."""
    from campaigns.models import StatusEvent
    from tests.factories import StatusEventFactory

    account = ProviderAccountFactory(name="Old Octo")
    SenderFactory(account=account)
    StatusEventFactory.create_batch(25, account=account)
    url = f"/admin/providers/provideraccount/{account.pk}/delete/"

    page = client.get(url)
    html = page.content.decode()

    assert page.status_code == 200 and "Old Octo" in html
    assert "25" in html and "status events" in html.lower() and html.count("pm-") == 0, "counted, not listed"
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not ProviderAccount.objects.filter(pk=account.pk).exists()
    assert not StatusEvent.objects.filter(account_id=account.pk).exists()


def test_deleting_an_account_needs_the_permission_to_delete_its_senders():
    """As Django's own delete page does: the senders go with the account, so deleting it needs their permission."""
    from tests.factories import UserFactory

    account = ProviderAccountFactory(name="Old Octo")
    SenderFactory(account=account)
    staff = UserFactory(
        is_staff=True, permissions=["providers.view_provideraccount", "providers.delete_provideraccount"]
    )
    url = f"/admin/providers/provideraccount/{account.pk}/delete/"

    html = admin_client_for(staff).get(url).content.decode()

    assert "Cannot delete provider account" in html and "<li>sender</li>" in html
    assert admin_client_for(staff).post(url, {"post": "yes"}).status_code == 403
    assert ProviderAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize("via", ["admin", "account page", "api"])
def test_renaming_a_sender_keeps_the_opt_outs_from_it_so_those_people_are_not_messaged_under_its_new_name(client, via):
    """A sender-scoped opt-out names its sender: renamed alone, the sender left its opt-outs naming the old name, and
    its next campaign messaged everyone who had opted out of it. The old name's opt-outs stay too: another account's
    HERALD still sends under that name."""
    from django.db import connection

    from contacts.audience import AudienceSpec, audience_rows_sql
    from contacts.models import Unsubscriber
    from tests.factories import ContactFactory, UnsubscriberFactory, UserFactory, api_client_for

    ours, theirs = (
        SenderFactory(name="HERALD", account=ProviderAccountFactory(kind="octopush")),
        SenderFactory(name="HERALD"),
    )
    ours.country, ours.service = "FR", ""
    ours.save()
    asha, ravi = ContactFactory(phone="+919812345678"), ContactFactory(phone="+919812345679")
    UnsubscriberFactory(address=asha.phone, scope="sender", value="Herald", reason="STOP")
    UnsubscriberFactory(address=ravi.phone, scope="sender", value="herald")
    UnsubscriberFactory(address=ravi.phone, scope="sender", value="hrldin")  # already out of the new name

    if via == "admin":
        form = {
            "account": ours.account_id, "name": "HRLDIN", "channel": "sms", "dlt_entity_id": ours.dlt_entity_id,
            "dlt_entity_name": "", "country": "FR", "service": "", "status": "approved", "remote_id": "",
        }  # fmt: skip
        response = client.post(f"/admin/providers/sender/{ours.pk}/change/", form)
        assert response.status_code == 302, response.context["adminform"].form.errors
    elif via == "account page":  # the senders' rows under the account
        form = account_form(
            name=ours.account.name, price_per_part="0.1", **{
                "senders-TOTAL_FORMS": "1", "senders-INITIAL_FORMS": "1", "senders-0-id": ours.pk,
                "senders-0-account": ours.account_id, "senders-0-name": "HRLDIN", "senders-0-channel": "sms",
                "senders-0-service": "", "senders-0-country": "FR", "senders-0-dlt_entity_id": ours.dlt_entity_id,
                "senders-0-status": "approved",
            },
        )  # fmt: skip
        response = client.post(f"/admin/providers/provideraccount/{ours.account_id}/change/", form)
        assert response.status_code == 302, response.context["adminform"].form.errors
    else:
        response = api_client_for(UserFactory(superuser=True)).patch(
            f"/api/v1/senders/{ours.pk}/", {"name": "HRLDIN"}, format="json"
        )
        assert response.status_code == 200, response.content

    assert sorted(Unsubscriber.objects.values_list("address", "value", "reason")) == [
        (asha.phone, "HRLDIN", "STOP"),
        (asha.phone, "Herald", "STOP"),
        (ravi.phone, "herald", ""),
        (ravi.phone, "hrldin", ""),
    ]
    for sender in (ours, theirs):
        sender.refresh_from_db()
        sql, params = audience_rows_sql(AudienceSpec(contact_ids=[asha.pk, ravi.pk], sender_name=sender.name))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT address, status FROM ({sql}) a ORDER BY address", params)
            assert cursor.fetchall() == [(asha.phone, "suppressed"), (ravi.phone, "suppressed")], sender.name


PREVIEW = "/admin/providers/dlttemplate/preview/"
BODY = "Dear {#var#}, your order {#var#} ships today. - Herald"


def test_a_dlt_templates_page_has_a_preview_of_what_its_body_makes(client):
    """Staff typing a body with {#var#} slots could not see the text a campaign would send, its parts, or which value
    DLT would refuse; the template's page (and the add page, for a body not saved yet) now has a preview panel."""
    template = DltTemplateFactory(body=BODY)

    for url in (f"/admin/providers/dlttemplate/{template.pk}/change/", "/admin/providers/dlttemplate/add/"):
        page = client.get(url).content.decode()
        assert f'id="dlt-preview" data-url="{PREVIEW}"' in page and "herald/dlt-template-admin.js" in page
        assert 'id="dlt-preview-text"' in page and 'name="dlt-preview' not in page  # nothing of it is saved


def test_the_preview_fills_a_body_with_sample_values_counts_the_parts_and_names_a_variable_over_30(client):
    long_name = "Venkata Subrahmanya Lakshminarayana"  # 35 characters
    answer = client.post(PREVIEW, {"body": BODY, "value:var1": long_name, "value:var2": "A-1024"}).json()

    assert answer["variables"] == ["var1", "var2"]
    assert answer["text"] == f"Dear {long_name}, your order A-1024 ships today. - Herald"
    assert answer["lengths"] == {"var1": 35, "var2": 6} and answer["matches"] is None
    assert answer["problems"] == [
        {"field": "var1", "message": "The value of 'var1' is 35 characters long; DLT allows at most 30."}
    ]
    assert answer["parts"] == {
        "encoding": "GSM-7", "length": 81, "parts": 1, "per_part": 160, "first_ucs2_char": "",
    }  # fmt: skip

    half = client.post(PREVIEW, {"body": BODY + " ₹" + "x" * 120, "value:var2": "A-1024"}).json()
    assert half["text"].startswith("Dear {#var#}, your order A-1024")  # a variable without a value keeps its slot
    assert half["problems"] == [{"field": "values", "message": "No value yet for 'var1'."}]
    assert (half["parts"]["encoding"], half["parts"]["parts"], half["parts"]["first_ucs2_char"]) == ("UCS-2", 3, "₹")


def test_the_preview_checks_a_campaigns_text_against_the_body_as_the_estimate_does(client):
    matched = client.post(PREVIEW, {"body": BODY, "text": "Dear {{first_name}}, your order 77 ships today. - Herald"})
    off = client.post(PREVIEW, {"body": BODY, "text": "Dear Asha, your order 77 ships tomorrow. - Herald"})
    too_long = client.post(PREVIEW, {"body": BODY, "text": f"Dear {'A' * 31}, your order 77 ships today. - Herald"})

    assert matched.json()["matches"] is True and matched.json()["problems"] == []
    assert matched.json()["values"] == {"var1": "{{first_name}}", "var2": "77"}
    # Contact variables stand for each recipient's values: not held to 30 characters as written, as in the estimate.
    written = "Dear Mr {{first_name}} {{last_name}}, your order {{order}} ships today. - Herald"
    assert client.post(PREVIEW, {"body": BODY, "text": written}).json()["problems"] == []
    assert off.json()["matches"] is False
    assert off.json()["problems"] == [
        {"field": "text", "message": "After the variable 'var2' (from character 23) the text should continue with "
         "' ships today. - Herald', which is not found."}
    ]  # fmt: skip
    assert too_long.json()["problems"] == [
        {
            "field": "text",
            "message": f"The variable 'var1' would be 31 characters ('{'A' * 31}'); DLT allows at most 30.",
        }
    ]


def test_the_preview_says_what_is_wrong_with_a_malformed_body_and_needs_the_template_permissions(client):
    answer = client.post(PREVIEW, {"body": "Hi {#var", "value:var": "x"}).json()
    assert answer == {
        "variables": [],
        "problems": [{"field": "body", "message": "Unclosed or malformed variable near 'Hi {#var': write variables "
                      "as {#var#} or {{name}}."}],
    }  # fmt: skip
    assert client.get(PREVIEW).status_code == 405

    stranger = admin_client_for(UserFactory(is_staff=True, permissions=["providers.view_sender"]))
    assert stranger.post(PREVIEW, {"body": BODY}).status_code == 403
    viewer = admin_client_for(UserFactory(is_staff=True, permissions=["providers.view_dlttemplate"]))
    assert viewer.post(PREVIEW, {"body": BODY}).status_code == 200


def test_an_account_form_sent_back_with_an_error_keeps_the_secrets_just_typed(client):
    """The login and key inputs came back empty after any error (a rate limit of 0), without a word: saved again as
    it stood, the account was refused for the credentials its vendor needs, which had been typed."""
    response = client.post(
        "/admin/providers/provideraccount/add/", account_form(login=LOGIN, api_key=SECRET, rate_limit="0")
    )
    form = response.context["adminform"].form
    assert form.errors == {"rate_limit": ["Give a positive number of requests per second."]}
    assert f'value="{LOGIN}"' in str(form["login"])
    assert f'value="{SECRET}"' in str(form["api_key"])


def test_an_account_edit_sent_back_with_an_error_shows_no_stored_secret(client):
    """Only what the person typed comes back: a stored secret is never put in the page, blank still keeps it."""
    account = ProviderAccountFactory(kind="octopush", credentials={"login": LOGIN, "api_key": SECRET})
    form = account_form(name=account.name, rate_limit="0")
    del form["kind"]  # read-only once the account exists
    url = f"/admin/providers/provideraccount/{account.pk}/change/"
    for page in (client.get(url), client.post(url, form)):
        html = page.content.decode()
        assert SECRET not in html
        assert LOGIN not in html
        assert 'name="api_key"' in html
        assert not re.search(r'<input[^>]*name="(login|api_key)"[^>]*value=', html)
    response = client.post(url, {**form, "api_key": "replacement-key"})
    assert 'value="replacement-key"' in str(response.context["adminform"].form["api_key"])
    assert SECRET not in response.content.decode()
    account.refresh_from_db()
    assert account.credentials == {"login": LOGIN, "api_key": SECRET}


def test_the_login_is_typed_in_a_text_input_and_the_key_in_a_password_one(client):
    """The Octopush login is its e-mail address, which no vendor treats as secret (CredentialField.secret): it was
    typed blind in a password input."""
    form = client.get("/admin/providers/provideraccount/add/").context["adminform"].form
    assert 'type="text"' in str(form["login"])
    assert 'type="password"' in str(form["api_key"])


def test_a_hyber_account_with_several_problems_names_them_all_at_once(client):
    """They came one a submit: the missing client_id, then (that fixed) the rate limit, then the currency, then the
    login and password, each of which could be told from the first submit."""
    form = account_form(kind="hyber", options="{}", rate_limit="0", currency="RUPEES")
    response = client.post("/admin/providers/provideraccount/add/", form)
    assert response.context["adminform"].form.errors == {
        "options": ["The Hyber account needs the 'client_id' option (the number at the end of its API URL)."],
        "rate_limit": ["Give a positive number of requests per second."],
        "currency": ["Ensure this value has at most 3 characters (it has 6)."],
        "login": ["Hyber / GMS needs its Login: HTTP Basic login from GMS's technical plan."],
        "api_key": ["Hyber / GMS needs its Password: HTTP Basic password from GMS's technical plan."],
    }
    assert not ProviderAccount.objects.exists()
