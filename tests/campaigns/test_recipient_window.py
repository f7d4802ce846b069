"""The promotional window on the recipient's own clock: a contact with a time zone gets a promotion only while the
account's window is open and the same hours are open where they are (Réunion and Guadeloupe for a French account)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign, Frame, Message
from campaigns.selectors import campaign_estimate
from campaigns.services.dispatch import SendContext, campaign_dispatch, frames_claim, frames_send, frames_unlock
from campaigns.services.lifecycle import (
    campaign_cancel,
    campaign_expire,
    campaign_pause,
    campaign_resume,
    frames_hold_until,
)
from campaigns.services.prepare import campaign_prepare
from campaigns.services.recipient_window import frames_hold_for_recipient_zones, recipient_wait_reason
from contacts.models import Contact
from providers.models import ProviderAccount
from tests.campaigns.test_dispatch import _sandbox_account
from tests.factories import CampaignFactory, ContactFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

PARIS_DAYTIME = {"start": "09:00", "end": "21:00", "tz": "Europe/Paris"}


def _late_november_wednesday() -> date:
    """A Wednesday in late November of next year: Paris is on winter time (UTC+1), and the day is still to come on
    the real clock. The claim reads that clock, so a frame held until one of the hours below must not be due yet
    when the test runs (a fixed date did that once it had passed, and the test failed from then on)."""
    day = date(timezone.now().year + 1, 11, 25)
    return day - timedelta(days=(day.weekday() - 2) % 7)


WEDNESDAY = _late_november_wednesday()
# 13:00 in Paris, 16:00 in Réunion, 08:00 in Guadeloupe.
NOON_UTC = datetime.combine(WEDNESDAY, time(12, 0), UTC)


def _contacts(zones: dict[str, int]) -> list:
    contacts, n = [], 0
    for zone, count in zones.items():
        for _ in range(count):
            n += 1
            contacts.append(ContactFactory(phone=f"+336123450{n:02d}", timezone=zone))
    return contacts


def test_the_estimate_warns_of_recipients_outside_the_window_in_their_own_zone_without_stopping_the_launch():
    account = ProviderAccountFactory(kind="octopush", options={"promo_window": PARIS_DAYTIME})
    contacts = _contacts({"Europe/Paris": 2, "Indian/Reunion": 1, "America/Guadeloupe": 2, "": 1})
    all_day = {"start": "00:00", "end": "24:00", "tz": "UTC"}  # while preparing: not held, whatever the hour
    ProviderAccount.objects.filter(pk=account.pk).update(options={**account.options, "promo_window": all_day})
    campaign = CampaignFactory(
        account=account, purpose=Campaign.Purpose.PROMOTIONAL, text="Soldes -50% STOP au 30101", contacts=contacts
    )

    estimate = campaign_estimate(campaign=campaign, at=NOON_UTC)
    assert estimate.problems == [], estimate.problems
    assert estimate.sendable == 6
    assert estimate.as_dict()["warnings"] == [
        "2 recipients are outside the promotional window in their own time zone; they will get it when it opens there."
    ]
    late = campaign_estimate(campaign=campaign, at=NOON_UTC.replace(hour=18, minute=30))  # 22:30 in Réunion
    assert late.warnings == [
        "1 recipient is outside the promotional window in their own time zone; they will get it when it opens there."
    ]
    campaign.text = "Soldes -50% {{first_name}} STOP au 30101"  # texts measured per recipient: the same count
    campaign.save()
    assert campaign_estimate(campaign=campaign, at=NOON_UTC).warnings == estimate.warnings
    campaign.purpose = Campaign.Purpose.TRANSACTIONAL
    campaign.save()
    assert campaign_estimate(campaign=campaign, at=NOON_UTC).warnings == [], "only promotions keep to the window"


# --- Sending: held at the first claim, sent at the opening on both clocks ------------------------------------------

# A Wednesday, 18:30 in Paris: 21:30 in Réunion (closed until Paris's 09:00 tomorrow, 12:00 there), 13:30 in
# Guadeloupe (open), 07:30 in Tahiti (closed until its 09:00, 20:00 in Paris).
EVENING = datetime.combine(WEDNESDAY, time(17, 30), UTC)
REUNION_OPENS = datetime.combine(WEDNESDAY + timedelta(days=1), time(8, 0), UTC)
TAHITI_OPENS = datetime.combine(WEDNESDAY, time(19, 0), UTC)
ZONES = {"Europe/Paris": 2, "Indian/Reunion": 1, "America/Guadeloupe": 1, "Pacific/Tahiti": 1, "": 1}


@pytest.fixture
def octopush(sandbox, settings):
    return _sandbox_account(sandbox, settings, "octopush")


def _launched(account, zones: dict[str, int], window: dict, frame_size: int = 10, **fields) -> Campaign:
    """A promotional campaign prepared (its frames due now) for contacts in `zones`, the account keeping to `window`
    from then on (set after preparing, so that the real clock's hour plays no part)."""
    all_day = {"start": "00:00", "end": "24:00", "tz": "UTC"}  # while preparing: not held, whatever the hour
    ProviderAccount.objects.filter(pk=account.pk).update(options={**account.options, "promo_window": all_day})
    campaign = CampaignFactory(
        account=account, sender=account.senders.get(), purpose=Campaign.Purpose.PROMOTIONAL,
        text="Soldes -50% STOP au 30101", contacts=_contacts(zones), frame_size=frame_size,
        state=Campaign.State.PREPARING, **fields,
    )  # fmt: skip
    campaign_prepare(campaign_id=campaign.pk)
    ProviderAccount.objects.filter(pk=account.pk).update(options={**account.options, "promo_window": window})
    Frame.objects.filter(campaign=campaign).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    return Campaign.objects.select_related("account", "sender", "template").get(pk=campaign.pk)


def _dispatch_round(campaign: Campaign, now: datetime) -> list[Frame]:
    """One dispatcher round as campaign_dispatch makes it, at `now` (the windows' clock): claim, hold, send."""
    campaign = Campaign.objects.select_related("account", "sender", "template").get(pk=campaign.pk)
    frames = frames_claim(campaign_id=campaign.pk)
    frames_hold_for_recipient_zones(frames, campaign=campaign, now=now)
    frames_send(frames, SendContext.for_campaign(campaign))
    return list(Frame.objects.filter(pk__in=[f.id for f in frames]))


def _received(sandbox) -> dict[str, int]:
    return {address: n for (vendor, address), n in sandbox.state.accepted_by_address.items() if vendor == "octopush"}


def _phones(zone: str) -> set[str]:
    return set(Contact.objects.filter(timezone=zone).values_list("phone", flat=True))


@pytest.mark.django_db(transaction=True)
def test_recipients_outside_the_window_in_their_own_zone_get_the_promotion_when_it_opens_there_exactly_once(
    octopush, sandbox
):
    """Before, all six were sent at 18:30 Paris time: Réunion's at 21:30 there, Tahiti's at 07:30."""
    campaign = _launched(octopush, ZONES, PARIS_DAYTIME)
    (first,) = _dispatch_round(campaign, EVENING)

    open_now = _phones("Europe/Paris") | _phones("America/Guadeloupe") | _phones("")
    assert _received(sandbox) == dict.fromkeys(open_now, 1), "only those whose own window is open"
    assert first.state == Frame.State.SENT and first.size == 4
    assert sandbox.state.request_counts["octopush"] == 1
    held = {f.next_attempt_at: f for f in Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING)}
    assert sorted(held) == [TAHITI_OPENS, REUNION_OPENS]
    assert {m.address for m in held[TAHITI_OPENS].messages.all()} == _phones("Pacific/Tahiti")
    assert {m.address for m in held[REUNION_OPENS].messages.all()} == _phones("Indian/Reunion")
    assert held[TAHITI_OPENS].size == held[REUNION_OPENS].size == 1
    assert len({f.seq for f in Frame.objects.filter(campaign=campaign)}) == 3
    assert recipient_wait_reason(campaign_id=campaign.pk, now=EVENING + timedelta(minutes=1)) == (
        # In their zone with the site's beside it, as every wait for a window is said: it read "09:00 Pacific/Tahiti".
        "Waiting for 2 recipients' promotional window (their own time zone), "
        f"next at {WEDNESDAY:%Y-%m-%d} 09:00 UTC-10 (19:00 UTC)."
    )

    frames_hold_until(campaign_id=campaign.pk, opening=EVENING + timedelta(hours=15))  # Paris's window closes
    assert sorted(
        Frame.objects.filter(campaign=campaign, state="pending").values_list("next_attempt_at", flat=True)
    ) == [TAHITI_OPENS, REUNION_OPENS], "they wait for their own opening, when the account's window is open too"

    for opening in (TAHITI_OPENS, REUNION_OPENS):  # each comes: its frame falls due
        Frame.objects.filter(pk=held[opening].pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        _dispatch_round(campaign, opening)
    assert _received(sandbox) == dict.fromkeys(open_now | _phones("Pacific/Tahiti") | _phones("Indian/Reunion"), 1)
    campaign.refresh_from_db()
    assert campaign.counters == {"submitted": 6}
    assert not Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_closes_the_frames_held_for_the_recipients_own_window(octopush, sandbox):
    campaign = _launched(octopush, ZONES, PARIS_DAYTIME)
    _dispatch_round(campaign, EVENING)
    campaign_cancel(campaign_id=campaign.pk)

    assert not Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING).exists()
    held = Message.objects.filter(campaign=campaign, address__in=_phones("Pacific/Tahiti") | _phones("Indian/Reunion"))
    assert set(held.values_list("status", "reason")) == {("failed", "cancelled before sending")}
    campaign.refresh_from_db()
    assert campaign.counters == {"submitted": 4, "failed": 2}
    assert len(_received(sandbox)) == 4


