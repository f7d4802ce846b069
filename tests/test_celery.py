"""The Celery app loads and a task round-trips through the real Redis broker and a real worker."""

import pytest

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app, ping


def test_celery_app_uses_reliable_delivery_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url.startswith("redis://127.0.0.1:")


def test_a_task_round_trips_through_redis_and_a_real_worker(celery_worker):
    result = ping.delay("hello from the test")
    assert result.get(timeout=30) == "hello from the test"


def test_beat_runs_the_engine_s_periodic_work():
    scheduled = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert scheduled["campaigns.tasks.campaigns_tick_task"] == 60.0, "due and recurring campaigns, every minute"
    for task in (
        "dispatchers_watchdog_task",
        "status_events_apply_task",
        "status_poll_task",
        "messages_expire_unreported_task",
        "idempotency_keys_expire_task",
        "campaigns_purge_deleting_task",
    ):
        assert f"campaigns.tasks.{task}" in scheduled
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.mark.django_db
def test_beat_installs_the_heartbeat_that_tells_staff_whether_background_work_runs(settings):
    """The schedule beat installs (django-celery-beat's DatabaseScheduler writes it at start) has the heartbeat, often
    enough that a healthy worker and beat never look stale (BACKGROUND_STALE_AFTER)."""
    for name, fields in app.conf.beat_schedule.items():  # what DatabaseScheduler.setup_schedule does at beat's start
        DatabaseScheduler.Entry.from_entry(name, app=app, **fields)
    task = PeriodicTask.objects.get(task="campaigns.tasks.background_heartbeat_task")
    assert task.enabled and task.interval.period == "seconds"
    assert task.interval.every * 3 <= settings.BACKGROUND_STALE_AFTER
