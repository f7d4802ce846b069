"""Times as Herald's pages and messages say them to a person."""

from datetime import datetime

from django.utils import timezone


def time_shown(at: datetime | None) -> str:
    """A time in the zone send times are typed in (the site's), named, e.g. "2026-11-27 03:30 UTC"; "" for none. Not
    the ISO string, nor the browser's own zone, nor Django's default "Nov. 27, 2026, 3:30 a.m." without a zone."""
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M %Z}" if at else ""
