"""The providers API: accounts with write-only credentials, senders, DLT templates with render and match."""

import json

import pytest
import requests

from providers.models import DltTemplate, ProviderAccount, Sender
from tests.concurrency import second_waits_on_first
from tests.factories import (
    CREDENTIALS,
    CampaignFactory,
    DltTemplateFactory,
    ProviderAccountFactory,
    SenderFactory,
    UserFactory,
    api_client_for,
)

pytestmark = pytest.mark.django_db

SECRET = "live-key-0123456789abcd"


@pytest.fixture
def api():
    return api_client_for(UserFactory(superuser=True))


class TestProviderAccounts:
    def test_credentials_are_accepted_but_only_ever_returned_masked(self, api):
        response = api.post(
            "/api/v1/provider-accounts/",
            {"kind": "octopush", "name": "Octo", "credentials": {"login": "me@x.com", "api_key": SECRET}},
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["credentials"] == {"api_key": "••••••abcd", "login": "••••••"}
        assert body["webhook_url"] == ProviderAccount.objects.get().webhook_url
        for response in (api.get("/api/v1/provider-accounts/"), api.get(f"/api/v1/provider-accounts/{body['id']}/")):
            assert SECRET not in json.dumps(response.json())
            assert "me@x.com" not in json.dumps(response.json())
        assert ProviderAccount.objects.get().credentials == {"login": "me@x.com", "api_key": SECRET}

    @pytest.mark.parametrize(
        ("kind", "given", "missing"),
        [
            ("octopush", {}, ["login", "api_key"]),
            ("octopush", {"api_key": SECRET}, ["login"]),
            ("mobtexting", {"api_key": "  "}, ["api_key"]),
            ("hyber", {"login": "me"}, ["api_key"]),
        ],
    )
    def test_an_account_added_without_what_its_vendor_signs_in_with_is_refused_on_credentials(
        self, api, kind, given, missing
    ):
        """The API saved it (201), as the admin's add page no longer does: it looked ready and failed its first test
        and every send ("The account has no 'login' credential")."""
        payload = {"kind": kind, "name": "New", "credentials": given}
        if kind == "hyber":
            payload["options"] = {"client_id": "c1"}
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 400, response.json()
        said = response.json()["credentials"]
        assert [line.split(":")[0] for line in said] == missing
        assert not ProviderAccount.objects.exists()
        payload["credentials"] = CREDENTIALS[kind]
        assert api.post("/api/v1/provider-accounts/", payload, format="json").status_code == 201

    @pytest.mark.parametrize(
        ("kind", "currency"), [("mobtexting", "INR"), ("octopush", "EUR"), ("devino", "RUB"), ("hyber", "UAH")]
    )
    def test_an_account_added_without_a_currency_prices_in_its_vendors(self, api, kind, currency):
        """Every new account was priced in INR, an Octopush one's estimates and costs too ("0.05 INR" a part)."""
        payload = {"kind": kind, "name": "New", "credentials": CREDENTIALS[kind], "options": {"client_id": "c1"}}
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["currency"] == currency
        account = ProviderAccount.objects.get()
        assert api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"currency": "usd"}).json()["currency"] == "USD"
        assert api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"currency": ""}).json()["currency"] == currency

    def test_an_existing_accounts_currency_is_kept_when_not_given(self, api):
        account = ProviderAccountFactory(kind="octopush", currency="INR")  # as one created before, in INR
        response = api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"rate_limit": 5})
        assert response.status_code == 200, response.json()
        assert response.json()["currency"] == "INR"

    def test_update_merges_credentials_and_ignores_a_written_webhook_url(self, api):
        account = ProviderAccountFactory(credentials={"login": "me", "api_key": "old-key"})
        url = f"/api/v1/provider-accounts/{account.pk}/"
        response = api.patch(url, {"credentials": {"api_key": "new-key-with-16ch", "login": ""}, "webhook_url": "x"})
        assert response.status_code == 200, response.json()
        account.refresh_from_db()
        assert account.credentials == {"login": "me", "api_key": "new-key-with-16ch"}
        assert response.json()["webhook_url"] == account.webhook_url

    def test_list_filter_and_delete(self, api):
        ProviderAccountFactory(kind="hyber")
        doomed = ProviderAccountFactory(kind="devino")
        assert api.get("/api/v1/provider-accounts/?kind=hyber").json()["count"] == 1
        assert api.get("/api/v1/provider-accounts/?channel=sms").json()["count"] == 2
        assert api.delete(f"/api/v1/provider-accounts/{doomed.pk}/").status_code == 204

    def test_boolean_and_channel_filters_refuse_unknown_values(self, api):
        active, inactive = ProviderAccountFactory(is_active=True), ProviderAccountFactory(is_active=False)
        assert [row["id"] for row in api.get("/api/v1/provider-accounts/?is_active=0").json()["results"]] == [
            inactive.pk
        ]
        assert [row["id"] for row in api.get("/api/v1/provider-accounts/?is_active=yes").json()["results"]] == [
            active.pk
        ]
        for query, parameter in [("is_active=maybe", "is_active"), ("channel=bogus", "channel")]:
            response = api.get(f"/api/v1/provider-accounts/?{query}")
            assert response.status_code == 400
            assert list(response.json()) == [parameter]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"kind": "pigeon", "name": "A"}, "kind"),
            ({"kind": "mobtexting", "name": "A", "channels": ["fax"]}, "channels"),
            ({"kind": "octopush", "name": "A", "channels": ["sms", "viber"]}, "channels"),
            ({"kind": "mobtexting", "name": "A", "credentials": ["key"]}, "credentials"),
            ({"kind": "mobtexting", "name": "A", "rate_limit": -1}, "rate_limit"),
            ({"kind": "mobtexting", "name": "A", "options": {"client_id": "a\x00"}}, "options"),
            # a key that cannot go in an HTTP header: refused when saved, not at the first send
            ({"kind": "mobtexting", "name": "A", "credentials": {"api_key": "KEY-0123\nSECRET-4567"}}, "credentials"),
            (
                {"kind": "octopush", "name": "A", "credentials": {"login": "me@x.com\t", "api_key": "k\x7f"}},
                "credentials",
            ),
        ],
    )
    def test_bad_input_is_400_naming_the_field(self, api, payload, field):
        response = api.post("/api/v1/provider-accounts/", payload)
        assert response.status_code == 400
        assert field in response.json()

    def test_a_window_saved_before_windows_were_checked_does_not_refuse_another_edit(self, api):
        account = ProviderAccountFactory(kind="octopush")
        window = {"start": "08:00", "end": "20:30", "tz": "Europe/Paris", "comment": "CNIL"}
        ProviderAccount.objects.filter(pk=account.pk).update(options={"promo_window": window})
        assert api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"name": "Renamed"}).status_code == 200
        options = {"promo_window": {**window, "comment2": "typo"}}
        response = api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"options": options}, format="json")
        assert "unknown key 'comment'" in response.json()["options"][0]  # a changed window is checked whole
        response = api.patch(
            f"/api/v1/provider-accounts/{account.pk}/", {"options": {"promo_window": {}}}, format="json"
        )
        assert response.status_code == 200  # empty: the kind's window

    @pytest.mark.parametrize("end", ["24:00", "00:00", "02:00"])
    def test_a_promotional_window_may_run_to_or_past_midnight(self, api, end):
        window = {"start": "10:00", "end": end, "tz": "Europe/Paris"}
        payload = {"kind": "octopush", "name": "A", "options": {"promo_window": window},
                   "credentials": CREDENTIALS["octopush"]}  # fmt: skip
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 201, response.json()

    @pytest.mark.parametrize(
        ("window", "said"),
        [
            ({"start": "9:00", "end": "21:00"}, "start must be a time of day"),
            ({"start": "09:00"}, "end must be a time of day"),
            ("09:00-21:00", "give an object"),
            ({"start": "09:00", "end": "21:00", "tz": "Mars/Base"}, "tz must be a time zone"),
            ({"start": "21:00", "end": "21:00"}, "start and end must differ"),
            ({"start": "09:00", "end": "21:00", "days": [7]}, "days must be a list of weekdays"),
            ({"start": "09:00", "end": "21:00", "weekdays": [1]}, "unknown key 'weekdays'"),
        ],
    )
    def test_a_promotional_window_the_launch_could_not_read_is_refused_on_options(self, api, window, said):
        """Saved, it made every promotional estimate and launch on the account a 500."""
        payload = {"kind": "mobtexting", "name": "A", "options": {"promo_window": window},
                   "credentials": CREDENTIALS["mobtexting"]}  # fmt: skip
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 400
        assert said in response.json()["options"][0]
        assert not ProviderAccount.objects.exists()
        window = {"start": "10:00", "end": "20:00", "tz": "Europe/Paris", "days": [0, 1, 2, 3, 4]}
        payload["options"]["promo_window"] = window
        assert api.post("/api/v1/provider-accounts/", payload, format="json").status_code == 201

    @pytest.mark.parametrize("mode", ["hmac", "Bearer token", 1])
    def test_a_mobtexting_callback_auth_that_names_no_way_of_authenticating_is_refused_on_options(self, api, mode):
        """Saved, it made the webhook refuse every delivery report of the account (before, answer each 400)."""
        payload = {"kind": "mobtexting", "name": "A", "options": {"callback_auth": mode}}
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 400
        assert "callback_auth must be bearer or signature" in response.json()["options"][0]
        assert not ProviderAccount.objects.exists()
        for n, accepted in enumerate(("signature", " Signature", "bearer", "")):
            payload = {"kind": "mobtexting", "name": f"A{n}", "options": {"callback_auth": accepted},
                       "credentials": CREDENTIALS["mobtexting"]}  # fmt: skip
            assert api.post("/api/v1/provider-accounts/", payload, format="json").status_code == 201, accepted

    def test_an_octopush_sms_type_octopush_does_not_send_is_refused_on_options(self, api):
        """Saved, it paused every campaign of the account at its first frame."""
        payload = {"kind": "octopush", "name": "O", "options": {"sms_type": "premium"},
                   "credentials": CREDENTIALS["octopush"]}  # fmt: skip
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 400
        assert "sms_type must be sms_premium or sms_low_cost" in response.json()["options"][0]
        payload["options"]["sms_type"] = "sms_low_cost"
        assert api.post("/api/v1/provider-accounts/", payload, format="json").status_code == 201

    def test_an_account_saved_before_an_options_rule_can_still_be_switched_off(self, api):
        account = ProviderAccountFactory(kind="octopush", options={"sms_type": "premium"})  # saved before the rule

        response = api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"is_active": False}, format="json")

        assert response.status_code == 200, response.json()
        assert ProviderAccount.objects.get(pk=account.pk).is_active is False


