"""Shared reads about contacts: who carries which tags, who is in a segment.

The Q builders here compile to plain SQL (EXISTS / IN sub-selects, no Python loop, no DISTINCT),
so that the campaign engine can put them in the WHERE of its `INSERT … SELECT` unchanged.
"""

from collections.abc import Callable, Iterable

from django.db import connection
from django.db.models import Case, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import Exact

from contacts.models import Contact, ContactTag, Operator, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from contacts.phones import InvalidPhone, normalize_phone

TagIds = Iterable[int] | QuerySet


def tags_named(names: Iterable[str]) -> QuerySet:
    """The tags with these names, whatever their case (names are unique regardless of case). Both sides are put in
    lower case by PostgreSQL, as the unique index reads names: Python's str.lower() differs from it ('ΠΕΛΑΤΕΣ' ends
    in 'ς' to Python, in 'σ' to PostgreSQL), and such a tag was found by no name, its own neither."""
    return Tag.objects.annotate(lower_name=Lower("name")).filter(
        lower_name__in=[Lower(Value(name)) for name in dict.fromkeys(names)]
    )


def tag_ids_named(names: Iterable[str]) -> dict[str, int | None]:
    """Each of these names with the id of its tag, whatever its case (as tags_named finds it), or None: one query."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT given.name, tag.id FROM unnest(%s::text[]) AS given(name)
                LEFT JOIN {Tag._meta.db_table} tag ON lower(tag.name) = lower(given.name)""",
            [names],
        )
        found = dict(cursor.fetchall())
    return {name: found[name] for name in names}


def tags_matching(term: str, *, limit: int = 20) -> list[Tag]:
    """Up to `limit` tags whose name contains `term` (any case): the one named so first (its `rank` 0), then those
    starting with it, then the rest by name; a person picks a tag among thousands by typing part of its name."""
    term = term.strip()
    if not term:
        return []
    lower_term = Lower(Value(term))  # PostgreSQL's lower case on both sides, as tags_named (not str.lower())
    found = Tag.objects.annotate(lower_name=Lower("name")).filter(lower_name__contains=lower_term)
    exact, prefix = Q(lower_name=lower_term), Q(lower_name__startswith=lower_term)
    rank = Case(When(exact, then=0), When(prefix, then=1), default=2, output_field=IntegerField())
    return list(found.annotate(rank=rank).order_by("rank", "lower_name")[:limit])


def _count_of(tag_ids: QuerySet) -> Subquery:
    """`(SELECT COUNT(*) FROM …)` over a one-column sub-select; 0, never NULL, when it is empty."""
    counted = tag_ids.order_by().annotate(_n=Func(F(tag_ids.query.values_select[0]), function="COUNT"))
    return Subquery(counted.values("_n")[:1], output_field=IntegerField())


def tags_rule_q(tag_ids: TagIds, operator: str) -> Q:
    """Contacts carrying any / all of the tags, as one predicate on Contact.

    `tag_ids` is a list of ids or a one-column sub-select of ids (a segment's tags, a campaign's
    tags), so that the rule compiles into the caller's query without fetching the ids first.
    `any` is an EXISTS on the contact-tag link; `all` is `id IN (SELECT contact_id … GROUP BY
    contact_id HAVING COUNT(*) = n)`, which the planner runs as one hashed sub-select. An empty
    list is no rule at all (what it means is the caller's choice), so it is refused.
    """
    if isinstance(tag_ids, QuerySet):
        wanted, how_many = tag_ids, _count_of(tag_ids)
    else:
        wanted = sorted(set(tag_ids))
        how_many = len(wanted)
        if not wanted:
            raise ValueError("tags_rule_q needs at least one tag id")
    if operator == Operator.ANY:
        return Q(Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), tag_id__in=wanted)))
    if operator == Operator.ALL:
        carriers = (
            ContactTag.objects.filter(tag_id__in=wanted)
            .order_by()
            .values("contact_id")
            .annotate(carried=Count("*"))
            .filter(carried=how_many)
            .values("contact_id")
        )
        return Q(pk__in=carriers)
    raise ValueError(f"Unknown tag operator {operator!r}")


def segment_tag_ids(segment: Segment, side: str) -> QuerySet:
    """A sub-select of the segment's positive or negative tag ids (no query runs here)."""
    through = getattr(Segment, f"{side}_tags").through
    return through.objects.filter(segment_id=segment.pk).values("tag_id")


