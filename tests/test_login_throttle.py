"""Password guessing is throttled at the two sign-in places: the API's token endpoint and the admin's login page.
Failures count per client address and per username in Redis; past the limit, a 429 with Retry-After, whatever
the password."""

import itertools
import re
import time

import pytest

from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
TOKEN_URL = "/api/v1/auth/token/"
_addresses = itertools.count(1)


@pytest.fixture
def address():
    """A client address of the test's own: the counters live in Redis, which the session's tests share."""
    return f"10.20.30.{next(_addresses)}"


@pytest.fixture
def limits(settings):
    """A test that starts in a window's last seconds sees its counts go on in the next one (the previous window's
    count weighs almost whole at the next one's start)."""
    settings.LOGIN_FAILURES_PER_IP = 5
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.LOGIN_FAILURE_WINDOW = 600
    return settings


def _user(name: str, **extra):
    return get_user_model().objects.create_user(name, password=PASSWORD, **extra)


def test_the_token_endpoint_refuses_a_username_guessed_too_often(limits, address):
    name = f"ops-{address}"
    _user(name)
    api = APIClient(REMOTE_ADDR=address)
    for _ in range(3):
        assert api.post(TOKEN_URL, {"username": name, "password": "guess"}).status_code == 400

    refused = APIClient(REMOTE_ADDR="10.99.0.1").post(TOKEN_URL, {"username": name, "password": PASSWORD})

    assert refused.status_code == 429, refused.content
    assert 0 < int(refused["Retry-After"]) <= 2 * 600
    wait = int(refused["Retry-After"])
    minutes = -(-wait // 60)  # said in minutes, as the admin's login page says it (not DRF's "Expected available…")
    assert refused.json() == {
        "detail": "Too many failed sign-in attempts from this address or for this username. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    }
    other = _user(f"{name}-2")
    assert api.post(TOKEN_URL, {"username": other.username, "password": PASSWORD}).status_code == 200


def test_a_guesser_who_spent_the_limit_at_a_windows_end_does_not_get_it_again_at_the_next_ones_start(limits, address):
    """With fixed windows alone, the limit came back whole the moment the next window began: twice the limit within
    seconds. The previous window's count weighs by the share of it still within the last window's length, so the
    next attempt waits until it has fallen far enough, as long as Retry-After says. (The three failures are counted
    as the endpoint counts them, without checking a password each: hashing takes longer than the window's end.)"""
    from django.test import RequestFactory

    from config.login_throttle import login_attempt

    limits.LOGIN_FAILURE_WINDOW = window = 4
    name = f"edge-{address}"
    _user(name)
    guess = RequestFactory().post(TOKEN_URL, REMOTE_ADDR=address)
    time.sleep((3.5 - time.time() % window) % window)  # 3.5 s into a window
    assert all(login_attempt(request=guess, username=name)[1] is None for _ in range(3))
    time.sleep(window - time.time() % window + 0.2)  # the next window has just begun

    refused = APIClient(REMOTE_ADDR=address).post(TOKEN_URL, {"username": name, "password": PASSWORD})

    assert refused.status_code == 429, refused.content
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 2, wait  # 3 × (1 - share elapsed) must fall to 2: a third of the window, ~1.1 s from now
    time.sleep(wait)
    assert APIClient(REMOTE_ADDR=address).post(TOKEN_URL, {"username": name, "password": PASSWORD}).status_code == 200


def test_the_token_endpoint_refuses_an_address_guessing_many_usernames(limits, address):
    api = APIClient(REMOTE_ADDR=address)
    for n in range(5):
        assert api.post(TOKEN_URL, {"username": f"nobody-{address}-{n}", "password": "guess"}).status_code == 400
    user = _user(f"real-{address}")

    assert api.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}).status_code == 429
    answer = APIClient(REMOTE_ADDR="10.99.0.2").post(TOKEN_URL, {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 200 and answer.json()["token"]


def test_a_forwarded_for_header_does_not_give_a_new_address_unless_a_proxy_is_trusted(limits, address):
    api = APIClient(REMOTE_ADDR=address)
    for n in range(5):
        forged = {"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}"}
        assert api.post(TOKEN_URL, {"username": f"x-{address}-{n}", "password": "guess"}, **forged).status_code == 400
    assert api.post(TOKEN_URL, {"username": f"y-{address}", "password": "guess"}).status_code == 429


def test_a_request_missing_a_field_is_not_counted_as_a_guess(limits, address):
    api = APIClient(REMOTE_ADDR=address)
    for _ in range(6):
        assert api.post(TOKEN_URL, {"username": f"u-{address}"}).status_code == 400
    user = _user(f"u-{address}")
    assert api.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}).status_code == 200