def test_a_misspelt_credential_is_refused_not_stored_beside_the_real_one(api):
    """`{"credentials": {"apikey": "new"}}` was stored as a second secret and api_key went on unchanged: a key
    rotated that was not."""
    account = ProviderAccountFactory(kind="octopush", credentials={"login": "a@b.c", "api_key": "old"})
    url = f"/api/v1/provider-accounts/{account.pk}/"
    response = api.patch(url, {"credentials": {"apikey": "new"}}, format="json")
    assert response.status_code == 400
    assert response.json() == {"credentials": ["Unknown credential 'apikey'; Octopush takes login, api_key."]}
    account.refresh_from_db()
    assert account.credentials == {"login": "a@b.c", "api_key": "old"}
    assert api.patch(url, {"credentials": {"api_key": "new"}}, format="json").status_code == 200
    account.refresh_from_db()
    assert account.credentials == {"login": "a@b.c", "api_key": "new"}


def test_an_options_edit_that_drops_what_setup_stored_is_refused(api):
    """PATCH {"options": {...}} replaces the options: without task_id and trigger_id, which Devino's setup stored,
    the account's next frames failed at send time."""
    account = ProviderAccountFactory(
        kind="devino", credentials={"api_key": "k"}, options={"task_id": 7, "trigger_id": 9}
    )
    url = f"/api/v1/provider-accounts/{account.pk}/"
    window = {"start": "09:00", "end": "21:00", "tz": "Europe/Moscow", "days": [0, 1, 2, 3, 4]}

    response = api.patch(url, {"options": {"promo_window": window}}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "options": [
            "task_id and trigger_id would be lost: the account's setup stored them and sending needs them. Keep them "
            "in the options with your change."
        ]
    }
    account.refresh_from_db()
    assert account.options == {"task_id": 7, "trigger_id": 9}
    # one of them: "it"
    response = api.patch(url, {"options": {"task_id": 7}}, format="json")
    assert response.json()["options"] == [
        "trigger_id would be lost: the account's setup stored it and sending needs it. Keep it in the options with "
        "your change."
    ]

    kept = api.patch(url, {"options": {**api.get(url).json()["options"], "promo_window": window}}, format="json")
    assert kept.status_code == 200, kept.json()
    assert kept.json()["options"] == {"task_id": 7, "trigger_id": 9, "promo_window": window}


