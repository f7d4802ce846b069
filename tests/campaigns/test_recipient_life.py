"""A recipient's whole life through each vendor, as a user checks it: sent, delivered, answers STOP, then left out
of the next campaign and refused a transactional send. Real worker, sandbox over HTTP, webhooks into a live server."""

import csv
import io
from collections import Counter

import pytest
import requests

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.urls import reverse
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign, Message, StatusEvent
from campaigns.services import campaign_launch, message_send_transactional, status_events_apply_all
from campaigns.services.reports import status_events_store
from contacts.models import Unsubscriber
from providers.backends.base import Status, StatusUpdate, UpdateKind
from providers.sandbox.client import SandboxClient
from tests.campaigns.conftest import contacts_tagged, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SHARED_TEXT = "Hello friend, your code is 4711. - Herald"  # fits the engine's MOBtexting DLT template
VENDORS = ["mobtexting", "octopush", "devino", "hyber"]
# Where the vendor reports opt-outs (PROVIDERS.md: Hyber has none), the scope each reports them with.
OPT_OUT_SCOPES = {"mobtexting": ("all", ""), "octopush": ("all", ""), "devino": ("channel", "sms")}


def _tick() -> None:
    status_events_apply_all(budget=2.0)


def _finished(campaign: Campaign) -> bool:
    campaign.refresh_from_db()
    return campaign.state == "completed"


def _sent_again(first: Campaign, tag) -> Campaign:
    """A second campaign like `first`, to the same tag, launched and completed."""
    second = Campaign.objects.create(
        name="second", account=first.account, sender=first.sender, template=first.template, text=first.text
    )
    second.tags.set([tag])
    campaign_launch(campaign_id=second.pk)
    wait_until(lambda: _finished(second), timeout=60, what="the second campaign", tick=_tick)
    return second


@pytest.mark.parametrize("kind", sorted(OPT_OUT_SCOPES))
def test_a_recipient_who_answers_stop_is_left_out_of_the_next_campaign_and_of_transactional_sends(engine, kind):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.1)
    account = engine.account(kind)
    tag = contacts_tagged(3)
    first = engine.campaign(account, tag)
    campaign_launch(campaign_id=first.pk)
    wait_until(lambda: _finished(first), timeout=60, what="the first campaign", tick=_tick)
    address = Message.objects.filter(campaign=first).order_by("id").values_list("address", flat=True).first()

    SandboxClient(engine.sandbox.url).vendor(kind, "optout", address=address)

    def recorded():
        return Unsubscriber.objects.filter(address=address).first()

    unsubscriber = wait_until(recorded, timeout=30, what="the opt-out to be recorded", tick=_tick)
    assert (unsubscriber.scope, unsubscriber.value, unsubscriber.source) == (*OPT_OUT_SCOPES[kind], "provider")

    second = _sent_again(first, tag)
    left_out = Message.objects.get(campaign=second, address=address)
    assert left_out.status == "suppressed" and left_out.reason.startswith("unsubscribed")
    assert set(Message.objects.filter(campaign=second).exclude(address=address).values_list("status", flat=True)) == {
        "delivered"
    }

    otp = message_send_transactional(account=account, to=address, text="Hello friend, your code is 4711. - Herald", sender=account.senders.get(),
                                     template=first.template)  # fmt: skip
    assert otp.status == "suppressed" and otp.reason.startswith("unsubscribed")


def _counts(campaign: Campaign) -> dict[str, int]:
    return dict(Message.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("id")).order_by())


def _as_received(event: StatusEvent) -> StatusUpdate:
    return StatusUpdate(
        kind=UpdateKind(event.kind), status=Status(event.status) if event.status else None,
        raw_status=event.raw_status, provider_message_id=event.provider_message_id, external_ref=event.external_ref,
        address=event.address, ticket=event.ticket, code=event.error_code, text=event.error_text,
        payload=event.payload, occurred_at=event.occurred_at,
    )  # fmt: skip


@pytest.mark.parametrize("kind", VENDORS)
def test_every_outcome_a_vendor_reports_ends_in_its_status_and_every_view_agrees(engine, kind, client):
    engine.sandbox.configure(
        dlr_mix={"delivered": 0.25, "undelivered": 0.25, "expired": 0.25, "rejected": 0.25}, dlr_delay=0.1
    )
    account = engine.account(kind)
    campaign = engine.campaign(account, contacts_tagged(40))
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: _finished(campaign), timeout=90, what="the campaign", tick=_tick)

    counts = _counts(campaign)
    assert set(counts) == {"delivered", "undelivered", "expired", "rejected"}, counts
    failed = Message.objects.filter(campaign=campaign).exclude(status="delivered")
    assert not failed.filter(reason="").exists() and not Message.objects.filter(final_at=None).exists()

    user = get_user_model().objects.create_superuser("staff", password="x")
    client.force_login(user)
    stats = client.get(f"/api/v1/campaigns/{campaign.pk}/stats/").json()
    progress = client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk])).json()
    export = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert stats["counters"] == counts and stats["progress"] == 100.0
    assert {b["status"]: b["count"] for b in progress["breakdown"]} == counts
    assert progress["groups"]["delivered"] == counts["delivered"]
    assert progress["groups"]["failed"] == sum(counts.values()) - counts["delivered"]
    assert Counter(row["status"] for row in rows) == counts

    # Every report again (a vendor's retry): nothing moves, counters included.
    again = [_as_received(e) for e in StatusEvent.objects.filter(account=account, kind="status")]
    status_events_store(account=account, updates=again, source=StatusEvent.Source.WEBHOOK)
    status_events_apply_all(budget=5.0)
    campaign.refresh_from_db()
    assert _counts(campaign) == counts and {k: v for k, v in campaign.counters.items() if v} == counts


