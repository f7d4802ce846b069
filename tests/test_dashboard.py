"""The admin index's dashboard: today's messages by status, delivery per account over 7 days, campaigns under way,
accounts failing their last check; its figures cost a fixed number of queries."""

import re
from datetime import timedelta

import pytest

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.dashboard import dashboard_figures
from campaigns.models import Campaign, Message
from config.times import time_shown
from tests.factories import (
    CampaignFactory,
    FrameFactory,
    MessageFactory,
    ProviderAccountFactory,
    UserFactory,
    admin_client_for,
)

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:campaigns_campaign_dashboard")


def messages(account, status, count, days_ago=0, **fields):
    made = [MessageFactory(campaign=None, contact=None, account=account, status=status, **fields) for _ in range(count)]
    if days_ago:
        Message.objects.filter(pk__in=[m.pk for m in made]).update(created_at=timezone.now() - timedelta(days=days_ago))
    return made


@pytest.fixture(autouse=True)
def _no_figures_kept_from_another_test():
    """The days before today are kept in the cache (shared by the session's tests, made on the same day)."""
    cache.clear()


@pytest.fixture
def traffic():
    alpha = ProviderAccountFactory(name="Alpha")
    beta = ProviderAccountFactory(name="Beta", kind="octopush")
    messages(alpha, "delivered", 9, days_ago=30)  # older ones first: ids grow with time, as in production
    messages(alpha, "delivered", 3, days_ago=3)
    messages(alpha, "undelivered", 1, days_ago=3, submitted_at=timezone.now() - timedelta(days=3))
    messages(alpha, "delivered", 4)
    messages(alpha, "rejected", 1)  # refused when submitted: never sent to the provider
    messages(beta, "submitted", 2)
    messages(beta, "suppressed", 1)
    return alpha, beta


def test_todays_messages_by_status(traffic):
    today = dashboard_figures()["today"]
    assert today["counts"] == {"submitted": 2, "delivered": 4, "rejected": 1, "suppressed": 1}
    assert (today["total"], today["delivered"], today["failed"], today["in_flight"]) == (8, 4, 1, 2)
    assert today["rate"] == 80.0


def test_delivery_rate_per_account_over_seven_days(traffic):
    figures = dashboard_figures()
    alpha, beta = figures["delivery"]
    assert (alpha["name"], alpha["delivered"], alpha["failed"], alpha["rate"]) == ("Alpha", 7, 2, 77.8)
    assert alpha["sent"] == 8, "sent: what the provider took (the undelivered one too), not the refusal at submit"
    assert len(alpha["daily"]) == 7 == len(figures["days"])
    assert alpha["daily"][-1] == 80.0 and alpha["daily"][-4] == 75.0 and alpha["daily"][0] is None
    assert (beta["name"], beta["sent"], beta["rate"]) == ("Beta", 2, None), "no outcome yet, no rate"


def test_messages_closed_before_they_were_sent_count_in_no_failure_or_rate():
    """A campaign cancelled at 13 % read "Sent 500 · Delivered 463 · Failed 3161 · Rate 12.8%" for its account:
    the messages the cancel closed (error code not-sent) are shown apart, today and in the week's figures."""
    account = ProviderAccountFactory(name="Alpha")
    messages(account, "expired", 2, days_ago=3, error_code="not-sent", reason="send-by deadline passed")
    messages(account, "delivered", 3, days_ago=3)
    messages(account, "delivered", 4)
    messages(account, "rejected", 1)
    messages(account, "failed", 5, error_code="not-sent", reason="cancelled before sending")

    figures = dashboard_figures()

    today = figures["today"]
    assert (today["failed"], today["not_sent"], today["rate"]) == (1, 5, 80.0)
    assert "failed" not in today["counts"] and today["counts"]["not_sent"] == 5, "the table counts as the cards do"
    (row,) = figures["delivery"]
    assert (row["delivered"], row["failed"], row["rate"], row["daily"][-4]) == (7, 1, 87.5, 100.0)
    assert "<dt>Not sent</dt>" in admin_client_for().get(DASHBOARD).content.decode()