def segment_q(segment: Segment) -> Q:
    """The segment's rule as one predicate on Contact: positive tags (none = everyone) minus negative tags.

    The tag lists stay sub-selects, so counting a segment is a single query whatever its size.
    """
    positive_ids = segment_tag_ids(segment, "positive")
    negative_ids = segment_tag_ids(segment, "negative")
    # NOT EXISTS(positive tags) is uncorrelated: PostgreSQL evaluates it once (an InitPlan).
    wanted = ~Q(Exists(positive_ids)) | tags_rule_q(positive_ids, segment.positive_operator)
    # With no negative tags the rule matches nobody (EXISTS over an empty list, or an empty GROUP BY).
    return wanted & ~tags_rule_q(negative_ids, segment.negative_operator)


def segment_contacts(segment: Segment) -> QuerySet[Contact]:
    """Every contact in the segment, active or not (suppression is decided at send time, with a reason)."""
    return Contact.objects.filter(segment_q(segment))


def segment_count(segment: Segment) -> int:
    """How many contacts the segment holds right now: one COUNT query."""
    return segment_contacts(segment).count()


def segment_preview(segment: Segment, limit: int = 20) -> list[Contact]:
    """The segment's newest contacts, for the admin page and the API."""
    return list(segment_contacts(segment).order_by("-id")[:limit])


def tags_with_contact_count() -> QuerySet[Tag]:
    """Tags annotated with `contact_count`, counted per row from the (tag, contact) index, not a GROUP BY join."""
    per_tag = ContactTag.objects.filter(tag_id=OuterRef("pk")).order_by().values("tag_id").annotate(n=Count("*"))
    # A tag without contacts has no GROUP BY row: COALESCE makes it 0.
    return Tag.objects.annotate(
        contact_count=Coalesce(Subquery(per_tag.values("n")[:1], output_field=IntegerField()), 0)
    )


def contact_whole_match_q(term: str) -> Q | None:
    """Contacts that have `term` whole, for a term that is a whole number (in any format: a national one is read
    in the default region) or an e-mail address: as their phone, e-mail or identity, all three indexed. None for
    any other term (a name, part of a number), which only a scan of the table can look for."""
    try:
        phone = normalize_phone(term)
    except InvalidPhone:
        if "@" not in term:
            return None
        phone = None
    whole = Q(identity=term) | email_q(term)
    return whole | Q(phone=phone) if phone else whole


def email_q(address: str) -> Q:
    """Contacts with that e-mail address in any case (Asha@Example.com is asha@example.com, as suppressions and
    e-mail audiences compare them), through the index of lower-cased addresses. The index holds no empty address,
    and PostgreSQL uses it only when the query says so too, hence the second condition."""
    return Q(Exact(Lower("email"), address.lower())) & ~Q(email="")


