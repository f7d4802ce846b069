"""ensure_admin: creates the superuser once, with the given or a generated password, and never changes it."""

import io

import pytest

from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_creates_the_admin_with_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("HERALD_ADMIN_PASSWORD", "s3cret-for-tests")
    output = run()
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert user.check_password("s3cret-for-tests")
    assert "s3cret-for-tests" not in output


def test_generates_and_prints_a_password_when_none_is_given(monkeypatch):
    monkeypatch.delenv("HERALD_ADMIN_PASSWORD", raising=False)
    output = run()
    password = next(line.strip() for line in output.splitlines() if line.startswith("    "))
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_keeps_an_existing_admin_and_its_password(monkeypatch):
    monkeypatch.setenv("HERALD_ADMIN_PASSWORD", "first-password")
    run()
    monkeypatch.setenv("HERALD_ADMIN_PASSWORD", "second-password")
    assert "kept" in run()
    assert get_user_model().objects.get(username="admin").check_password("first-password")
