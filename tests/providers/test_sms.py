"""SMS parts and encoding: GSM-7 160/153 with extension characters counted double, UCS-2 70/67."""

import random

import pytest

from providers.sms import GSM7_BASIC, GSM7_EXTENSION, sms_parts

CASES = [
    ("empty", "", "GSM-7", 0, 0),
    ("160 GSM characters fit one part", "a" * 160, "GSM-7", 160, 1),
    ("161 make two parts of 153", "a" * 161, "GSM-7", 161, 2),
    ("306 still two parts", "a" * 306, "GSM-7", 306, 2),
    ("307 make three", "a" * 307, "GSM-7", 307, 3),
    ("extension characters count double", "€" * 80, "GSM-7", 160, 1),
    ("one more extension character tips it over", "€" * 80 + "a", "GSM-7", 161, 2),
    ("accented letters of the GSM set stay GSM-7", "Café à Paris, ñandù", "GSM-7", 19, 1),
    ("an accent outside the GSM set forces UCS-2", "ñandú", "UCS-2", 5, 1),
    ("70 UCS-2 characters fit one part", "я" * 70, "UCS-2", 70, 1),
    ("71 make two parts of 67", "я" * 71, "UCS-2", 71, 2),
    ("an emoji takes two UTF-16 units", "😀" * 35, "UCS-2", 70, 1),
    ("basic and extension characters mixed", "a{b}c€", "GSM-7", 9, 1),
    ("an extension character does not hide a UCS-2 one", "€ я", "UCS-2", 3, 1),
]


@pytest.mark.parametrize(("label", "text", "encoding", "length", "parts"), CASES, ids=[c[0] for c in CASES])
def test_sms_parts(label, text, encoding, length, parts):
    result = sms_parts(text)
    assert (result.encoding, result.length, result.parts) == (encoding, length, parts)


def test_the_first_character_forcing_ucs2_is_named_with_its_position():
    result = sms_parts("Your order ships today — thanks!")
    assert result.encoding == "UCS-2"
    assert (result.first_ucs2_char, result.first_ucs2_index) == ("—", 23)


def _parts_one_character_at_a_time(text: str) -> tuple:
    """The rule read straight from 3GPP TS 23.038, walking the text (what sms_parts' set operations shortcut)."""
    septets = 0
    for index, char in enumerate(text):
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2
            return ("UCS-2", units, 1 if units <= 70 else -(-units // 67), char, index)
    return ("GSM-7", septets, 0 if not text else (1 if septets <= 160 else -(-septets // 153)), "", -1)


def test_sms_parts_agrees_with_walking_the_text_character_by_character():
    rng = random.Random(7)
    alphabet = "abcXYZ 019,.!Ééñà€{}[]~^|\\\fяñú—😀"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet[: rng.randint(10, len(alphabet))]) for _ in range(rng.randint(0, 200)))
        r = sms_parts(text)
        assert (r.encoding, r.length, r.parts, r.first_ucs2_char, r.first_ucs2_index) == (
            _parts_one_character_at_a_time(text)
        ), text
