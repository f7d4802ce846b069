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


def _on_the_wire(campaign: Campaign) -> bool:
    return Frame.objects.filter(campaign=campaign, state="sending").exists()


def test_pause_resume_and_cancel_from_the_admin_leave_figures_that_match_the_messages(engine):
    """The sandbox holds its answers while each button is pressed, so that the frames on the wire then are the only
    ones sent before the pause (and the cancel), however slow the machine: a race with a latency could send them all
    before the button's request landed. (The worker's requests time out after 2 s here: each hold lasts a poll and
    one request to the admin.)"""
    engine.sandbox.configure(dlr_mix={"delivered": 0.8, "undelivered": 0.2}, dlr_delay=0.2)
    account = engine.account("octopush", max_recipients_per_request=100)
    campaign = engine.campaign(account, contacts_tagged(2_000))
    client = admin_client_for()

    engine.sandbox.hold_answers()
    client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"]))
    wait_until(engine.sandbox.sends_held, timeout=60, every=0.02, what="a frame on the wire")
    _act(client, campaign, "pause")
    engine.sandbox.release_answers()
    wait_until(lambda: not _on_the_wire(campaign), timeout=20, what="frames in flight")
    paused = _progress(client, campaign)
    assert (paused["state"], paused["live"], paused["total"]) == ("paused", True, 2_000)
    at_resume = _sent(campaign)
    assert at_resume < 20, "a pause stops the frames not yet on the wire"

    engine.sandbox.hold_answers()
    _act(client, campaign, "resume")
    wait_until(engine.sandbox.sends_held, timeout=60, every=0.02, what="sending after resume")
    _act(client, campaign, "cancel")
    engine.sandbox.release_answers()

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
    assert at_resume < _sent(campaign) < 20, "the frames on the wire when it was cancelled were sent, and no more"


def test_a_campaign_scheduled_from_the_admin_is_sent_once_by_beats_tick_at_its_time_not_before(engine):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("octopush")
    campaign = engine.campaign(account, contacts_tagged(300), send_at=timezone.now() + timedelta(hours=1))
    client = admin_client_for()

    client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"]))
    campaign.refresh_from_db()
    assert campaign.state == "scheduled" and campaign.state_reason.startswith("Scheduled for ")
    campaigns_tick_task.delay().get(timeout=30)
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled", "not before its time"

    # Its time comes a second from now (the row's send time moved, as the clock cannot be).
    send_at = timezone.now() + timedelta(seconds=1)
    Campaign.objects.filter(pk=campaign.pk).update(send_at=send_at)
    wait_until(lambda: timezone.now() > send_at, timeout=15, what="the send time")
    for result in [campaigns_tick_task.delay() for _ in range(3)]:  # beat, and a second beat by mistake
        result.get(timeout=30)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "completed", timeout=60, what="completion",
               tick=beat_tick)  # fmt: skip
    accepted = _accepted(engine.sandbox, "octopush")
    assert len(accepted) == 300 and set(accepted.values()) == {1}, "everyone once"
    assert not Campaign.objects.filter(parent=campaign).exists()


def test_a_scheduled_campaign_sent_now_from_the_admin_goes_out_at_once_and_not_again_at_its_old_time(engine):
    """Its page offered "Launch…", which saved the same schedule again: sending it now took clearing its send time."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("octopush")
    send_at = timezone.now() + timedelta(hours=1)
    campaign = engine.campaign(account, contacts_tagged(300), send_at=send_at)
    client = admin_client_for()
    client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"]))
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled"

    _act(client, campaign, "send-now")
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "completed", timeout=60, what="completion",
               tick=beat_tick)  # fmt: skip
    campaigns_tick_task.delay().get(timeout=30)  # beat's tick, as at the old send time: nothing is due
    accepted = _accepted(engine.sandbox, "octopush")
    assert len(accepted) == 300 and set(accepted.values()) == {1}, "everyone once"
    campaign.refresh_from_db()
    assert campaign.send_at is None and campaign.launched_at < send_at