class TestSetup:
    """What a failed setup says, and on which field: the one to fix, or none when the vendor was not reached."""

    def test_a_vendor_that_cannot_be_reached_names_no_field_and_says_to_try_again(self, api):
        account = ProviderAccountFactory(kind="devino", base_url="http://127.0.0.1:9")  # nothing listens

        response = api.post(f"/api/v1/provider-accounts/{account.pk}/setup/")

        assert response.status_code == 400
        assert list(response.json()) == ["non_field_errors"]
        assert "could not be reached" in response.json()["non_field_errors"][0]

    def test_credentials_the_vendor_refuses_are_an_error_on_credentials(self, api, sandbox):
        requests.post(sandbox.url + "/_sandbox/devino/keys", json={"api_keys": ["the-real-key"]}, timeout=5)
        account = ProviderAccountFactory(
            kind="devino", base_url=sandbox.base_url("devino"), credentials={"api_key": "not-the-key"}
        )

        response = api.post(f"/api/v1/provider-accounts/{account.pk}/setup/")

        assert response.status_code == 400
        assert list(response.json()) == ["credentials"]
        assert "Devino OMNI refused the credentials" in response.json()["credentials"][0]

    def test_an_option_the_vendor_cannot_work_with_is_an_error_on_options(self, api, sandbox):
        account = ProviderAccountFactory(
            kind="devino", base_url=sandbox.base_url("devino"), options={"task_id": "twelve"}
        )

        response = api.post(f"/api/v1/provider-accounts/{account.pk}/setup/")

        assert response.status_code == 400
        assert list(response.json()) == ["options"]
        assert "task_id must be a whole number" in response.json()["options"][0]

    @pytest.mark.parametrize("kind", ["mobtexting", "devino"])
    def test_a_key_with_a_line_break_is_a_failed_check_and_a_setup_error_that_never_show_it(
        self, api, sandbox, caplog, kind
    ):
        """A key pasted with a line break inside cannot go in an HTTP header: the check and the setup say so on
        `credentials`, rather than a 500 whose logged traceback quoted the key."""
        account = ProviderAccountFactory(
            kind=kind, base_url=sandbox.base_url(kind), credentials={"api_key": "KEY-0123\nSECRET-4567"}
        )
        api.raise_request_exception = False

        check = api.post(f"/api/v1/provider-accounts/{account.pk}/test-connection/")
        setup = api.post(f"/api/v1/provider-accounts/{account.pk}/setup/")

        assert check.status_code == 200, check.content[:300]
        assert check.json()["ok"] is False
        assert "line break" in check.json()["message"]
        assert setup.status_code == 400, setup.content[:300]
        assert list(setup.json()) == ["credentials"]
        said = check.content.decode() + setup.content.decode() + caplog.text
        assert "SECRET-4567" not in said


