"""Opt-outs synced with MOBtexting's suppression list both ways, through the sandbox."""

import pytest

from django.core.exceptions import ValidationError

from campaigns.services.suppressions import unsubscribers_sync
from contacts.models import Unsubscriber
from providers.backends import get_backend
from providers.backends.base import RemoteUnsubscriber
from providers.models import ProviderAccount
from tests.factories import CREDENTIALS, ProviderAccountFactory

pytestmark = pytest.mark.django_db


def test_opt_outs_are_synced_both_ways_and_a_second_run_changes_nothing(sandbox):
    account = ProviderAccount.objects.create(kind="mobtexting", name="MT", base_url=sandbox.base_url("mobtexting"),
                                             credentials=dict(CREDENTIALS["mobtexting"]))  # fmt: skip
    backend = get_backend("mobtexting")
    backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber("+919811100001", "all"))
    backend.create_unsubscriber(account.as_backend_account(), RemoteUnsubscriber("+919811100002", "sender", "HERALD"))
    Unsubscriber.objects.create(address="+919811100003", scope="all", source="admin")
    Unsubscriber.objects.create(address="+919811100004", scope="channel", value="sms", source="admin")
    Unsubscriber.objects.create(address="someone@example.com", scope="all", source="admin")

    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 2, "pushed": 1}

    local = set(Unsubscriber.objects.values_list("address", "scope", "value"))
    assert {("+919811100001", "all", ""), ("+919811100002", "sender", "HERALD")} <= local
    remote = {(u.address, u.scope, u.value) for u in backend.list_unsubscribers(account.as_backend_account())}
    # MOBtexting has no channel scope: that suppression (and the e-mail one) stays in Herald.
    assert remote == {("+919811100001", "all", ""), ("+919811100002", "sender", "HERALD"), ("+919811100003", "all", "")}
    assert unsubscribers_sync(account_id=account.pk) == {"pulled": 0, "pushed": 0}


def test_other_vendors_have_no_list_to_sync():
    with pytest.raises(ValidationError) as exc:
        unsubscribers_sync(account_id=ProviderAccountFactory(kind="octopush").pk)
    assert "MOBtexting" in exc.value.message_dict["account"][0]