@pytest.mark.django_db(transaction=True)
def test_a_recipient_whose_zone_never_meets_the_accounts_window_fails_saying_so(octopush, sandbox):
    """09:00-12:00 in Paris is 08:00-11:00 UTC; in Kiritimati (UTC+14) it is 19:00-22:00 UTC: no hour in common."""
    mornings = {"start": "09:00", "end": "12:00", "tz": "Europe/Paris"}
    campaign = _launched(octopush, {"Europe/Paris": 1, "Pacific/Kiritimati": 1}, mornings)
    (frame,) = _dispatch_round(campaign, NOON_UTC.replace(hour=10))

    assert _received(sandbox) == dict.fromkeys(_phones("Europe/Paris"), 1)
    failed = Message.objects.get(campaign=campaign, address__in=_phones("Pacific/Kiritimati"))
    assert (failed.status, failed.reason) == (
        "failed",
        "no hour is inside the promotional window both in the account's zone (Europe/Paris) and in the "
        "recipient's (Pacific/Kiritimati)",
    )
    campaign.refresh_from_db()
    assert campaign.counters == {"submitted": 1, "failed": 1}
    assert frame.state == Frame.State.SENT
    assert not Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_holds_a_recipient_whose_own_window_is_closed_and_says_what_the_campaign_waits_for(
    octopush, sandbox
):
    """The account's window (UTC) is open from an hour ago to an hour from now, whatever the time the test runs;
    in Africa/Lagos (UTC+1) the same hours ended a minute or so ago, in Africa/Abidjan (UTC+0) they are open."""
    now = timezone.now().astimezone(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    window = {"tz": "UTC", "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    campaign = _launched(octopush, {"Africa/Abidjan": 1, "Africa/Lagos": 1}, window)

    campaign_dispatch(campaign_id=campaign.pk, budget=3)

    assert _received(sandbox) == dict.fromkeys(_phones("Africa/Abidjan"), 1), "Lagos's evening promotion waits"
    (held,) = Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING)
    opening = start.replace(second=0, microsecond=0) + timedelta(days=1)  # the account's, Lagos's open then too
    assert held.next_attempt_at == opening
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    lagos = opening.astimezone(ZoneInfo("Africa/Lagos"))
    site = f"{opening:%H:%M} UTC" if lagos.date() == opening.date() else f"{opening:%Y-%m-%d %H:%M} UTC"
    assert campaign.state_reason == (
        f"Waiting for 1 recipient's promotional window (their own time zone), next at {lagos:%Y-%m-%d %H:%M} WAT "
        f"({site})."
    )


@pytest.mark.django_db(transaction=True)
def test_the_send_by_deadline_expires_the_frames_held_for_the_recipients_own_window(octopush, sandbox):
    campaign = _launched(octopush, ZONES, PARIS_DAYTIME)
    _dispatch_round(campaign, EVENING)
    deadline = timezone.now() - timedelta(seconds=1)
    Campaign.objects.filter(pk=campaign.pk).update(send_by=deadline)

    assert campaign_expire(campaign_id=campaign.pk, now=timezone.now())
    held = Message.objects.filter(campaign=campaign, address__in=_phones("Pacific/Tahiti") | _phones("Indian/Reunion"))
    assert set(held.values_list("status", "reason")) == {("expired", "send-by deadline passed")}
    campaign.refresh_from_db()
    assert campaign.counters == {"submitted": 4, "expired": 2}
    assert not Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING).exists()
    assert len(_received(sandbox)) == 4


