"""Launch, pause, resume and cancel from the admin's buttons with a real worker, the progress the page polls
meanwhile, and the figures a finished campaign is left with."""

from datetime import timedelta

import pytest

from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Frame
from campaigns.tasks import campaigns_tick_task
from tests.campaigns.conftest import contacts_tagged, wait_until
from tests.campaigns.test_engine import _accepted, _counts, beat_tick
from tests.factories import admin_client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _act(client, campaign: Campaign, action: str) -> None:
    response = client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, action]))
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages and all(" is " in m for m in messages), messages  # “…” is paused / resumed / cancelled


def _progress(client, campaign: Campaign) -> dict:
    return client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk])).json()


def _sent(campaign: Campaign) -> int:
    return Frame.objects.filter(campaign=campaign, state="sent").count()


def test_pause_resume_and_cancel_from_the_admin_leave_figures_that_match_the_messages(engine):
    engine.sandbox.configure(latency_ms=100, dlr_mix={"delivered": 0.8, "undelivered": 0.2}, dlr_delay=0.2)
    account = engine.account("octopush", max_recipients_per_request=100)
    campaign = engine.campaign(account, contacts_tagged(2_000))
    client = admin_client_for()

    client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"]))
    wait_until(lambda: _sent(campaign) >= 3, timeout=60, what="3 frames")
    _act(client, campaign, "pause")
    wait_until(lambda: not Frame.objects.filter(campaign=campaign, state="sending").exists(), timeout=10,
               what="frames in flight")  # fmt: skip
    paused = _progress(client, campaign)
    assert (paused["state"], paused["live"], paused["total"]) == ("paused", True, 2_000)

    _act(client, campaign, "resume")
    at_resume = _sent(campaign)
    wait_until(lambda: _sent(campaign) >= at_resume + 3, timeout=60, what="sending after resume")
    _act(client, campaign, "cancel")

    # Every message sent gets its report; then the page's figures are the messages' own.
    def settled():
        beat_tick()
        counts = _counts(campaign)
        return not any(counts.get(s) for s in ("pending", "queued", "submitted", "sent")) and counts

    counts = wait_until(settled, timeout=60, what="every report")
    wait_until(lambda: _progress(client, campaign)["counters"] == counts, timeout=10, what="the counters to agree")
    final = _progress(client, campaign)
    assert (final["state"], final["finished"], final["progress"]) == ("cancelled", True, 100.0)
    assert counts.get("delivered") and counts.get("undelivered") and counts.get("failed")
    funnel = {stage["stage"]: stage["count"] for stage in final["funnel"]}
    assert funnel["sent"] == counts["delivered"] + counts["undelivered"], "cancelled messages were never sent"


def test_a_campaign_scheduled_from_the_admin_is_sent_once_by_beats_tick_at_its_time_not_before(engine):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("octopush")
    send_at = timezone.now() + timedelta(seconds=8)  # time enough for the launch and a first tick
    campaign = engine.campaign(account, contacts_tagged(300), send_at=send_at)
    client = admin_client_for()

    client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"]))
    campaign.refresh_from_db()
    assert campaign.state == "scheduled" and campaign.state_reason.startswith("Scheduled for ")
    campaigns_tick_task.delay().get(timeout=30)
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled", "not before its time"

    wait_until(lambda: timezone.now() > send_at, timeout=15, what="the send time")
    for result in [campaigns_tick_task.delay() for _ in range(3)]:  # beat, and a second beat by mistake
        result.get(timeout=30)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "completed", timeout=60, what="completion",
               tick=beat_tick)  # fmt: skip
    accepted = _accepted(engine.sandbox, "octopush")
    assert len(accepted) == 300 and set(accepted.values()) == {1}, "everyone once"
    assert not Campaign.objects.filter(parent=campaign).exists()
