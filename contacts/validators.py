"""Checks of a contact's free-form fields, shared by the model (admin forms, services) and the import."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

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


COUNTRY_CODE_EXPECTED = "not a two-letter country code (ISO 3166, e.g. IN)"


def country_code(value: str) -> str:
    """A contact's country as stored: two letters in capitals ("in" is IN); ValueError for anything else. The admin
    form, the services (API) and the import all read it so."""
    value = value.strip()
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise ValueError(COUNTRY_CODE_EXPECTED)
    return value.upper()


def validate_attributes(value) -> None:
    """Texts fill {{name}} from a contact's attributes: they must be an object of names to values."""
    if not isinstance(value, dict):
        raise ValidationError('Give an object of names to values, e.g. {"city": "Pune"}.')