class TestSenders:
    def test_the_country_is_written_and_filtered_as_a_contacts_is(self, api):
        account = ProviderAccountFactory()
        response = api.post("/api/v1/senders/", {"account": account.pk, "name": "UKSHOP", "country": "uk"})
        assert response.status_code == 201 and response.json()["country"] == "GB"
        refused = api.post("/api/v1/senders/", {"account": account.pk, "name": "NOWHERE", "country": "zz"})
        assert refused.status_code == 400 and list(refused.json()) == ["country"]
        SenderFactory(account=account, name="HERALD", country="IN")
        for typed in ("uk", "GB", "United Kingdom"):
            listed = api.get("/api/v1/senders/", {"country": typed}).json()["results"]
            assert [row["name"] for row in listed] == ["UKSHOP"], typed
        assert list(api.get("/api/v1/senders/", {"country": "Indai"}).json()) == ["country"]

    def test_crud(self, api):
        account = ProviderAccountFactory()
        response = api.post("/api/v1/senders/", {"account": account.pk, "name": "HERALD", "service": "t"})
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["service"], body["status"], body["channel"]) == ("T", "pending", "sms")
        url = f"/api/v1/senders/{body['id']}/"
        assert api.patch(url, {"status": "approved"}).json()["status"] == "approved"
        assert api.get(f"/api/v1/senders/?account={account.pk}").json()["count"] == 1
        duplicate = api.post("/api/v1/senders/", {"account": account.pk, "name": "HERALD"})
        assert duplicate.status_code == 400
        assert api.delete(url).status_code == 204
        assert not Sender.objects.exists()

    def test_a_name_the_account_has_already_is_a_400_naming_name(self, api):
        """It was under non_field_errors ("The fields account, channel, name must make a unique set."), where a tag's
        or a segment's taken name is on `name`."""
        account = ProviderAccountFactory(name="MOB")
        SenderFactory(account=account, name="HERALD")
        other = SenderFactory(account=account, name="HRSHOP")
        taken = {"name": ["The account 'MOB' has a sender named 'HERALD' on SMS already."]}

        response = api.post("/api/v1/senders/", {"account": account.pk, "name": "HERALD"})
        assert (response.status_code, response.json()) == (400, taken)
        response = api.patch(f"/api/v1/senders/{other.pk}/", {"name": "HERALD"})
        assert (response.status_code, response.json()) == (400, taken)
        assert Sender.objects.get(pk=other.pk).name == "HRSHOP"
        elsewhere = api.post("/api/v1/senders/", {"account": ProviderAccountFactory().pk, "name": "HERALD"})
        assert elsewhere.status_code == 201, elsewhere.json()

    def test_a_senders_account_cannot_change(self, api):
        """Its campaigns and templates are on its account; moved, a campaign could not even be renamed."""
        sender = SenderFactory()
        other = ProviderAccountFactory()
        response = api.patch(f"/api/v1/senders/{sender.pk}/", {"account": other.pk})
        assert response.status_code == 400
        assert list(response.json()) == ["account"]
        assert Sender.objects.get().account_id == sender.account_id
        assert api.patch(f"/api/v1/senders/{sender.pk}/", {"account": sender.account_id}).status_code == 200


