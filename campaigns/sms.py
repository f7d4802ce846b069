"""How many SMS parts a text costs, and in which encoding.

GSM-7 (3GPP TS 23.038 basic character set): 160 characters in one part, 153 per part when
concatenated; the extension table's characters (^ { } \\ [ ~ ] | € and form feed) take two.
Any other character forces UCS-2: 70 UTF-16 code units in one part, 67 per part after that.
"""

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsParts:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # in encoding units: septets (extension characters count 2) or UTF-16 code units
    parts: int
    first_ucs2_char: str = ""  # the first character that forced UCS-2
    first_ucs2_index: int = -1

    @property
    def per_part(self) -> int:
        if self.encoding == "GSM-7":
            return 160 if self.parts <= 1 else 153
        return 70 if self.parts <= 1 else 67


def sms_parts(text: str) -> SmsParts:
    """Encoding and number of parts of `text` as an operator bills it."""
    septets = 0
    for index, char in enumerate(text):
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2
            parts = 1 if units <= 70 else -(-units // 67)
            return SmsParts("UCS-2", units, parts if text else 0, char, index)
    parts = 0 if not text else (1 if septets <= 160 else -(-septets // 153))
    return SmsParts("GSM-7", septets, parts)
