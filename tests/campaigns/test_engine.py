"""The campaign engine end to end: a real Celery worker, real Redis and PostgreSQL, the sandbox over
HTTP, delivery reports into the webhooks of a live server."""

import threading
import time

import pytest
import requests

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign, Frame, Message, StatusEvent
from campaigns.selectors import campaign_progress
from campaigns.services import (
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    message_send_transactional,
    messages_expire_unreported,
    status_events_apply_all,
    status_poll,
)
from campaigns.services.schedule import dispatchers_watchdog
from contacts.models import Unsubscriber
from providers.models import DltTemplate, ProviderAccount
from tests.campaigns.conftest import contacts_tagged, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

VENDORS = ["mobtexting", "octopush", "devino", "hyber"]
SHARED_TEXT = "Hello friend, your code is 4711. - Herald"  # the same for everyone; fits the test DLT template


def beat_tick() -> None:
    """What Celery beat does meanwhile (no beat runs in tests): restart stalled dispatchers, and apply the
    reports due for another match attempt (those that arrived before the send's answer was recorded)."""
    dispatchers_watchdog()
    status_events_apply_all(budget=2.0)


def _state(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.state


def _counts(campaign: Campaign) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM campaigns_message WHERE campaign_id = %s GROUP BY 1", [campaign.pk]
        )
        return dict(cursor.fetchall())


def _accepted(sandbox, vendor: str) -> dict[str, int]:
    with sandbox.state.lock:
        return {ref: n for (v, ref), n in sandbox.state.accepted.items() if v == vendor}


# Hyber takes one recipient a request: its campaigns here are smaller, so that each test still makes hundreds to
# thousands of concurrent requests without taking a minute of the suite.
LARGE = {"mobtexting": 10_000, "octopush": 10_000, "devino": 10_000, "hyber": 3_000}
FAULTED = {"mobtexting": 1_000, "octopush": 1_000, "devino": 1_000, "hyber": 400}


@pytest.mark.parametrize("kind", VENDORS)
def test_a_large_campaign_runs_to_delivered(engine, kind):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.3, dlr_jitter=0.2)
    if kind == "hyber":
        engine.sandbox.vendors["hyber"].control("batch_callbacks", {"enabled": True})  # Hyber may batch DLRs
    account = engine.account(kind)
    # Devino takes one text per request: a personalised text would cost a request per recipient.
    text = SHARED_TEXT if kind == "devino" else None
    size = LARGE[kind]
    campaign = engine.campaign(account, contacts_tagged(size), **({"text": text} if text else {}))

    campaign_launch(campaign_id=campaign.pk)
    wait_until(
        lambda: _state(campaign) == "completed",
        timeout=240,
        what=f"the {kind} campaign to complete",
        sandbox=engine.sandbox,
    )

    assert _counts(campaign) == {"delivered": size}
    assert campaign.counters == {"delivered": size}, "cached counters agree with the messages"
    accepted = _accepted(engine.sandbox, kind)
    assert len(accepted) == size and set(accepted.values()) == {1}, "every recipient sent exactly once"
    assert not Frame.objects.filter(campaign=campaign).exclude(state="sent").exists()


