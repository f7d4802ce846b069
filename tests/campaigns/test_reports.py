"""Delivery reports: stored as received, applied by one function that never moves a message backwards,
ignores duplicates, records opt-outs and keeps the counters right."""

import json
import random
from datetime import timedelta

import pytest

from campaigns.models import Message, PendingStatusEvent, StatusEvent
from campaigns.selectors.progress import campaign_progress
from campaigns.services.counters import counters_recount
from campaigns.services.reports import status_events_apply, status_events_apply_all, status_events_store
from contacts.models import Unsubscriber
from contacts.selectors import contact_unsubscriptions
from providers.backends.base import Status, StatusUpdate, UpdateKind
from tests.factories import CampaignFactory, ContactFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db


def _update(message, status, raw="", **kwargs):
    return StatusUpdate(kind=UpdateKind.STATUS, status=Status(status), raw_status=raw or status.upper(),
                        external_ref=str(message.external_ref), **kwargs)  # fmt: skip


@pytest.fixture
def sent_campaign():
    campaign = CampaignFactory()
    messages = [
        MessageFactory(campaign=campaign, account=campaign.account, status="submitted", provider_message_id=f"pm-{i}")
        for i in range(20)
    ]
    counters_recount(campaign_id=campaign.pk)
    return campaign, messages


def test_duplicated_and_out_of_order_reports_end_in_the_right_final_status(sent_campaign):
    campaign, messages = sent_campaign
    # Each message gets sent → delivered (and some read), each report twice, all shuffled.
    updates = []
    for i, message in enumerate(messages):
        sequence = ["sent", "delivered", "read"] if i % 4 == 0 else ["sent", "delivered"]
        if i % 5 == 1:
            sequence = ["sent", "undelivered"]
        updates += [_update(message, s) for s in sequence] * 2
    random.Random(7).shuffle(updates)
    # Stored and applied in several batches, as webhooks would deliver them.
    for start in range(0, len(updates), 13):
        status_events_store(account=campaign.account, updates=updates[start : start + 13], source="webhook")
        status_events_apply()

    expected = {}
    for i, message in enumerate(messages):
        expected[message.pk] = "undelivered" if i % 5 == 1 else ("read" if i % 4 == 0 else "delivered")
    assert dict(Message.objects.filter(campaign=campaign).values_list("pk", "status")) == expected
    campaign.refresh_from_db()
    assert campaign.counters == counters_recount(campaign_id=campaign.pk), "cached counters agree with a recount"
    assert not StatusEvent.objects.filter(applied_at__isnull=True).exists()
    assert StatusEvent.objects.filter(outcome="ignored").count() > 0, "older and duplicate reports are ignored"


def test_a_late_report_never_moves_a_message_backwards(sent_campaign):
    campaign, messages = sent_campaign
    message = messages[0]
    status_events_store(account=campaign.account, updates=[_update(message, "delivered")], source="webhook")
    status_events_apply()
    status_events_store(account=campaign.account, updates=[_update(message, "sent"), _update(message, "submitted")],
                        source="poll")  # fmt: skip
    status_events_apply()
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.final_at is not None


def test_a_failure_keeps_the_vendor_code_and_words(sent_campaign):
    campaign, messages = sent_campaign
    update = _update(
        messages[0], "rejected", raw="DLT-REJECTED", code="777", text="Invalid sender ID or invalid template"
    )
    status_events_store(account=campaign.account, updates=[update], source="webhook")
    status_events_apply()
    message = Message.objects.get(pk=messages[0].pk)
    assert (message.status, message.error_code, message.reason) == (
        "rejected", "777", "Invalid sender ID or invalid template"
    )  # fmt: skip


def test_reports_match_by_vendor_id_and_number_when_there_is_no_ref(sent_campaign):
    campaign, messages = sent_campaign
    target = messages[3]
    update = StatusUpdate(kind=UpdateKind.STATUS, status=Status.DELIVERED, raw_status="DELIVERED",
                          provider_message_id=target.provider_message_id, address=target.address)  # fmt: skip
    status_events_store(account=campaign.account, updates=[update], source="webhook")
    status_events_apply()
    assert Message.objects.get(pk=target.pk).status == "delivered"


def test_a_report_before_its_message_is_known_is_retried_then_marked_unmatched(sent_campaign):
    campaign, _messages = sent_campaign
    stray = StatusUpdate(
        kind=UpdateKind.STATUS, status=Status.DELIVERED, raw_status="DELIVRD", provider_message_id="nope"
    )
    status_events_store(account=campaign.account, updates=[stray], source="webhook")
    status_events_apply()
    event = StatusEvent.objects.get()
    assert event.applied_at is None and event.match_attempts == 1, "kept for another try"
    due = PendingStatusEvent.objects.get(event=event).due_at
    assert due == event.received_at + timedelta(seconds=10), "due again 10 s after it came"
    assert status_events_apply().events == 0, "not tried again before it is due"
    StatusEvent.objects.filter(pk=event.pk).update(match_attempts=4)
    PendingStatusEvent.objects.filter(event=event).update(due_at=due - timedelta(hours=1))
    status_events_apply()
    event.refresh_from_db()
    assert event.outcome == "unmatched" and event.applied_at is not None
    assert not PendingStatusEvent.objects.exists(), "given up: out of the queue"


