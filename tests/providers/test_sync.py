"""senders_sync and templates_sync against the real sandbox: pull, match, push, and nothing twice."""

import pytest
import requests

from django.core.exceptions import ValidationError

from providers.models import DltTemplate, ProviderAccount, Sender
from providers.sync import senders_sync, templates_sync

pytestmark = pytest.mark.django_db
TOKEN = "k"
ENTITY = {"entity_id": "1101234567890123456", "entity_name": "ACME PVT LTD"}


@pytest.fixture
def account(sandbox):
    return ProviderAccount.objects.create(
        kind=ProviderAccount.Kind.MOBTEXTING,
        name="MOBtexting",
        base_url=sandbox.base_url("mobtexting"),
        credentials={"api_key": TOKEN},
    )


def remote(sandbox, method: str, path: str, **body) -> dict:
    answer = requests.request(
        method,
        f"{sandbox.base_url('mobtexting')}/{path}",
        json=body or None,
        timeout=5,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def remote_sender(sandbox, name: str, service: str = "T") -> dict:
    return remote(sandbox, "POST", "sms/senders", name=name, service=service, country_code="IN", **ENTITY)["data"]


def test_only_mobtexting_accounts_sync(sandbox):
    octopush = ProviderAccount.objects.create(kind=ProviderAccount.Kind.OCTOPUSH, name="Octopush")
    with pytest.raises(ValidationError) as caught:
        senders_sync(account_id=octopush.pk)
    assert "account" in caught.value.message_dict
    with pytest.raises(ValidationError):
        templates_sync(account_id=octopush.pk)


def test_senders_are_pulled_matched_and_pushed(sandbox, account, django_assert_max_num_queries):
    known = remote_sender(sandbox, "HERALD")
    remote_sender(sandbox, "ORDERS")
    local = Sender.objects.create(account=account, name="HERALD", service="T", country="IN")
    mine = Sender.objects.create(
        account=account,
        name="ALERTS",
        service="T",
        country="IN",
        dlt_entity_id=ENTITY["entity_id"],
        dlt_entity_name=ENTITY["entity_name"],
    )
    # Two of them link the new senders to templates whose headers name them: the senders (with their account) for
    # DLT's type rule, then the links.
    with django_assert_max_num_queries(8):
        counts = senders_sync(account_id=account.pk)
    assert counts == {"created": 1, "updated": 1, "pushed": 1}
    local.refresh_from_db()
    mine.refresh_from_db()
    assert (local.remote_id, local.status, local.dlt_entity_id) == (known["id"], "approved", ENTITY["entity_id"])
    assert mine.remote_id and mine.status == "approved"
    orders = Sender.objects.get(account=account, name="ORDERS")
    assert (orders.service, orders.country, orders.status) == ("T", "IN", "approved")
    remote_names = {row["name"] for row in remote(sandbox, "GET", "sms/senders")["data"]}
    assert remote_names == {"HERALD", "ORDERS", "ALERTS"}
    assert senders_sync(account_id=account.pk) == {"created": 0, "updated": 0, "pushed": 0}


def test_a_sender_pulled_is_linked_to_the_templates_whose_imported_headers_name_it(sandbox, account):
    """A DLT import recorded the header before the sender existed here (DltTemplate.headers)."""
    remote_sender(sandbox, "ORDERS")
    template = DltTemplate.objects.create(
        account=account, dlt_template_id="1107161234567890999", name="Order", body="Order {#var#}", headers=["ORDERS"]
    )
    senders_sync(account_id=account.pk)
    assert [s.name for s in template.senders.all()] == ["ORDERS"]


def test_pending_senders_stay_pending(sandbox, account):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/approval", json={"senders": 0}, timeout=5)
    remote_sender(sandbox, "HERALD")
    senders_sync(account_id=account.pk)
    assert Sender.objects.get(account=account, name="HERALD").status == Sender.Status.PENDING


def test_a_refused_push_writes_nothing(sandbox, account):
    remote_sender(sandbox, "HERALD")
    Sender.objects.create(account=account, name="Bad", service="T", country="IN")  # not 6 capitals, no entity
    with pytest.raises(ValidationError) as caught:
        senders_sync(account_id=account.pk)
    assert "register sender Bad" in caught.value.message_dict["account"][0]
    assert not Sender.objects.filter(account=account, name="HERALD").exists()


def test_templates_are_pulled_with_their_sender_and_pushed(sandbox, account, django_assert_max_num_queries):
    remote_sender(sandbox, "HERALD")
    senders_sync(account_id=account.pk)
    herald = Sender.objects.get(account=account, name="HERALD")
    remote(
        sandbox,
        "POST",
        "sms/templates",
        sender="HERALD",
        name="otp",
        body="Your OTP is {{otp}}.",
        template_id="1107000000000000001",
        type="T",
    )
    shipped = DltTemplate.objects.create(
        account=account,
        name="shipped",
        dlt_template_id="1107000000000000002",
        body="Order {{order}} has shipped.",
        type="T",
    )
    shipped.senders.add(herald)
    stale = DltTemplate.objects.create(name="otp (old)", dlt_template_id="1107000000000000001", body="old", type="P")
    with django_assert_max_num_queries(10):
        counts = templates_sync(account_id=account.pk)
    assert counts == {"created": 0, "updated": 1, "pushed": 1}
    stale.refresh_from_db()
    assert (stale.account_id, stale.name, stale.body, stale.type) == (account.pk, "otp", "Your OTP is {{otp}}.", "T")
    assert list(stale.senders.all()) == [herald]
    shipped.refresh_from_db()
    assert shipped.remote_id and shipped.status == "approved"
    assert {row["template_id"] for row in remote(sandbox, "GET", "sms/templates")["data"]} == {
        "1107000000000000001",
        "1107000000000000002",
    }
    assert templates_sync(account_id=account.pk) == {"created": 0, "updated": 0, "pushed": 0}


def test_new_remote_templates_are_created(sandbox, account):
    remote_sender(sandbox, "HERALD")
    remote(
        sandbox,
        "POST",
        "sms/templates",
        sender="HERALD",
        name="offer",
        body="नमस्ते {{name}}",
        template_id="1107000000000000009",
        type="SE",
    )
    assert templates_sync(account_id=account.pk) == {"created": 1, "updated": 0, "pushed": 0}
    offer = DltTemplate.objects.get(dlt_template_id="1107000000000000009")
    assert (offer.account_id, offer.type, offer.is_english, offer.status) == (account.pk, "SE", False, "approved")
    assert offer.senders.count() == 0  # the sender is not synced yet; the next sync links it
    senders_sync(account_id=account.pk)
    templates_sync(account_id=account.pk)
    assert [s.name for s in offer.senders.all()] == ["HERALD"]


def test_a_template_without_a_sender_cannot_be_pushed(sandbox, account):
    DltTemplate.objects.create(account=account, name="x", dlt_template_id="1107000000000000003", body="x")
    with pytest.raises(ValidationError) as caught:
        templates_sync(account_id=account.pk)
    assert "senders" in caught.value.message_dict
