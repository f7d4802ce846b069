"""MOBtexting's registries (sender IDs, DLT templates, opt-outs) synced every hour by beat's task, in a real worker
against the sandbox, and how each sync went kept on the account for its health panel."""

import threading
import time

import pytest

from django.db import connection, transaction

from campaigns.services import reports
from config.celery import app
from config.processes import free_port, wait_until
from contacts.models import Unsubscriber
from providers.backends import get_backend
from providers.backends.base import RemoteUnsubscriber
from providers.models import ProviderAccount
from providers.sync import SYNC_RUNNING_NAMESPACE, registries_sync, unsubscribers_sync
from providers.tasks import registries_sync_task
from tests.factories import ProviderAccountFactory, SenderFactory, UserFactory, api_client_for


def _mobtexting(sandbox, token: str, **fields) -> ProviderAccount:
    return ProviderAccountFactory(
        kind="mobtexting", base_url=sandbox.base_url("mobtexting"), credentials={"api_key": token}, **fields
    )


def _opted_out_at_vendor(account: ProviderAccount, address: str) -> None:
    get_backend("mobtexting").create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber(address, "all"))


def _vendor_list(account: ProviderAccount) -> set[str]:
    return {u.address for u in get_backend("mobtexting").list_unsubscribers(account.as_backend_account())}


def _started(sync, results: list) -> threading.Thread:
    """A thread running `sync()` on a connection of its own (closed after), its result appended to `results`."""

    def run():
        try:
            results.append(sync())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_on(statement: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            [statement + "%"],
        )
        return cursor.fetchone()[0] > 0


def test_beat_syncs_the_registries_every_hour():
    scheduled = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert scheduled["providers.tasks.registries_sync_task"] == 3600.0


@pytest.mark.django_db(transaction=True)
def test_the_hourly_sync_brings_every_active_mobtexting_accounts_opt_outs_in_and_goes_on_past_one_that_fails(
    sandbox, celery_worker
):
    """An opt-out given at MOBtexting (a STOP its number received) holds in Herald, for every account and vendor,
    without staff pressing the button; Herald's own opt-outs reach MOBtexting's list."""
    active = _mobtexting(sandbox, "hourly-sync-active-0001", name="Active")
    inactive = _mobtexting(sandbox, "hourly-sync-inactive-01", name="Inactive", is_active=False)
    port = free_port()  # nothing listens there
    unreachable = ProviderAccountFactory(kind="mobtexting", name="Unreachable", base_url=f"http://127.0.0.1:{port}/api")
    octopush = ProviderAccountFactory(kind="octopush", base_url=sandbox.base_url("octopush"))
    _opted_out_at_vendor(active, "+919811100001")
    _opted_out_at_vendor(inactive, "+919811100002")
    Unsubscriber.objects.create(address="+919811100003", scope="all", source="admin")

    assert registries_sync_task.delay().get(timeout=60) == {"synced": 1, "failed": 1, "running": 0}

    pulled = Unsubscriber.objects.get(address="+919811100001")
    assert (pulled.scope, pulled.source) == ("all", "provider")
    assert not Unsubscriber.objects.filter(address="+919811100002").exists(), "an inactive account is left alone"
    assert _vendor_list(active) == {"+919811100001", "+919811100003"}
    assert _vendor_list(inactive) == {"+919811100002"}
    for account in (active, inactive, unreachable, octopush):
        account.refresh_from_db()
    assert (active.last_sync_ok, active.last_sync_message) == (
        True,
        "sender IDs synced (0 created, 0 updated, 0 pushed); DLT templates synced (0 created, 0 updated, 0 pushed);"
        " opt-outs synced (1 pulled, 1 pushed, 0 removed).",
    )
    assert active.last_sync_at is not None
    assert unreachable.last_sync_ok is False
    assert unreachable.last_sync_message == (
        f"Could not reach mobtexting: 127.0.0.1:{port} refused the connection (nothing listens there): check the"
        " account's base URL."
    )
    assert (inactive.last_sync_at, octopush.last_sync_at) == (None, None)


@pytest.mark.django_db
def test_a_sync_the_vendor_refuses_is_kept_as_failing_with_its_reason_until_one_works(sandbox):
    account = _mobtexting(sandbox, "revoked-sync-token-0001")
    sandbox.vendors["mobtexting"].control("revoke", {"token": "revoked-sync-token-0001"})
    refused = registries_sync(account_id=account.pk)
    account.refresh_from_db()
    assert (refused.ok, account.last_sync_ok) == (False, False)
    assert account.last_sync_message == refused.message
    assert refused.message.startswith("MOBtexting could not list the sender IDs: ") and "401" in refused.message

    ProviderAccount.objects.filter(pk=account.pk).update(credentials={"api_key": "a-new-sync-token-0001"})
    assert registries_sync(account_id=account.pk).ok
    account.refresh_from_db()
    assert account.last_sync_ok is True and account.last_sync_message.startswith("sender IDs synced (")