@pytest.mark.django_db(transaction=True)
def test_a_frame_whose_recipients_all_wait_for_their_own_window_is_closed_without_a_request(octopush, sandbox):
    campaign = _launched(octopush, {"Indian/Reunion": 2}, PARIS_DAYTIME)
    (frame,) = _dispatch_round(campaign, EVENING)

    assert sandbox.state.request_counts["octopush"] == 0 and _received(sandbox) == {}
    assert (frame.state, frame.size) == (Frame.State.SENT, 0)
    (held,) = Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING)
    assert (held.next_attempt_at, held.size) == (REUNION_OPENS, 2)
    campaign.refresh_from_db()
    assert campaign.counters == {"pending": 2}


@pytest.mark.django_db(transaction=True)
def test_a_smoothly_sent_campaign_keeps_its_pace_for_the_recipients_held_for_their_own_window(octopush, sandbox):
    """Spread over 30 minutes, four frames 7.5 minutes apart, each with a recipient in Réunion, where it is night:
    each recipient is held for Réunion's opening. Before, the four held frames all went at that opening, in one
    burst; now they keep the campaign's pace from it, 7.5 minutes apart, as they would have from its launch."""
    campaign = _launched(octopush, {"Indian/Reunion": 4}, PARIS_DAYTIME, frame_size=1, smooth_minutes=30)
    paced_from = timezone.now() - timedelta(hours=1)  # (due already, so that each round claims the next one)
    for k, frame in enumerate(Frame.objects.filter(campaign=campaign).order_by("seq")):
        Frame.objects.filter(pk=frame.pk).update(next_attempt_at=paced_from + timedelta(minutes=7.5 * k))

    for _ in range(4):
        _dispatch_round(campaign, EVENING)

    assert _received(sandbox) == {}
    held = Frame.objects.filter(campaign=campaign, state=Frame.State.PENDING).order_by("next_attempt_at")
    assert [f.next_attempt_at for f in held] == [REUNION_OPENS + timedelta(minutes=7.5 * k) for k in range(4)]
    assert recipient_wait_reason(campaign_id=campaign.pk, now=EVENING).endswith(
        f"next at {REUNION_OPENS:%Y-%m-%d} 12:00 UTC+04 (08:00 UTC)."
    )

    # Paused until after that opening, then resumed: they go on at that pace from now, not all at once.
    campaign_pause(campaign_id=campaign.pk)
    Frame.objects.filter(pk__in=held).update(next_attempt_at=F("next_attempt_at") - (REUNION_OPENS - paced_from))
    all_day = {"start": "00:00", "end": "24:00", "tz": "UTC"}  # (the real clock's hour plays no part)
    ProviderAccount.objects.filter(pk=octopush.pk).update(options={**octopush.options, "promo_window": all_day})
    before = timezone.now()
    campaign_resume(campaign_id=campaign.pk)
    dues = [f.next_attempt_at for f in held.all()]
    assert before <= dues[0] <= timezone.now()
    assert [due - dues[0] for due in dues] == [timedelta(minutes=7.5 * k) for k in range(4)]


@pytest.mark.django_db(transaction=True)
def test_no_frame_is_added_to_a_campaign_cancelled_after_its_frame_was_claimed(octopush, sandbox):
    campaign = _launched(octopush, ZONES, PARIS_DAYTIME)
    frames = frames_claim(campaign_id=campaign.pk)
    try:
        campaign_cancel(campaign_id=campaign.pk)  # committed while the frame is claimed, before it is looked at
        frames_hold_for_recipient_zones(frames, campaign=campaign, now=EVENING)
    finally:
        frames_unlock([f.id for f in frames])
    assert Frame.objects.filter(campaign=campaign).count() == 1, "nothing would ever close one"
