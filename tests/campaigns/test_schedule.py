"""Scheduled and recurring campaigns as staff use them: launched once at their time by beat's tick, a recurring
one keeping its time of day and its send-by deadline from run to run."""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Frame
from campaigns.services.dispatch import campaign_dispatch
from campaigns.services.editing import campaign_update, scheduled_reason
from campaigns.services.lifecycle import campaign_launch, campaign_pause, campaign_resume, frames_hold_until
from campaigns.services.schedule import campaigns_expire_overdue, campaigns_launch_due
from campaigns.tasks import campaigns_tick_task
from contacts.models import Contact, Tag
from providers.models import ProviderAccount, Sender
from tests.campaigns.conftest import contacts_tagged
from tests.campaigns.test_dispatch import _octopush_accepted, _prepared_campaign, _sandbox_account
from tests.factories import CampaignFactory, FrameFactory, UserFactory, admin_client_for, api_client_for

pytestmark = pytest.mark.django_db(transaction=True)


ALL_DAY = {"start": "00:00", "end": "24:00", "tz": "UTC"}


@pytest.fixture
def octopush(sandbox, settings):
    return _sandbox_account(sandbox, settings, "octopush")


def _campaign(account, **fields) -> Campaign:
    campaign = Campaign.objects.create(
        name=fields.pop("name", "digest"), account=account, sender=account.senders.get(), text="Hi", **fields
    )
    campaign.tags.set([contacts_tagged(3, tag_name="digest readers")])
    return campaign


def test_a_recurring_campaign_with_a_send_by_deadline_keeps_running_after_its_first_deadline(octopush):
    send_at = timezone.now() - timedelta(minutes=1)
    weekly = _campaign(octopush, state=Campaign.State.SCHEDULED, recurrence="weekly", send_at=send_at,
                       send_by=send_at + timedelta(hours=3))  # fmt: skip

    weekly.excluded_tags.set([Tag.objects.create(name="staff")])
    weekly.contacts.set([Contact.objects.create(phone="+919876543210")])

    campaigns_launch_due()
    run = Campaign.objects.get(parent=weekly)
    assert run.send_by == send_at + timedelta(hours=3)
    for relation in ("tags", "excluded_tags", "contacts"):
        assert set(getattr(run, relation).all()) == set(getattr(weekly, relation).all()), "the same audience"
    campaigns_expire_overdue(now=send_at + timedelta(hours=4))  # the first run's deadline is past

    weekly.refresh_from_db()
    assert weekly.state == Campaign.State.SCHEDULED, weekly.state_reason
    assert weekly.send_at == send_at + timedelta(weeks=1)
    assert weekly.send_by == send_at + timedelta(weeks=1, hours=3), "each run has three hours, as the first had"


@pytest.mark.parametrize("starts", ["empty", "past"])
def test_a_recurring_campaign_launched_without_a_future_send_time_recurs_instead_of_sending_once(octopush, starts):
    now = timezone.now()
    send_at = None if starts == "empty" else now - timedelta(hours=2)
    daily = _campaign(octopush, recurrence="daily", send_at=send_at)

    campaign_launch(campaign_id=daily.pk, now=now)
    daily.refresh_from_db()
    assert daily.state == Campaign.State.SCHEDULED
    assert daily.state_reason == "Recurring; its first run is launched now."
    campaigns_launch_due(now=now)

    run = Campaign.objects.get(parent=daily)
    assert run.state == Campaign.State.PREPARING
    daily.refresh_from_db()
    assert daily.state == Campaign.State.SCHEDULED
    assert daily.send_at == (send_at or now) + timedelta(days=1)


@pytest.mark.parametrize(("recurrence", "smooth_minutes"), [("daily", 24 * 60), ("weekly", 7 * 24 * 60)])
def test_a_recurring_campaign_spread_over_longer_than_its_period_is_refused_naming_the_field(
    octopush, recurrence, smooth_minutes
):
    """Each run would still be sending when the next started: people late in one run's spread got its message and
    the next one's together."""
    daily = _campaign(octopush, recurrence=recurrence, smooth_minutes=smooth_minutes)

    with pytest.raises(ValidationError) as refused:
        campaign_launch(campaign_id=daily.pk)

    assert "a run would still be sending when the next one starts" in refused.value.message_dict["smooth_minutes"][0]
    daily.smooth_minutes = smooth_minutes - 60
    daily.save(update_fields=["smooth_minutes"])
    assert campaign_launch(campaign_id=daily.pk).state == Campaign.State.SCHEDULED


