"""When a promotional window is open on two clocks at once: the account's and a recipient's own."""

from datetime import UTC, datetime

from providers.promo_window import opening_together, promo_window_parse

PARIS = promo_window_parse({"start": "09:00", "end": "21:00", "tz": "Europe/Paris"})
INDIA = promo_window_parse({"start": "09:00", "end": "21:00", "tz": "Asia/Kolkata"})


def test_both_open_now_is_now():
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 in Paris, 13:00 in Berlin
    assert opening_together([PARIS, PARIS.in_zone("Europe/Berlin")], at) == at


def test_a_recipient_zone_closed_now_opens_at_its_own_nine_oclock():
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 in Paris; 08:00 in Guadeloupe (UTC-4)
    assert opening_together([PARIS, PARIS.in_zone("America/Guadeloupe")], at) == datetime(
        2026, 11, 25, 13, 0, tzinfo=UTC
    )
    at = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # 19:30 in Paris; 22:30 in Réunion (UTC+4)
    assert opening_together([PARIS, PARIS.in_zone("Indian/Reunion")], at) == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_hours_that_never_meet_have_no_opening():
    """09:00-12:00 in India is 03:30-06:30 UTC; in Honolulu it is 19:00-22:00 UTC."""
    morning = promo_window_parse({"start": "09:00", "end": "12:00", "tz": "Asia/Kolkata"})
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert opening_together([morning, morning.in_zone("Pacific/Honolulu")], at) is None
    assert opening_together([INDIA, INDIA.in_zone("Pacific/Honolulu")], at) == datetime(  # 09:00-21:00 meet
        2026, 11, 26, 3, 30, tzinfo=UTC
    )
