"""A provider account's page: its health panel (connection test, last delivery report, webhook URL to copy) and the
buttons that test the connection, set the account up at the vendor and sync MOBtexting's registries."""

from datetime import timedelta

import pytest
import requests

from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.processes import free_port, wait_until
from contacts.models import Unsubscriber
from providers.backends import get_backend
from providers.backends.base import RemoteUnsubscriber
from providers.models import ProviderAccount
from providers.sandbox.client import SandboxClient
from providers.sync import registries_sync
from tests.factories import CREDENTIALS, ProviderAccountFactory, UserFactory, admin_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return admin_client_for()


def tool_url(account, tool):
    return reverse("admin:providers_provideraccount_tool", args=[account.pk, tool])


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_health_panel_shows_the_last_check_the_last_report_and_the_webhook_url(client):
    account = ProviderAccountFactory(
        kind="octopush", last_check_ok=False, last_check_at=timezone.now() - timedelta(minutes=5),
        last_check_message="401: bad api key", last_dlr_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    html = client.get(reverse("admin:providers_provideraccount_change", args=[account.pk])).content.decode()
    assert 'id="account-health"' in html
    assert "failing" in html and "401: bad api key" in html
    assert "2\xa0hours ago" in html
    assert f'data-copy="{account.webhook_url}"' in html.replace("&amp;", "&")
    assert "herald/copy.js" in html
    assert "Sync senders, templates and opt-outs" not in html, "only MOBtexting keeps registries"
    assert "<dt>Registries</dt>" not in html


def test_test_connection_stores_and_reports_the_result(client, sandbox):
    account = ProviderAccountFactory(kind="octopush", base_url=sandbox.base_url("octopush"))
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=account.credentials["login"], balance=12)
    response = client.post(tool_url(account, "test"))
    assert response["Location"] == reverse("admin:providers_provideraccount_change", args=[account.pk])
    assert said(response) == [f"{account.name}: Balance 12 EUR"]
    account.refresh_from_db()
    assert (account.last_check_ok, account.last_check_message) == (True, "Balance 12 EUR")


def test_setup_reports_a_vendors_refusal_of_the_credentials(client, sandbox):
    requests.post(sandbox.url + "/_sandbox/devino/keys", json={"api_keys": ["the-real-key"]}, timeout=5)
    account = ProviderAccountFactory(
        kind="devino", base_url=sandbox.base_url("devino"), credentials={"api_key": "not-the-key"}
    )
    response = client.post(tool_url(account, "setup"))
    [message] = said(response)
    assert message.startswith(f"{account.name}: Devino OMNI refused the credentials: ")
    assert "Invalid or missing API key" in message
    account.refresh_from_db()
    assert account.options == {}, "nothing stored from a refused setup"


def _health(client, account) -> str:
    return client.get(reverse("admin:providers_provideraccount_change", args=[account.pk])).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_sync_button_syncs_in_the_background_and_the_health_panel_follows_it(client, sandbox, celery_worker):
    """Sender IDs, DLT templates and opt-outs (an opt-out lifted in Herald is taken off the vendor's list:
    tests/providers/test_sync_opt_outs.py). A sync makes up to a thousand vendor requests, past a web request's
    time: the button hands it to a worker, and the page says it is syncing, then how it went."""
    account = ProviderAccountFactory(
        kind="mobtexting", base_url=sandbox.base_url("mobtexting"), credentials=dict(CREDENTIALS["mobtexting"])
    )
    get_backend("mobtexting").create_unsubscriber(
        account.as_backend_account(), RemoteUnsubscriber("+919811100001", "all")
    )
    Unsubscriber.objects.create(address="+919811100002", scope="all", source="admin")
    html = _health(client, account)
    assert "Sync senders, templates and opt-outs" in html
    assert "<dt>Registries</dt>" in html and "not synced yet" in html
    sandbox.hold_answers()  # until the page has been seen saying it is syncing

    response = client.post(tool_url(account, "sync"))

    assert said(response) == [
        f"{account.name}: syncing sender IDs, DLT templates and opt-outs in the background. Health, below, says how"
        " it went once it is done (reload the page)."
    ]
    assert '<span class="herald-status herald-status-sending">syncing</span> <span class="help">started 0' in _health(
        client, account
    )
    sandbox.release_answers()
    ended = ProviderAccount.objects.filter(pk=account.pk, last_sync_ok__isnull=False)
    account = wait_until(ended.first, timeout=20, what="the sync's end")
    synced = (
        "sender IDs synced (0 created, 0 updated, 0 pushed); DLT templates synced (0 created, 0 updated, 0 pushed);"
        " opt-outs synced (1 pulled, 1 pushed, 0 removed)."
    )
    assert (account.last_sync_ok, account.last_sync_message) == (True, synced)
    assert Unsubscriber.objects.get(address="+919811100001").source == "provider"
    html = _health(client, account)
    assert (
        '<span class="herald-status herald-status-delivered">synced</span> <span class="help">0\xa0minutes ago' in html
    )
    assert f'<div class="account-sync-message">{synced}</div>' in html


