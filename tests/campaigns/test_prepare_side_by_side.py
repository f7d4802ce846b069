"""An audience materialised in shares side by side (PREPARE_CONNECTIONS): the same messages, frames and counters
as one statement would write; a pause clicked meanwhile waits without holding the shares up; and a share that
fails leaves the campaign paused, saying why, for a resume or a cancel to put right. These need committed data,
seen by several connections."""

import threading
import time

import pytest

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections

from campaigns.models import Campaign, Frame, Message
from campaigns.services import lifecycle
from campaigns.services.counters import counters_recount
from campaigns.services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from campaigns.services.prepare import audience_shares, campaign_prepare
from contacts.models import Contact, ContactTag, Unsubscriber
from tests.factories import CampaignFactory, ProviderAccountFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = 1_300  # with frames of 100, each share ends on a partial frame
REFUSED = "+919800001200"  # in the second share (contacts by id: the first half, then the second)


@pytest.fixture
def members():
    """1,300 contacts tagged 'news': every 13th unsubscribed, every 50th inactive; and a contact outside."""
    news = TagFactory(name="news")
    contacts = Contact.objects.bulk_create(
        Contact(phone=f"+9198{n:08d}", first_name=f"P{n}", is_active=n % 50 != 7) for n in range(MEMBERS)
    )
    ContactTag.objects.bulk_create(ContactTag(contact=c, tag=news) for c in contacts)
    Unsubscriber.objects.bulk_create(Unsubscriber(address=c.phone) for c in contacts[::13])
    Contact.objects.create(phone="+919900000000")
    return news


@pytest.fixture
def campaign_for(members):
    account = ProviderAccountFactory()

    def make(**fields):
        return CampaignFactory(account=account, tags=[members], frame_size=100, state=Campaign.State.PREPARING,
                               **fields)  # fmt: skip

    return make


def _outcome(campaign):
    """What preparing wrote, by contact: status and reason; and the frames' sizes."""
    messages = {c: (s, r) for c, s, r in Message.objects.filter(campaign=campaign).values_list("contact_id", "status", "reason")}  # fmt: skip
    phones = dict(Contact.objects.values_list("pk", "phone"))
    return (
        {phones[c]: outcome for c, outcome in messages.items()},
        sorted(Frame.objects.filter(campaign=campaign).values_list("size", flat=True)),
    )


def _frames_hold_their_messages(campaign) -> None:
    """Every pending message is in a frame, no suppressed one is, and each frame's size is its message count."""
    assert not Message.objects.filter(campaign=campaign, status="pending", frame__isnull=True).exists()
    assert not Message.objects.filter(campaign=campaign, status="suppressed", frame__isnull=False).exists()
    for frame in Frame.objects.filter(campaign=campaign):
        assert frame.size == Message.objects.filter(frame=frame).count(), frame


