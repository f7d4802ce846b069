"""Provider services: credentials merged write-only and shown masked, checks named by field."""

import pytest

from django.core.exceptions import ValidationError

from providers import services
from providers.models import ProviderAccount, Sender
from tests.factories import DltTemplateFactory, ProviderAccountFactory, SenderFactory

pytestmark = pytest.mark.django_db


class TestCredentials:
    def test_masked_shows_only_the_end_of_long_secrets(self):
        masked = services.credentials_masked({"login": "demo", "api_key": "abcdefgh3f9a", "empty": ""})
        assert masked == {"api_key": "••••••3f9a", "login": "••••••"}

    def test_merge_replaces_keeps_blank_and_removes_none(self):
        current = {"login": "old", "api_key": "key", "extra": "x"}
        merged = services.credentials_merge(current=current, changes={"login": "new", "api_key": "", "extra": None})
        assert merged == {"login": "new", "api_key": "key"}
        assert current == {"login": "old", "api_key": "key", "extra": "x"}  # not changed in place


class TestProviderAccount:
    def test_create_stores_credentials_and_normalises(self):
        account = services.provider_account_create(
            kind="octopush", name="Octo", credentials={"login": "a@b.c", "api_key": "k" * 20}, currency="eur"
        )
        account.refresh_from_db()
        assert account.credentials == {"login": "a@b.c", "api_key": "k" * 20}
        assert account.currency == "EUR"

    def test_update_keeps_secrets_not_given(self):
        account = ProviderAccountFactory(credentials={"api_key": "old-key", "login": "me"})
        services.provider_account_update(account=account, credentials={"api_key": "new-key"}, rate_limit=5)
        account = ProviderAccount.objects.get(pk=account.pk)
        assert account.credentials == {"api_key": "new-key", "login": "me"}
        assert account.rate_limit == 5

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"kind": "pigeon"}, "kind"),
            ({"channels": []}, "channels"),
            ({"channels": ["fax"]}, "channels"),
            ({"max_recipients_per_request": 100_000}, "max_recipients_per_request"),
            ({"rate_limit": 0}, "rate_limit"),
            ({"currency": "RUPEES"}, "currency"),
            ({"base_url": "not a url"}, "base_url"),
            ({"options": ["a"]}, "options"),
        ],
    )
    def test_create_refuses_bad_settings_naming_the_field(self, fields, field):
        with pytest.raises(ValidationError) as error:
            services.provider_account_create(**{"kind": "mobtexting", "name": "A", **fields})
        assert field in error.value.message_dict
        assert not ProviderAccount.objects.exists()

    def test_create_names_every_bad_setting_at_once(self):
        """They came one a request: fixed, the next field was refused, though each could be told from the first."""
        with pytest.raises(ValidationError) as error:
            services.provider_account_create(
                kind="hyber", name="H", channels=["fax"], rate_limit=0, currency="RUPEES", price_per_part=-1
            )
        assert error.value.message_dict == {
            "options": ["The Hyber account needs the 'client_id' option (the number at the end of its API URL)."],
            "channels": ["Unknown channel 'fax'; choose from sms, viber, whatsapp, rcs, push, email, voice_sms."],
            "rate_limit": ["Give a positive number of requests per second."],
            "price_per_part": ["A price cannot be negative."],
            "currency": ["Give a three-letter ISO currency code, e.g. UAH, or leave it empty for the vendor's."],
            "credentials": [  # with the settings, not once they are fixed
                "login: Hyber / GMS needs its Login: HTTP Basic login from GMS's technical plan.",
                "api_key: Hyber / GMS needs its Password: HTTP Basic password from GMS's technical plan.",
            ],
        }
        assert not ProviderAccount.objects.exists()

    def test_a_misspelt_credential_is_named_with_the_settings_and_the_models_own_errors(self):
        with pytest.raises(ValidationError) as error:
            services.provider_account_create(
                kind="octopush", name="x" * 300, credentials={"login": "a@b.c", "apikey": "k"}, rate_limit=0
            )
        problems = error.value.message_dict
        assert set(problems) == {"rate_limit", "credentials", "name"}
        assert problems["credentials"] == ["Unknown credential 'apikey'; Octopush takes login, api_key."]

    def test_the_kind_cannot_change(self):
        account = ProviderAccountFactory(kind="mobtexting")
        with pytest.raises(ValidationError) as error:
            services.provider_account_update(account=account, kind="octopush")
        assert "kind" in error.value.message_dict


class TestSenders:
    def test_create_normalises_and_checks_the_channel(self):
        account = ProviderAccountFactory()
        sender = services.sender_create(account=account, name=" HERALD ", service="t", country="in")
        assert (sender.name, sender.service, sender.country) == ("HERALD", "T", "IN")
        with pytest.raises(ValidationError) as error:
            services.sender_create(account=account, name="VIB", channel="viber")
        assert "channel" in error.value.message_dict
        with pytest.raises(ValidationError) as error:
            services.sender_create(account=account, name="X", service="Q")
        assert "service" in error.value.message_dict

    def test_the_country_is_a_contacts_code(self):
        """UK is stored GB (as a contact's), and two letters that are no country are refused on the field."""
        account = ProviderAccountFactory()
        assert services.sender_create(account=account, name="UKSHOP", country=" uk").country == "GB"
        with pytest.raises(ValidationError) as error:
            services.sender_create(account=account, name="NOWHERE", country="zz")
        assert error.value.message_dict == {"country": [services.SENDER_COUNTRY_EXPECTED]}
        assert not Sender.objects.filter(name="NOWHERE").exists()

    def test_a_country_stored_before_the_rule_is_kept_while_it_stays(self):
        sender = SenderFactory(country="ZZ")  # written before senders' countries were checked
        services.sender_update(sender=sender, status=Sender.Status.REJECTED)
        sender.refresh_from_db()
        assert (sender.country, sender.status) == ("ZZ", Sender.Status.REJECTED)
        with pytest.raises(ValidationError) as error:
            services.sender_update(sender=sender, country="QQ")
        assert "country" in error.value.message_dict


class TestDltTemplates:
    def test_create_checks_the_body_and_the_senders_account(self):
        account = ProviderAccountFactory()
        own, foreign = SenderFactory(account=account), SenderFactory()
        template = services.dlt_template_create(
            name="OTP", dlt_template_id="1107000000000000009", body="OTP {#var#}", account=account, senders=[own]
        )
        assert list(template.senders.all()) == [own]
        with pytest.raises(ValidationError) as error:
            services.dlt_template_update(template=template, senders=[own, foreign])
        assert "senders" in error.value.message_dict
        with pytest.raises(ValidationError) as error:
            services.dlt_template_update(template=template, body="OTP {#var")
        assert "body" in error.value.message_dict

    def test_render_and_match(self):
        template = DltTemplateFactory(body="Your OTP is {#var#}.")
        assert services.dlt_template_render(template=template, values={"var": "42"}) == "Your OTP is 42."
        assert services.dlt_template_match(template=template, text="Your OTP is 42.") == {"var": "42"}
