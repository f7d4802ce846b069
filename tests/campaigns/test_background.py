"""Staff see whether the background work runs: beat's heartbeat task, run by a worker, records its time in Redis; the
dashboard says how long ago, and the dashboard, a scheduled or running campaign's page and the launch page warn in
red when no worker or beat has run for BACKGROUND_STALE_AFTER (a scheduled campaign would silently never start)."""

import pytest

from django.urls import reverse

from campaigns.models import Campaign
from campaigns.ratelimit import redis_client
from campaigns.selectors.background import HEARTBEAT_KEY, redis_time
from campaigns.tasks import background_heartbeat_task
from tests.factories import CampaignFactory, admin_client_for

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:campaigns_campaign_dashboard")
STALE = "No worker or beat has run for 7 minutes: scheduled campaigns will not start and running ones will not send."


@pytest.fixture
def heartbeat():
    """Set what the worker and beat recorded, `seconds` ago by Redis's clock (None: nothing recorded)."""
    client = redis_client()
    client.delete(HEARTBEAT_KEY)

    def recorded(*, worker: float | None, beat: float | None):
        now = redis_time(client)
        if worker is not None:
            client.hset(HEARTBEAT_KEY, mapping={"worker_at": now - worker, "worker": "celery@web-1"})
        if beat is not None:
            client.hset(HEARTBEAT_KEY, "beat_at", now - beat)

    yield recorded
    client.delete(HEARTBEAT_KEY)


def test_the_dashboard_says_when_the_background_work_last_ran(heartbeat):
    heartbeat(worker=12, beat=12)
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert "Background work: last ran 12 seconds ago (celery@web-1)." in html
    assert "herald-background-ok" in html and "errornote" not in html


def test_the_dashboard_warns_in_red_when_no_worker_or_beat_has_run_for_minutes(heartbeat):
    heartbeat(worker=7 * 60 + 5, beat=7 * 60 + 5)
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert STALE in html and "errornote herald-background herald-background-stale" in html
    assert "celery -A config worker" in html and "celery -A config beat" in html


def test_a_worker_down_while_beat_runs_is_named(heartbeat):
    heartbeat(worker=600, beat=5)
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert "No worker has run for 10 minutes, though beat is queueing work" in html
    assert "Start a worker with `celery -A config worker`" in html


def test_right_after_a_start_nothing_recorded_is_no_alarm_until_the_grace_passes(heartbeat, settings):
    """`make run` (or a Redis restart) starts with nothing recorded: the worker and beat have BACKGROUND_STALE_AFTER,
    counted from Redis's start, to report before the page turns red."""
    heartbeat(worker=None, beat=None)
    settings.BACKGROUND_STALE_AFTER = 10**6  # Redis started moments ago, as under `make run`
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert "Background work: waiting for a worker and beat to report" in html and "errornote" not in html
    settings.BACKGROUND_STALE_AFTER = 0  # the same, once Redis has been up longer than the grace
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert "No worker or beat has run for" in html and "errornote" in html


@pytest.mark.parametrize("state", [Campaign.State.SCHEDULED, Campaign.State.SENDING])
def test_a_scheduled_or_running_campaign_s_page_warns_when_the_background_work_is_stale(heartbeat, state):
    campaign = CampaignFactory(state=state)
    page = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    client = admin_client_for()
    heartbeat(worker=420, beat=420)
    assert STALE in client.get(page).content.decode()
    heartbeat(worker=3, beat=3)
    html = client.get(page).content.decode()
    assert "No worker" not in html and "herald-background" not in html, "a fresh heartbeat is not worth a line there"


def test_a_draft_s_page_does_not_warn_but_its_launch_page_does(heartbeat):
    campaign = CampaignFactory(state=Campaign.State.DRAFT)
    client = admin_client_for()
    heartbeat(worker=420, beat=420)
    assert STALE not in client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    launch = client.get(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"])).content.decode()
    assert STALE in launch


def test_the_health_check_reports_the_background_work_only_when_asked(client, heartbeat):
    """Load balancers keep their probe (a stopped worker is no reason to pull a web server); monitoring asks for
    ?background=1 and gets a 503 once the heartbeat is stale."""
    heartbeat(worker=420, beat=420)
    assert client.get("/healthz").json() == {"ok": True}
    response = client.get("/healthz?background=1")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "background": "stale", "worker_seconds_ago": 420, "beat_seconds_ago": 420}
    heartbeat(worker=4, beat=4)
    response = client.get("/healthz?background=1")
    assert response.status_code == 200 and response.json()["background"] == "ok"


def test_publishing_the_heartbeat_records_beat_and_running_it_records_the_worker(heartbeat):
    """Beat's side is recorded as it sends the task (before_task_publish), the worker's as it runs it."""
    heartbeat(worker=None, beat=None)
    background_heartbeat_task.apply_async()  # as beat sends it; no worker consumes it in this test
    assert set(redis_client().hgetall(HEARTBEAT_KEY)) == {b"beat_at"}
    background_heartbeat_task.apply(headers={"hostname": "celery@worker-2"})  # as a worker runs it
    html = admin_client_for().get(DASHBOARD).content.decode()
    assert "Background work: last ran 0 seconds ago" in html