def test_a_sync_said_to_run_for_longer_than_one_runs_says_its_worker_is_gone(client):
    """A sync that no worker took (none runs, or a worker stopped and none took it up again) said "syncing" with
    nothing else until the next hourly sync ended."""
    stalled = "Longer than a sync runs: no worker has taken it, or the one that took it stopped"
    account = ProviderAccountFactory(kind="mobtexting", last_sync_at=timezone.now() - timedelta(minutes=10))
    assert 'herald-status-sending">syncing</span>' in _health(client, account)
    assert stalled not in _health(client, account)
    ProviderAccount.objects.filter(pk=account.pk).update(last_sync_at=timezone.now() - timedelta(minutes=50))
    html = _health(client, account)
    assert '<span class="help">started 50\xa0minutes ago</span>' in html
    assert stalled in html
    ProviderAccount.objects.filter(pk=account.pk).update(last_sync_ok=False, last_sync_message="Refused.")
    assert stalled not in _health(client, account), "a sync that ended is not stalled, however long ago"


def test_the_sync_button_of_an_account_without_registries_says_so(client):
    account = ProviderAccountFactory(kind="octopush")
    response = client.post(tool_url(account, "sync"))
    assert said(response) == [
        f"{account.name}: Octopush keeps no sender, template or opt-out registry; only MOBtexting syncs."
    ]
    account.refresh_from_db()
    assert account.last_sync_at is None


def test_a_vendor_that_does_not_answer_shows_as_failing_with_what_to_check(client):
    port = free_port()  # nothing listens there
    account = ProviderAccountFactory(kind="mobtexting", base_url=f"http://127.0.0.1:{port}/api")
    assert registries_sync(account_id=account.pk).ok is False
    html = _health(client, account)
    assert '<span class="herald-status herald-status-failed">failing</span> <span class="help">tried 0' in html
    assert (
        f"Could not reach mobtexting: 127.0.0.1:{port} refused the connection (nothing listens there): check the"
        " account&#x27;s base URL.</div>"
    ) in html


def test_the_tools_need_a_post_and_the_change_permission():
    account = ProviderAccountFactory()
    assert admin_client_for().get(tool_url(account, "test")).status_code == 405
    viewer = admin_client_for(UserFactory(is_staff=True, permissions=["providers.view_provideraccount"]))
    assert viewer.post(tool_url(account, "test")).status_code == 403
    response = Client().post(tool_url(account, "test"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert admin_client_for().post(tool_url(account, "nonsense")).status_code == 403


@pytest.mark.parametrize("action", ["test_connection", "set_up_at_vendor"])
def test_the_list_actions_that_reach_the_vendor_need_the_change_permission_too(action):
    """They write the account (its last check, its vendor-side set-up), as the page's buttons do."""
    account = ProviderAccountFactory(kind="octopush")
    viewer = admin_client_for(UserFactory(is_staff=True, permissions=["providers.view_provideraccount"]))
    changelist = reverse("admin:providers_provideraccount_changelist")

    assert action not in viewer.get(changelist).content.decode()
    viewer.post(changelist, {"action": action, "_selected_action": [account.pk]})

    account.refresh_from_db()
    assert (account.last_check_at, account.options) == (None, {})


@pytest.mark.parametrize(
    ("base_url", "words"),
    [
        ("http://herald-no-such-host.invalid/api", "the host name herald-no-such-host.invalid does not resolve (DNS)"),
        ("http://127.0.0.1:{port}/api", "127.0.0.1:{port} refused the connection (nothing listens there)"),
    ],
)
def test_an_unreachable_vendor_is_said_in_words_staff_can_act_on(client, base_url, words):
    # The page said "Could not reach devino: HTTPSConnectionPool(host=…): Max retries exceeded with url: … (Caused by
    # NameResolutionError(…" cut short where it is stored.
    port = free_port()  # nothing listens there
    account = ProviderAccountFactory(kind="devino", base_url=base_url.format(port=port))
    client.post(tool_url(account, "test"))
    account.refresh_from_db()
    assert account.last_check_ok is False
    assert (
        f"Could not reach devino: {words.format(port=port)}: check the account's base URL."
        in account.last_check_message
    )
    assert "Max retries" not in account.last_check_message