class TestEveryProblemAtOnce:
    """A field that failed its own check (its type, its length) was told alone: what the account's or the sender's
    rules refused beside it, which the admin tells with it, came only in the next request, once the field was fixed."""

    def test_an_accounts_currency_too_long_is_told_with_its_settings_problems(self, api):
        account = ProviderAccountFactory(kind="hyber", currency="UAH")
        url = f"/api/v1/provider-accounts/{account.pk}/"
        response = api.patch(url, {"currency": "EURO", "rate_limit": 0, "options": {}}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "currency": ["Ensure this field has no more than 3 characters."],
            "rate_limit": ["Give a positive number of requests per second."],
            "options": ["The Hyber account needs the 'client_id' option (the number at the end of its API URL)."],
        }
        account.refresh_from_db()
        assert (account.currency, account.rate_limit, account.options) == ("UAH", 20.0, {"client_id": "test"})

    def test_a_new_accounts_field_errors_come_with_its_missing_credentials(self, api):
        payload = {"kind": "octopush", "name": "Octo", "currency": "EURO", "rate_limit": 0, "channels": "sms"}
        response = api.post("/api/v1/provider-accounts/", payload, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "currency": ["Ensure this field has no more than 3 characters."],
            "channels": ['Expected a list of items but got type "str".'],
            "rate_limit": ["Give a positive number of requests per second."],
            "credentials": [
                "login: Octopush needs its API login: the e-mail address of the Octopush account.",
                "api_key: Octopush needs its API key: octopush console → API & integrations.",
            ],
        }
        assert not ProviderAccount.objects.exists()

    def test_an_accounts_new_kind_is_told_with_why_the_rest_was_not_checked(self, api):
        """A kind it cannot have is told alone (the other fields are for the other vendor), and a rate limit of 0
        beside it was told nothing at all: the 400 now says the other fields were not checked against a vendor."""
        account = ProviderAccountFactory(kind="mobtexting")
        response = api.patch(
            f"/api/v1/provider-accounts/{account.pk}/", {"kind": "octopush", "rate_limit": 0}, format="json"
        )
        assert (response.status_code, response.json()) == (400, {"kind": [
            "An account's kind cannot change; create another account instead (the other fields were checked for "
            "their type and length only, not against a vendor's rules)."
        ]})  # fmt: skip
        account.refresh_from_db()
        assert (account.kind, account.rate_limit) == ("mobtexting", 20.0)
        # the kind alone: no word of other fields it never sent
        response = api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"kind": "devino"}, format="json")
        assert response.json() == {"kind": ["An account's kind cannot change; create another account instead."]}

    def test_an_account_of_no_kind_is_told_only_that(self, api):
        response = api.post("/api/v1/provider-accounts/", {"kind": "pigeon", "name": "A", "rate_limit": 0})
        assert response.json() == {"kind": ['"pigeon" is not a valid choice.']}

    @pytest.mark.parametrize(
        ("country", "said"),
        [
            ("FRA", "Ensure this field has no more than 2 characters."),  # the field's own check
            ("ZZ", "Not a country: give its two-letter code (ISO 3166), e.g. IN, or leave it empty."),  # the sender's
        ],
    )
    def test_a_senders_bad_country_is_told_with_its_taken_name(self, api, country, said):
        account = ProviderAccountFactory(name="MOB")
        SenderFactory(account=account, name="HERALD")
        response = api.post("/api/v1/senders/", {"account": account.pk, "name": "HERALD", "country": country})
        assert response.status_code == 400
        assert response.json() == {
            "country": [said],
            "name": ["The account 'MOB' has a sender named 'HERALD' on SMS already."],
        }
        assert Sender.objects.count() == 1

    def test_a_templates_taken_dlt_id_is_told_with_a_sender_of_another_account(self, api):
        """The DLT template id, refused by its field, was told alone; the sender of another account, refused by the
        template's rules, came in the next request."""
        mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
        DltTemplateFactory(account=mumbai, dlt_template_id="1107000000000000001")
        theirs = SenderFactory(account=delhi, name="HRLDDL")
        payload = {
            "account": mumbai.pk, "name": "OTP", "dlt_template_id": "1107000000000000001", "body": "OTP {#var#}",
            "senders": [theirs.pk],
        }  # fmt: skip
        response = api.post("/api/v1/templates/", payload, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "dlt_template_id": ["A DLT template with this DLT template id already exists."],
            "senders": ["Not on this template's account: HRLDDL (Delhi)."],
        }
        assert DltTemplate.objects.count() == 1

    def test_a_templates_bad_body_is_told_with_a_sender_of_another_account(self, api):
        """Both pass their fields' own checks: the template's rules told the body, then the sender."""
        mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
        template = DltTemplateFactory(account=mumbai)
        theirs = SenderFactory(account=delhi, name="HRLDDL")
        response = api.patch(
            f"/api/v1/templates/{template.pk}/", {"body": "OTP {#var", "senders": [theirs.pk]}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "body": ["Unclosed or malformed variable near 'OTP {#var': write variables as {#var#} or {{name}}."],
            "senders": ["Not on this template's account: HRLDDL (Delhi)."],
        }