def _writers(model, campaign) -> int:
    """How many transactions wrote the campaign's rows of `model` (as they stand)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT xmin::text) FROM {model._meta.db_table} WHERE campaign_id = %s", [campaign.pk])  # fmt: skip
        return cursor.fetchone()[0]


def test_shares_write_what_one_statement_writes(settings, campaign_for):
    settings.PREPARE_SPLIT_MIN_CONTACTS = 1
    settings.PREPARE_CONNECTIONS = 1
    alone = campaign_for(smooth_minutes=10)
    campaign_prepare(campaign_id=alone.pk)
    settings.PREPARE_CONNECTIONS = 2
    shared = campaign_for(smooth_minutes=10)
    campaign_prepare(campaign_id=shared.pk)

    assert len(audience_shares(first_seq=0, count=2)) == 2
    assert _writers(Frame, alone) == 1
    assert _writers(Frame, shared) == 3, "each share wrote its whole frames, the coordinator their partial ones"
    messages, sizes = _outcome(shared)
    assert (messages, sizes) == _outcome(alone)
    assert len(messages) == MEMBERS, "the contact outside the audience has no message"
    assert sizes[1:] == [100] * (len(sizes) - 1) and sizes[0] < 100, "one partial frame, as one statement makes"
    _frames_hold_their_messages(shared)
    for campaign in (alone, shared):
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.SENDING
        assert campaign.counters == counters_recount(campaign_id=campaign.pk)
        assert campaign.audience_size == MEMBERS
    assert shared.counters == alone.counters
    first, last = Frame.objects.filter(campaign=shared).order_by("next_attempt_at")[:: len(sizes) - 1]
    assert (last.next_attempt_at - first.next_attempt_at).total_seconds() > 8 * 60, "smooth sending spreads the frames"


def _in_thread(work, outcome: dict) -> threading.Thread:
    def run():
        try:
            outcome["result"] = work()
        except Exception as error:  # handed to the test
            outcome["error"] = error
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_for_locks() -> int:
    """Connections of this database waiting for a lock, seen from this thread's connection (outside a transaction,
    which would see pg_stat_activity as it was when the transaction first read it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for(condition, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never saw {what}")


def test_a_pause_clicked_while_preparing_waits_and_the_shares_are_not_stuck_behind_it(
    settings, campaign_for, monkeypatch
):
    """The prepare holds the campaign while its shares insert frames, whose foreign key locks the same row
    (KEY SHARE); a pause waiting for that row must not hold them up, or the prepare would wait for its shares
    for ever, in Python, where PostgreSQL sees no deadlock to break."""
    monkeypatch.setattr(lifecycle, "PREPARING_WAIT", 30.0)  # this pause waits (one that does not is tested below)
    settings.PREPARE_SPLIT_MIN_CONTACTS = 1
    settings.PREPARE_CONNECTIONS = 2
    campaign = campaign_for()
    gate = connections.create_connection("default")  # keeps the prepare waiting while it holds the campaign
    gate.set_autocommit(False)
    prepared, paused, threads = {}, {}, []
    try:
        with gate.cursor() as gate_cursor:
            gate_cursor.execute("LOCK TABLE campaigns_frame IN SHARE MODE")
            threads.append(_in_thread(lambda: campaign_prepare(campaign_id=campaign.pk), prepared))
            _wait_for(lambda: _waiting_for_locks() == 1, "the prepare waiting with the campaign held")
            threads.append(_in_thread(lambda: campaign_pause(campaign_id=campaign.pk), paused))
            _wait_for(lambda: _waiting_for_locks() == 2, "the pause waiting for the prepare")
            gate.commit()  # the prepare goes on: its shares insert frames while the pause waits for the campaign
            for thread in threads:
                thread.join(timeout=30)
    finally:
        stuck = any(thread.is_alive() for thread in threads)
        gate.rollback()
        if stuck:  # free the threads before failing
            with gate.cursor() as gate_cursor:
                gate_cursor.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            for thread in threads:
                thread.join(timeout=10)
        gate.close()

    assert not stuck, "the prepare or the pause never finished"
    assert not prepared.get("error") and not paused.get("error"), (prepared, paused)
    assert prepared["result"].state == Campaign.State.SENDING, "prepared in full before the pause"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED, "then paused"
    assert Message.objects.filter(campaign=campaign).count() == MEMBERS
    _frames_hold_their_messages(campaign)


def test_a_pause_or_cancel_clicked_while_a_long_prepare_runs_answers_at_once_and_changes_nothing(
    settings, campaign_for
):
    """A prepare holds the campaign's row while it writes the messages (about 9 s a million recipients): the
    admin's or the API's pause and cancel waited for all of it, and a web request could time out. Now they answer
    within PREPARING_WAIT that the campaign is still preparing, and change nothing; once it is sending, the cancel
    takes, and nothing is sent."""
    settings.PREPARE_SPLIT_MIN_CONTACTS = 1
    settings.PREPARE_CONNECTIONS = 2
    campaign = campaign_for()
    gate = connections.create_connection("default")  # keeps the prepare going, the campaign held, until it commits
    gate.set_autocommit(False)
    prepared, paused, cancelled, threads = {}, {}, {}, []
    try:
        with gate.cursor() as gate_cursor:
            gate_cursor.execute("LOCK TABLE campaigns_frame IN SHARE MODE")
            threads.append(_in_thread(lambda: campaign_prepare(campaign_id=campaign.pk), prepared))
            _wait_for(lambda: _waiting_for_locks() == 1, "the prepare running with the campaign held")
            for action, outcome in ((campaign_pause, paused), (campaign_cancel, cancelled)):
                asked = _in_thread(lambda action=action: action(campaign_id=campaign.pk), outcome)
                asked.join(timeout=10)
                assert not asked.is_alive(), f"{action.__name__} still waits for the prepare after 10 s"
            gate.commit()
            threads[0].join(timeout=30)
    finally:
        gate.rollback()
        gate.close()

    for outcome in (paused, cancelled):
        error = outcome.get("error")
        assert isinstance(error, ValidationError), outcome
        assert "still preparing" in error.message_dict["state"][0] and "Try again in a few seconds" in str(error)
    assert prepared["result"].state == Campaign.State.SENDING, "the prepare went on, and finished"
    campaign_cancel(campaign_id=campaign.pk)  # tried again: it takes
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    assert not Message.objects.filter(campaign=campaign, status="pending").exists(), "nothing left to send"
    assert not Frame.objects.filter(campaign=campaign).exclude(state="cancelled").exists()


@pytest.fixture
def refused_address():
    """A check constraint that refuses one message address: the share holding it fails for real."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE campaigns_message ADD CONSTRAINT test_refused CHECK (address <> '{REFUSED}')")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_message DROP CONSTRAINT IF EXISTS test_refused")


def _failed_half_way(settings, campaign_for):
    settings.PREPARE_SPLIT_MIN_CONTACTS = 1
    settings.PREPARE_CONNECTIONS = 2
    campaign = campaign_for()
    with pytest.raises(IntegrityError, match="test_refused"):
        campaign_prepare(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED, "not left preparing with nothing to finish it"
    assert (
        campaign.state_reason.startswith("Preparing stopped (IntegrityError: ")
        and "test_refused" in campaign.state_reason
    )
    assert campaign.counters == {}
    first_share = Message.objects.filter(campaign=campaign).count()
    assert 0 < first_share < MEMBERS, "the first share committed, the second did not"
    assert Message.objects.filter(campaign=campaign, status="pending", frame__isnull=True).exists(), "its partial frame"
    return campaign, first_share


@pytest.mark.usefixtures("refused_address")
def test_a_second_run_after_a_failed_share_completes_the_audience_once(settings, campaign_for):
    campaign, _ = _failed_half_way(settings, campaign_for)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE campaigns_message DROP CONSTRAINT test_refused")

    campaign_resume(campaign_id=campaign.pk)  # queues a prepare, which no worker takes here: run it in this test
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PREPARING
    campaign_prepare(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    messages, sizes = _outcome(campaign)
    assert len(messages) == MEMBERS == Message.objects.filter(campaign=campaign).count()
    _frames_hold_their_messages(campaign)
    assert sum(sizes) == campaign.counters["pending"] == counters_recount(campaign_id=campaign.pk)["pending"]
    assert campaign.audience_size == MEMBERS


@pytest.mark.usefixtures("refused_address")
def test_cancelling_after_a_failed_share_closes_and_counts_what_it_left(settings, campaign_for):
    campaign, first_share = _failed_half_way(settings, campaign_for)

    campaign_cancel(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    assert not Message.objects.filter(campaign=campaign, status="pending").exists(), "nothing left to send"
    assert campaign.counters == counters_recount(campaign_id=campaign.pk)
    assert sum(campaign.counters.values()) == first_share
    assert set(campaign.counters) == {"failed", "suppressed"}
    assert not Frame.objects.filter(campaign=campaign, state="pending").exists()
