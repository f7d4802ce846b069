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


@app.task(name="herald.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by tests and `manage.py check_services`."""
    return value
