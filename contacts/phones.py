"""Phone numbers in E.164, normalised with `phonenumbers` on every write path.

`normalize_phone` is the one function that decides what a valid number is. It is on the import
hot path (a million mostly distinct rows), where `phonenumbers`' full parse, validation and
formatting cost ~30 µs a number, so the common case takes a fast path with the same answers:
digits with an optional leading "+" (spaces, dashes, dots and brackets ignored) whose reading
involves no prefix stripping are checked directly against the metadata patterns that
`phonenumbers.is_valid_number` uses, precompiled per region (~3 µs, nothing cached). Everything
else goes through `phonenumbers` itself, behind an LRU cache.

`tests/contacts/test_imports_phones.py` compares both paths with `phonenumbers` on thousands of
numbers from every region.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers

INVALID_MESSAGE = "Enter a valid phone number (E.164 such as +919812345678, or a national number of {region})."


class InvalidPhone(ValueError):
    """The text is not a possible, valid phone number."""


@lru_cache(maxsize=262144)
def _parse(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return `raw` as E.164 ("+919812345678"), or raise InvalidPhone.

    Accepts E.164, international ("00…") and national formats (read in `region`, default
    settings.DEFAULT_PHONE_REGION), with spaces, dashes, dots and brackets.
    """
    if raw is None:
        raise InvalidPhone("empty")
    text = str(raw).strip()
    if not text:
        raise InvalidPhone("empty")
    region = (region or settings.DEFAULT_PHONE_REGION or "").upper() or None
    if len(text) <= _MAX_FAST_INPUT and text.isascii() and (fast := _fast_path(text, region)) is not None:
        return fast
    if text[0] == "+" and text[1:].isdigit():
        return _parse(text, "ZZ")  # E.164 already: the region plays no part, so share one cache slot
    return _parse(text, region)


# --- The fast path --------------------------------------------------------------------------------
# It replays what phonenumbers.parse() does for plain digit strings and stands aside (returns None)
# wherever parse() would do more than split off a country code: an international (IDD) prefix, a
# national prefix or carrier code to strip, the region's own calling code written without "+",
# leading zeros, unusual lengths, non-geographic calling codes. What remains is the common case,
# and is_valid_number() for it is two regular expressions per region, compiled once.

_SEPARATORS = str.maketrans("", "", " -.()")  # ignored by parse() wherever they stand in such a string
_MAX_FAST_INPUT = 40
_MIN_NSN, _MAX_NSN = 3, 17  # parse() accepts 2..17 digits; two-digit numbers are never valid, let parse() say so
_NON_GEO = "001"


class _RegionRules:
    """One region's metadata, reduced to what parsing plain digits and is_valid_number() consult."""

    __slots__ = (
        "country_code",
        "country_code_digits",
        "international_prefix",
        "national_prefix",
        "leading_digits",
        "general",
        "by_length",
    )

    def __init__(self, metadata):
        self.country_code = metadata.country_code
        self.country_code_digits = str(metadata.country_code)
        self.international_prefix = _compiled(metadata.international_prefix)
        self.national_prefix = _compiled(metadata.national_prefix_for_parsing)
        self.leading_digits = _compiled(metadata.leading_digits)
        general = metadata.general_desc
        self.general = (set(general.possible_length), _compiled(general.national_number_pattern)) if general else None
        # The number types _number_type_helper() tries (any match means "valid"), mobile first as it is the
        # commonest; where mobile and fixed line share a pattern it only consults the fixed-line entry.
        descs = [metadata.mobile] if not metadata.same_mobile_and_fixed_line_pattern else []
        descs += [
            metadata.fixed_line,
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        ]
        descs = [d for d in descs if d is not None and d.national_number_pattern]
        self.by_length = {}
        for length in range(_MIN_NSN, _MAX_NSN + 1):
            patterns = [
                d.national_number_pattern for d in descs if not d.possible_length or length in d.possible_length
            ]
            if patterns:
                self.by_length[length] = re.compile("|".join(f"(?:{p})" for p in patterns))

    def is_valid(self, nsn: str) -> bool:
        """_number_type_helper(nsn, metadata) != UNKNOWN."""
        if self.general is None:
            return False
        lengths, pattern = self.general
        if (lengths and len(nsn) not in lengths) or pattern is None or not pattern.fullmatch(nsn):
            return False
        types = self.by_length.get(len(nsn))
        return types is not None and types.fullmatch(nsn) is not None


