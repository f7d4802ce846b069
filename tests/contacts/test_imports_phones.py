"""The import hot path's phone normalisation (contacts.phones fast path) gives phonenumbers' answers exactly."""

import random

import phonenumbers
import pytest
from phonenumbers import NumberParseException, PhoneNumberType

from contacts.phones import InvalidPhone, normalize_phone

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [value for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)]


def reference(text: str, region: str) -> str | None:
    """What phonenumbers itself says: E.164 of a valid number, else None."""
    text = text.strip()
    if text[:1] == "+" and text[1:].isdigit():
        region = "ZZ"  # normalize_phone reads E.164 without a region
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def ours(text: str, region: str) -> str | None:
    try:
        return normalize_phone(text, region)
    except InvalidPhone:
        return None


def cases(seed: int) -> list[tuple[str, str]]:
    """Example numbers of every type of every region, written several ways and mangled, plus random digits."""
    rng = random.Random(seed)

    def spaced(text):
        return "".join(ch + (rng.choice(" -.()") if rng.random() < 0.15 else "") for ch in text)

    found = []
    for region in REGIONS:
        code = phonenumbers.country_code_for_region(region)
        for number_type in TYPES:
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            variants = [nsn, "0" + nsn, f"{code}{nsn}", f"+{code}{nsn}", f"00{code}{nsn}", nsn[:-1], nsn + "7"]
            variants += ["".join(rng.choice("0123456789") for _ in nsn)]
            variants += [spaced(variant) for variant in variants]
            found += [(variant, other) for variant in variants for other in (region, "IN")]
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 16)))
        found += [("+" + digits, rng.choice(REGIONS)), (digits, rng.choice(REGIONS)), (spaced(digits), "IN")]
        found.append((str(rng.randint(6_000_000_000, 9_999_999_999)), "IN"))
    return found


def test_normalize_phone_agrees_with_phonenumbers_everywhere():
    disagreements = [(text, region, ours(text, region), reference(text, region)) for text, region in cases(seed=1)]
    disagreements = [case for case in disagreements if case[2] != case[3]]

    assert disagreements == []


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("9812345678", "IN", "+919812345678"),
        ("+91 98123-45678", "FR", "+919812345678"),
        ("(98123) 45678", "IN", "+919812345678"),
        ("09812345678", "IN", "+919812345678"),  # national prefix: phonenumbers decides
        ("919812345678", "IN", "+919812345678"),  # country code without +: phonenumbers decides
        ("0612345678", "FR", "+33612345678"),
        ("4155552671", "US", "+14155552671"),
        ("6135550123", "US", "+16135550123"),  # a Canadian number read in the US: one plan, region found by pattern
        ("+447400123456", "IN", "+447400123456"),
    ],
)
def test_normalize_phone_reads_common_forms(text, region, expected):
    assert normalize_phone(text, region) == expected


@pytest.mark.parametrize("text", ["98123", "+91 12", "1234567890123456789", "+0 9812345678", "98123 4567x"])
def test_normalize_phone_refuses_what_is_not_a_valid_number(text):
    with pytest.raises(InvalidPhone):
        normalize_phone(text, "IN")
