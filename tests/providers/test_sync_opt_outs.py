"""Opt-outs synced with MOBtexting's suppression list both ways, through the sandbox: pulled, pushed, and an opt-out
lifted in Herald taken off the vendor's list rather than pulled back."""

from datetime import timedelta

import pytest

from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts.models import Unsubscriber, UnsubscriberRemoval
from contacts.services import unsubscribers_remove
from providers.backends import get_backend
from providers.backends.base import RemoteUnsubscriber
from providers.models import ProviderAccount
from providers.sync import unsubscribers_sync
from tests.factories import CREDENTIALS, ProviderAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(sandbox):
    return ProviderAccount.objects.create(kind="mobtexting", name="MT", base_url=sandbox.base_url("mobtexting"),
                                          credentials=dict(CREDENTIALS["mobtexting"]))  # fmt: skip


def _remote(account) -> set[tuple[str, str, str]]:
    return {
        (u.address, u.scope, u.value)
        for u in get_backend("mobtexting").list_unsubscribers(account.as_backend_account())
    }


def test_opt_outs_are_synced_both_ways_and_a_second_run_changes_nothing(account):
    backend = get_backend("mobtexting")
    backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber("+919811100001", "all"))
    backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber("+919811100002", "sender", "HERALD"))
    Unsubscriber.objects.create(address="+919811100003", scope="all", source="admin")
    Unsubscriber.objects.create(address="+919811100004", scope="channel", value="sms", source="admin")
    Unsubscriber.objects.create(address="someone@example.com", scope="all", source="admin")

    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 2, "pushed": 1, "removed": 0}

    local = set(Unsubscriber.objects.values_list("address", "scope", "value"))
    assert {("+919811100001", "all", ""), ("+919811100002", "sender", "HERALD")} <= local
    # MOBtexting has no channel scope: that suppression (and the e-mail one) stays in Herald.
    assert _remote(account) == {
        ("+919811100001", "all", ""), ("+919811100002", "sender", "HERALD"), ("+919811100003", "all", "")
    }  # fmt: skip
    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 0, "pushed": 0, "removed": 0}


def test_an_opt_out_lifted_in_herald_is_taken_off_the_vendors_list_and_not_pulled_back(account):
    """It came back with the next sync (as `provider`), and the vendor went on refusing the number. One the person
    gave again at the vendor after the removal is pulled, as any other."""
    backend = get_backend("mobtexting")
    for number in ("+919811100001", "+919811100002"):
        backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber(number, "all"))
    unsubscribers_sync(account_id=account.pk)
    staff = UserFactory(superuser=True)
    unsubscribers_remove(
        unsubscribers=Unsubscriber.objects.filter(address__in=["+919811100001", "+919811100002"]),
        user=staff,
        via="admin",
    )

    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 0, "pushed": 0, "removed": 2}
    assert not Unsubscriber.objects.exists()
    assert _remote(account) == set()
    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 0, "pushed": 0, "removed": 0}

    # The person opts out again at the vendor (after the removal): that one holds.
    UnsubscriberRemoval.objects.update(removed_at=timezone.now() - timedelta(minutes=5))
    backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber("+919811100001", "all"))
    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 1, "pushed": 0, "removed": 0}
    assert list(Unsubscriber.objects.values_list("address", "source")) == [("+919811100001", "provider")]
    assert _remote(account) == {("+919811100001", "all", "")}


def test_an_opt_out_lifted_and_given_again_in_herald_stays_on_the_vendors_list(account):
    get_backend("mobtexting").create_unsubscriber(
        account.as_backend_account(), RemoteUnsubscriber("+919811100001", "all")
    )
    unsubscribers_sync(account_id=account.pk)
    unsubscribers_remove(unsubscribers=Unsubscriber.objects.all(), user=None, via="api")
    Unsubscriber.objects.create(address="+919811100001", scope="all", source="api")

    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 0, "pushed": 0, "removed": 0}
    assert _remote(account) == {("+919811100001", "all", "")}


def test_other_vendors_have_no_list_to_sync():
    with pytest.raises(ValidationError) as exc:
        unsubscribers_sync(account_id=ProviderAccountFactory(kind="octopush").pk)
    assert "MOBtexting" in exc.value.message_dict["account"][0]