def test_the_admin_login_page_refuses_a_username_guessed_too_often(limits, address):
    staff = _user(f"staff-{address}", is_staff=True)
    browser = Client(REMOTE_ADDR=address)
    for _ in range(3):
        page = browser.post("/admin/login/", {"username": staff.username, "password": "guess"})
        assert page.status_code == 200 and b"correct username and password" in page.content

    refused = browser.post("/admin/login/", {"username": staff.username, "password": PASSWORD})

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 2 * 600
    page = refused.content.decode()
    assert "Too many failed sign-in attempts" in page and re.search(r"Try again in \d+ minutes?\.", page)
    assert 'name="password"' in page and 'class="errornote"' in page, "the login page says so, not a bare text"
    assert "_auth_user_id" not in browser.session
    assert browser.get("/admin/login/").status_code == 200, "the page itself still shows"


def test_a_successful_admin_sign_in_is_not_counted(limits, address):
    staff = _user(f"boss-{address}", is_staff=True)
    for _ in range(4):
        browser = Client(REMOTE_ADDR=address)
        assert browser.post("/admin/login/", {"username": staff.username, "password": PASSWORD}).status_code == 302


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def test_the_admin_login_counts_a_username_however_it_is_written_that_signs_in_as_it(limits, address):
    """The admin's login form reads a username in NFKC (Django's UsernameField): "ｓtaff" signs in as "staff", so each
    way of writing it (full-width letters, mathematical ones…: thousands for one name) had a count of its own."""
    staff = _user(f"staff-{address}", is_staff=True)
    name = staff.username
    written = [_fullwidth(name[0]) + name[1:], name[0] + _fullwidth(name[1]) + name[2:], _fullwidth(name)]
    browser = Client(REMOTE_ADDR=address)
    assert browser.post("/admin/login/", {"username": written[2], "password": PASSWORD}).status_code == 302
    browser = Client(REMOTE_ADDR=address)
    for username in written:
        page = browser.post("/admin/login/", {"username": username, "password": "guess"})
        assert page.status_code == 200 and b"correct username and password" in page.content

    refused = Client(REMOTE_ADDR="10.99.0.3").post("/admin/login/", {"username": name, "password": PASSWORD})

    assert refused.status_code == 429


def test_a_username_with_a_lone_surrogate_is_a_400_naming_it_not_a_500(limits, address):
    """JSON may write one ("\\ud800"); the throttle's counter key could not be made of it."""
    body = '{"username": "\\ud800", "password": "guess"}'
    answer = APIClient(REMOTE_ADDR=address).post(TOKEN_URL, body, content_type="application/json")
    assert answer.status_code == 400 and "username" in answer.json()


def test_guesses_sent_side_by_side_cannot_all_pass_the_check(limits, address):
    """Each attempt is counted before its password is checked: of guesses begun before any of them is answered,
    only as many as the limit go on (checked first and counted after, all of them did)."""
    from django.test import RequestFactory

    from config.login_throttle import login_attempt, login_succeeded

    request = RequestFactory().post(TOKEN_URL, REMOTE_ADDR=address)
    begun = [login_attempt(request=request, username=f"side-{address}") for _ in range(3 + 4)]

    assert [wait is None for _, wait in begun] == [True] * 3 + [False] * 4
    login_succeeded(begun[0][0])  # one of them was right: its count is taken back, and one more may try
    assert login_attempt(request=request, username=f"side-{address}")[1] is None


def test_a_right_password_at_the_token_endpoint_is_not_counted_as_a_failure(limits, address):
    user = _user(f"right-{address}")
    api = APIClient(REMOTE_ADDR=address)
    for _ in range(6):
        assert api.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}).status_code == 200


def test_with_the_counters_unreachable_sign_in_is_a_503_that_says_so_not_a_500(limits, address):
    """Redis down: the admin's login page was a bare 'Server Error (500)' and the token endpoint an HTML 500. No
    attempt may go on uncounted (guessing would be unthrottled while it is down), so it is refused, saying why."""
    user = _user(f"down-{address}", is_staff=True)
    limits.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    browser = Client(REMOTE_ADDR=address)
    page = browser.post("/admin/login/", {"username": user.username, "password": PASSWORD})

    assert page.status_code == 503 and page["Retry-After"] == "60"
    html = page.content.decode()
    assert "Sign-in is unavailable for now" in html and 'class="errornote"' in html and user.username in html
    assert "_auth_user_id" not in browser.session
    answer = APIClient(REMOTE_ADDR=address).post(TOKEN_URL, {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 503 and answer["Retry-After"] == "60"
    assert "Sign-in is unavailable for now" in answer.json()["detail"]