def test_pause_resume_and_cancel_act_between_frames(engine):
    """The sandbox holds its answers while the campaign is paused and cancelled, so that the frames on the wire then
    are the only ones sent before each, however slow the machine. "On the wire" is a request the sandbox holds: a
    frame claimed (`sending`) whose request had not started when the pause came is not sent, and the test, which
    waited for the claim only, failed once in CI with no frame sent before the pause."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("octopush", max_recipients_per_request=100)
    campaign = engine.campaign(account, contacts_tagged(3_000))
    sending = Frame.objects.filter(campaign=campaign, state="sending")
    engine.sandbox.hold_answers()
    campaign_launch(campaign_id=campaign.pk)
    wait_until(engine.sandbox.sends_held, timeout=60, every=0.02, what="a frame on the wire")

    campaign_pause(campaign_id=campaign.pk)
    engine.sandbox.release_answers()
    wait_until(lambda: not sending.exists(), timeout=10, what="frames in flight")
    sent_at_pause = Frame.objects.filter(campaign=campaign, state="sent").count()
    requests_at_pause = engine.sandbox.state.request_counts["octopush"]
    time.sleep(2)
    assert engine.sandbox.state.request_counts["octopush"] == requests_at_pause, "nothing is sent while paused"
    assert 1 <= sent_at_pause <= 2, "the frames on the wire (one a dispatcher) finish; no other starts"

    engine.sandbox.hold_answers()
    campaign_resume(campaign_id=campaign.pk)
    wait_until(engine.sandbox.sends_held, timeout=60, every=0.02, what="sending to go on after resume")
    campaign_cancel(campaign_id=campaign.pk)
    engine.sandbox.release_answers()
    wait_until(lambda: not sending.exists(), timeout=10, what="frames in flight")
    assert sent_at_pause < Frame.objects.filter(campaign=campaign, state="sent").count() <= sent_at_pause + 2
    sent = Message.objects.filter(campaign=campaign).exclude(status="failed").count()
    cancelled = Message.objects.filter(campaign=campaign, status="failed", reason="cancelled before sending").count()
    assert sent + cancelled == 3_000 and cancelled > 0
    assert len(_accepted(engine.sandbox, "octopush")) == sent, "cancelled messages never reached the provider"
    assert _state(campaign) == "cancelled"
    # They are closed, not failed: apart on the page, in no rate, and not among the latest failures.
    campaign.refresh_from_db()
    assert campaign.not_sent == cancelled
    assert set(Message.objects.filter(campaign=campaign, status="failed").values_list("error_code", flat=True)) == {
        "not-sent"
    }
    progress = campaign_progress(campaign=campaign)
    assert (progress["groups"]["failed"], progress["groups"]["not_sent"]) == (0, cancelled)
    assert progress["recent_failures"] == [] and progress["frames_per_minute"] == 0


def test_a_prepare_that_fails_in_the_worker_pauses_the_campaign_saying_why_and_resume_finishes_it(engine):
    """The database refuses one member's message (a check constraint, for real): the worker's prepare fails,
    and the campaign is paused with the error instead of left `preparing`. Once the cause is gone, resume
    prepares the rest and sends every recipient exactly once."""
    engine.sandbox.configure(dlr_mix={"delivered": 1.0})
    account = engine.account("octopush", max_recipients_per_request=100)
    audience = contacts_tagged(1_000)
    campaign = engine.campaign(account, audience)
    refused = audience.contacts.order_by("id").last().phone  # in the last share
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE campaigns_message ADD CONSTRAINT test_refused CHECK (address <> '{refused}')")
    try:
        campaign_launch(campaign_id=campaign.pk)
        wait_until(lambda: _state(campaign) == "paused", timeout=60, what="the failed prepare to pause the campaign")
        assert campaign.state_reason.startswith("Preparing stopped (IntegrityError: ")
        assert "test_refused" in campaign.state_reason and "Resume" in campaign.state_reason
        assert engine.sandbox.state.request_counts["octopush"] == 0, "nothing was sent"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE campaigns_message DROP CONSTRAINT IF EXISTS test_refused")

    campaign_resume(campaign_id=campaign.pk)
    wait_until(lambda: _state(campaign) == "completed", timeout=120, what="the resumed campaign to complete")

    assert campaign.audience_size == 1_000 and campaign.state_reason == ""
    assert _counts(campaign) == {"delivered": 1_000} == campaign.counters
    accepted = _accepted(engine.sandbox, "octopush")
    assert len(accepted) == 1_000 and set(accepted.values()) == {1}, "every recipient sent exactly once"


def test_two_concurrent_launches_launch_once(engine):
    account = engine.account("octopush")
    campaign = engine.campaign(account, contacts_tagged(500))
    outcomes = []

    def launch():
        try:
            campaign_launch(campaign_id=campaign.pk)
            outcomes.append("launched")
        except ValidationError as exc:
            outcomes.append(exc.message_dict["state"][0])
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["A preparing campaign cannot be launched.", "launched"]
    wait_until(lambda: _state(campaign) == "completed", timeout=60, what="completion")
    assert Message.objects.filter(campaign=campaign).count() == 500
    assert len(_accepted(engine.sandbox, "octopush")) == 500


def test_an_address_unsubscribed_mid_campaign_receives_nothing_after(engine):
    engine.sandbox.configure(latency_ms=100, dlr_mix={"delivered": 1.0})
    account = engine.account("octopush", max_recipients_per_request=50)
    campaign = engine.campaign(account, contacts_tagged(1_000))
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: Frame.objects.filter(campaign=campaign, state="sent").exists(), timeout=30, what="a first frame")
    last = Message.objects.filter(campaign=campaign).order_by("-id").values_list("address", flat=True).first()
    Unsubscriber.objects.create(address=last, scope="all", source="api")

    wait_until(lambda: _state(campaign) == "completed", timeout=120, what="completion")
    message = Message.objects.get(campaign=campaign, address=last)
    assert (message.status, message.reason) == ("suppressed", "unsubscribed")
    assert engine.sandbox.state.accepted_by_address[("octopush", last)] == 0
    assert len(_accepted(engine.sandbox, "octopush")) == 999


@pytest.mark.parametrize("kind", VENDORS)
def test_a_worker_killed_mid_request_and_restarted_sends_everyone_exactly_once(engine, kind):
    # Slow vendor answers, so that the kill lands while requests are in flight: the sandbox still
    # accepts them after the client has died, as a real vendor would.
    engine.sandbox.configure(latency_ms=300, dlr_mix={"delivered": 1.0}, dlr_delay=0.5)
    if kind == "hyber":
        engine.sandbox.vendors["hyber"].control("pull_delay", {"seconds": 1})
    account = engine.account(kind, max_recipients_per_request=None if kind == "hyber" else 50)
    size = FAULTED[kind]
    campaign = engine.campaign(account, contacts_tagged(size), text=SHARED_TEXT)
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: Frame.objects.filter(campaign=campaign, state="sent").count() >= 3, timeout=60, what="3 frames")
    for attempt in range(3):  # the frame seen in flight may be recorded just before the kill lands: kill again
        wait_until(  # (after a kill, the beat's watchdog restarts the dispatchers once their slots expire)
            lambda: Frame.objects.filter(campaign=campaign, state="sending").exists(),
            timeout=30 if attempt else 10,
            what="a frame in flight",
            tick=beat_tick if attempt else None,
        )
        engine.worker.kill()
        abandoned = set(Frame.objects.filter(campaign=campaign, state="sending").values_list("pk", flat=True))
        engine.worker.start()
        if abandoned:
            break
    # The beat's watchdog finds due frames with no live dispatcher once the dead one's slot expires.
    wait_until(lambda: _state(campaign) == "completed", timeout=180, what="completion after the restart",
               every=1.0, tick=beat_tick)  # fmt: skip

    assert abandoned, "the kill caught frames in flight"
    reconciled = list(Frame.objects.filter(pk__in=abandoned).values("pk", "state", "attempts", "response", "error"))
    assert all(f["response"].get("reconciled") for f in reconciled), f"abandoned frames not reconciled: {reconciled}"
    accepted = _accepted(engine.sandbox, kind)
    assert set(accepted.values()) == {1}, f"sent twice: {[r for r, n in accepted.items() if n > 1][:5]}"
    counts = _counts(campaign)
    assert not set(counts) & {"pending", "queued", "submitted", "sent"}, f"left unfinished: {counts}"
    if kind == "devino":
        # No lookup API: recipients of an abandoned frame that no report vouches for fail as "outcome unknown".
        assert counts.get("delivered", 0) == len(accepted) and set(counts) <= {"delivered", "failed"}
    else:
        assert counts == {"delivered": size} and len(accepted) == size


@pytest.mark.parametrize("kind", VENDORS)
def test_an_answer_lost_after_the_vendor_accepted_is_reconciled_not_resent(engine, kind):
    # Every request is accepted and its answer lost, until the network heals.
    engine.sandbox.configure(rate_drop=1.0, fault_after_accept=1.0, dlr_mix={"delivered": 1.0}, dlr_delay=0.3)
    if kind == "hyber":
        engine.sandbox.vendors["hyber"].control("pull_delay", {"seconds": 1})
    account = engine.account(kind, max_recipients_per_request=None if kind == "hyber" else 50)
    campaign = engine.campaign(account, contacts_tagged(100), text=SHARED_TEXT)
    campaign_launch(campaign_id=campaign.pk)
    wait_until(
        lambda: Frame.objects.filter(campaign=campaign, uncertain=True).exists(), timeout=30, what="a lost answer"
    )
    engine.sandbox.configure(rate_drop=0.0)

    wait_until(lambda: _state(campaign) == "completed", timeout=120, what="completion", every=0.5,
               tick=beat_tick)  # fmt: skip
    accepted = _accepted(engine.sandbox, kind)
    assert set(accepted.values()) == {1}, (
        f"resent although the vendor had it: {[r for r, n in accepted.items() if n > 1][:5]}"
    )
    assert len(accepted) == 100
    assert _counts(campaign) == {"delivered": 100}


@pytest.mark.parametrize("kind", VENDORS)
def test_injected_429_5xx_and_timeouts_at_20_percent_complete_without_duplicates(engine, kind):
    engine.sandbox.configure(
        rate_429=0.06, rate_5xx=0.06, rate_timeout=0.04, rate_drop=0.04, hang_seconds=2.5, retry_after=0.2,
        dlr_mix={"delivered": 1.0},
    )  # fmt: skip
    account = engine.account(kind, max_recipients_per_request=None if kind == "hyber" else 50)
    size = FAULTED[kind]
    campaign = engine.campaign(account, contacts_tagged(size), text=SHARED_TEXT)
    campaign_launch(campaign_id=campaign.pk)
    wait_until(lambda: _state(campaign) in ("completed", "paused", "failed"), timeout=240, what="the campaign to finish",
               every=1.0, tick=beat_tick)  # fmt: skip
    assert campaign.state == "completed", campaign.state_reason
    accepted = _accepted(engine.sandbox, kind)
    assert set(accepted.values()) == {1}, f"sent twice: {[r for r, n in accepted.items() if n > 1][:5]}"
    counts = _counts(campaign)
    faults = engine.sandbox.state.faults
    assert sum(faults.values()) > 0, "faults were injected"
    if kind == "devino":
        # No lookup API: a frame whose answer was lost is settled by the reports that carry our refs;
        # recipients of a frame the vendor never received fail as "outcome unknown", never twice.
        assert counts.get("delivered", 0) == len(accepted)
        assert set(counts) <= {"delivered", "failed"}
    else:
        assert counts == {"delivered": size}


@pytest.mark.parametrize(("kind", "deactivated"), [("mobtexting", False), ("hyber", False), ("mobtexting", True)])
def test_reports_lost_in_transit_are_recovered_by_polling(engine, kind, deactivated, settings):
    """Every callback is lost; the vendors' pull APIs (MOBtexting sms/status, Hyber DR) still have the reports.
    They are pulled for an account deactivated once everything was sent too: it sends nothing more, but what
    it sent is still followed, as its webhooks still are."""
    engine.sandbox.configure(callback_loss=1.0, dlr_mix={"delivered": 0.8, "undelivered": 0.2}, dlr_delay=0.2)
    if kind == "hyber":
        engine.sandbox.vendors["hyber"].control("pull_delay", {"seconds": 0})
    account = engine.account(kind)
    campaign = engine.campaign(account, contacts_tagged(300), text=SHARED_TEXT)
    campaign_launch(campaign_id=campaign.pk)
    if deactivated:
        wait_until(
            lambda: Frame.objects.filter(campaign=campaign).exclude(state__in=["pending", "sending"]).exists()
            and not Frame.objects.filter(campaign=campaign, state__in=["pending", "sending"]).exists(),
            timeout=60, what="every frame sent",
        )  # fmt: skip
        ProviderAccount.objects.filter(pk=account.pk).update(is_active=False)

    def beat():  # what celery beat runs: status_poll_task, then the apply task
        status_poll(account_id=account.pk)
        status_events_apply_all()

    wait_until(lambda: _state(campaign) == "completed", timeout=120, what="completion by polling", every=1.0, tick=beat)
    counts = _counts(campaign)
    assert sum(counts.values()) == 300 and set(counts) == {"delivered", "undelivered"}
    assert engine.sandbox.state.stats()["callbacks"]["lost"], "the reports really came by polling"
    assert not StatusEvent.objects.filter(source="webhook").exists()


def test_polling_stops_for_the_round_at_a_throttled_answer_and_the_reports_come_later(engine):
    """A vendor throttling its pull API is not asked about frame after frame (up to 50 throttled requests a round):
    the round stops there, and the next rounds, once it answers again, bring the reports."""
    account, campaign = engine.sent_awaiting_poll(SHARED_TEXT)
    engine.sandbox.configure(rate_429_other=1.0)
    asked = engine.sandbox.state.stats()["requests"].get("mobtexting", 0)

    assert status_poll(account_id=account.pk) == 0

    assert engine.sandbox.state.stats()["requests"]["mobtexting"] - asked == 1, "one throttled request, not four"
    assert Frame.objects.filter(campaign=campaign, last_polled_at__isnull=False).count() == 1
    engine.sandbox.configure(rate_429_other=0.0)

    def beat():
        status_poll(account_id=account.pk)
        status_events_apply_all()

    wait_until(lambda: _state(campaign) == "completed", timeout=60, what="completion by polling", every=1.0, tick=beat)
    assert _counts(campaign) == {"delivered": 40}


def test_promotional_messages_without_reports_expire_after_the_report_window(engine):
    # MOBtexting sends no delivery reports for promotional traffic since DLT: Herald must still finish.
    engine.sandbox.vendors["mobtexting"].control("clock", {"now": "2026-11-23 12:00:00"})
    always_open = {"start": "00:00", "end": "24:00", "tz": "Asia/Kolkata", "days": [0, 1, 2, 3, 4, 5, 6]}
    account = engine.account("mobtexting", options={"report_window_hours": 0.002, "promo_window": always_open})
    account.senders.update(service="P", name="777777")  # a promotional header is numeric (seed 001:8859)
    campaign = engine.campaign(account, contacts_tagged(50), text=SHARED_TEXT, purpose="promotional")
    DltTemplate.objects.filter(pk=campaign.template_id).update(type="P")
    campaign_launch(campaign_id=campaign.pk)

    wait_until(
        lambda: _state(campaign) == "completed",
        timeout=60,
        what="completion",
        every=1.0,
        tick=messages_expire_unreported,
    )
    reasons = set(Message.objects.filter(campaign=campaign).values_list("status", "reason"))
    assert reasons == {("expired", f"no delivery report from {account.name} within 0.002 h")}


def test_a_transactional_send_through_the_api_is_delivered(engine):
    engine.sandbox.configure(dlr_mix={"delivered": 1.0}, dlr_delay=0.2)
    account = engine.account("octopush")
    user = get_user_model().objects.create_superuser("integrator", password="x")
    token = Token.objects.create(user=user)
    headers = {"Authorization": f"Token {token.key}"}
    body = {
        "account": account.pk,
        "to": "+33 6 12 34 56 78",
        "text": "Your code is 4711",
        "sender": account.senders.get().pk,
    }

    keyed = {**headers, "Idempotency-Key": "order-1001-otp"}

    response = requests.post(f"{engine.web.url}/api/v1/messages/", json=body, headers=keyed, timeout=10)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending" and accepted["status_url"].endswith(f"/api/v1/messages/{accepted['id']}/")

    def delivered():
        return requests.get(accepted["status_url"], headers=headers, timeout=10).json()["status"] == "delivered"

    wait_until(delivered, timeout=30, what="the OTP to be delivered")
    # The client never saw its answer and tries again with the same key: the first message, not a second SMS.
    retry = requests.post(f"{engine.web.url}/api/v1/messages/", json=body, headers=keyed, timeout=10)
    assert retry.status_code == 202 and retry.headers["Idempotent-Replayed"] == "true"
    assert (retry.json()["id"], retry.json()["status"]) == (accepted["id"], "delivered")
    assert Message.objects.filter(account=account).count() == 1 and Frame.objects.filter(account=account).count() == 1
    assert engine.sandbox.state.accepted_by_address[("octopush", "+33612345678")] == 1


def test_a_transactional_send_to_an_unsubscribed_number_is_suppressed_not_sent(engine):
    account = engine.account("octopush")
    Unsubscriber.objects.create(address="+33612345678", scope="all", source="api")
    message = message_send_transactional(account=account, to="+33612345678", text="Hi", sender=account.senders.get())
    assert (message.status, message.reason) == ("suppressed", "unsubscribed")
    assert message.frame is None
    assert engine.sandbox.state.request_counts["octopush"] == 0
