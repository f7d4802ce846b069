"""A contact's time zone as people write it: the tz database's names in any case, and the abbreviations that
spreadsheets and CRMs hold, read in the contact's country (or its number's) where several countries write one."""

import pytest

from contacts.validators import time_zone_named

# (written, country, phone, stored) — or the words of the refusal
CASES = [
    ("Asia/Kolkata", "", "", "Asia/Kolkata"),
    ("asia/kolkata", "", "", "Asia/Kolkata"),
    ("UTC", "", "", "UTC"),
    ("EST", "IN", "", "EST"),  # a zone of the tz database: taken as it is, whatever the country
    ("IST", "IN", "", "Asia/Kolkata"),
    ("ist", "", "+919812345678", "Asia/Kolkata"),  # the number's country, when the contact has none
    (" IST ", "IL", "+919812345678", "Asia/Jerusalem"),  # the contact's country before its number's
    ("IST", "IE", "", "Europe/Dublin"),
    ("MSK", "", "", "Europe/Moscow"),  # one zone: meant wherever the contact is
    ("MSK", "IN", "+919812345678", "Europe/Moscow"),
    ("BST", "", "+447700900123", "Europe/London"),
    ("CST", "CN", "", "Asia/Shanghai"),
    ("PST", "", "+14155550123", "America/Los_Angeles"),
]

REFUSED = [
    ("IST", "US", "", "none of them in the contact's country (US)"),
    ("IST", "", "", "and the contact's country is unknown"),
    ("IST", "", "+80012345678", "and the contact's country is unknown"),  # a number of no country
    ("Mars/Base", "IN", "", "not a known time zone (e.g. Asia/Kolkata)"),
    ("XYZ", "", "", "not a known time zone (e.g. Asia/Kolkata)"),
]


@pytest.mark.parametrize(("written", "country", "phone", "stored"), CASES)
def test_a_time_zone_is_stored_as_the_tz_database_names_it(written, country, phone, stored):
    assert time_zone_named(written, country=country, phone=phone) == stored


@pytest.mark.parametrize(("written", "country", "phone", "words"), REFUSED)
def test_a_time_zone_that_names_none_here_is_refused_in_words(written, country, phone, words):
    with pytest.raises(ValueError) as refusal:
        time_zone_named(written, country=country, phone=phone)
    assert words in str(refusal.value)


def test_an_ambiguous_abbreviation_names_the_zones_it_could_mean():
    with pytest.raises(ValueError) as refusal:
        time_zone_named("IST", country="US")
    assert str(refusal.value) == (
        "an abbreviation of several time zones (Asia/Kolkata, Asia/Jerusalem or Europe/Dublin), none of them in the "
        "contact's country (US): give the zone"
    )
