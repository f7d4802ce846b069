"""What the web server logs never carries a webhook secret: Octopush, Devino and Hyber authenticate their
delivery reports with the ?secret= of our webhook URL, and the server logs each request line: runserver, as
`make run` serves Herald, and gunicorn with its access log on, as README's production command runs it."""

import subprocess
import sys
import time

import pytest
import requests

from config.log import URL_SECRET_MASK
from config.processes import ROOT, WebServer, free_port
from tests.conftest import _end_server_connections
from tests.factories import ProviderAccountFactory


@pytest.fixture
def runserver(base_worker_env, transactional_db, tmp_path):
    """`manage.py runserver`, as `make run` serves Herald, on the test database; yields (url, its log file)."""
    port, log_path = free_port(), tmp_path / "runserver.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT, env={**base_worker_env, "HERALD_PUBLIC_URL": url}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        yield url, log_path
    finally:
        proc.terminate()
        proc.wait(15)
        _end_server_connections()


@pytest.fixture
def gunicorn(base_worker_env, transactional_db, tmp_path):
    """gunicorn with config/gunicorn.conf.py and `--access-logfile -`, on the test database; yields (url, its log)."""
    server = WebServer(base_worker_env, log_path=tmp_path / "gunicorn.log", workers=1, threads=2, access_log=True)
    try:
        yield server.start().url, server.log_path
    finally:
        server.stop()
        _end_server_connections()


@pytest.mark.parametrize("kind", ["octopush", "devino", "hyber"])
def test_the_request_log_masks_the_webhook_secret(runserver, kind):
    _check_request_log(*runserver, kind)


@pytest.mark.parametrize("kind", ["octopush", "hyber"])
def test_gunicorns_access_log_masks_the_webhook_secret(gunicorn, kind):
    _check_request_log(*gunicorn, kind)


def _access_logged(log_path, uuid) -> str:
    """The log once the request's access line is in it (up to 5 s): a warning that names the path (a refused
    callback's) can come first, and reading then found no access line."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = log_path.read_text()
        if any(str(uuid) in line and "HTTP/1." in line for line in logged.splitlines()):
            return logged
        time.sleep(0.1)
    return log_path.read_text()


def _check_request_log(url, log_path, kind):
    account = ProviderAccountFactory(kind=kind)
    path = f"/hooks/{kind}/{account.uuid}/?secret={account.webhook_secret}"
    response = requests.post(url + path, data=b"[]", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text
    logged = _access_logged(log_path, account.uuid)
    assert f"/hooks/{kind}/{account.uuid}/?secret={URL_SECRET_MASK}" in logged, logged[-2000:]
    assert account.webhook_secret not in logged


def test_the_request_log_masks_mobtextings_handshake_token(runserver):
    """MOBtexting's webhook handshake carries the validation key Herald gave it as ?token=."""
    from providers.backends.base import Account
    from providers.backends.mobtexting.backend import verification_token

    url, log_path = runserver
    account = ProviderAccountFactory(kind="mobtexting")
    token = verification_token(
        Account(kind="mobtexting", base_url="", credentials={}, webhook_secret=account.webhook_secret)
    )
    path = f"/hooks/mobtexting/{account.uuid}/?token={token}"
    requests.post(url + path, json={"type": "verification", "challenge": "a234qwe"}, timeout=10)
    logged = _access_logged(log_path, account.uuid)
    assert f"/hooks/mobtexting/{account.uuid}/?token={URL_SECRET_MASK}" in logged, logged[-2000:]
    assert token not in logged