def contacts_with_tags(queryset: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """Contacts with their tags prefetched (two queries for a whole page, not one per contact)."""
    return (queryset if queryset is not None else Contact.objects.all()).prefetch_related("tags")


def contact_tag_links(contact: Contact) -> list[ContactTag]:
    """The contact's tag links with their tags, by tag name: when each tag was put on it."""
    return list(ContactTag.objects.filter(contact=contact).select_related("tag").order_by("tag__name"))


def contacts_deletion_summary(contacts: QuerySet[Contact], *, shown: int = 10) -> tuple[int, int, list[Contact]]:
    """What deleting these contacts takes with it, counted: how many contacts, how many tag links, and the first
    `shown` of them to name. Three queries whatever their number (the admin's confirmation page for "select all")."""
    ids = contacts.order_by().values("pk")
    count = contacts.order_by().count()
    links = ContactTag.objects.filter(contact_id__in=ids).count()
    return count, links, list(contacts.order_by("-pk").prefetch_related(None)[:shown])


def segment_rule_contacts(
    *, positive_tag_ids: Iterable[int], positive_operator: str, negative_tag_ids: Iterable[int], negative_operator: str
) -> QuerySet[Contact]:
    """The contacts a segment rule selects before it is saved (the admin's live count while editing).

    Same meaning as `segment_q`: no positive tags is everyone, no negative tags excludes no one.
    """
    contacts = Contact.objects.all()
    positive_ids, negative_ids = list(positive_tag_ids), list(negative_tag_ids)
    if positive_ids:
        contacts = contacts.filter(tags_rule_q(positive_ids, positive_operator))
    if negative_ids:
        contacts = contacts.exclude(tags_rule_q(negative_ids, negative_operator))
    return contacts


def segment_rule_preview(
    *,
    positive_tag_ids: Iterable[int],
    positive_operator: str,
    negative_tag_ids: Iterable[int],
    negative_operator: str,
    limit: int = 20,
) -> tuple[int, list[Contact]]:
    """(how many, the newest `limit`) of the contacts a segment rule selects: two queries whatever its size."""
    contacts = segment_rule_contacts(
        positive_tag_ids=positive_tag_ids,
        positive_operator=positive_operator,
        negative_tag_ids=negative_tag_ids,
        negative_operator=negative_operator,
    )
    return contacts.count(), list(contacts.order_by("-id")[:limit])


def contact_attribute_keys(*, sample: int = 2000, limit: int = 50) -> list[str]:
    """Attribute keys seen on the newest `sample` contacts: the text variables staff can use beyond the fields.

    A sample, so that the composer never scans the whole contact table for them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT key FROM (
                   SELECT jsonb_object_keys(attributes) AS key FROM (
                       SELECT attributes FROM contacts_contact
                       WHERE jsonb_typeof(attributes) = 'object' ORDER BY id DESC LIMIT %s) newest
               ) keys ORDER BY key LIMIT %s""",
            [sample, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def contact_unsubscriptions(contact: Contact) -> list[Unsubscriber]:
    """The suppressions that name the contact's phone or e-mail, newest first, with their source."""
    addresses = [a for a in (contact.phone, (contact.email or "").lower()) if a]
    return list(Unsubscriber.objects.filter(address__in=addresses).order_by("-id"))


def contact_opt_out_removals(contact: Contact, *, limit: int = 20) -> list[UnsubscriberRemoval]:
    """The opt-outs once recorded for the contact's phone or e-mail and since removed, newest first, with who removed
    them: why a person who had opted out was messaged after."""
    addresses = [a for a in (contact.phone, (contact.email or "").lower()) if a]
    return list(UnsubscriberRemoval.objects.filter(address__in=addresses).order_by("-id")[:limit])


# Whether a sender of a name exists (in any case, as the audience matches it), and every sender's name: providers
# registers them (ProvidersConfig.ready()), so that contacts never imports providers.
_sender_named: list[Callable[[str], bool]] = []
_sender_names: list[Callable[[], Iterable[str]]] = []


def register_sender_named(exists: Callable[[str], bool], names: Callable[[], Iterable[str]]) -> None:
    _sender_named[:] = [exists]
    _sender_names[:] = [names]


def suppression_names_no_one(scope: str, value: str) -> bool:
    """Whether a suppression scoped to a sender or a tag names no sender or tag there is (in any case:
    contacts.audience.suppression_match_sql, which compares PostgreSQL's lower() of both), and so suppresses
    nobody today."""
    if scope == Unsubscriber.Scope.TAG:
        return not tags_named([value]).exists()  # lower() on both sides, as the audience (not iexact's upper())
    if scope == Unsubscriber.Scope.SENDER:
        return bool(_sender_named) and not _sender_named[0](value)
    return False


def suppression_names_known(scope: str) -> frozenset[str] | None:
    """Every name a suppression in `scope` may name today, case-folded, to check many rows' values in memory (an
    import's): the tags' or the senders' names (one query), or None for a scope that names no tag or sender.

    Python's casefold() equates what PostgreSQL's lower() does ('ΠΕΛΑΤΕΣ' and 'πελατεσ', which Python's lower() keeps
    apart) and a little more ('STRASSE' and 'straße'): a value taken for a name it does not quite match is kept, as it
    would be without the check, never refused."""
    if scope == Unsubscriber.Scope.TAG:
        names = Tag.objects.values_list("name", flat=True).iterator()
    elif scope == Unsubscriber.Scope.SENDER and _sender_names:
        names = _sender_names[0]()
    else:
        return None
    return frozenset(name.casefold() for name in names)


def suppression_names_nothing(scope: str, value: str) -> str | None:
    """Why a suppression scoped to a sender or a tag suppresses nobody today, in words for staff, or None."""
    if not suppression_names_no_one(scope, value):
        return None
    return f"No {scope} is named {value!r}: this opt-out suppresses nothing until one is. Check the spelling."