@pytest.mark.parametrize("kind", VENDORS)
def test_a_transactional_message_s_status_url_shows_its_final_status_and_why(engine, kind):
    engine.sandbox.configure(dlr_mix={"undelivered": 1.0}, dlr_delay=0.1)
    account = engine.account(kind)
    engine.campaign(account, contacts_tagged(1))  # (MOBtexting: the DLT template an Indian number needs)
    user = get_user_model().objects.create_superuser("integrator", password="x")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    body = {"account": account.pk, "to": "+919912345678", "text": SHARED_TEXT, "sender": account.senders.get().pk}
    if kind == "mobtexting":
        body["template"] = account.dlt_templates.get().pk

    response = requests.post(f"{engine.web.url}/api/v1/messages/", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]

    def final():
        shown = requests.get(status_url, headers=headers, timeout=10).json()
        return shown if shown["status"] not in ("pending", "sending", "queued", "submitted", "sent") else None

    shown = wait_until(final, timeout=30, what="the final status", tick=_tick)
    assert shown["status"] == "undelivered" and shown["reason"], shown
    assert shown["final_at"]


@pytest.mark.parametrize(
    ("vendor_type", "value", "scope"), [("sender", "HERALD", "sender"), ("service", "T", "service")]
)
def test_a_mobtexting_opt_out_from_one_sender_or_service_suppresses_it_there(engine, vendor_type, value, scope):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.1)
    account = engine.account("mobtexting")
    tag = contacts_tagged(2)
    first = engine.campaign(account, tag)
    campaign_launch(campaign_id=first.pk)
    wait_until(lambda: _finished(first), timeout=60, what="the first campaign", tick=_tick)
    address = Message.objects.filter(campaign=first).order_by("id").values_list("address", flat=True).first()

    SandboxClient(engine.sandbox.url).vendor("mobtexting", "optout", address=address, type=vendor_type, value=value)

    unsubscriber = wait_until(
        lambda: Unsubscriber.objects.filter(address=address).first(), timeout=30, what="the opt-out", tick=_tick
    )
    assert (unsubscriber.scope, unsubscriber.value) == (scope, value)
    second = _sent_again(first, tag)
    left_out = Message.objects.get(campaign=second, address=address)
    assert (left_out.status, left_out.reason) == ("suppressed", f"unsubscribed ({scope}: {value})")


def test_what_was_handed_to_the_provider_reads_the_same_in_stats_the_admin_and_the_export(engine, client):
    """Delivered, refused by the vendor when submitted, failed after the vendor took it, and suppressed: only what
    the vendor took counts as handed over (the failures it reported afterwards included), in stats/, the admin's
    progress bar and funnel alike, and the export's submitted_at column shows which."""
    engine.sandbox.configure(dlr_mix={"delivered": 0.4, "undelivered": 0.3, "rejected": 0.3}, dlr_delay=0.1, seed=1)
    account = engine.account("devino")
    tag = contacts_tagged(10)
    campaign = engine.campaign(account, tag)
    unsubscribed, refused = tag.contacts.order_by("phone").values_list("phone", flat=True)[:2]
    Unsubscriber.objects.create(address=unsubscribed)
    SandboxClient(engine.sandbox.url).vendor("devino", "optout", address=refused)  # on Devino's stop list only
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: _finished(campaign), timeout=60, what="the campaign", tick=_tick)

    messages = {m.address: m for m in Message.objects.filter(campaign=campaign)}
    assert messages[unsubscribed].status == "suppressed"
    assert (messages[refused].status, messages[refused].submitted_at) == ("rejected", None), "refused at submit"
    taken = [m for address, m in messages.items() if address not in (unsubscribed, refused)]
    assert all(m.submitted_at for m in taken)
    outcomes = Counter(m.status for m in taken)
    assert set(outcomes) == {"delivered", "undelivered", "rejected"}, outcomes  # (the sandbox's seeded draws)

    client.force_login(get_user_model().objects.create_superuser("staff", password="x"))
    stats = client.get(f"/api/v1/campaigns/{campaign.pk}/stats/").json()
    progress = client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk])).json()
    assert stats["sent_progress"] == progress["sent_progress"] == 80.0  # 8 of 10: not the suppressed, nor the refused
    assert stats["sent"] == progress["sent"] == len(taken) == 8
    funnel = [
        ("audience", 10), ("reachable", 9), ("sent", 8), ("accepted", 8 - outcomes["rejected"]),
        ("delivered", outcomes["delivered"]),
    ]  # fmt: skip
    assert [(s["stage"], s["count"]) for s in stats["funnel"]] == funnel
    assert [(s["stage"], s["count"]) for s in progress["funnel"]] == funnel
    assert stats["counters"]["rejected"] == outcomes["rejected"] + 1 and stats["in_flight"] == 0

    export = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sum(1 for row in rows if row["submitted_at"]) == stats["sent"]
