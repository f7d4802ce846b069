"""The promotional window: when promotional traffic may go out (settings.PROMOTIONAL_WINDOWS per account kind, or
an account's options["promo_window"], e.g. {"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata", "days": [0, 1,
2, 3, 4, 5, 6]}, days counted from Monday = 0). "24:00" ends it at midnight ("00:00" to "24:00" is all day); an end
before the start runs past midnight ("10:00" to "00:00", "21:00" to "02:00"), the hours after midnight belonging to
the day it opened. Parsed in one place, so that the account's form refuses what the launch could not read."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from functools import lru_cache

KEYS = ("start", "end", "tz", "days")
EXAMPLE = '{"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata", "days": [0, 1, 2, 3, 4, 5]}'


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str) -> bool:
    return bool(name) and name in _zones()


@dataclass(frozen=True)
class PromoWindow:
    start: time
    end: time
    zone: zoneinfo.ZoneInfo
    days: frozenset[int]

    def opening(self, at: datetime) -> datetime | None:
        """None when `at` is inside the window; else when it next opens."""
        local = at.astimezone(self.zone)
        now = local.time()
        if self.start < self.end:
            inside = local.weekday() in self.days and self.start <= now < self.end
        else:  # it runs past midnight: the hours after it are the day before's window, which `days` names
            inside = (local.weekday() in self.days and now >= self.start) or (
                (local.weekday() - 1) % 7 in self.days and now < self.end
            )
        if inside:
            return None
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            opening = datetime.combine(day, self.start, tzinfo=self.zone)
            if day.weekday() in self.days and opening > local:
                return opening
        return None

    def in_zone(self, zone: str) -> PromoWindow:
        """The same hours and days on the clock of `zone` (an IANA name): a recipient's own window."""
        return replace(self, zone=zoneinfo.ZoneInfo(zone))


TOGETHER_HORIZON = timedelta(days=8)


def opening_together(windows: list[PromoWindow], at: datetime) -> datetime | None:
    """The first instant from `at` (`at` itself when they are) at which every window is open at once; None when
    there is none within TOGETHER_HORIZON (their hours never meet, e.g. 09:00-12:00 in Asia/Kolkata and in
    Pacific/Honolulu). Each window's opening is taken in turn from the last, until none moves it."""
    moment, limit = at, at + TOGETHER_HORIZON
    while moment <= limit:
        later = next((o for w in windows if (o := w.opening(moment)) is not None), None)
        if later is None:
            return moment
        moment = later
    return None


def promo_window_parse(value, *, strict: bool = True) -> PromoWindow:
    """The window `value` describes; ValueError saying what is wrong with it. `strict` also refuses a key it does
    not know (a typo such as "weekdays" would otherwise be ignored); a window read for a launch is not strict, as
    one saved before keys were checked may carry a note."""
    if not isinstance(value, dict):
        raise ValueError(f"give an object such as {EXAMPLE}")
    if strict and (unknown := sorted(set(value) - set(KEYS))):
        raise ValueError(f"unknown key {unknown[0]!r}; it takes {', '.join(KEYS)}")
    bounds = []
    for key in ("start", "end"):
        text = value.get(key)
        try:
            # "24:00" ends a window at midnight (time has no 24:00); "00:00" to "24:00" is the whole day.
            bounds.append(time.max if key == "end" and text == "24:00" else time.fromisoformat(text))
        except (TypeError, ValueError):
            raise ValueError(f'{key} must be a time of day as "HH:MM", not {text!r}') from None
    start, end = bounds
    if start == end:
        raise ValueError("start and end must differ (an end before the start runs past midnight, e.g. 21:00 to 02:00)")
    tz = value.get("tz", "UTC")
    if tz not in _zones():
        raise ValueError(f"tz must be a time zone such as Asia/Kolkata, not {tz!r}")
    days = value.get("days", list(range(7)))
    if not isinstance(days, list) or not days or not all(type(d) is int and 0 <= d <= 6 for d in days):
        raise ValueError(f"days must be a list of weekdays from 0 (Monday) to 6 (Sunday), not {days!r}")
    return PromoWindow(start, end, zoneinfo.ZoneInfo(tz), frozenset(days))
