"""SMS parts and encoding: GSM-7 160/153 with extension characters counted double, UCS-2 70/67."""

import pytest

from campaigns.sms import sms_parts

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
]


@pytest.mark.parametrize(("label", "text", "encoding", "length", "parts"), CASES, ids=[c[0] for c in CASES])
def test_sms_parts(label, text, encoding, length, parts):
    result = sms_parts(text)
    assert (result.encoding, result.length, result.parts) == (encoding, length, parts)


def test_the_first_character_forcing_ucs2_is_named_with_its_position():
    result = sms_parts("Your order ships today — thanks!")
    assert result.encoding == "UCS-2"
    assert (result.first_ucs2_char, result.first_ucs2_index) == ("—", 23)