def _compiled(pattern: str | None) -> re.Pattern | None:
    return re.compile(pattern) if pattern else None


@cache
def _rules(region: str) -> _RegionRules | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return _RegionRules(metadata) if metadata is not None else None


def _valid_region(country_code: int, nsn: str) -> _RegionRules | None | bool:
    """The rules is_valid_number() applies to this number (region_code_for_number), False if none, None if undecided."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return False
    if len(regions) == 1:
        return None if regions[0] == _NON_GEO else (_rules(regions[0]) or False)
    for region in regions:
        rules = _rules(region)
        if rules is None:
            continue
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return rules
        elif rules.is_valid(nsn):
            return rules
    return False


def _fast_result(country_code: int, nsn: str) -> str | None:
    rules = _valid_region(country_code, nsn)
    if rules is None:
        return None
    if rules is False or rules.country_code != country_code or not rules.is_valid(nsn):
        raise InvalidPhone("not a valid number")
    return f"+{country_code}{nsn}"


def _fast_path(text: str, region: str | None) -> str | None:
    """E.164 for plain digits (national in `region`) or "+digits", None when parse() must decide."""
    if text.isdigit():
        return _fast_national(text, region)
    if text[0] == "+" and text[1:].isdigit():
        return _fast_international(text[1:])
    digits = text.translate(_SEPARATORS)
    if digits.isdigit():
        return _fast_national(digits, region)
    if digits[:1] == "+" and digits[1:].isdigit():
        return _fast_international(digits[1:])
    return None


def _fast_national(digits: str, region: str | None) -> str | None:
    """A national number of `region` in plain digits, or None where parse() would read more into it."""
    rules = _rules(region) if region else None
    if (
        rules is None
        or not _MIN_NSN <= len(digits) <= _MAX_NSN
        or digits[0] == "0"
        or digits.startswith(rules.country_code_digits)
        or (rules.international_prefix is not None and rules.international_prefix.match(digits))
        or (rules.national_prefix is not None and rules.national_prefix.match(digits))
    ):
        return None
    return _fast_result(rules.country_code, digits)


def _fast_international(digits: str) -> str | None:
    """The digits after "+", or None where parse() would read more into them."""
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):  # the shortest known calling code wins, as in phonenumbers' _extract_country_code
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    nsn = digits[size:]
    main_region = COUNTRY_CODE_TO_REGION_CODE[country_code][0]
    rules = _rules(main_region) if main_region != _NON_GEO else None
    if (
        rules is None
        or not _MIN_NSN <= len(nsn) <= _MAX_NSN
        or nsn[0] == "0"
        or (rules.national_prefix is not None and rules.national_prefix.match(nsn))
    ):
        return None
    return _fast_result(country_code, nsn)


def phone_region(phone: str) -> str:
    """The country (ISO 3166 code) of a number in E.164, or "" for none (not a number, a non-geographic one)."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return "" if region in (None, "ZZ", "001") else region


def normalize_address(raw: str, region: str | None = None) -> str:
    """A suppression address: an e-mail (lower-cased) or a phone number (E.164)."""
    text = (raw or "").strip()
    if "@" in text:
        try:
            forms.EmailField().clean(text)
        except ValidationError:
            raise InvalidPhone("not a valid e-mail address") from None
        return text.lower()
    return normalize_phone(text, region)


def invalid_phone_message(region: str | None = None) -> str:
    """What a field says of a text that is no phone number."""
    return INVALID_MESSAGE.format(region=(region or settings.DEFAULT_PHONE_REGION))


class PhoneNumberField(models.CharField):
    """A CharField holding E.164; model validation (admin forms, full_clean) normalises the input."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 20)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return normalize_phone(value)
        except InvalidPhone:
            raise ValidationError(invalid_phone_message(), code="invalid_phone") from None


class PhoneSerializerField(serializers.CharField):
    """API field that accepts any format the importer accepts and returns E.164."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalize_phone(value)
        except InvalidPhone:
            raise serializers.ValidationError(invalid_phone_message()) from None


class AddressSerializerField(serializers.CharField):
    """API field for a suppression address: phone (to E.164) or e-mail (lower-cased)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalize_address(value)
        except InvalidPhone:
            raise serializers.ValidationError("Enter a valid phone number or e-mail address.") from None
