"""Report appliers side by side (STATUS_APPLY_CONNECTIONS): every report applied once, counters right, and a
deadlock with another writer costs a retry, not the batch. These need committed data, seen by several
connections."""

import logging
import random
import threading
import time

import pytest

from django.db import connection, connections

from campaigns.models import Message, StatusEvent
from campaigns.services.counters import counters_recount
from campaigns.services.reports import (
    APPLY_LOCK,
    status_events_apply,
    status_events_apply_all,
    status_events_receive,
    status_events_store,
)
from providers.backends.base import Status, StatusUpdate, UpdateKind
from tests.campaigns.conftest import wait_until
from tests.concurrency import wait_until_waiting_for_a_lock
from tests.factories import CampaignFactory, MessageFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _update(message, status):
    return StatusUpdate(kind=UpdateKind.STATUS, status=Status(status), raw_status=status.upper(),
                        external_ref=str(message.external_ref))  # fmt: skip


def _busy_appliers_seen(stop: threading.Event, seen: list[int]) -> None:
    """Record the most applier slots held at once, read from pg_locks on a connection of its own."""
    try:
        with connection.cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s
                         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
                    [APPLY_LOCK],
                )
                seen.append(cursor.fetchone()[0])
                time.sleep(0.002)
    finally:
        connection.close()


def test_two_appliers_apply_every_report_once_and_keep_every_campaigns_counters(settings, caplog):
    settings.STATUS_APPLY_CONNECTIONS = 2
    settings.STATUS_APPLY_BATCH = 40  # many small batches, so that reports of one message land in both appliers
    account = ProviderAccountFactory()
    campaigns = [CampaignFactory(account=account) for _ in range(3)]
    expected, updates = {}, []
    for campaign in campaigns:
        for i, message in enumerate(
            MessageFactory.create_batch(150, campaign=campaign, account=account, status="submitted")
        ):
            sequence = ["sent", "undelivered"] if i % 5 == 1 else ["sent", "delivered", "read"][: 2 + (i % 4 == 0)]
            expected[message.pk] = sequence[-1]
            updates += [_update(message, s) for s in sequence] * 2  # each report twice
        counters_recount(campaign_id=campaign.pk)
    random.Random(11).shuffle(updates)  # the campaigns' reports interleaved, so one batch moves several
    status_events_store(account=account, updates=updates, source="webhook")

    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_busy_appliers_seen, args=(stop, seen))
    watcher.start()
    try:
        result = status_events_apply_all(budget=120)
    finally:
        stop.set()
        watcher.join()

    assert max(seen, default=0) == 2, "both appliers held a slot at the same time"
    assert "deadlocked" not in caplog.text, "appliers lock what they share in one order"
    assert result.events == len(updates) == StatusEvent.objects.filter(applied_at__isnull=False).count()
    assert result.applied == StatusEvent.objects.filter(outcome="applied").count()
    assert dict(Message.objects.values_list("pk", "status")) == expected
    for campaign in campaigns:
        campaign.refresh_from_db()
        assert campaign.counters == counters_recount(campaign_id=campaign.pk), "cached counters agree with a recount"


def test_an_applier_that_deadlocks_with_another_writer_rolls_back_and_applies_the_batch_again(caplog):
    campaign = CampaignFactory()
    messages = MessageFactory.create_batch(5, campaign=campaign, account=campaign.account, status="submitted")
    counters_recount(campaign_id=campaign.pk)
    status_events_store(account=campaign.account, updates=[_update(m, "delivered") for m in messages],
                        source="webhook")  # fmt: skip

    # Another writer holds the campaign (as a dispatcher recording a frame does) while the applier holds the
    # messages and waits for the campaign; the writer then asks for a message: a deadlock, which PostgreSQL
    # breaks by failing the applier, the first of the two to wait.
    other = connections.create_connection("default")
    applier_pid, outcome = [], {}

    def apply() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                applier_pid.append(cursor.fetchone()[0])
            outcome["result"] = status_events_apply()
        except Exception as error:
            outcome["error"] = error
        finally:
            connection.close()

    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM campaigns_campaign WHERE id = %s FOR UPDATE", [campaign.pk])
            applier = threading.Thread(target=apply)
            with caplog.at_level(logging.WARNING, logger="campaigns.services.deadlocks"):
                applier.start()
                wait_until_waiting_for_a_lock(applier_pid, "the applier")
                cursor.execute("SELECT id FROM campaigns_message WHERE id = %s FOR UPDATE", [messages[2].pk])
                other.commit()
                applier.join(timeout=60)
    finally:
        other.close()

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].applied == 5, "the batch was applied in full on the second attempt"
    assert "deadlocked (attempt 1 of 3)" in caplog.text
    assert set(Message.objects.values_list("status", flat=True)) == {"delivered"}
    campaign.refresh_from_db()
    assert campaign.counters == {"delivered": 5}
    assert not StatusEvent.objects.filter(applied_at__isnull=True).exists()


@pytest.mark.worker
def test_reports_that_came_while_every_applier_was_busy_are_applied_once_one_is_free(celery_worker):
    """A webhook's reports trigger the apply task, which finds every applier slot taken (a long apply holds them)
    and gave up: once the appliers had ended, the reports waited for beat's next run, and without beat forever."""
    campaign = CampaignFactory()
    message = MessageFactory(campaign=campaign, account=campaign.account, status="submitted")
    counters_recount(campaign_id=campaign.pk)
    holder = connections.create_connection("default")  # holds every slot, as appliers busy with a long batch do
    try:
        with holder.cursor() as cursor:
            for slot in range(8):  # (more than STATUS_APPLY_CONNECTIONS)
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [APPLY_LOCK, slot])
        status_events_receive(account=campaign.account, updates=[_update(message, "delivered")])
        time.sleep(2)  # the task it triggered (0.5 s later) has found every slot taken
        message.refresh_from_db()
        assert message.status == "submitted", "nothing applied while every applier slot is taken"
    finally:
        holder.close()  # the appliers are done

    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=10,
               what="the report applied with no beat running")  # fmt: skip
    campaign.refresh_from_db()
    assert campaign.counters == {"delivered": 1}


def test_an_apply_whose_time_ran_out_says_it_is_unfinished_and_one_that_emptied_the_queue_does_not():
    campaign = CampaignFactory()
    messages = MessageFactory.create_batch(3, campaign=campaign, account=campaign.account, status="submitted")
    status_events_store(account=campaign.account, updates=[_update(m, "delivered") for m in messages],
                        source="webhook")  # fmt: skip

    out_of_time = status_events_apply_all(budget=0)
    assert (out_of_time.events, out_of_time.unfinished) == (0, True), "its task comes again for what is left"
    done = status_events_apply_all(budget=60)
    assert (done.events, done.unfinished) == (3, False)
