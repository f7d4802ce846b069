"""Pause and cancel while a real worker sends through the sandbox: what was claimed but is still waiting for the
account's rate limit is not on the wire, and is not sent once the campaign has stopped."""

import time

import pytest

from campaigns.models import Frame, Message
from campaigns.services import campaign_cancel, campaign_launch, campaign_pause, campaign_resume
from tests.campaigns.conftest import contacts_tagged, wait_until
from tests.campaigns.test_engine import _accepted, _counts, _state, beat_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _sent(sandbox) -> int:
    return len(_accepted(sandbox, "hyber"))


def test_a_cancel_stops_the_one_recipient_frames_still_waiting_for_the_rate_limit(engine):
    """Hyber's frames go out several at once (SINGLE_RECIPIENT_CONCURRENCY per dispatcher), each waiting for the
    account's rate limit: they kept going out, one by one at its pace, for seconds after the cancel."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("hyber", rate_limit=2)
    campaign = engine.campaign(account, contacts_tagged(60))
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: _sent(engine.sandbox) >= 4, timeout=60, what="4 messages sent")

    campaign_cancel(campaign_id=campaign.pk)
    at_cancel = _sent(engine.sandbox)
    wait_until(lambda: not Frame.objects.filter(campaign=campaign, state="sending").exists(), timeout=30,
               what="the frames claimed to come back")  # fmt: skip

    # at most the requests whose token was taken (the bucket's burst of 2) were on the wire at the cancel
    assert _sent(engine.sandbox) - at_cancel <= 2
    wait_until(lambda: beat_tick() or not _counts(campaign).get("pending"), timeout=30, what="the frames closed")
    sent = Message.objects.filter(campaign=campaign).exclude(status="failed").count()
    assert sent == _sent(engine.sandbox), "what the vendor has is what Herald shows as sent"
    assert Message.objects.filter(campaign=campaign, reason="cancelled before sending").count() == 60 - sent
    assert _state(campaign) == "cancelled"


def test_a_pause_holds_the_waiting_frames_and_resume_sends_everyone_exactly_once(engine):
    """The frames held back by the pause wait as they were (their attempt not counted): resumed, every recipient is
    sent once, and the counters and the progress agree with the messages."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.1)
    account = engine.account("hyber", rate_limit=4)
    campaign = engine.campaign(account, contacts_tagged(40))
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: _sent(engine.sandbox) >= 4, timeout=60, what="4 messages sent")

    campaign_pause(campaign_id=campaign.pk)
    at_pause = _sent(engine.sandbox)
    wait_until(lambda: not Frame.objects.filter(campaign=campaign, state="sending").exists(), timeout=30,
               what="the frames claimed to come back")  # fmt: skip
    time.sleep(1)
    assert _sent(engine.sandbox) - at_pause <= 4, "only what had its token (the bucket's burst) went on"
    assert not Frame.objects.filter(campaign=campaign, attempts__gt=1).exists(), "a held frame's attempt not counted"

    campaign_resume(campaign_id=campaign.pk)
    wait_until(lambda: beat_tick() or _state(campaign) == "completed", timeout=90, what="the campaign to complete")
    accepted = _accepted(engine.sandbox, "hyber")
    assert len(accepted) == 40 and set(accepted.values()) == {1}, "every recipient sent exactly once"
    assert _counts(campaign) == {"delivered": 40}
    assert campaign.counters == {"delivered": 40}
