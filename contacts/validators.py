"""Checks of a contact's free-form fields, shared by the model (admin forms, services) and the import."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

import phonenumbers

from django.core.exceptions import ValidationError

from contacts.phones import phone_region

TIME_ZONE_EXAMPLE = "e.g. Asia/Kolkata"


TAG_NAME_COMMA = "A tag name cannot contain a comma: commas separate tags (in filters, in the import's new tags)."


def validate_tag_name(value: str) -> None:
    if "," in value:
        raise ValidationError(TAG_NAME_COMMA)


def tag_names_split(text: str) -> list[str]:
    """The tag names typed as "vip, diwali" (a filter, a form's or an import's tags), stripped, blanks left out."""
    return [name.strip() for name in text.split(",") if name.strip()]


@lru_cache(maxsize=1)
def _time_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


# Abbreviations people write for a time zone that the tz database does not name (it keeps a few, such as EST and
# CET, as zones of their own), each with the zone it means in the countries that write it: a contact's country, or
# its number's, reads one that several countries write ("IST": India's, Israel's or Ireland's time).
TIME_ZONE_ABBREVIATIONS = {
    "IST": {"IN": "Asia/Kolkata", "IL": "Asia/Jerusalem", "IE": "Europe/Dublin"},
    "BST": {"GB": "Europe/London", "BD": "Asia/Dhaka"},
    "CST": {"US": "America/Chicago", "CA": "America/Winnipeg", "CN": "Asia/Shanghai", "TW": "Asia/Taipei", "CU": "America/Havana"},
    "PST": {"US": "America/Los_Angeles", "CA": "America/Vancouver", "PH": "Asia/Manila"},
    "MSK": {"RU": "Europe/Moscow"},
    "PKT": {"PK": "Asia/Karachi"},
    "NPT": {"NP": "Asia/Kathmandu"},
    "GST": {"AE": "Asia/Dubai", "OM": "Asia/Muscat"},
    "SGT": {"SG": "Asia/Singapore"},
    "HKT": {"HK": "Asia/Hong_Kong"},
    "JST": {"JP": "Asia/Tokyo"},
    "KST": {"KR": "Asia/Seoul"},
    "WIB": {"ID": "Asia/Jakarta"},
    "AEST": {"AU": "Australia/Sydney"},
}  # fmt: skip


def time_zone_named(value: str, *, country: str = "", phone: str = "") -> str:
    """The IANA time zone `value` names, in any case, as spelt in the tz database; or the one an abbreviation
    (TIME_ZONE_ABBREVIATIONS) means in the contact's `country` (its code), else its `phone`'s (E.164). ValueError
    if none."""
    try:
        return _time_zones()[value.lower()]
    except KeyError:
        pass
    meanings = TIME_ZONE_ABBREVIATIONS.get(value.strip().upper())
    if meanings is None:
        raise ValueError(f"not a known time zone ({TIME_ZONE_EXAMPLE})")
    if len(meanings) == 1:
        return next(iter(meanings.values()))
    region = country or phone_region(phone)
    if region in meanings:
        return meanings[region]
    *zones, last = meanings.values()
    where = f"none of them in the contact's country ({region})" if region else "and the contact's country is unknown"
    raise ValueError(f"an abbreviation of several time zones ({', '.join(zones)} or {last}), {where}: give the zone")


def validate_time_zone(value: str) -> None:
    """A zone the tz database names, or an abbreviation that names one in some country (TIME_ZONE_ABBREVIATIONS):
    which one is read with the contact's country and number (time_zone_named, by the model's clean, the services
    and the import)."""
    if value and value.strip().upper() not in TIME_ZONE_ABBREVIATIONS:
        try:
            time_zone_named(value)
        except ValueError as exc:
            raise ValidationError(f"{value!r} is {exc}.") from None


COUNTRY_EXPECTED = "not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)"

# Names that files exported from CRMs and spreadsheets often hold and django-countries does not know (it knows the
# ISO names, their common forms such as "Russia" or "South Korea", and former names such as "Swaziland").
COUNTRY_ALIASES = {
    "united states": "US",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "uae": "AE",
    "holland": "NL",
    "ivory coast": "CI",
    "burma": "MM",
}


# Two-letter codes read as another: ISO 3166 reserves UK for the United Kingdom, whose code is GB.
COUNTRY_CODE_ALIASES = {"UK": "GB"}


def country_code(value: str) -> str:
    """A contact's country as stored: two letters in capitals. Two letters are taken as a code ("in" is IN, "UK" is
    GB); anything else as the country's English name ("India", "russia", "The Netherlands") or its three-letter code
    ("IND"). ValueError when it names no country (two letters that are no code, such as "ZZ", included). The admin
    form, the services (API) and the import all read it so."""
    value = value.strip()
    if len(value) == 2 and value.isascii() and value.isalpha():
        code = COUNTRY_CODE_ALIASES.get(value.upper(), value.upper())
        if code not in _country_codes():
            raise ValueError(COUNTRY_EXPECTED)
        return code
    code = _country_named(" ".join(value.lower().split()))
    if not code:
        raise ValueError(COUNTRY_EXPECTED)
    return code


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    """ISO 3166's codes (django-countries), and the regions phone numbers have that it lacks (XK Kosovo, AC Ascension
    Island, TA Tristan da Cunha)."""
    from django_countries import countries

    return frozenset(dict(countries)) | frozenset(phonenumbers.SUPPORTED_REGIONS)


@lru_cache(maxsize=4096)
def _country_named(name: str) -> str:
    """The code of the country `name` (lower case, single spaces) names, or "". Cached: a file's country column
    repeats a few names a million times, and django-countries reads its whole list for each name."""
    from django_countries import countries  # loads its list of names on first use

    name = name.removeprefix("the ")
    if name in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[name]
    if len(name) == 3 and name.isascii() and name.isalpha():
        return countries.alpha2(name)
    return countries.by_name(name)


def attributes_nested(value: dict) -> dict[str, str]:
    """The attributes whose value is a list or an object, each with what to give instead. A message's {{name}} is
    filled with an attribute's value, written as text: a list or an object reached recipients as Python writes it
    (`{'street': 'MG Road'}`), and the estimate measured it as PostgreSQL writes it, another length."""
    return {
        str(key): f"attributes.{key} is {'a list' if isinstance(item, list) else 'an object'}: give a text, a number, "
        f"true/false or null, which a message's {{{{{key}}}}} is filled with."
        for key, item in value.items()
        if isinstance(item, list | dict)
    }


ATTRIBUTES_NOT_AN_OBJECT = 'Give an object of names to values, e.g. {"city": "Pune"}.'


def validate_attributes(value) -> None:
    """Texts fill {{name}} from a contact's attributes: they must be an object of names to values, each a text, a
    number, true/false or null (attributes_nested)."""
    if not isinstance(value, dict):
        raise ValidationError(ATTRIBUTES_NOT_AN_OBJECT)
    if nested := attributes_nested(value):
        raise ValidationError(list(nested.values()))
