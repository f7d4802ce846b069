"""Database constraints of the contacts models: they hold even when a service is bypassed."""

import pytest

from django.db import IntegrityError

from contacts.models import ContactTag, Unsubscriber
from tests.factories import ContactFactory, TagFactory, UnsubscriberFactory

pytestmark = pytest.mark.django_db


def test_two_contacts_cannot_share_a_phone():
    ContactFactory(phone="+919812345678")
    with pytest.raises(IntegrityError):
        ContactFactory(phone="+919812345678")


def test_a_contact_carries_a_tag_once():
    contact, tag = ContactFactory(), TagFactory()
    ContactTag.objects.create(contact=contact, tag=tag)
    with pytest.raises(IntegrityError):
        ContactTag.objects.create(contact=contact, tag=tag)


def test_an_address_is_unsubscribed_once_per_scope_and_value():
    UnsubscriberFactory(address="+919812345678", scope="sender", value="HERALD")
    UnsubscriberFactory(address="+919812345678", scope="sender", value="OTHER")
    UnsubscriberFactory(address="+919812345678", scope="all", value="")
    with pytest.raises(IntegrityError):
        UnsubscriberFactory(address="+919812345678", scope="sender", value="HERALD")


@pytest.mark.parametrize(
    ("scope", "value"),
    [(Unsubscriber.Scope.ALL, "HERALD"), (Unsubscriber.Scope.SENDER, ""), (Unsubscriber.Scope.TAG, "")],
    ids=["all with a value", "sender without a value", "tag without a value"],
)
def test_the_unsubscriber_value_must_match_its_scope(scope, value):
    with pytest.raises(IntegrityError):
        UnsubscriberFactory(scope=scope, value=value)
