"""The Celery app: tasks autodiscovered from each app's tasks.py, periodic work from django-celery-beat.

Reliability settings (acks_late, reject on worker lost, prefetch 1) live in settings.py as
CELERY_* so that a killed worker's task goes back to the queue; every task is safe to run twice.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Installed into django-celery-beat's tables when beat starts; editable in the admin afterwards.
app.conf.beat_schedule = {
    "background-heartbeat": {"task": "campaigns.tasks.background_heartbeat_task", "schedule": 30.0},
    "campaigns-tick": {"task": "campaigns.tasks.campaigns_tick_task", "schedule": 60.0},
    "dispatchers-watchdog": {"task": "campaigns.tasks.dispatchers_watchdog_task", "schedule": 15.0},
    "status-events-apply": {"task": "campaigns.tasks.status_events_apply_task", "schedule": 10.0},
    "status-poll": {"task": "campaigns.tasks.status_poll_task", "schedule": 60.0},
    "messages-expire-unreported": {"task": "campaigns.tasks.messages_expire_unreported_task", "schedule": 600.0},
    "idempotency-keys-expire": {"task": "campaigns.tasks.idempotency_keys_expire_task", "schedule": 3600.0},
    "campaigns-purge-deleting": {"task": "campaigns.tasks.campaigns_purge_deleting_task", "schedule": 600.0},
    "registries-sync": {"task": "providers.tasks.registries_sync_task", "schedule": 3600.0},
}


@app.task(name="herald.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by tests and `manage.py check_services`."""
    return value
