"""Provider models: credentials encrypted at rest, unique senders per account, the webhook URL."""

import pytest

from django.db import IntegrityError, connection

from providers.models import ProviderAccount
from tests.factories import DltTemplateFactory, ProviderAccountFactory, SenderFactory

pytestmark = pytest.mark.django_db


def test_credentials_are_encrypted_in_the_database():
    account = ProviderAccountFactory(credentials={"api_key": "super-secret-key-123"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM providers_provideraccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert "super-secret-key-123" not in stored
    assert ProviderAccount.objects.get(pk=account.pk).credentials == {"api_key": "super-secret-key-123"}


def test_a_sender_name_is_unique_per_account_and_channel():
    sender = SenderFactory(name="HERALD")
    SenderFactory(name="HERALD")  # another account
    SenderFactory(name="HERALD", account=sender.account, channel="viber")
    with pytest.raises(IntegrityError):
        SenderFactory(name="HERALD", account=sender.account)


def test_a_dlt_template_id_is_unique():
    DltTemplateFactory(dlt_template_id="1107000000000000001")
    with pytest.raises(IntegrityError):
        DltTemplateFactory(dlt_template_id="1107000000000000001")


def test_the_webhook_url_names_the_kind_and_the_account(settings):
    settings.HERALD_PUBLIC_URL = "https://herald.example"
    account = ProviderAccountFactory(kind="octopush")
    assert account.webhook_url.startswith(f"https://herald.example/hooks/octopush/{account.uuid}/")