@pytest.mark.django_db
def test_the_api_shows_how_the_last_sync_went_and_takes_none_of_it_as_input(sandbox):
    account = _mobtexting(sandbox, "api-sync-token-000001")
    registries_sync(account_id=account.pk)
    api = api_client_for(UserFactory(superuser=True))
    url = f"/api/v1/provider-accounts/{account.pk}/"
    shown = api.get(url).json()
    assert (shown["last_sync_ok"], shown["last_sync_message"][:18]) == (True, "sender IDs synced ")
    assert shown["last_sync_at"] is not None

    api.patch(url, {"last_sync_ok": False, "last_sync_message": "forged"}, format="json")
    account.refresh_from_db()
    assert (account.last_sync_ok, account.last_sync_message[:18]) == (True, "sender IDs synced ")


def _wait_until_a_sync_waits_for_the_vendor() -> None:
    """Return once a session holds the account in an open transaction while its vendor request is under way."""

    def waiting() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                " AND query LIKE '%%providers_provideraccount%%FOR %%'"
            )
            return cursor.fetchone()[0]

    wait_until(waiting, timeout=5, what="a sync waiting for the vendor")


@pytest.mark.django_db(transaction=True)
def test_a_sync_under_way_holds_up_none_of_the_accounts_delivery_report_webhooks(sandbox):
    """A sync makes up to a thousand vendor requests in one transaction. It used to lock the account's row for all
    of it, and a webhook of that account, which notes the time of its last report on the row, waited as long (its
    reports with it, past the vendor's timeout)."""
    account = _mobtexting(sandbox, "slow-sync-token-000001")
    sandbox.hold_answers()
    synced = []
    thread = _started(lambda: registries_sync(account_id=account.pk), synced)
    try:
        _wait_until_a_sync_waits_for_the_vendor()
        reports._last_dlr_noted.pop(account.pk, None)  # this account's time is noted now, not 5 s after another's
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '500ms'")  # waiting on the sync would fail here
            reports.status_events_receive(account=account, updates=[])
    finally:
        sandbox.release_answers()
        thread.join(30)
    account.refresh_from_db()
    assert account.last_dlr_at is not None
    assert [result.ok for result in synced] == [True]


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_sync_waits_for_a_sync_of_the_account_under_way_and_then_sees_what_it_did(sandbox):
    account = _mobtexting(sandbox, "twice-sync-token-00001")
    Unsubscriber.objects.create(address="+919811100009", scope="all", source="admin")
    counts = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account.pk])  # under way
        thread = _started(lambda: unsubscribers_sync(account_id=account.pk), counts)
        try:
            wait_until(lambda: _waiting_on("SELECT pg_advisory_lock"), timeout=10, what="the second sync to wait")
            assert _vendor_list(account) == set(), "nothing pushed while it waits"
            get_backend("mobtexting").create_unsubscriber(  # what the sync under way pushes
                account.as_backend_account(), RemoteUnsubscriber("+919811100009", "all")
            )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account.pk])
    thread.join(30)
    assert counts == [{"pulled": 0, "pushed": 0, "removed": 0}], "it saw the push at the vendor: nothing left to do"
    assert _vendor_list(account) == {"+919811100009"}


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_sync_reads_the_vendors_list_and_calls_it_outside_any_transaction(sandbox):
    """Reading a long opt-out list at the vendor's pace takes minutes (10 for 90,000). The sync did it in a
    transaction holding a transaction id (from locking the account's row), which kept PostgreSQL from cleaning up any
    table for as long, the message table's report updates included. Here each vendor request takes 0.3 s (two pages
    to list, one opt-out to push), and no connection is ever seen idle inside a transaction."""
    account = _mobtexting(sandbox, "no-open-transaction-01")
    for n in range(20):
        _opted_out_at_vendor(account, f"+9198112{n:05d}")
    Unsubscriber.objects.create(address="+919811300001", scope="all", source="admin")
    sandbox.configure(latency_ms=300)
    counts, seen = [], []
    thread = _started(lambda: unsubscribers_sync(account_id=account.pk), counts)
    with connection.cursor() as cursor:
        while thread.is_alive():
            cursor.execute(
                "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
            )
            seen += cursor.fetchall()
            time.sleep(0.05)
    thread.join()
    assert counts == [{"pulled": 20, "pushed": 1, "removed": 0}]
    assert seen == []