def test_opt_out_events_become_unsubscribers_with_the_right_scope_and_source():
    account = ProviderAccountFactory(name="Octo")
    contact = ContactFactory()
    updates = [
        StatusUpdate(kind=UpdateKind.OPT_OUT, address=contact.phone, raw_status="STOP", optout_scope="all"),
        StatusUpdate(kind=UpdateKind.OPT_OUT, address="+919811112222", optout_scope="sender", optout_value="HERALD"),
        StatusUpdate(kind=UpdateKind.OPT_OUT, address="+919811112222", optout_scope="sender", optout_value="HERALD"),
    ]
    status_events_store(account=account, updates=updates, source="webhook")
    result = status_events_apply_all()
    assert result.opt_outs == 2
    rows = set(Unsubscriber.objects.values_list("address", "scope", "value", "source"))
    assert rows == {(contact.phone, "all", "", "provider"), ("+919811112222", "sender", "HERALD", "provider")}
    assert "Octo" in Unsubscriber.objects.get(address=contact.phone).reason


def test_an_e_mail_opt_out_in_other_capitals_suppresses_the_contact_it_names():
    """Devino reports an e-mail unsubscribe with the address as it knows it: stored as written, 'Asha@Example.COM'
    matched no contact (Herald compares e-mails in lower case) and she kept getting e-mails."""
    account = ProviderAccountFactory(kind="devino", name="Devino")
    contact = ContactFactory(email="asha@example.com")
    update = StatusUpdate(
        kind=UpdateKind.OPT_OUT,
        address="Asha@Example.COM",
        raw_status="unsubscribed",
        optout_scope="channel",
        optout_value="email",
    )  # fmt: skip  (as the Devino backend reads {"status": "unsubscribed", "email": "Asha@Example.COM"})
    status_events_store(account=account, updates=[update], source="webhook")
    assert status_events_apply_all().opt_outs == 1
    assert [(u.address, u.scope, u.value) for u in contact_unsubscriptions(contact)] == [
        ("asha@example.com", "channel", "email")
    ]


def test_unknown_events_are_kept_and_marked_not_dropped():
    account = ProviderAccountFactory()
    status_events_store(
        account=account, updates=[StatusUpdate(kind=UpdateKind.UNKNOWN, payload={"odd": 1})], source="webhook"
    )
    status_events_apply()
    event = StatusEvent.objects.get()
    assert (event.outcome, event.payload) == ("unknown", {"odd": 1})


def test_applying_a_batch_takes_the_same_number_of_queries_for_20_or_200_reports():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size in (20, 200):
        campaign = CampaignFactory()
        messages = MessageFactory.create_batch(size, campaign=campaign, account=campaign.account, status="submitted")
        status_events_store(
            account=campaign.account, updates=[_update(m, "delivered") for m in messages], source="webhook"
        )
        with CaptureQueriesContext(connection) as queries:
            status_events_apply()
        counts.append(len(queries))
        assert Message.objects.filter(campaign=campaign, status="delivered").count() == size
    assert counts[0] == counts[1], counts


# Each vendor's failure report in its own callback shape (the message: `ref`, `pid`, `phone`) → the reason its
# page and the campaign's failure breakdown show: the vendor's words, not its bare status word or numbers.
FAILURE_REPORTS = {
    "devino": (
        lambda ref, pid, phone: [{"messageId": pid, "ts": 1717171717000, "status": "rejected", "errorCode": 5,
                                  "callbackData": {"ref": ref, "address": phone}}],
        "5", "The message has been rejected by the operator or Devino",
    ),
    "hyber": (
        lambda ref, pid, phone: {"number": int(phone[1:]), "time": 1717171717000, "status": 3, "substatus": 26,
                                 "hyber_status": 26011, "message_id": pid, "extra_id": ref},
        "26011", "Not delivered within the message's time to live (TTL)",
    ),
    "octopush": (
        lambda ref, pid, phone: {"channel": "sms", "message_id": pid, "number": phone, "status": "BAD_DESTINATION",
                                 "delivery_date": "2025-01-22 11:46:06"},
        "BAD_DESTINATION", "Bad destination: not a valid mobile number, never attempted",
    ),
    "mobtexting": (
        lambda ref, pid, phone: {"id": pid, "mobile": phone[1:], "status": "UNDELIV", "custom": ref},
        "", "Message is undeliverable. The message has encountered a delivery error and is deemed permanently "
        "undeliverable.",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(FAILURE_REPORTS))
def test_a_vendors_failure_report_reads_as_words_on_the_message_and_the_failure_breakdown(client, settings, kind):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    body, code, words = FAILURE_REPORTS[kind]
    account = ProviderAccountFactory(kind=kind)
    campaign = CampaignFactory(account=account)
    message = MessageFactory(campaign=campaign, status="submitted", provider_message_id="pm-7", address="+33601020304")
    counters_recount(campaign_id=campaign.pk)
    headers = {"Authorization": f"Bearer {account.webhook_secret}"} if kind == "mobtexting" else {}
    path = account.webhook_url.removeprefix(settings.HERALD_PUBLIC_URL)
    payload = json.dumps(body(str(message.external_ref), "pm-7", message.address))
    assert client.post(path, payload, content_type="application/json", headers=headers).status_code == 200
    status_events_apply()

    message.refresh_from_db()
    assert (message.error_code, message.reason) == (code, words)
    campaign.refresh_from_db()
    (failure,) = campaign_progress(campaign=campaign)["failures"]
    assert (failure["reason"], failure["count"]) == (words, 1)
