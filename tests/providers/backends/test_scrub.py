"""scrub(): an account secret never reaches an error, a check or a log, however a vendor that echoes it quotes it."""

import json
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest

from providers.backends.base import scrub

SECRETS = ['K3y/0123"456\\789', "clé secrète+42", "emoji-😀-key"]
FORMS = {
    "plain": lambda s: s,
    "JSON": lambda s: json.dumps(s)[1:-1],
    "JSON, slashes escaped (PHP)": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "JSON, UTF-8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "JSON, upper-case hex": lambda s: re.sub(
        r"\\u[0-9a-f]{4}", lambda m: "\\u" + m[0][2:].upper(), json.dumps(s)[1:-1]
    ),
    "URL path": quote,
    "URL, every character": lambda s: quote(s, safe=""),
    "URL, lower-case hex": lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(s, safe="")),
    "form": quote_plus,
    "query string": lambda s: urlencode({"k": s})[2:],
    "HTML": lambda s: s.replace("&", "&amp;").replace('"', "&quot;"),
}


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", FORMS, ids=str)
def test_a_secret_is_masked_however_it_is_quoted(secret, form):
    quoted = FORMS[form](secret)
    text = f"vendor said: bad key {quoted} (request 7)"
    assert scrub(text, [secret]) == "vendor said: bad key •••• (request 7)"


def test_other_text_is_left_as_it_is():
    text = 'nothing secret here: {"a": "b\\/c", "q": "x%2Fy+z"}'
    assert scrub(text, ['K3y/0123"456\\789', ""]) == text
