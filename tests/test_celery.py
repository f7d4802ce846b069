"""The Celery app loads and a task round-trips through the real Redis broker and a real worker."""

from config.celery import app, ping


def test_celery_app_uses_reliable_delivery_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url.startswith("redis://127.0.0.1:")


def test_a_task_round_trips_through_redis_and_a_real_worker(celery_worker):
    result = ping.delay("hello from the test")
    assert result.get(timeout=30) == "hello from the test"
