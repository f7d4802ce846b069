"""A transaction PostgreSQL aborts to break a deadlock runs again, instead of failing the user's action.

A cancel locks a campaign's waiting frames, then their messages; a report's applier locks a message, then its
frame. The test makes the two meet: a stand-in for the applier holds a message, the cancel takes the frame and
waits for the message, then the stand-in asks for the frame. The cancel's session checks for deadlocks first
(a shorter deadlock_timeout), so it is the one PostgreSQL aborts every time."""

import logging
import threading

import pytest

from django.db import connection, connections

from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import campaign_cancel
from tests.concurrency import wait_until_waiting_for_a_lock
from tests.factories import CampaignFactory, FrameFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cancel_that_deadlocks_with_a_reports_applier_is_tried_again_and_cancels(caplog):
    campaign = CampaignFactory(state=Campaign.State.SENDING, audience_size=2)
    frame = FrameFactory(campaign=campaign, size=2)
    first, _ = (MessageFactory(campaign=campaign, frame=frame, status="pending") for _ in range(2))
    Campaign.objects.filter(pk=campaign.pk).update(counters={"pending": 2})
    applier = connections.create_connection("default")
    applier.ensure_connection()
    applier.set_autocommit(False)
    pid, out = [], {}

    def cancel():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET deadlock_timeout = '300ms'")  # it finds the deadlock; the applier (1 s) does not
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            out["campaign"] = campaign_cancel(campaign_id=campaign.pk)
        except Exception as error:
            out["error"] = error
        finally:
            connection.close()

    caplog.set_level(logging.WARNING, logger="campaigns.services.deadlocks")
    with applier.cursor() as cursor:
        cursor.execute("UPDATE campaigns_message SET updated_at = updated_at WHERE id = %s", [first.pk])
        thread = threading.Thread(target=cancel)
        thread.start()
        wait_until_waiting_for_a_lock(pid, "the cancel")
        cursor.execute("UPDATE campaigns_frame SET next_attempt_at = next_attempt_at WHERE id = %s", [frame.pk])
    applier.commit()
    applier.close()
    thread.join(timeout=30)

    assert "error" not in out, out.get("error")
    assert out["campaign"].state == Campaign.State.CANCELLED
    assert set(Message.objects.values_list("status", "reason")) == {("failed", "cancelled before sending")}
    campaign.refresh_from_db()
    assert (campaign.state, campaign.counters) == (Campaign.State.CANCELLED, {"failed": 2})
    assert "campaign_cancel deadlocked (attempt 1 of 3); trying again" in caplog.text
