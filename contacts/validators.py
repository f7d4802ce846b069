"""Checks of a contact's free-form fields, shared by the model (admin forms, services) and the import."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

import phonenumbers

from django.core.exceptions import ValidationError

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


def time_zone_named(value: str) -> str:
    """The IANA time zone `value` names, in any case, as spelt in the tz database; ValueError if none."""
    try:
        return _time_zones()[value.lower()]
    except KeyError:
        raise ValueError(f"not a known time zone ({TIME_ZONE_EXAMPLE})") from None


def validate_time_zone(value: str) -> None:
    if value:
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


def validate_attributes(value) -> None:
    """Texts fill {{name}} from a contact's attributes: they must be an object of names to values."""
    if not isinstance(value, dict):
        raise ValidationError('Give an object of names to values, e.g. {"city": "Pune"}.')
