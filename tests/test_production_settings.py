"""Herald as README's Production section runs it (DEBUG off): it refuses to start without the keys that guard
sessions and credentials, and behind a TLS proxy the admin signs in over https with secure cookies and HSTS.

Settings are read when a process starts: one Python process (SCRIPT) reads them again for each environment of
STARTS, then, with the last one, serves two requests through Django's test client; the tests read what it saw."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from config.processes import ROOT

FERNET_KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": FERNET_KEY,
    "ALLOWED_HOSTS": "herald.example.com",
    "HERALD_PUBLIC_URL": "https://herald.example.com",
}
STARTS = {  # the environment of README's production, changed
    "no secret key": {"SECRET_KEY": None},
    "the development key": {"SECRET_KEY": "dev-only-insecure-secret-key-change-me-in-production"},
    "a short key": {"SECRET_KEY": "herald-secret"},
    "no Fernet key": {"FIELD_ENCRYPTION_KEY": None},
    "not a Fernet key": {"FIELD_ENCRYPTION_KEY": "my-encryption-passphrase"},
    "a bad old key": {"FIELD_ENCRYPTION_KEY": f"{FERNET_KEY},old-key"},
    "keys with blanks": {"FIELD_ENCRYPTION_KEY": f" {FERNET_KEY}, {Fernet.generate_key().decode()},"},
    "behind a TLS proxy": {"TRUSTED_PROXIES": "1"},  # nginx terminating TLS, as README's production has it
}

SCRIPT = """
import importlib, json, os, sys

production, starts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
said = {}
for label, change in starts.items():
    os.environ.update(production)
    for name, value in change.items():
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value
    try:
        importlib.reload(importlib.import_module("config.settings"))
        said[label] = "started"
    except Exception as refusal:
        said[label] = f"{type(refusal).__name__}: {refusal}"

import django
django.setup()  # with the last settings read
from django.test import Client

# The request reaches Django over http, with the proxy's X-Forwarded-Proto saying the browser used https.
client = Client(enforce_csrf_checks=True, headers={"host": "herald.example.com", "x-forwarded-proto": "https"})
page = client.get("/admin/login/")
signed = client.post(
    "/admin/login/", {"username": "", "password": "", "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    headers={"origin": "https://herald.example.com", "referer": "https://herald.example.com/admin/login/"},
)
said["sign-in"] = {
    "page": page.status_code, "signed": signed.status_code, "asked": b"This field is required" in signed.content,
    "secure_cookie": bool(client.cookies["csrftoken"]["secure"]), "hsts": page.headers.get("Strict-Transport-Security"),
}
print(json.dumps(said))
"""


@pytest.fixture(scope="module")
def seen() -> dict:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(PRODUCTION), json.dumps(STARTS)],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


def test_production_refuses_to_start_without_real_keys(seen):
    """A SECRET_KEY left out ran Herald on the key printed in its source (anyone could sign its sessions); a
    FIELD_ENCRYPTION_KEY mistyped started, and failed at the first provider credential read or saved."""
    said = {label: words.split(":", 2)[:2] for label, words in seen.items() if label != "sign-in"}
    no_secret_key = [
        "ImproperlyConfigured",
        " SECRET_KEY must be set when DEBUG is off, to a random value of at least 50 characters (it signs sessions)",
    ]
    not_fernet = [
        "ImproperlyConfigured",
        " FIELD_ENCRYPTION_KEY is not a Fernet key (32 random bytes in url-safe base64, 44 characters; several "
        "separated by commas)",
    ]
    assert said == {
        "no secret key": no_secret_key,
        "the development key": no_secret_key,
        "a short key": no_secret_key,
        "no Fernet key": [
            "ImproperlyConfigured",
            " FIELD_ENCRYPTION_KEY must be set when DEBUG is off, to a Fernet key",
        ],
        "not a Fernet key": not_fernet,
        "a bad old key": not_fernet,
        "keys with blanks": ["started"],
        "behind a TLS proxy": ["started"],
    }


def test_behind_a_tls_proxy_the_admin_signs_in_with_secure_cookies(seen):
    """README's production: a proxy terminating TLS, TRUSTED_PROXIES=1. Every request looked like http to Django,
    so the sign-in form posted from https://… was refused as a cross-site request (403, CSRF "Origin checking
    failed"), its cookies went over http too, and HSTS was never sent."""
    assert seen["sign-in"] == {
        "page": 200,
        "signed": 200,  # the form again, asking for the username: not the CSRF failure page (403)
        "asked": True,
        "secure_cookie": True,
        "hsts": "max-age=31536000",
    }


@pytest.mark.django_db
def test_the_health_check_names_what_fails_without_saying_where(client, settings, caplog):
    """/healthz answers anyone (load balancers): it gave the error itself, the hosts, ports and user names of the
    database and Redis behind Herald. It names the part that fails; the log has the error."""
    from campaigns.ratelimit import redis_client

    settings.REDIS_URL = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    redis_client.cache_clear()  # (the client is made once per process: any test before made it for the real Redis)
    try:
        response = client.get("/healthz")
    finally:
        redis_client.cache_clear()  # the tests after get the real Redis again
    assert response.status_code == 503
    assert response.json() == {"ok": False, "redis": "unavailable"}
    assert "127.0.0.1:1" in caplog.text, "the operator still finds why in the log"
