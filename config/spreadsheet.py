"""Cells of the CSV files Herald writes (import error reports, campaign message exports) as a spreadsheet opens them."""

import re

FORMULA_STARTS = ("=", "@", "\t", "\r")
FIRST_CHARACTERS_CHECKED = frozenset("=@\t\r+-")
SIGNED_NUMBER = re.compile(r"[+-][\d\s().-]*")  # +91 98123-45678: a number, shown as the user wrote it


def inert(text: str) -> str:
    """A cell as the file shows it: one a spreadsheet would run as a formula (=, @, or + and - before anything but a
    number) gets a leading apostrophe, so it is shown as text (OWASP's advice on CSV injection). An E.164 number
    (+919812345678) is data and stays as it is."""
    if not text or text[0] not in FIRST_CHARACTERS_CHECKED:  # nearly every cell: one look at its first character
        return text
    if text.startswith(FORMULA_STARTS) or (text.startswith(("+", "-")) and not SIGNED_NUMBER.fullmatch(text)):
        return "'" + text
    return text