def test_the_status_table_counts_the_not_sent_apart_as_the_cards_do():
    """The cards said Failed 2 and Not sent 5 while the status table below said "expired 3, failed 4" with no
    "not sent" row."""
    account = ProviderAccountFactory(name="Alpha")
    messages(account, "delivered", 1)
    messages(account, "expired", 1)
    messages(account, "failed", 1, error_code="", reason="Connection refused")
    messages(account, "expired", 2, error_code="not-sent", reason="send-by deadline passed")
    messages(account, "failed", 3, error_code="not-sent", reason="cancelled before sending")

    html = admin_client_for().get(DASHBOARD).content.decode()

    assert '<div class="counter-failed"><dt>Failed</dt><dd>2</dd></div>' in html
    table = html[html.index('class="herald-table dashboard-statuses"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'href="[^"]*\?status=(\w+)"><span [^>]*>([^<]*)</span></a></td><td>([^<]*)</td>', table)
    assert rows == [("delivered", "delivered", "1"), ("expired", "expired", "1"), ("failed", "failed", "1"),
                    ("not_sent", "not sent", "5")]  # fmt: skip
    listed = admin_client_for().get(reverse("admin:campaigns_message_changelist") + "?status=not_sent")
    assert "5 messages" in listed.content.decode(), "the row's link lists what it counts"


def test_large_figures_are_written_with_thousands_separators():
    """1,234 today, as the campaign list and the progress panel's refreshes write numbers, not 1234."""
    account = ProviderAccountFactory(name="Alpha")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO campaigns_message (account_id, address, status, channel, submitted_at)
               SELECT %s, '+9199' || lpad(n::text, 8, '0'), 'delivered', 'sms', now() FROM generate_series(1, 1234) n""",
            [account.pk],
        )
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert '<div class="counter-delivered"><dt>Delivered</dt><dd>1,234</dd></div>' in html
    assert "<td>1,234</td><td>1,234</td><td>0</td>" in html, "the account's sent, delivered and failed this week"


def test_a_message_being_sent_reads_sending_today_as_in_the_message_list(traffic):
    alpha, _ = traffic
    on_the_wire = FrameFactory(campaign=None, account=alpha, state="sending")
    messages(alpha, "pending", 3, frame=on_the_wire)
    messages(alpha, "pending", 2, frame=FrameFactory(campaign=None, account=alpha, state="pending"))
    today = dashboard_figures()["today"]
    assert (today["counts"]["sending"], today["counts"]["pending"], today["in_flight"]) == (3, 2, 2 + 5)
    html = admin_client_for().get(DASHBOARD).content.decode()
    listed = admin_client_for().get(reverse("admin:campaigns_message_changelist") + "?status=sending")
    assert "?status=sending" in html and "3 messages" in listed.content.decode()


def test_campaigns_under_way_and_failing_accounts():
    CampaignFactory(name="Running", state="sending", counters={"delivered": 3, "pending": 1})
    CampaignFactory(name="Later", state="scheduled", send_at=timezone.now() + timedelta(hours=2))
    CampaignFactory(name="Done", state="completed")
    ProviderAccountFactory(name="Broken", last_check_ok=False, last_check_message="401 Unauthorized")
    ProviderAccountFactory(name="Broken but off", last_check_ok=False, is_active=False)
    ProviderAccountFactory(name="Fine", last_check_ok=True)
    figures = dashboard_figures()
    assert {c["name"]: c["progress"] for c in figures["campaigns"]} == {"Running": 75.0, "Later": 0.0}
    assert [a["name"] for a in figures["failing_accounts"]] == ["Broken"]
    # A scheduled campaign's send time names its zone, as the campaign pages say times (config.times.time_shown).
    later = Campaign.objects.get(name="Later").send_at
    assert time_shown(later) in admin_client_for().get(DASHBOARD).content.decode()


def test_the_figures_take_four_queries_whatever_the_traffic(traffic, django_assert_num_queries):
    CampaignFactory.create_batch(3, state="sending")
    with django_assert_num_queries(4):
        dashboard_figures()


def test_the_days_before_today_are_read_once_for_everyone_who_refreshes(traffic, django_assert_num_queries):
    """The page refreshes every 15 seconds and the week's figures read the week's messages (1.9 s for a million):
    the days before today are kept for a few minutes, today's are read at each refresh."""
    alpha, _ = traffic
    dashboard_figures()
    messages(alpha, "delivered", 2)
    Message.objects.filter(status="undelivered").update(status="delivered")  # a late report, 3 days on: shown
    # once the days before today are read again
    with django_assert_num_queries(3) as refresh:
        figures = dashboard_figures()
    assert not [q["sql"] for q in refresh.captured_queries if "AT TIME ZONE" in q["sql"]]
    row = figures["delivery"][0]
    assert (row["name"], row["delivered"], row["failed"], row["daily"][-1], row["daily"][-4]) == (
        "Alpha",
        9,
        2,
        85.7,
        75.0,
    )
    assert figures["today"]["delivered"] == 6 and "5 minutes ago" in admin_client_for().get(DASHBOARD).content.decode()
    cache.clear()
    row = dashboard_figures()["delivery"][0]
    assert (row["delivered"], row["failed"], row["daily"][-4]) == (10, 1, 100.0)


def test_the_dashboard_fragment_and_the_index(traffic):
    client = admin_client_for()
    html = client.get(DASHBOARD).content.decode()
    assert "Messages today" in html and 'id="delivery-chart"' in html and "Alpha" in html
    index = client.get(reverse("admin:index")).content.decode()
    assert 'id="herald-dashboard"' in index and "herald/vendor/chart.umd.min.js" in index


def test_the_dashboard_needs_the_campaign_view_permission():
    response = Client().get(DASHBOARD)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    outsider = admin_client_for(UserFactory(is_staff=True, permissions=["contacts.view_contact"]))
    assert outsider.get(DASHBOARD).status_code == 403
    assert 'id="herald-dashboard"' not in outsider.get(reverse("admin:index")).content.decode()
    viewer = admin_client_for(UserFactory(is_staff=True, permissions=["campaigns.view_campaign"]))
    assert viewer.get(DASHBOARD).status_code == 200


def test_the_dashboard_view_runs_a_fixed_number_of_queries(traffic, django_assert_max_num_queries):
    client = admin_client_for()
    with django_assert_max_num_queries(8) as few:
        client.get(DASHBOARD)
    messages(traffic[0], "delivered", 20)
    CampaignFactory.create_batch(5, state="sending")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(DASHBOARD)
