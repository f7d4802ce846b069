"""Segments against the database: every operator combination, exact membership, one query to count."""

import itertools

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, Operator
from contacts.selectors import (
    segment_contacts,
    segment_count,
    segment_preview,
    tags_rule_q,
    tags_with_contact_count,
)
from tests.factories import ContactFactory, SegmentFactory, TagFactory

pytestmark = pytest.mark.django_db

NAMES = ("a", "b", "c", "d")


@pytest.fixture
def grid():
    """One contact for every subset of the tags a, b, c, d (16 contacts, the empty subset included)."""
    tags = {name: TagFactory(name=name) for name in NAMES}
    contacts = {}
    for size in range(len(NAMES) + 1):
        for subset in itertools.combinations(NAMES, size):
            contacts[frozenset(subset)] = ContactFactory(tags=[tags[n] for n in subset])
    return tags, contacts


def expected(contacts, rule) -> set[int]:
    return {contact.pk for carried, contact in contacts.items() if rule(carried)}


def holds(operator, wanted, carried) -> bool:
    return (any if operator == Operator.ANY else all)(name in carried for name in wanted)


@pytest.mark.parametrize("positive_operator", [Operator.ANY, Operator.ALL])
@pytest.mark.parametrize("negative_operator", [Operator.ANY, Operator.ALL])
def test_segment_membership_for_every_operator_combination(grid, positive_operator, negative_operator):
    tags, contacts = grid
    segment = SegmentFactory(
        positive_tags=[tags["a"], tags["b"]],
        positive_operator=positive_operator,
        negative_tags=[tags["c"], tags["d"]],
        negative_operator=negative_operator,
    )

    def rule(carried):
        return holds(positive_operator, "ab", carried) and not holds(negative_operator, "cd", carried)

    want = expected(contacts, rule)
    assert set(segment_contacts(segment).values_list("pk", flat=True)) == want
    assert segment_count(segment) == len(want)


@pytest.mark.parametrize("negative_operator", [Operator.ANY, Operator.ALL])
def test_a_segment_without_positive_tags_is_everyone_minus_the_negatives(grid, negative_operator):
    tags, contacts = grid
    segment = SegmentFactory(negative_tags=[tags["c"], tags["d"]], negative_operator=negative_operator)
    want = expected(contacts, lambda carried: not holds(negative_operator, "cd", carried))
    assert set(segment_contacts(segment).values_list("pk", flat=True)) == want


@pytest.mark.parametrize("positive_operator", [Operator.ANY, Operator.ALL])
def test_a_segment_without_negative_tags_subtracts_nobody(grid, positive_operator):
    tags, contacts = grid
    segment = SegmentFactory(positive_tags=[tags["a"], tags["b"]], positive_operator=positive_operator)
    want = expected(contacts, lambda carried: holds(positive_operator, "ab", carried))
    assert set(segment_contacts(segment).values_list("pk", flat=True)) == want


def test_an_empty_segment_is_everyone(grid):
    _, contacts = grid
    assert segment_count(SegmentFactory()) == len(contacts) == Contact.objects.count()


def test_a_segment_count_is_one_query_without_distinct_or_python_filtering(grid):
    tags, _ = grid
    segment = SegmentFactory(
        positive_tags=[tags["a"], tags["b"]],
        positive_operator=Operator.ALL,
        negative_tags=[tags["c"]],
    )
    with CaptureQueriesContext(connection) as queries:
        count = segment_count(segment)
    assert count == 2  # {a, b} and {a, b, d}
    assert len(queries) == 1
    assert "DISTINCT" not in queries[0]["sql"].upper()


def test_tags_rule_q_takes_a_list_of_ids(grid):
    tags, contacts = grid
    ids = [tags["a"].pk, tags["b"].pk, tags["a"].pk]  # duplicates do not change "all"
    every = set(Contact.objects.filter(tags_rule_q(ids, Operator.ALL)).values_list("pk", flat=True))
    some = set(Contact.objects.filter(tags_rule_q(ids, Operator.ANY)).values_list("pk", flat=True))
    assert every == expected(contacts, lambda carried: {"a", "b"} <= carried)
    assert some == expected(contacts, lambda carried: bool({"a", "b"} & carried))
    with pytest.raises(ValueError, match="at least one tag"):
        tags_rule_q([], Operator.ANY)


def test_segment_preview_returns_the_newest_contacts_up_to_the_limit(grid):
    tags, _ = grid
    segment = SegmentFactory(positive_tags=[tags["a"]])
    preview = segment_preview(segment, limit=3)
    assert len(preview) == 3
    assert [c.pk for c in preview] == sorted((c.pk for c in preview), reverse=True)
    assert all(tags["a"] in c.tags.all() for c in preview)


def test_tags_carry_their_contact_count_in_one_query(grid):
    with CaptureQueriesContext(connection) as queries:
        counts = {tag.name: tag.contact_count for tag in tags_with_contact_count()}
    assert counts == {"a": 8, "b": 8, "c": 8, "d": 8}
    assert len(queries) == 1
    TagFactory(name="lonely")
    assert tags_with_contact_count().get(name="lonely").contact_count == 0