def test_the_launch_page_of_a_daily_campaign_says_it_recurs_and_launching_it_schedules_its_runs(octopush):
    daily = _campaign(octopush, recurrence="daily")
    client = admin_client_for()
    url = reverse("admin:campaigns_campaign_action", args=[daily.pk, "launch"])

    assert "<dt>When</dt><dd>Daily, from now.</dd>" in client.get(url).content.decode()
    response = client.post(url)

    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == [f"“digest” is scheduled. {Campaign.objects.get(pk=daily.pk).state_reason}"]
    assert said[0] == "“digest” is scheduled. Recurring; its first run is launched now."  # (it said "next run" and now)


def test_the_launch_page_of_a_daily_campaign_whose_first_send_time_has_passed_says_its_first_run_goes_out_now(
    octopush,
):
    """It said only "Daily, from 2020-01-01 10:00 UTC." and the message after "next run" at the moment of launch,
    while the launch sent a run at once."""
    daily = _campaign(octopush, recurrence="daily", send_at=timezone.now() - timedelta(days=2))
    client = admin_client_for()
    url = reverse("admin:campaigns_campaign_action", args=[daily.pk, "launch"])

    when = client.get(url).content.decode().split("<dt>When</dt><dd>")[1].split("</dd>")[0]
    assert when.endswith(": its first send time has passed, so the first run goes out now."), when
    response = client.post(url)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "“digest” is scheduled. Recurring; its first run is launched now."
    ]


