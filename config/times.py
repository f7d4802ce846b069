"""Times as Herald's pages and messages say them to a person."""

from datetime import datetime

from django.utils import timezone


def time_shown(at: datetime | None) -> str:
    """A time in the zone send times are typed in (the site's), named, e.g. "2026-11-27 03:30 UTC"; "" for none. Not
    the ISO string, nor the browser's own zone, nor Django's default "Nov. 27, 2026, 3:30 a.m." without a zone."""
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M %Z}" if at else ""


def zoned_time_shown(at: datetime | None) -> str:
    """A time that belongs to a zone of its own (when a promotional window opens: 09:00 in India) in that zone, with
    the site's time beside it, e.g. "2026-11-27 09:00 IST (03:30 UTC)"; as time_shown when the two zones agree. The
    window's hours alone left a person who types send times in the site's zone to work the time out, and the site's
    alone hid why that time."""
    if not at:
        return ""
    site = timezone.localtime(at)
    if at.utcoffset() == site.utcoffset() and at.tzname() == site.tzname():
        return time_shown(at)
    beside = f"{site:%H:%M %Z}" if site.date() == at.date() else f"{site:%Y-%m-%d %H:%M %Z}"
    name = at.tzname() or ""
    if name.startswith(("+", "-")):  # a zone with no letters of its own (Réunion's "+04", a recipient's): "UTC+04"
        name = f"UTC{name}"
    return f"{at:%Y-%m-%d %H:%M} {name} ({beside})"
