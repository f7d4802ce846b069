"""The account's rate limit with a real worker and the sandbox: a request that gets no token in time is not made."""

import time

import pytest

from campaigns.models import Frame
from campaigns.ratelimit import CampaignStopped, NoToken
from campaigns.services import campaign_launch, status_events_apply_all, status_poll
from providers.backends.base import Account, NotSent, request
from providers.models import ProviderAccount
from tests.campaigns.conftest import contacts_tagged, wait_until
from tests.campaigns.test_engine import _accepted, _counts, _state, beat_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _busiest_second(times: list[float]) -> int:
    """The most requests answered within any one second."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - start <= 1.0) for i, start in enumerate(times)), default=0)


def test_frames_that_get_no_token_in_time_wait_again_rather_than_go_beyond_the_limit(engine):
    """Hyber's one-recipient frames go out several at once per dispatcher, each waiting for the account's token.
    With a limit of 2 a second, 16 waiting frames take 8 s; those still waiting after RATE_LIMIT_MAX_WAIT (2 s in
    tests) were sent without a token, all at once, beyond the vendor's limit (a real Hyber answers 429)."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.1)
    account = engine.account("hyber", rate_limit=2)
    campaign = engine.campaign(account, contacts_tagged(30))
    engine.sandbox.state.requests.clear()  # the account's set-up
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: beat_tick() or _state(campaign) == "completed", timeout=120, what="the campaign to complete")

    with engine.sandbox.state.lock:
        sends = [r.at for r in engine.sandbox.state.requests if r.vendor == "hyber" and r.method == "POST"]
    # The bucket holds 2 tokens and refills 2 a second: at most 4 requests in any second (one more for the
    # sandbox's clock, which times answers, not the requests).
    assert _busiest_second(sends) <= 5, f"{_busiest_second(sends)} requests within one second"
    assert len(sends) == 30, "one request per recipient, none refused for going beyond the limit"
    accepted = _accepted(engine.sandbox, "hyber")
    assert len(accepted) == 30 and set(accepted.values()) == {1}, "every recipient sent exactly once"
    assert _counts(campaign) == {"delivered": 30}
    assert not Frame.objects.filter(campaign=campaign, attempts__gt=1).exists(), "a wait for a token is no attempt"


def test_a_poll_that_gets_no_token_in_time_is_not_made_and_the_round_stops(engine):
    """Polling takes the account's tokens as sending does: a page asked for with no token after RATE_LIMIT_MAX_WAIT
    went out all the same, beyond the limit. Now it is not asked, the round stops there (as at a 429), and the
    next rounds bring the reports."""
    account, campaign = engine.sent_awaiting_poll("Hello friend, your code is 4711. - Herald")  # 4 frames
    ProviderAccount.objects.filter(pk=account.pk).update(rate_limit=0.01)  # one token now, the next in 100 s
    asked = engine.sandbox.state.stats()["requests"].get("mobtexting", 0)

    started = time.monotonic()
    status_poll(account_id=account.pk)

    assert engine.sandbox.state.stats()["requests"]["mobtexting"] - asked == 1, "only the request that had a token"
    assert time.monotonic() - started < 10, "one wait of RATE_LIMIT_MAX_WAIT (2 s in tests), not one per frame"
    ProviderAccount.objects.filter(pk=account.pk).update(rate_limit=500)

    def beat():
        status_poll(account_id=account.pk)
        status_events_apply_all()

    wait_until(lambda: _state(campaign) == "completed", timeout=60, what="completion by polling", every=1.0, tick=beat)
    assert _counts(campaign) == {"delivered": 40}


@pytest.mark.parametrize(
    ("refusal", "words"),
    [
        (NoToken("no token from the account's rate limit (2 requests a second) within 60 s"), "no token from"),
        (CampaignStopped("campaign 7 stopped while this request waited for the rate limit"), "campaign 7 stopped"),
    ],
)
def test_a_request_its_pace_refuses_is_not_made_and_says_why(refusal, words):
    # The frame's error read "the rate limit could not be checked (no token …)", as if Redis were down.
    def refuse():
        raise refusal

    account = Account(kind="hyber", base_url="http://127.0.0.1:9", credentials={}, pace=refuse)
    with pytest.raises(NotSent) as raised:
        request(account, "POST", "http://127.0.0.1:9/send")
    assert str(raised.value).startswith(f"Not sent to hyber: {words}")