def test_a_daily_campaign_keeps_its_local_time_of_day_across_a_daylight_saving_change(octopush, settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")
    send_at = datetime(2026, 3, 28, 9, 0, tzinfo=paris)  # the clocks go forward on the night of 28 to 29 March
    daily = _campaign(octopush, state=Campaign.State.SCHEDULED, recurrence="daily", send_at=send_at,
                      send_by=send_at + timedelta(hours=2))  # fmt: skip

    campaigns_launch_due(now=send_at + timedelta(minutes=1))

    daily.refresh_from_db()
    assert daily.send_at == datetime(2026, 3, 29, 9, 0, tzinfo=paris), "9:00 in Paris, not 10:00"
    assert daily.send_by == datetime(2026, 3, 29, 11, 0, tzinfo=paris)
    assert daily.state_reason == "Recurring; next run 2026-03-29 09:00 CEST."


def test_a_daily_campaign_whose_tick_was_missed_for_days_sends_one_run_for_the_latest_time_within_its_deadline(
    octopush,
):
    send_at = (timezone.now() - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    daily = _campaign(octopush, state=Campaign.State.SCHEDULED, recurrence="daily", send_at=send_at,
                      send_by=send_at + timedelta(hours=2))  # fmt: skip
    latest = send_at + timedelta(days=2)

    assert len(campaigns_launch_due(now=latest + timedelta(hours=1))) == 1, "beat was down two days: one run"

    run = Campaign.objects.get(parent=daily)
    assert run.state == Campaign.State.PREPARING, run.state_reason
    assert run.name == f"digest — {latest:%Y-%m-%d %H:%M}"
    assert run.send_by == latest + timedelta(hours=2)
    daily.refresh_from_db()
    assert (daily.send_at, daily.send_by) == (latest + timedelta(days=1), latest + timedelta(days=1, hours=2))


def test_a_daily_campaign_at_a_time_the_clocks_skip_or_repeat_runs_once_a_day_and_keeps_its_time(octopush, settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")
    # 02:30 does not exist on 29 March 2026 (02:00 -> 03:00) and comes twice on 25 October (03:00 -> 02:00).
    spring = _campaign(octopush, name="spring", state=Campaign.State.SCHEDULED, recurrence="daily",
                       send_at=datetime(2026, 3, 28, 2, 30, tzinfo=paris))  # fmt: skip
    autumn = _campaign(octopush, name="autumn", state=Campaign.State.SCHEDULED, recurrence="daily",
                       send_at=datetime(2026, 10, 24, 2, 30, tzinfo=paris))  # fmt: skip

    def runs_over(daily, ticks):
        sent = []
        for tick in ticks:  # beat's tick, once a minute on the night
            if Campaign.objects.filter(pk__in=campaigns_launch_due(now=tick), parent=daily).exists():
                sent.append(tick)
            daily.refresh_from_db()
        return sent, timezone.localtime(daily.send_at)

    night = [datetime(2026, 3, d, 0, 0, tzinfo=UTC) + timedelta(minutes=m) for d in (28, 29, 30) for m in range(180)]
    sent, next_at = runs_over(spring, night)
    assert [timezone.localtime(t).strftime("%d %H:%M %Z") for t in sent] == [
        "28 02:30 CET",
        "29 03:30 CEST",
        "30 02:30 CEST",
    ], "on the night 02:30 is skipped the run goes an hour on; the next day it is back at 02:30"
    assert next_at.strftime("%d %H:%M %Z") == "31 02:30 CEST", "not 03:30 for ever after"

    night = [datetime(2026, 10, d, 0, 0, tzinfo=UTC) + timedelta(minutes=m) for d in (24, 25, 26) for m in range(180)]
    sent, next_at = runs_over(autumn, night)
    assert [timezone.localtime(t).strftime("%d %H:%M %Z") for t in sent] == [
        "24 02:30 CEST",
        "25 02:30 CEST",
        "26 02:30 CET",
    ], "one run on the night 02:30 comes twice"
    assert next_at.strftime("%d %H:%M %Z") == "27 02:30 CET"
    assert Campaign.objects.filter(parent=autumn).count() == 3


def test_a_promotional_campaign_sending_when_its_window_closes_waits_for_it_to_open_and_then_sends_the_rest(
    octopush, sandbox
):
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    octopush.options = {**octopush.options, "promo_window": ALL_DAY}  # open whatever the time the test runs at
    octopush.save(update_fields=["options"])
    campaign = _prepared_campaign(
        octopush, 30, frame_size=10, start_text="Sale today! STOP au 30101", purpose="promotional", smooth_minutes=10
    )
    campaign_dispatch(campaign_id=campaign.pk, budget=5)
    assert len(_octopush_accepted(sandbox)) == 10, "the first frame went while the window was open"
    octopush.options = {**octopush.options, "promo_window": window}  # as if the window had closed since
    octopush.save(update_fields=["options"])
    pending = Frame.objects.filter(campaign=campaign, state="pending")
    pending.update(next_attempt_at=F("next_attempt_at") - timedelta(seconds=200))  # 200 s later: the second is due

    campaigns_tick_task()  # beat, each minute
    next_due = campaign_dispatch(campaign_id=campaign.pk, budget=2)

    opening = datetime.combine(timezone.now().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    campaign.refresh_from_db()
    assert len(_octopush_accepted(sandbox)) == 10, "nothing goes out while the window is closed"
    assert campaign.state == Campaign.State.SENDING
    assert campaign.state_reason == f"Outside the promotional window: sending resumes at {opening:%Y-%m-%d %H:%M} UTC."
    waiting = sorted(pending.values_list("next_attempt_at", flat=True))
    assert waiting[0] == opening
    assert abs((waiting[1] - waiting[0]).total_seconds() - 200) < 5, "smooth sending's spacing is kept"
    assert (opening - timezone.now()).total_seconds() - next_due < 5, "the dispatchers look again at the opening"
    campaigns_tick_task()  # a minute later, still closed: the frames stay where they are
    assert (
        sorted(Frame.objects.filter(campaign=campaign, state="pending").values_list("next_attempt_at", flat=True))
        == waiting
    )

    octopush.options = {**octopush.options, "promo_window": ALL_DAY}
    octopush.save(update_fields=["options"])
    pending.update(next_attempt_at=timezone.now())  # the opening came
    campaigns_tick_task()
    campaign_dispatch(campaign_id=campaign.pk, budget=5)
    campaign.refresh_from_db()
    assert campaign.state_reason == ""
    assert len(_octopush_accepted(sandbox)) == 30


@pytest.mark.parametrize(
    ("start", "end", "launched_at", "deferred_to"),
    [
        ("10:00", "24:00", "23:30", None),  # until midnight
        ("00:00", "24:00", "03:00", None),  # all day
        ("10:00", "00:00", "00:30", "10:00"),
        ("21:00", "02:00", "01:00", None),  # the night: the hours after midnight are the evening's window
        ("21:00", "02:00", "02:30", "21:00"),
    ],
)
def test_a_promotional_window_that_runs_to_or_past_midnight_lets_a_campaign_send_inside_it_and_waits_outside_it(
    octopush, start, end, launched_at, deferred_to
):
    window = {"start": start, "end": end, "tz": "Europe/Paris"}
    ProviderAccount.objects.filter(pk=octopush.pk).update(options={"promo_window": window})
    paris = ZoneInfo("Europe/Paris")
    day = timezone.now().astimezone(paris).date() + timedelta(days=1)
    now = datetime.combine(day, datetime.strptime(launched_at, "%H:%M").time(), paris)
    campaign = _campaign(octopush, purpose="promotional")
    Campaign.objects.filter(pk=campaign.pk).update(text="Sale today! STOP au 30101")

    campaign_launch(campaign_id=campaign.pk, now=now)

    campaign.refresh_from_db()
    if deferred_to is None:
        assert campaign.state == Campaign.State.PREPARING, campaign.state_reason
    else:
        assert campaign.state == Campaign.State.SCHEDULED
        assert timezone.localtime(campaign.send_at, paris).strftime("%Y-%m-%d %H:%M") == f"{day} {deferred_to}"


def test_a_dispatcher_sends_no_frame_after_the_promotional_window_closes_before_beats_tick(octopush, sandbox):
    """Between two of beat's ticks (a minute) a dispatcher goes on sending frame after frame: it checks the window
    before each one, and the campaign waits for the opening at once."""
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    campaign = _prepared_campaign(
        octopush, 30, frame_size=10, start_text="Sale today! STOP au 30101", purpose="promotional"
    )
    octopush.options = {**octopush.options, "promo_window": window}  # closed since the launch; no tick yet
    octopush.save(update_fields=["options"])

    next_due = campaign_dispatch(campaign_id=campaign.pk, budget=5)

    opening = datetime.combine(timezone.now().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    campaign.refresh_from_db()
    assert len(_octopush_accepted(sandbox)) == 0, "not one frame after the close"
    assert campaign.state_reason == f"Outside the promotional window: sending resumes at {opening:%Y-%m-%d %H:%M} UTC."
    assert set(Frame.objects.filter(campaign=campaign).values_list("next_attempt_at", flat=True)) == {opening}
    assert (opening - timezone.now()).total_seconds() - next_due < 5, "the dispatchers look again at the opening"


def test_a_promotional_launch_deferred_past_its_send_by_deadline_is_refused_at_once_naming_the_deadline(octopush):
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    octopush.options = {**octopush.options, "promo_window": window}
    octopush.save(update_fields=["options"])
    campaign = _campaign(octopush, purpose="promotional", send_by=timezone.now() + timedelta(hours=1))
    Campaign.objects.filter(pk=campaign.pk).update(text="Sale today! STOP au 30101")

    with pytest.raises(ValidationError) as refused:
        campaign_launch(campaign_id=campaign.pk)

    opening = datetime.combine(timezone.now().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    assert refused.value.message_dict == {
        "send_by": [
            f"The send-by deadline comes before the promotional window opens, at {opening:%Y-%m-%d %H:%M} UTC, "
            "so nothing would be sent."
        ]
    }
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT


@pytest.mark.parametrize(
    ("recurrence", "edited", "said"), [("daily", "", "Scheduled for"), ("", "weekly", "Recurring; next run")]
)
def test_making_a_scheduled_campaign_recur_or_not_changes_what_it_says_it_waits_for(octopush, recurrence, edited, said):
    send_at = timezone.now() + timedelta(days=1)
    campaign = _campaign(octopush, recurrence=recurrence, send_at=send_at)
    campaign_launch(campaign_id=campaign.pk)
    api = api_client_for(UserFactory(superuser=True))

    response = api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"recurrence": edited}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "scheduled"
    assert response.json()["state_reason"] == scheduled_reason(at=send_at, recurring=bool(edited))
    assert response.json()["state_reason"].startswith(said)


def test_a_smoothly_sent_campaign_resumed_after_a_pause_goes_on_at_its_pace_not_in_a_burst(octopush, sandbox):
    campaign = _prepared_campaign(octopush, 40, frame_size=10, smooth_minutes=10)  # a frame every 150 s
    campaign_dispatch(campaign_id=campaign.pk, budget=2)
    campaign_pause(campaign_id=campaign.pk)
    pending = Frame.objects.filter(campaign=campaign, state="pending")
    pending.update(next_attempt_at=F("next_attempt_at") - timedelta(minutes=20))  # resumed 20 minutes later

    campaign_resume(campaign_id=campaign.pk)
    next_due = campaign_dispatch(campaign_id=campaign.pk, budget=2)

    assert len(_octopush_accepted(sandbox)) == 20, "the next frame goes at once, the others at their pace"
    assert 140 < next_due <= 150


def test_a_dispatcher_sends_nothing_after_the_send_by_deadline_even_before_beats_tick_expires_it(octopush, sandbox):
    campaign = _prepared_campaign(octopush, 30, frame_size=10)
    Campaign.objects.filter(pk=campaign.pk).update(send_by=timezone.now() - timedelta(seconds=1))  # beat down

    assert campaign_dispatch(campaign_id=campaign.pk, budget=2) is None

    assert _octopush_accepted(sandbox) == [], "no message after its deadline"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.COMPLETED
    assert set(campaign.messages.values_list("status", "reason")) == {("expired", "send-by deadline passed")}


def test_a_frame_whose_send_by_deadline_passes_while_it_waits_for_the_rate_limit_is_not_sent(octopush, sandbox):
    ProviderAccount.objects.filter(pk=octopush.pk).update(rate_limit=0.5)  # a request every two seconds
    campaign = _prepared_campaign(octopush, 30, frame_size=10)
    send_by = timezone.now() + timedelta(seconds=1)
    Campaign.objects.filter(pk=campaign.pk).update(send_by=send_by)

    campaign_dispatch(campaign_id=campaign.pk, budget=10)

    assert _octopush_accepted(sandbox) == [1] * 10, "the first frame, before the deadline; the second's token after it"
    campaign.refresh_from_db()
    assert not campaign.messages.filter(submitted_at__gte=send_by).exists()
    assert campaign.messages.filter(status="expired", reason="send-by deadline passed").count() == 20
    assert not Frame.objects.filter(campaign=campaign, state__in=["pending", "sending"]).exists()


def test_a_smoothly_sent_campaign_whose_workers_were_down_goes_on_at_its_pace_not_in_a_burst(octopush, sandbox):
    campaign = _prepared_campaign(octopush, 40, frame_size=10, smooth_minutes=10)  # a frame every 150 s
    pending = Frame.objects.filter(campaign=campaign, state="pending")
    pending.update(next_attempt_at=F("next_attempt_at") - timedelta(minutes=8))  # no worker for 8 minutes

    next_due = campaign_dispatch(campaign_id=campaign.pk, budget=2)  # the worker is back

    assert len(_octopush_accepted(sandbox)) == 10, "the next frame goes at once, the others at their pace"
    assert 140 < next_due <= 150
    spacing = sorted(pending.values_list("next_attempt_at", flat=True))
    assert [round((b - a).total_seconds()) for a, b in itertools.pairwise(spacing)] == [150, 150]


@pytest.mark.parametrize("change", ["account deactivated", "sender rejected"])
def test_a_scheduled_campaign_whose_account_or_sender_went_away_fails_at_its_time_saying_why(octopush, change):
    campaign = _campaign(octopush, send_at=timezone.now() + timedelta(minutes=5))
    campaign_launch(campaign_id=campaign.pk)
    if change == "account deactivated":
        ProviderAccount.objects.filter(pk=octopush.pk).update(is_active=False)
    else:
        Sender.objects.filter(account=octopush).update(status="rejected")

    assert campaigns_launch_due(now=timezone.now() + timedelta(minutes=6)) == []

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.FAILED
    assert campaign.state_reason == "Could not launch at its scheduled time: " + (
        f"account: The provider account {octopush.name} is not active."
        if change == "account deactivated"
        else "sender: Sender Herald is rejected, not approved."
    )
    assert not campaign.messages.exists()


def test_a_promotional_campaign_resumed_while_its_window_is_closed_waits_for_it_instead_of_sending(octopush, sandbox):
    campaign = _prepared_campaign(octopush, 30, frame_size=10, start_text="Sale today! STOP au 30101",
                                  purpose="promotional")  # fmt: skip
    campaign_pause(campaign_id=campaign.pk)
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    octopush.options = {**octopush.options, "promo_window": window}
    octopush.save(update_fields=["options"])

    campaign_resume(campaign_id=campaign.pk)  # at night, say
    campaign_dispatch(campaign_id=campaign.pk, budget=2)

    opening = datetime.combine(timezone.now().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    campaign.refresh_from_db()
    assert len(_octopush_accepted(sandbox)) == 0, "nothing goes out before the window opens"
    assert campaign.state == Campaign.State.SENDING
    assert campaign.state_reason == f"Outside the promotional window: sending resumes at {opening:%Y-%m-%d %H:%M} UTC."


def test_a_promotional_campaign_whose_window_closes_while_it_is_prepared_waits_for_it(octopush, sandbox):
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    octopush.options = {**octopush.options, "promo_window": window}  # closed by the time preparing ends
    octopush.save(update_fields=["options"])

    campaign = _prepared_campaign(octopush, 30, frame_size=10, start_text="Sale today! STOP au 30101",
                                  purpose="promotional")  # fmt: skip
    campaign_dispatch(campaign_id=campaign.pk, budget=2)

    assert len(_octopush_accepted(sandbox)) == 0
    assert campaign.state == Campaign.State.SENDING
    assert campaign.state_reason.startswith("Outside the promotional window: sending resumes at ")


def test_a_recurring_campaigns_page_leads_to_its_runs(octopush):
    weekly = _campaign(octopush, state=Campaign.State.SCHEDULED, recurrence="weekly",
                       send_at=timezone.now() - timedelta(minutes=1))  # fmt: skip
    campaigns_launch_due()
    run = Campaign.objects.get(parent=weekly)
    client = admin_client_for()

    page = client.get(reverse("admin:campaigns_campaign_change", args=[weekly.pk])).content.decode()
    runs_url = reverse("admin:campaigns_campaign_changelist") + f"?parent__id__exact={weekly.pk}"
    assert f'<a href="{runs_url}">1 run so far</a>' in page.replace("&amp;", "&")

    listed = client.get(runs_url)
    assert listed.status_code == 200
    assert [c.pk for c in listed.context["cl"].result_list] == [run.pk]


# --- From the review of the window hold, smooth resume and recurring edits ------------------------------------


def test_frames_held_for_the_window_keep_their_order_and_spacing():
    """All the waiting frames move on together: those due before the opening do not land among those due after it
    (a campaign smoothed over longer than the window is closed would send two at once, out of order)."""
    campaign = CampaignFactory(state=Campaign.State.SENDING, smooth_minutes=24 * 60)
    now = timezone.now().replace(microsecond=0)
    opening = now + timedelta(minutes=60)
    offsets = [0, 30, 50, 70, 90]  # minutes from now, one frame each, in seq order
    frames = [
        FrameFactory(campaign=campaign, seq=n + 1, next_attempt_at=now + timedelta(minutes=m))
        for n, m in enumerate(offsets)
    ]

    assert frames_hold_until(campaign_id=campaign.pk, opening=opening)

    due = [Frame.objects.get(pk=f.pk).next_attempt_at for f in frames]
    assert [(d - opening) for d in due] == [timedelta(minutes=m) for m in offsets]
    assert frames_hold_until(campaign_id=campaign.pk, opening=opening)  # again: nothing moves
    assert [Frame.objects.get(pk=f.pk).next_attempt_at for f in frames] == due


def test_a_smooth_promotional_campaign_resumed_outside_its_window_goes_on_at_its_pace_from_the_opening():
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    campaign = CampaignFactory(
        state=Campaign.State.PAUSED, purpose=Campaign.Purpose.PROMOTIONAL, smooth_minutes=120, audience_size=4,
        text="Sale! STOP au 30101",
    )  # fmt: skip
    campaign.account.options = {**campaign.account.options, "promo_window": window}
    campaign.account.save(update_fields=["options"])
    now = timezone.now()
    frames = [  # paused two hours ago: all four fell due during the pause, half an hour apart
        FrameFactory(campaign=campaign, seq=n + 1, next_attempt_at=now - timedelta(minutes=120 - 30 * n))
        for n in range(4)
    ]

    campaign_resume(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    opening = datetime.combine(timezone.now().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    assert campaign.state_reason.startswith("Outside the promotional window")
    due = sorted(Frame.objects.get(pk=f.pk).next_attempt_at for f in frames)
    assert due[0] == opening
    gaps = [(b - a).total_seconds() for a, b in zip(due, due[1:], strict=False)]
    assert gaps == [1800.0, 1800.0, 1800.0], "not in one burst"


def test_a_frame_in_doubt_of_a_promotional_campaign_is_not_sent_again_outside_its_window(octopush, sandbox):
    """Octopush's recovery sends a frame in doubt again (under its request_id), and one a dead worker left `sending`:
    while the window is closed they wait for the opening with the others, rather than going out at night."""
    campaign = _prepared_campaign(
        octopush, 20, frame_size=10, start_text="Sale today! STOP au 30101", purpose="promotional"
    )
    first, second = Frame.objects.filter(campaign=campaign).order_by("seq")
    Frame.objects.filter(pk=first.pk).update(uncertain=True)  # its answer was lost
    dead = timezone.now() - timedelta(minutes=5)
    Frame.objects.filter(pk=second.pk).update(
        state="sending", attempts=1, started_at=dead
    )  # its worker died sending it
    today = timezone.now().weekday()
    window = {"start": "09:00", "end": "21:00", "tz": "UTC", "days": [d for d in range(7) if d != today]}
    octopush.options = {**octopush.options, "promo_window": window}  # the window has closed
    octopush.save(update_fields=["options"])

    campaign_dispatch(campaign_id=campaign.pk, budget=3)

    campaign.refresh_from_db()
    assert campaign.state_reason.startswith("Outside the promotional window")
    assert len(_octopush_accepted(sandbox)) == 0
    assert Frame.objects.get(pk=first.pk).uncertain, "still to be reconciled, at the opening"
    assert Frame.objects.get(pk=second.pk).next_attempt_at > timezone.now() + timedelta(hours=1)


def test_a_recurring_campaign_saved_from_a_page_opened_before_its_run_does_not_send_the_run_again(octopush):
    """A daily campaign's page opened before its 09:00 run and saved after beat's tick moved it to tomorrow
    would write back today's 09:00, and the next tick would send today's run a second time: that send time is
    refused, on its field, in the API and on the admin page."""
    send_at = timezone.now() - timedelta(minutes=1)
    daily = _campaign(octopush, state=Campaign.State.SCHEDULED, recurrence="daily", send_at=send_at)
    campaigns_launch_due()  # beat's tick: today's run, and the campaign moves on to tomorrow
    assert Campaign.objects.filter(parent=daily).count() == 1

    with pytest.raises(ValidationError) as refused:
        campaign_update(campaign=daily, data={"text": "Hi, typo fixed", "send_at": send_at, "recurrence": "daily"})
    assert list(refused.value.message_dict) == ["send_at"]
    assert "went out already" in refused.value.message_dict["send_at"][0]
    api = api_client_for(UserFactory(superuser=True))
    stale = api.patch(f"/api/v1/campaigns/{daily.pk}/", {"text": "Hi, typo fixed", "send_at": send_at.isoformat()})
    assert stale.status_code == 400 and "went out already" in stale.json()["send_at"][0]

    campaigns_launch_due()
    assert Campaign.objects.filter(parent=daily).count() == 1, "today's run was not made again"
    daily.refresh_from_db()
    assert daily.send_at > timezone.now() and daily.text == "Hi"


def test_a_recurring_campaign_with_the_longest_name_still_runs(octopush):
    """Its run's name adds the time: before, it overflowed the column and the tick failed every minute."""
    daily = _campaign(
        octopush, name="N" * 150, state=Campaign.State.SCHEDULED, recurrence="daily",
        send_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip

    launched = campaigns_launch_due()

    run = Campaign.objects.get(parent=daily)
    assert launched == [run.pk] and len(run.name) == 150 and run.name.startswith("N" * 100)
