"""The four vendors' callbacks as the vendors send them, over HTTP to Herald's web server (gunicorn, as deployed):
what Herald answers (a vendor retries anything but a 2xx, or, Devino, a 500) and what the messages show after."""

import json
from datetime import UTC, datetime

import pytest
import requests

from campaigns.models import Message, StatusEvent
from campaigns.services import status_events_apply_all
from campaigns.services.counters import counters_recount
from tests.factories import CampaignFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _post(account, body: bytes, content_type: str = "application/json") -> requests.Response:
    """As the vendor posts: MOBtexting with its bearer secret, the others to the URL with our ?secret=."""
    headers = {"Content-Type": content_type}
    if account.kind == "mobtexting":
        headers["Authorization"] = f"Bearer {account.webhook_secret}"
    return requests.post(account.webhook_url, data=body, headers=headers, timeout=10)


def _submitted(kind: str, address: str, **fields) -> Message:
    account = ProviderAccountFactory(kind=kind)
    campaign = CampaignFactory(account=account, state="sending")
    message = MessageFactory(campaign=campaign, contact=None, address=address, status="submitted", **fields)
    counters_recount(campaign_id=campaign.pk)
    return message


# vendor → (the message's number and vendor id, a delivery report for it whose date PostgreSQL could not take,
# the time stored)
UNSTORABLE_DATES = {
    # Python reads it, but an offset past ±15:59 is no time zone to PostgreSQL: it is stored in UTC
    "mobtexting": ("+919812345678", "b34e35ad:1", {"id": "b34e35ad:1", "mobile": "919812345678", "status": "DELIVRD",
                   "deliv_time": "2024-04-09T16:27:51-23:00"}, datetime(2024, 4, 10, 15, 27, 51, tzinfo=UTC)),
    # a date at the calendar's edge ("no date" written as the first one), French time: before year 1 in UTC
    "octopush": ("+33601020304", "sms_5f3fbce61266e", {"message_id": "sms_5f3fbce61266e", "number": "+33601020304",
                 "status": "DELIVERED", "delivery_date": "0001-01-01 00:00:00"}, None),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(UNSTORABLE_DATES))
def test_a_report_with_a_date_postgresql_cannot_hold_is_taken(web_server, kind):
    """Was a 500 (the COPY of the events failed, or the date's conversion did), so the vendor sent it again and
    again and the message never showed delivered."""
    address, vendor_id, report, stored_time = UNSTORABLE_DATES[kind]
    message = _submitted(kind, address, provider_message_id=vendor_id)

    response = _post(message.account, json.dumps(report).encode())

    assert response.status_code == 200, response.text[:300]
    event = StatusEvent.objects.get(account=message.account)
    assert event.occurred_at == stored_time
    status_events_apply_all(budget=2.0)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.final_at is not None


def test_mobtexting_reports_written_as_in_its_documents_with_trailing_commas_are_taken(web_server):
    """The seed's webhook examples end their objects with a comma [seed 001:9847, 9915], which strict JSON refuses:
    the verification handshake failed (no webhook) and each report was a 400, then lost after two more tries."""
    message = _submitted("mobtexting", "+918921269000", provider_message_id="b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1")
    account = message.account
    handshake = b'{\n    "validation_key": "9012XXXX",\n    "challenge": "a234qwe",\n  }'
    answer = _post(account, handshake)
    assert (answer.status_code, answer.json()) == (200, {"challenge": "a234qwe"})

    report = b"""{
      "id": "b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1",
      "mobile": "918921269000",
      "status": "DELIVRD",
      "credits": "2.0000",
      "deliv_time": "2021-04-09 16:27:51",
      "custom1": "campaign-3344, spring,}",
      "provider_code": "RJ",
    }"""
    assert _post(account, report).status_code == 200
    status_events_apply_all(budget=2.0)
    message.refresh_from_db()
    assert message.status == "delivered"
    event = StatusEvent.objects.get(account=account)
    assert event.payload["custom1"] == "campaign-3344, spring,}", "a comma inside a string is the vendor's text"