@pytest.mark.django_db(transaction=True)
def test_two_clients_adding_one_sender_at_once_the_second_gets_a_400_naming_name():
    """Both pass sender_check (neither sees the other's uncommitted sender); the database's unique constraint stops
    the second, whose 400 was under non_field_errors ("Sender with this Account, Channel and Name already exists.")
    where the check names `name`."""
    client = api_client_for(UserFactory(superuser=True))
    client.raise_request_exception = False  # a 500 is an answer too
    account = ProviderAccountFactory(name="MOB")
    answers = []

    def first_client():  # adds HERALD; its transaction stays open
        SenderFactory(account=account, name="HERALD")

    def second_client():
        answers.append(client.post("/api/v1/senders/", {"account": account.pk, "name": "HERALD"}, format="json"))

    second_waits_on_first(first_client, second_client, insert_into="providers_sender")

    assert (answers[0].status_code, answers[0].json()) == (
        400,
        {"name": ["The account 'MOB' has a sender named 'HERALD' on SMS already."]},
    )
    assert Sender.objects.count() == 1


def test_a_credential_the_vendor_needs_cannot_be_removed_from_a_saved_account(api):
    """`{"credentials": {"login": null}}` answered 200 and left Octopush without the login it signs in with: the
    account failed every send. A stray credential can still be removed, and one an older account lacks stays lacking
    without refusing its other changes."""
    account = ProviderAccountFactory(kind="octopush", credentials={"login": "ops@example.com", "api_key": "k"})
    answer = api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"credentials": {"login": None}}, format="json")
    assert answer.status_code == 400
    assert answer.json()["credentials"][0].startswith("login: Octopush needs its API login")
    account.refresh_from_db()
    assert account.credentials["login"] == "ops@example.com"
    older = ProviderAccountFactory(kind="octopush", credentials={"api_key": "k"})
    answer = api.patch(f"/api/v1/provider-accounts/{older.pk}/", {"rate_limit": 5}, format="json")
    assert answer.status_code == 200, answer.json()


def test_a_channel_the_account_lacks_is_named_as_people_write_it(api):
    """It said "does not have whatsapp enabled" (the stored value), where a taken name says "on SMS"."""
    account = ProviderAccountFactory(name="MOB", channels=["sms"])
    answer = api.post(
        "/api/v1/senders/", {"account": account.pk, "name": "HERALD", "channel": "whatsapp"}, format="json"
    )
    assert answer.json() == {"channel": ["The account 'MOB' does not have WhatsApp enabled."]}
    campaign = {"name": "c", "account": account.pk, "channel": "voice_sms", "text": "Hi"}
    answer = api.post("/api/v1/campaigns/", campaign, format="json")
    assert answer.json() == {"channel": ["MOB does not have Voice SMS enabled."]}


