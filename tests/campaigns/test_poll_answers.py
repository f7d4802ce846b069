"""A vendor's pull API answering with JSON that PostgreSQL cannot store (NaN): that frame's poll fails, saying
why, and the round goes on; nothing of the answer is stored, and the reports come once the vendor answers right."""

import logging

import pytest

from campaigns.models import Campaign, Frame, Message, StatusEvent
from campaigns.services import status_events_apply_all, status_poll
from tests.campaigns.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

TEXT = "Hello friend, your code is 4711. - Herald"  # fits the test DLT template


def test_a_report_pull_answered_with_nan_fails_that_frames_poll_and_the_round_goes_on(engine, caplog):
    account, campaign = engine.sent_awaiting_poll(TEXT)
    engine.sandbox.configure(report_nan=True)
    asked = engine.sandbox.state.stats()["requests"].get("mobtexting", 0)

    with caplog.at_level(logging.INFO, logger="herald"):
        assert status_poll(account_id=account.pk) == 0

    assert engine.sandbox.state.stats()["requests"]["mobtexting"] - asked == 4, "every frame was asked"
    assert Frame.objects.filter(campaign=campaign, last_polled_at__isnull=False).count() == 4
    assert not StatusEvent.objects.exists()
    failures = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
    assert len(failures) == 4 and all("NaN" in message for message in failures), failures
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"submitted"}

    engine.sandbox.configure(report_nan=False)

    def beat():
        status_poll(account_id=account.pk)
        status_events_apply_all()

    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).state == "completed",
        timeout=60, what="completion by polling", every=1.0, tick=beat,
    )  # fmt: skip
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"delivered"}
