"""Herald project configuration: settings, URLs, the Celery app and embedded dev services."""

from .celery import app as celery_app

__all__ = ("celery_app",)
