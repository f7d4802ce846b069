"""Reports being given another go (a rematch, in a dispatcher's recording transaction) while appliers work: the
report is neither lost nor the cause of a deadlock. Each test holds a session at a chosen point of the apply
statement with an advisory lock spliced into its SQL (GATE), so that the interleaving happens every time."""

import threading
import time
from datetime import timedelta

import pytest

from django.db import connection, connections, transaction
from django.utils import timezone

from campaigns.models import Message, PendingStatusEvent, StatusEvent
from campaigns.services import reports
from campaigns.services.reports import status_events_apply, status_events_rematch, status_events_store
from providers.backends.base import Status, StatusUpdate, UpdateKind
from tests.concurrency import wait_until_waiting_for_a_lock
from tests.factories import CampaignFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

GATE = 424242
GATED = reports.APPLY_SQL.replace(
    "WHERE q.due_at <= now()",
    f"WHERE q.due_at <= now() AND (SELECT pg_advisory_lock_shared({GATE})::text) = ''",
)
assert GATED != reports.APPLY_SQL


def _setup():
    campaign = CampaignFactory()
    message = MessageFactory(campaign=campaign, account=campaign.account, status="pending", address="+33600000001")
    ticket = "T-1"
    status_events_store(account=campaign.account, updates=[StatusUpdate(
        kind=UpdateKind.STATUS, raw_status="DELIVERED", status=Status("delivered"), provider_message_id=ticket,
        ticket=ticket, address=message.address)], source="webhook")  # fmt: skip
    event = StatusEvent.objects.get()
    # its last try is due (4 misses so far)
    StatusEvent.objects.filter(pk=event.pk).update(
        match_attempts=4, outcome="unmatched", received_at=timezone.now() - timedelta(hours=1)
    )
    PendingStatusEvent.objects.filter(event_id=event.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    return campaign, message, event, ticket


def test_a_report_given_another_go_while_an_applier_reads_it_is_not_lost(sql=GATED):
    """The applier's statement began before the recording committed; it must read the event as the rematch
    left it (another go, its message now recorded), not give up on it (before: the event was read unlocked)."""
    campaign, message, event, ticket = _setup()
    gate = connections.create_connection("default")
    gate.ensure_connection()
    with gate.cursor() as c:
        c.execute("SELECT pg_advisory_lock(%s)", [GATE])
    pid, out = [], {}

    def applier():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
                cursor.execute(sql, [100])
                out["row"] = cursor.fetchone()
        except Exception as e:  # pragma: no cover
            out["error"] = e
        finally:
            connection.close()

    t = None
    with transaction.atomic():
        # the dispatcher's recording transaction: rematch first ...
        assert (
            status_events_rematch(
                account_id=campaign.account_id, numbers=[message.address], since=timezone.now() - timedelta(hours=2)
            )
            == 1
        )
        t = threading.Thread(target=applier)
        t.start()
        wait_until_waiting_for_a_lock(pid, "the applier")  # it has its snapshot, and waits before its scan
        # ... then the messages, recorded with the vendor's ticket
        Message.objects.filter(pk=message.pk).update(status="submitted", provider_message_id=ticket)
    with gate.cursor() as c:
        c.execute("SELECT pg_advisory_unlock(%s)", [GATE])
    t.join(30)
    gate.close()
    assert "error" not in out, out
    status_events_apply()
    status_events_apply()
    event.refresh_from_db()
    message.refresh_from_db()
    assert event.message_id == message.pk and message.status == "delivered", "report lost"


GATED_MARK = reports.APPLY_SQL.replace(
    "FROM matched b WHERE e.id = b.id\n",
    f"FROM matched b WHERE e.id = b.id AND (SELECT pg_advisory_lock_shared({GATE})::text) = ''\n",
)
assert GATED_MARK != reports.APPLY_SQL


def test_a_report_that_misses_while_a_rematch_runs_does_not_deadlock_the_recording():
    """A fresh report misses a match and is queued again just after the rematch chose its reports, and another
    applier claims it at once: the rematch does not touch it, so the recording transaction is not cancelled
    (before: the rematch locked the event, then waited for its queue row, which that applier held)."""
    campaign = CampaignFactory()
    message = MessageFactory(campaign=campaign, account=campaign.account, status="pending", address="+33600000002")
    status_events_store(account=campaign.account, updates=[StatusUpdate(
        kind=UpdateKind.STATUS, raw_status="DELIVERED", status=Status("delivered"), provider_message_id="T-2",
        ticket="T-2", address=message.address)], source="webhook")  # fmt: skip
    StatusEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))  # a backlog: retries due at once
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        r_pid = cursor.fetchone()[0]
    gate_locked, b2_pid, out = threading.Event(), [], {}

    def gate():
        conn = connections.create_connection("default")
        try:
            with conn.cursor() as c:
                c.execute("SELECT pg_advisory_lock(%s)", [GATE])
                gate_locked.set()
                for _ in range(1000):  # until the recording waits (for the applier's queue row)
                    c.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [r_pid])
                    if c.fetchone()[0] == "Lock":
                        break
                    time.sleep(0.01)
                c.execute("SELECT pg_advisory_unlock(%s)", [GATE])
        finally:
            conn.close()

    def first_applier():
        try:
            out["first"] = status_events_apply()
        finally:
            connection.close()

    def second_applier():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                b2_pid.append(cursor.fetchone()[0])
                cursor.execute(GATED_MARK, [100])
                out["second"] = cursor.fetchone()
        except Exception as e:
            out["second_error"] = e
        finally:
            connection.close()

    threads = []

    def between_the_two_statements(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "INSERT INTO campaigns_pendingstatusevent" in sql and "RETURNING event_id" in sql:
            t = threading.Thread(target=first_applier)  # the report misses a match, and is queued again
            t.start()
            t.join(30)
            threads.append(threading.Thread(target=second_applier))  # another applier claims it at once
            threads[-1].start()
            wait_until_waiting_for_a_lock(b2_pid, "the second applier")
        return result

    g = threading.Thread(target=gate)
    g.start()
    gate_locked.wait(10)
    try:
        with transaction.atomic(), connection.execute_wrapper(between_the_two_statements):
            status_events_rematch(
                account_id=campaign.account_id, numbers=[message.address], since=timezone.now() - timedelta(hours=2)
            )
    except Exception as e:
        out["recording_error"] = e
    for t in [*threads, g]:
        t.join(30)
    assert "recording_error" not in out and "second_error" not in out, out
