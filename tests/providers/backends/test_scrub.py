"""scrub(): an account secret never reaches an error, a check or a log, however a vendor that echoes it quotes it."""

import json
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest

from providers.backends.base import scrub
from tests.hang_guard import within

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
    # The backends quote a vendor's body in their errors with a repr ({response.text[:200]!r}, {body[:200]!r}):
    # each backslash of an escape doubled, and in bytes every byte outside ASCII written \xNN.
    "JSON, slashes escaped, in a repr": lambda s: repr(json.dumps(s)[1:-1].replace("/", "\\/"))[1:-1],
    "JSON, UTF-8, in a repr of bytes": lambda s: repr(json.dumps(s, ensure_ascii=False)[1:-1].encode())[2:-1],
}


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", FORMS, ids=str)
def test_a_secret_is_masked_however_it_is_quoted(secret, form):
    quoted = FORMS[form](secret)
    text = f"vendor said: bad key {quoted} (request 7)"
    assert scrub(text, [secret]) == "vendor said: bad key •••• (request 7)"


@pytest.mark.parametrize("secret", ['K3y/0123"456\\789', "K3y/"], ids=["long", "4 characters"])
def test_other_text_is_left_as_it_is(secret):
    text = 'nothing secret here: {"a": "b\\/c", "q": "x%2Fy+z"}'
    assert scrub(text, [secret, ""]) == text


@pytest.mark.parametrize("cut", [4, 9, len(SECRETS[1]) - 1])
def test_a_secret_cut_by_a_quoted_texts_length_is_masked_too(cut):
    """A vendor body quoted to its first 200 characters (ResponseUnparseable's message) may end inside the key."""
    secret = SECRETS[1]
    body = ("x" * 180 + "key=" + secret + " and more")[: 184 + cut]
    assert scrub(f"answered HTTP 200: {body!r}", [secret]) == f"answered HTTP 200: '{'x' * 180}key=••••'"
    assert scrub(f"answered: {body}…", [secret]) == f"answered: {'x' * 180}key=••••…"


@pytest.mark.parametrize("form", ["JSON, slashes escaped (PHP)", "URL, every character", "form"], ids=str)
def test_a_secret_cut_where_it_is_escaped_or_encoded_is_masked_too(form):
    """A body that echoes the key escaped or encoded, quoted to its first 200 characters, ending inside the key."""
    secret = "Ab3/xY9+kQ7zLm0PqR=="
    quoted = FORMS[form](secret)
    cut = quoted.index("kQ")  # after '/' and '+', which every one of these forms writes otherwise
    body = ("x" * 180 + "key=" + quoted)[: 184 + cut]
    assert scrub(f"answered HTTP 200: {body!r}", [secret]) == f"answered HTTP 200: '{'x' * 180}key=••••'"


def test_text_that_ends_with_fewer_than_four_characters_of_a_secret_is_left_as_it_is():
    assert scrub("the answer ended: clé", [SECRETS[1]]) == "the answer ended: clé"


def test_a_body_full_of_backslashes_is_scrubbed_at_once_whatever_the_secret():
    """A vendor's body echoes what anyone sent it. A run of backslashes reads as a secret of backslashes in
    exponentially many ways (each one written as it is, JSON-escaped, or that again in a repr): a regex of the
    secret's forms tried them one by one, for hours, holding up the worker that scrubbed the vendor's answer."""
    secret = "\\" * 40 + "y"
    echoed = "\\" * 300
    with within(10):
        assert scrub(f"bad key: {echoed} (request 7)", [secret]) == f"bad key: {echoed} (request 7)"
        # Cut by a quote's length: the end of the body is no head of the secret either.
        assert scrub(f"answered: {echoed + 'x'!r}", [secret]) == f"answered: {echoed + 'x'!r}"
        masked = scrub(f"bad key: {echoed}{secret} (request 7)", [secret])
    assert masked.startswith("bad key: \\") and masked.endswith("\\•••• (request 7)") and masked.count("••••") == 1


@pytest.mark.parametrize("order", ["shorter first", "longer first"])
def test_a_secret_that_begins_another_does_not_leave_the_rest_of_the_other_in_clear(order):
    """An account's secrets were masked one after the other in their order: a webhook secret that is the start of
    the API key ('sk-live', 'sk-live-4f9a2c') masked the key's start, and the rest of the key, no longer the key,
    stayed in clear ('••••-4f9a2c')."""
    secrets = ["sk-live", "sk-live-4f9a2c"] if order == "shorter first" else ["sk-live-4f9a2c", "sk-live"]
    assert scrub("Authorization: Bearer sk-live-4f9a2c refused", secrets) == "Authorization: Bearer •••• refused"