class TestTemplates:
    def test_crud_with_variables(self, api):
        account = ProviderAccountFactory()
        sender = SenderFactory(account=account)
        response = api.post(
            "/api/v1/templates/",
            {
                "name": "Order",
                "dlt_template_id": "1107000000000000077",
                "body": "Dear {#var#}, order {#var#} shipped.",
                "account": account.pk,
                "senders": [sender.pk],
                "type": "SE",
            },
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["variables"] == ["var1", "var2"]
        assert body["senders"] == [sender.pk]
        url = f"/api/v1/templates/{body['id']}/"
        assert api.patch(url, {"body": "Hi {{name}}"}).json()["variables"] == ["name"]
        assert api.get(f"/api/v1/templates/?sender={sender.pk}").json()["count"] == 1
        assert api.patch(url, {"body": "Hi {#var"}).json().keys() == {"body"}
        assert api.delete(url).status_code == 204
        assert not DltTemplate.objects.exists()

    def test_moving_a_template_to_another_account_takes_that_account_s_senders_with_it(self, api):
        """A template's senders must be on its account, as a create or a PATCH of `senders` is told; a PATCH of
        `account` alone moved it and kept the old account's senders: registered for a sender it cannot send with."""
        mumbai, delhi = ProviderAccountFactory(name="Mumbai"), ProviderAccountFactory(name="Delhi")
        ours, theirs = SenderFactory(account=mumbai, name="HERALD"), SenderFactory(account=delhi, name="HRLDDL")
        template = DltTemplateFactory(account=mumbai, senders=[ours])
        url = f"/api/v1/templates/{template.pk}/"

        response = api.patch(url, {"account": delhi.pk}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "account": ["Not on this template's account: HERALD (Mumbai). Give the senders of its new account with it."]
        }
        template.refresh_from_db()
        assert (template.account, list(template.senders.all())) == (mumbai, [ours])

        moved = api.patch(url, {"account": delhi.pk, "senders": [theirs.pk]}, format="json")
        assert moved.status_code == 200, moved.json()
        assert (moved.json()["account"], moved.json()["senders"]) == (delhi.pk, [theirs.pk])
        assert api.patch(url, {"name": "Renamed"}, format="json").status_code == 200

    def test_making_a_template_promotional_needs_promotional_senders(self, api):
        """A PATCH of `type` alone made a promotional template of a transactional header's, which DLT refuses."""
        account = ProviderAccountFactory(kind="mobtexting")
        template = DltTemplateFactory(account=account, senders=[SenderFactory(account=account, name="HERALD")])
        url = f"/api/v1/templates/{template.pk}/"

        response = api.patch(url, {"type": "P"}, format="json")

        assert (response.status_code, response.json()) == (400, {"type": [
            "HERALD is a transactional (service T) sender: a promotional template goes out from a promotional "
            "(service P, numeric) header only."
        ]})  # fmt: skip
        assert DltTemplate.objects.get().type == "T"
        numeric = SenderFactory(account=account, name="777777", service="P")
        moved = api.patch(url, {"type": "P", "senders": [numeric.pk]}, format="json")
        assert moved.status_code == 200, moved.json()

    def test_the_is_english_filter_takes_1_and_0_and_refuses_other_words(self, api):
        english, other = DltTemplateFactory(is_english=True), DltTemplateFactory(is_english=False)
        assert [row["id"] for row in api.get("/api/v1/templates/?is_english=1").json()["results"]] == [english.pk]
        assert [row["id"] for row in api.get("/api/v1/templates/?is_english=0").json()["results"]] == [other.pk]
        response = api.get("/api/v1/templates/?is_english=maybe")
        assert (response.status_code, list(response.json())) == (400, ["is_english"])

    def test_render_and_match(self, api):
        template = DltTemplateFactory(body="Your OTP is {#var#}. - Herald")
        url = f"/api/v1/templates/{template.pk}"
        response = api.post(f"{url}/render/", {"values": {"var": "123456"}})
        assert response.json() == {"text": "Your OTP is 123456. - Herald"}
        response = api.post(f"{url}/render/", {"values": {"var": "x" * 31}})
        assert response.status_code == 400
        assert "values" in response.json()
        response = api.post(f"{url}/render/", {"values": {"var": {"code": 1}}}, format="json")
        assert response.status_code == 400
        assert "'var' is not text" in response.json()["values"][0]
        response = api.post(f"{url}/match/", {"text": "Your OTP is 123456. - Herald"})
        assert response.json() == {"variables": {"var": "123456"}}
        response = api.post(f"{url}/match/", {"text": "Your PIN is 123456. - Herald"})
        assert response.status_code == 400
        assert "character 6" in response.json()["text"][0]

    def test_render_takes_variables_as_a_transactional_send_names_them(self, api):
        template = DltTemplateFactory(body="Your OTP is {#var#}. - Herald")
        url = f"/api/v1/templates/{template.pk}/render/"
        response = api.post(url, {"variables": {"var": "123456"}})
        assert (response.status_code, response.json()) == (200, {"text": "Your OTP is 123456. - Herald"})
        assert api.post(url, {"variables": ["4711"]}).json() == {"text": "Your OTP is 4711. - Herald"}
        response = api.post(url, {"variables": {"var": "x" * 31}})
        assert (response.status_code, list(response.json())) == (400, ["variables"])
        assert "31 characters" in response.json()["variables"][0]
        response = api.post(url, {"variables": "4711"})
        assert (response.status_code, list(response.json())) == (400, ["variables"])

    def test_render_still_takes_values_and_refuses_both_when_they_differ(self, api):
        template = DltTemplateFactory(body="Your OTP is {#var#}. - Herald")
        url = f"/api/v1/templates/{template.pk}/render/"
        assert api.post(url, {"values": {"var": "1"}}).json() == {"text": "Your OTP is 1. - Herald"}
        same = api.post(url, {"values": {"var": "1"}, "variables": {"var": "1"}})
        assert same.json() == {"text": "Your OTP is 1. - Herald"}
        response = api.post(url, {"values": {"var": "1"}, "variables": {"var": "2"}})
        assert (response.status_code, list(response.json())) == (400, ["values"])
        assert "give `variables` only" in response.json()["values"][0]
        response = api.post(url, {})
        assert (response.status_code, response.json()) == (400, {"variables": ["This field is required."]})

    def test_the_schema_documents_variables_and_values_as_deprecated(self, api):
        schema = api.get("/api/schema/?format=json").json()
        fields = schema["components"]["schemas"]["TemplateRenderRequest"]["properties"]
        assert set(fields) == {"variables", "values"}
        assert fields["values"].get("deprecated") is True
        assert not fields["variables"].get("deprecated")

    def test_render_needs_only_the_view_permission(self):
        template = DltTemplateFactory()
        client = api_client_for(UserFactory(permissions=["providers.view_dlttemplate"]))
        response = client.post(f"/api/v1/templates/{template.pk}/render/", {"values": ["1234"]})
        assert response.status_code == 200
        assert client.post("/api/v1/templates/", {}).status_code == 403


class TestDeletingWhatCampaignsUse:
    """A campaign keeps its account, sender and template (protected foreign keys): deleting one was a 500."""

    def test_a_sender_is_a_409_naming_the_campaigns(self, api):
        sender = SenderFactory()
        for name in ["Diwali sale", "Holi offer", "Onam greetings", "Pongal wishes"]:
            CampaignFactory(name=name, account=sender.account, sender=sender)

        response = api.delete(f"/api/v1/senders/{sender.pk}/")

        assert response.status_code == 409
        assert response.json() == {
            "detail": "This sender is used by 4 campaigns (Diwali sale, Holi offer, Onam greetings, …); "
            "delete or change them first."
        }
        assert Sender.objects.filter(pk=sender.pk).exists()

    def test_a_template_and_an_account_are_409s_too(self, api):
        campaign = CampaignFactory(name="Diwali sale", template=DltTemplateFactory())

        template = api.delete(f"/api/v1/templates/{campaign.template_id}/")
        account = api.delete(f"/api/v1/provider-accounts/{campaign.account_id}/")

        assert (template.status_code, account.status_code) == (409, 409)
        assert template.json()["detail"].startswith("This DLT template is used by 1 campaign (Diwali sale);")
        assert account.json()["detail"].startswith("This provider account is used by 1 campaign (Diwali sale);")

    def test_an_account_with_many_messages_is_a_409_counting_them_without_loading_them(self, api):
        """Django's own check loads every message of the account to name them (a million would take minutes and
        gigabytes); the answer counts them instead, through an index, and says over how many."""
        import tracemalloc

        from campaigns.models import Frame, Message

        campaign = CampaignFactory(name="Diwali sale")
        frame = Frame.objects.create(campaign=campaign, account=campaign.account, seq=1)
        Message.objects.bulk_create(
            Message(campaign=campaign, account=campaign.account, frame=frame, address=f"+9199{n:08d}")
            for n in range(20_000)
        )

        tracemalloc.start()
        try:
            response = api.delete(f"/api/v1/provider-accounts/{campaign.account_id}/")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert response.status_code == 409
        detail = response.json()["detail"]
        assert detail.startswith("This provider account is used by 1 campaign (Diwali sale) and 1 frame (frame 2 of ")
        assert detail.endswith(
            " and over 10,000 messages (+919900000000 (pending), +919900000001 (pending), +919900000002 (pending), …); "
            "delete those campaigns first (their messages and frames go with them). A message sent without a campaign "
            "(transactional) is kept as the record of what was sent: retire an account that sent one by deactivating "
            'it ("is_active": false), after which it sends nothing and still takes the delivery reports due.'
        )
        assert peak < 5_000_000, f"{peak:,} bytes at the peak"
        assert ProviderAccount.objects.filter(pk=campaign.account_id).exists()

    def test_an_account_that_sent_a_transactional_message_is_deactivated_instead_as_its_409_says(self, api):
        """Its 409 said to delete its messages first, which the API cannot: a transactional message has no campaign
        to go with. It now says to deactivate the account, which refuses every send through it and keeps its
        history."""
        from campaigns.models import Message
        from tests.factories import FrameFactory, MessageFactory

        account = ProviderAccountFactory(kind="octopush")
        frame = FrameFactory(campaign=None, account=account)
        sent = MessageFactory(campaign=None, contact=None, account=account, frame=frame, address="+33612345678")

        refused = api.delete(f"/api/v1/provider-accounts/{account.pk}/")
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith(
            f"This provider account is used by 1 frame (transactional frame {frame.pk} (pending))"
        )
        assert 'retire an account that sent one by deactivating it ("is_active": false)' in refused.json()["detail"]

        assert api.patch(f"/api/v1/provider-accounts/{account.pk}/", {"is_active": False}).status_code == 200
        send = api.post("/api/v1/messages/", {"account": account.pk, "to": "+33612345679", "text": "Your code is 4711"})
        assert send.status_code == 400
        assert send.json() == {"account": [f"The provider account {account.name} is not active."]}
        assert list(Message.objects.filter(account=account).values_list("pk", flat=True)) == [sent.pk]
        assert api.get(f"/api/v1/messages/{sent.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["octopush", "devino", "hyber"])
def test_a_client_that_may_only_view_accounts_never_gets_the_webhook_secret(kind):
    """With the webhook URL's secret a reader could post delivery reports and opt-outs for the account: it is
    masked for a client without the change permission, and given in full to one that may change the account."""
    account = ProviderAccountFactory(kind=kind)
    reader = api_client_for(UserFactory(permissions=["providers.view_provideraccount"]))
    for response in (reader.get("/api/v1/provider-accounts/"), reader.get(f"/api/v1/provider-accounts/{account.pk}/")):
        assert response.status_code == 200
        assert account.webhook_secret not in response.content.decode()
    url = reader.get(f"/api/v1/provider-accounts/{account.pk}/").json()["webhook_url"]
    assert url.endswith(f"/hooks/{kind}/{account.uuid}/?secret=••••••")

    editor = api_client_for(
        UserFactory(permissions=["providers.view_provideraccount", "providers.change_provideraccount"])
    )
    assert editor.get(f"/api/v1/provider-accounts/{account.pk}/").json()["webhook_url"] == account.webhook_url
