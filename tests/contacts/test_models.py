"""Database constraints of the contacts models: they hold even when a service is bypassed."""

import pytest

from django.db import IntegrityError, connection
from django.db.models import Q

from contacts.models import Contact, ContactTag, Unsubscriber
from contacts.selectors import email_q
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


@pytest.mark.parametrize(
    ("field", "index", "lookup_q", "key"),
    [
        ("email", "contact_email_lower_idx", email_q, "lower((email)::text)"),
        ("identity", "contact_identity_idx", lambda value: Q(identity=value), "identity"),
    ],
)
def test_lookups_by_email_and_identity_use_their_indexes_which_hold_no_empty_values(field, index, lookup_q, key):
    """The indexes are partial (contacts without the value take no entry, which imports pay for), and a lookup
    by a value, as the API's filters make, still reads them: an e-mail address in any case, by its lower case."""
    wanted = ContactFactory(**{field: "Someone@Example.com" if field == "email" else "CUST-7"})
    for _ in range(3):
        ContactFactory(**{field: ""})
    lookup = Contact.objects.filter(lookup_q(getattr(wanted, field).swapcase() if field == "email" else "CUST-7"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # four rows: make the planner show what it can use
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [index])
        definition = cursor.fetchone()[0]
        assert f"btree ({key})" in definition, definition
        assert definition.endswith(f"WHERE (NOT (({field})::text = ''::text))"), "no entry for an empty value"
    assert index in lookup.order_by().explain()  # unordered: by id, a scan of the primary key can look as cheap
    assert list(lookup) == [wanted]


def test_the_phone_has_its_unique_index_only():
    """Django's pattern-ops copy of it is dropped (migration 0003): no query here uses a prefix LIKE."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'contacts_contact' AND indexdef LIKE '%%(phone%%'"
        )
        (definition,) = [row[0] for row in cursor.fetchall()]
    assert definition.startswith("CREATE UNIQUE INDEX") and "pattern_ops" not in definition