@pytest.mark.django_db(transaction=True)
def test_the_api_starts_a_sync_in_the_background_and_refuses_an_account_without_registries(sandbox, celery_worker):
    account = _mobtexting(sandbox, "api-started-sync-00001")
    _opted_out_at_vendor(account, "+919811100005")
    api = api_client_for(UserFactory(superuser=True))

    started = api.post(f"/api/v1/provider-accounts/{account.pk}/sync/")

    assert started.status_code == 202, started.content
    assert (started.json()["last_sync_ok"], started.json()["last_sync_message"]) == (None, "")

    def ended():
        shown = api.get(f"/api/v1/provider-accounts/{account.pk}/").json()
        return shown if shown["last_sync_ok"] is not None else None

    shown = wait_until(ended, timeout=20, what="the sync's end")
    assert (
        shown["last_sync_ok"] is True
        and "opt-outs synced (1 pulled, 0 pushed, 0 removed)." in shown["last_sync_message"]
    )
    assert Unsubscriber.objects.filter(address="+919811100005", source="provider").exists()

    octopush = ProviderAccountFactory(kind="octopush")
    refused = api.post(f"/api/v1/provider-accounts/{octopush.pk}/sync/")
    assert refused.status_code == 400
    assert refused.json() == {
        "account": ["Octopush keeps no sender, template or opt-out registry; only MOBtexting syncs."]
    }
    viewer = api_client_for(UserFactory(permissions=["providers.view_provideraccount"]))
    assert viewer.post(f"/api/v1/provider-accounts/{account.pk}/sync/").status_code == 403


@pytest.mark.django_db
def test_a_sender_the_vendor_refuses_fails_the_sync_but_the_opt_outs_still_sync(sandbox):
    """A sender MOBtexting will not register (its DLT entity name missing) stopped the whole sync, so that every
    hourly run failed before it reached the opt-outs."""
    account = _mobtexting(sandbox, "refused-sender-token-01")
    SenderFactory(account=account, name="HERALD", dlt_entity_name="")
    _opted_out_at_vendor(account, "+919811100007")

    result = registries_sync(account_id=account.pk)

    assert result.ok is False
    said = result.message.split("; ")
    assert said[0].startswith("MOBtexting could not register sender HERALD: ") and "entity" in said[0]
    assert said[1:] == [
        "DLT templates synced (0 created, 0 updated, 0 pushed)",
        "opt-outs synced (1 pulled, 0 pushed, 0 removed).",
    ]
    assert Unsubscriber.objects.filter(address="+919811100007", source="provider").exists()
    account.refresh_from_db()
    assert (account.last_sync_ok, account.last_sync_message) == (False, result.message)


@pytest.mark.django_db
def test_a_sync_reads_an_opt_out_list_longer_than_the_vendors_get_limit(sandbox):
    """MOBtexting lists 15 opt-outs a page and refuses GETs past its limit (1,000 a minute) with a 429: past ~15,000
    opt-outs at the vendor every sync failed, each hour alike. Here the limit is 4 GETs per 2 s against 9 pages."""
    account = _mobtexting(sandbox, "paced-sync-000000001")
    for n in range(100):
        _opted_out_at_vendor(account, f"+9198111{n:05d}")
    sandbox.vendors["mobtexting"].control("limits", {"get_per_minute": 4, "window_seconds": 2})

    result = registries_sync(account_id=account.pk)

    assert result.ok, result.message
    assert result.message.endswith("opt-outs synced (100 pulled, 0 pushed, 0 removed).")
    assert Unsubscriber.objects.filter(source="provider").count() == 100


@pytest.mark.django_db(transaction=True)
def test_a_sync_of_an_account_already_syncing_is_left_to_the_running_one(sandbox):
    """The button pressed during the hourly sync, or the broker handing a sync that outlasts its visibility timeout to
    another worker process: waiting for the running one would hold that process idle for as long as it runs (minutes
    for a long opt-out list) and then sync again, so the second ends at once and the first says how it went."""
    account = _mobtexting(sandbox, "running-sync-token-0001")
    held, release = threading.Event(), threading.Event()

    def running_sync():  # holds what registries_sync holds while it runs, and lets it go as it does
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account.pk])
                held.set()
                release.wait(30)
                # Unlocked, not left to the connection's close: the server ends the closed session (and frees its
                # locks) a moment after the close returns, and the sync below then found the lock still held.
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [SYNC_RUNNING_NAMESPACE, account.pk])
        finally:
            connection.close()

    thread = threading.Thread(target=running_sync)
    thread.start()
    try:
        assert held.wait(10)
        result = registries_sync(account_id=account.pk)
    finally:
        release.set()
        thread.join(30)
    assert (result.ok, result.message) == (None, "A sync of this account is already running; it says how it went.")
    account.refresh_from_db()
    assert account.last_sync_at is None, "nothing recorded: the running sync records how it went"
    again = registries_sync(account_id=account.pk)
    assert again.ok is True, ("the lock is let go when a sync ends", again)
