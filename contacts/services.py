"""Writes to contacts, tags, segments and suppressions; the API and admin call these.

Everything that can fail with a 400 is checked before the first write, and failures are
`ValidationError({"field": "message"})`, which the admin shows as is and the API renders as JSON.
Tag links are written set-based (one `INSERT … ON CONFLICT DO NOTHING`), never one row at a time.
"""

import re
from collections.abc import Callable, Iterable

import phonenumbers

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import ProtectedError, Q, QuerySet
from django.utils import timezone

from contacts.models import (
    CONTACT_PHONE_TAKEN,
    SCOPE_WORDS,
    UNSUBSCRIBED_ALREADY,
    Channel,
    Contact,
    ContactTag,
    Operator,
    Segment,
    Tag,
    Unsubscriber,
    UnsubscriberRemoval,
)
from contacts.phones import INVALID_MESSAGE, InvalidPhone, normalize_address, normalize_phone
from contacts.selectors import segment_count, tags_named
from contacts.validators import TAG_NAME_COMMA, country_code

# Contact fields that the API and admin may write (tags go through their own argument).
CONTACT_FIELDS = (
    "phone", "email", "first_name", "last_name", "identity", "country", "language", "timezone", "attributes",
    "is_active",
)  # fmt: skip
TAG_NAME_MAX = Tag._meta.get_field("name").max_length
LINK_BATCH = 5000


# --- Tags ------------------------------------------------------------------------------------------


def tag_names_clean(names: Iterable[str], *, field: str = "tags") -> list[str]:
    """Strip and de-duplicate tag names regardless of case (first spelling wins), refusing blank or over-long
    ones."""
    if isinstance(names, str):
        raise ValidationError({field: "Give a list of tag names, not a single string."})
    cleaned: dict[str, str] = {}
    for raw in names:
        name = str(raw).strip()
        if not name:
            raise ValidationError({field: "Tag names cannot be blank."})
        if len(name) > TAG_NAME_MAX:
            raise ValidationError({field: f"Tag name {name[:20]!r}… is longer than {TAG_NAME_MAX} characters."})
        if "," in name:
            raise ValidationError({field: f"{name!r}: {TAG_NAME_COMMA}"})
        cleaned.setdefault(name.lower(), name)
    return list(cleaned.values())


def tags_get_or_create(*, names: Iterable[str]) -> list[Tag]:
    """The tags with these names in any case ("vip" finds "VIP"), creating the missing ones as spelt: two
    queries whatever the number of names."""
    cleaned = tag_names_clean(names)
    if not cleaned:
        return []
    Tag.objects.bulk_create([Tag(name=name) for name in cleaned], ignore_conflicts=True)
    return list(tags_named(cleaned))


@transaction.atomic
def tag_update(*, tag: Tag, **fields) -> Tag:
    """Change a tag's name or description. A tag-scoped opt-out names its tag, so renaming a tag renames its
    opt-outs with it (opt_outs_follow_rename): else everyone who opted out of the tag would be messaged again under
    its new name."""
    unknown = set(fields) - {"name", "description"}
    if unknown:
        raise TypeError(f"Unknown tag fields: {', '.join(sorted(unknown))}")
    old_name = Tag.objects.select_for_update().values_list("name", flat=True).get(pk=tag.pk)
    for name, value in fields.items():
        setattr(tag, name, value)
    tag.save()
    opt_outs_follow_rename(scope=Unsubscriber.Scope.TAG, old=old_name, new=tag.name)
    return tag


def opt_outs_follow_rename(*, scope: str, old: str, new: str, keep_old: bool = False) -> None:
    """Carry the opt-outs scoped to a renamed tag or sender (they name it) to its new name, in two statements, so
    that whoever opted out of it is not messaged under the new name. An address already opted out under the new name
    keeps the one it has. `keep_old` leaves the old name's opt-outs too: a sender's name is not unique (two accounts
    may each have a HERALD), and the old name's opt-outs still stand for another sender of that name. Names compare
    with PostgreSQL's lower() on both sides, as the audience does (contacts.audience.suppression_match_sql): a
    rename in case only changes nothing."""
    params = {"scope": scope, "old": old, "new": new}
    renamed = "lower(%(old)s) <> lower(%(new)s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
                SELECT DISTINCT ON (u.address) u.address, u.scope, %(new)s, u.source, u.reason, u.created_at
                FROM contacts_unsubscriber u
                WHERE {renamed} AND u.scope = %(scope)s AND lower(u.value) = lower(%(old)s) AND NOT EXISTS (
                    SELECT 1 FROM contacts_unsubscriber o
                    WHERE o.address = u.address AND o.scope = u.scope AND lower(o.value) = lower(%(new)s))
                ORDER BY u.address, u.id""",
            params,
        )
        if not keep_old:
            cursor.execute(
                f"DELETE FROM contacts_unsubscriber WHERE {renamed} AND scope = %(scope)s AND lower(value) = lower(%(old)s)",
                params,
            )


def _links_insert(contact_ids: Iterable[int], tag_ids: list[int]) -> None:
    """INSERT the (contact, tag) links that do not exist yet, in large batches."""
    batch: list[ContactTag] = []
    for contact_id in contact_ids:
        batch.extend(ContactTag(contact_id=contact_id, tag_id=tag_id) for tag_id in tag_ids)
        if len(batch) >= LINK_BATCH:
            ContactTag.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        ContactTag.objects.bulk_create(batch, ignore_conflicts=True)


@transaction.atomic
def contact_tags_set(*, contact: Contact, names: Iterable[str]) -> list[Tag]:
    """Make the contact's tags exactly these names (creating missing tags); returns the tags."""
    tags = tags_get_or_create(names=names)
    tag_ids = [tag.pk for tag in tags]
    ContactTag.objects.filter(contact=contact).exclude(tag_id__in=tag_ids).delete()
    _links_insert([contact.pk], tag_ids)
    getattr(contact, "_prefetched_objects_cache", {}).pop("tags", None)
    return sorted(tags, key=lambda tag: tag.name)


def _existing_contact_ids(contact_ids: Iterable[int]) -> list[int]:
    wanted = set(contact_ids)
    if not wanted:
        raise ValidationError({"contacts": "Give at least one contact id."})
    found = set(Contact.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := sorted(wanted - found):
        shown = ", ".join(str(pk) for pk in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise ValidationError({"contacts": f"No contact with id {shown}."})
    return sorted(found)


ContactIds = Iterable[int] | QuerySet


def _contact_ids_sql(contact_ids: ContactIds) -> tuple[str, list]:
    """A SELECT of the contacts' ids (one column): the ids given, each checked to exist, or a queryset of contacts
    as a sub-select (every contact a search or filter found: the admin's "Select all"), read by the statement that
    uses it instead of brought into Python."""
    if isinstance(contact_ids, QuerySet):
        return contact_ids.order_by().values("pk").query.sql_with_params()
    return "SELECT unnest(%s::bigint[]) AS id", [_existing_contact_ids(contact_ids)]


@transaction.atomic
def contacts_tag(*, contact_ids: ContactIds, tag_names: Iterable[str]) -> list[Tag]:
    """Add tags (created if missing) to many contacts at once, in one INSERT … SELECT; links that exist already are
    kept. `contact_ids`: ids, or a queryset of contacts."""
    ids_sql, params = _contact_ids_sql(contact_ids)
    names = tag_names_clean(tag_names)
    if not names:
        raise ValidationError({"tags": "Give at least one tag name."})
    tags = tags_get_or_create(names=names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO contacts_contacttag (contact_id, tag_id)
                SELECT c.id, t.id FROM ({ids_sql}) c(id) CROSS JOIN unnest(%s::bigint[]) t(id)
                ON CONFLICT (contact_id, tag_id) DO NOTHING""",
            [*params, [tag.pk for tag in tags]],
        )
    return tags


@transaction.atomic
def contacts_untag(*, contact_ids: ContactIds, tag_names: Iterable[str]) -> int:
    """Remove tags from many contacts at once; returns how many links were deleted. Unknown tags are ignored.
    `contact_ids`: ids, or a queryset of contacts."""
    ids = (
        contact_ids.order_by().values("pk") if isinstance(contact_ids, QuerySet) else _existing_contact_ids(contact_ids)
    )
    names = tag_names_clean(tag_names)
    if not names:
        raise ValidationError({"tags": "Give at least one tag name."})
    deleted, _ = ContactTag.objects.filter(contact_id__in=ids, tag__in=tags_named(names)).delete()
    return deleted


# --- Contacts --------------------------------------------------------------------------------------


def _phone_clean(phone: str, region: str | None) -> str:
    if region and region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError({"region": f"{region!r} is not a country code that phone numbers know."})
    try:
        return normalize_phone(phone, region)
    except InvalidPhone:
        raise ValidationError(
            {"phone": INVALID_MESSAGE.format(region=(region or "the default region").upper())}
        ) from None


def opt_outs_follow_contact(
    *, old: tuple[str, str], new: tuple[str, str], source: str = Unsubscriber.Source.API
) -> int:
    """A contact's phone or e-mail changed from `old` to `new` ((phone, e-mail) each): the opt-outs of its old
    address now hold for the new one too, in one INSERT … SELECT, with `source` (who edited) and a reason naming
    where they came from. An opt-out names an address, so the edit left the person's own STOP behind on a number
    they no longer use, and the next campaign messaged them; the old address keeps its opt-outs (it may still be
    theirs). An address opted out already in that scope keeps the one it has. Returns how many were carried."""
    pairs = [
        (before.lower() if "@" in before else before, after.lower() if "@" in after else after)
        for before, after in zip(old, new, strict=True)
        if before and after and before.lower() != after.lower()
    ]
    if not pairs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
               SELECT p.new, u.scope, u.value, %s,
                      left('carried from ' || p.old || ', the contact''s address before an edit'
                           || coalesce(': ' || nullif(u.reason, ''), ''), 255), now()
               FROM unnest(%s::text[], %s::text[]) AS p(old, new)
               JOIN contacts_unsubscriber u ON u.address = p.old
               ORDER BY u.id
               ON CONFLICT (address, scope, value) DO NOTHING""",
            [source, [before for before, _ in pairs], [after for _, after in pairs]],
        )
        return cursor.rowcount


def _contact_problems(
    contact: Contact, fields: dict, tags: Iterable[str] | None, region: str | None
) -> dict[str, list[str]]:
    """Set `fields` on the contact (in memory), the phone and country normalised, and return every problem of them and
    of `tags`, each on its field: a bad country was told only once the time zone beside it was fixed."""
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    fields = dict(fields)
    errors: dict[str, list[str]] = {}
    if "phone" in fields:
        try:
            fields["phone"] = _phone_clean(fields["phone"], region)
        except ValidationError as error:
            errors |= error.message_dict
            del fields["phone"]
    if fields.get("country"):
        try:
            fields["country"] = country_code(fields["country"])
        except ValueError as error:
            errors["country"] = [f"{fields.pop('country')!r} is {error}."]
    if tags is not None:
        try:
            tag_names_clean(tags)
        except ValidationError as error:
            errors |= error.message_dict
    for name, value in fields.items():
        setattr(contact, name, value)
    # Field shapes and the unique phone; an edit checks only the fields it writes, so that a value stored before a
    # rule existed (a time zone "IST") does not refuse an edit of another field.
    unchanged = [] if contact.pk is None else [f.name for f in Contact._meta.concrete_fields if f.name not in fields]
    try:
        contact.full_clean(exclude=[*unchanged, *errors], validate_constraints=False)
    except ValidationError as error:
        errors |= error.message_dict
    return errors


def _contact_write(contact: Contact, fields: dict, tags: Iterable[str] | None, region: str | None) -> Contact:
    old_addresses = (contact.phone or "", contact.email or "") if contact.pk is not None else None
    if errors := _contact_problems(contact, fields, tags, region):  # checked before the first write
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:  # a concurrent write took the number between the check and the INSERT
        raise ValidationError({"phone": CONTACT_PHONE_TAKEN}) from None
    if old_addresses is not None:
        opt_outs_follow_contact(old=old_addresses, new=(contact.phone or "", contact.email or ""))
    if tags is not None:
        contact_tags_set(contact=contact, names=tags)
    return contact


def contact_write_problems(
    *, contact: Contact | None, tags: Iterable[str] | None = None, region: str | None = None, **fields
) -> dict[str, list[str]]:
    """What contact_create (no contact) or contact_update would refuse in these fields, by field, without writing;
    fields left out are the new contact's defaults or the stored ones. For the API, which tells them with the fields
    that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    contact = Contact() if contact is None else Contact.objects.get(pk=contact.pk)
    return _contact_problems(contact, fields, tags, region)


@transaction.atomic
def contact_create(*, phone: str, tags: Iterable[str] | None = None, region: str | None = None, **fields) -> Contact:
    """Create a contact; `phone` in any format (national ones read in `region`), `tags` as names."""
    return _contact_write(Contact(), {"phone": phone, **fields}, tags, region)


@transaction.atomic
def contact_update(
    *, contact: Contact, tags: Iterable[str] | None = None, region: str | None = None, **fields
) -> Contact:
    """Change the given fields of a contact; `tags`, when given, replace its tags."""
    return _contact_write(contact, fields, tags, region)


CONTACT_DELETE_BATCH = 10_000


@transaction.atomic
def contacts_delete(*, contacts: QuerySet[Contact]) -> int:
    """Delete contacts, up to every contact a search found, set-based: per batch of ids, one statement for each table
    that refers to contacts and one for the contacts. Django's own delete read every contact into memory and deleted
    them 100 at a time (1,000 statements and 30 s for 100,000 contacts, past a web server's timeout). Their
    suppressions stay: they name addresses, not contacts."""
    ids = list(contacts.order_by().values_list("pk", flat=True))
    relations = [
        relation
        for relation in Contact._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and (relation.one_to_one or relation.one_to_many)
    ]
    if any(relation.on_delete not in CONTACT_REFERENCE_RULES for relation in relations):
        # PROTECT, RESTRICT, SET(…) on some table: Django's own delete, which enforces them
        return contacts.order_by().delete()[1].get(Contact._meta.label, 0)
    for start in range(0, len(ids), CONTACT_DELETE_BATCH):
        batch = ids[start : start + CONTACT_DELETE_BATCH]
        for relation in relations:
            rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": batch})
            CONTACT_REFERENCE_RULES[relation.on_delete](rows, relation.field.name)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM contacts_contact WHERE id = ANY(%s)", [batch])
    return len(ids)


# What a table that refers to contacts does as they go, as its foreign key says (contacts does not know these tables:
# campaigns' messages and audience lists refer to contacts too), in one statement per batch.
CONTACT_REFERENCE_RULES: dict[Callable, Callable[[QuerySet, str], object]] = {
    models.CASCADE: lambda rows, field: rows.delete(),
    models.SET_NULL: lambda rows, field: rows.update(**{field: None}),
    models.DO_NOTHING: lambda rows, field: None,
}


# --- Segments --------------------------------------------------------------------------------------

SEGMENT_FIELDS = ("name", "description", "positive_operator", "negative_operator")


def _segment_write(segment: Segment, fields: dict, positive_tags, negative_tags) -> Segment:
    unknown = set(fields) - set(SEGMENT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown segment fields: {', '.join(sorted(unknown))}")
    for name in ("positive_operator", "negative_operator"):
        if name in fields and fields[name] not in Operator.values:
            raise ValidationError({name: f"Choose one of: {', '.join(Operator.values)}."})
    for name, value in fields.items():
        setattr(segment, name, value)
    segment.full_clean()
    segment.save()
    tags_keep([tag.pk for tag in [*(positive_tags or []), *(negative_tags or [])]])
    if positive_tags is not None:
        segment.positive_tags.set(positive_tags)
    if negative_tags is not None:
        segment.negative_tags.set(negative_tags)
    segment_count_store(segment=segment, count=segment_count(segment))
    return segment


def segments_count(*, segment_ids: Iterable[int]) -> list[Segment]:
    """Count the segments' contacts now and store each count with its time, for lists that show the last count.

    One COUNT per segment (each is its own rule over all contacts, which no single query can group) and one UPDATE
    for them all; the segments' `updated_at` stays, since counting changes nothing about them."""
    segments = list(Segment.objects.filter(pk__in=list(segment_ids)))
    for segment in segments:
        segment.contact_count, segment.counted_at = segment_count(segment), timezone.now()
    Segment.objects.bulk_update(segments, ["contact_count", "counted_at"])
    return segments


def segment_count_store(*, segment: Segment, count: int) -> None:
    """Store a count of the segment's saved rule just taken (its admin page counts it to show it; a save counts it),
    on the row and on `segment`."""
    segment.contact_count, segment.counted_at = count, timezone.now()
    Segment.objects.filter(pk=segment.pk).update(contact_count=count, counted_at=segment.counted_at)


@transaction.atomic
def segment_create(
    *,
    name: str,
    positive_tags: Iterable[Tag] = (),
    negative_tags: Iterable[Tag] = (),
    positive_operator: str = Operator.ANY,
    negative_operator: str = Operator.ANY,
    description: str = "",
) -> Segment:
    """Create a segment: contacts with the positive tags (none = everyone) minus those with the negative ones."""
    fields = {
        "name": name,
        "description": description,
        "positive_operator": positive_operator,
        "negative_operator": negative_operator,
    }
    return _segment_write(Segment(), fields, list(positive_tags), list(negative_tags))


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    positive_tags: Iterable[Tag] | None = None,
    negative_tags: Iterable[Tag] | None = None,
    **fields,
) -> Segment:
    """Change a segment's name, operators or tag lists (a list given replaces the current one)."""
    return _segment_write(
        segment,
        fields,
        None if positive_tags is None else list(positive_tags),
        None if negative_tags is None else list(negative_tags),
    )


# --- Deleting tags and segments --------------------------------------------------------------------
# Deleting a tag or segment that something still selects people by would change that audience without a word (an
# excluded tag gone widens a campaign), so it is refused while anything holds it. Each holder check takes ids and
# returns what holds them; campaigns adds its own in CampaignsConfig.ready(), because contacts never imports
# campaigns. The rows are locked FOR UPDATE before the check, and whatever links one holds it FOR KEY SHARE first
# (tags_keep, segments_keep): the delete waits for a link being written and then sees it, and a link written after
# the lock waits for the delete and then finds the tag gone (a foreign-key error, never a silent loss).
TAG_HOLDERS: list[Callable[[list[int]], list[models.Model]]] = []
SEGMENT_HOLDERS: list[Callable[[list[int]], list[models.Model]]] = []


def _segments_holding_tags(tag_ids: list[int]) -> list[models.Model]:
    held = Q(positive_tags__in=tag_ids) | Q(negative_tags__in=tag_ids)
    return list(Segment.objects.filter(held).distinct().order_by("name"))


TAG_HOLDERS.append(_segments_holding_tags)


def tags_keep(tag_ids: Iterable[int]) -> None:
    """Hold these tags (FOR KEY SHARE) until the caller's transaction ends, as it links them: a tags_delete then
    waits for it and sees the link. The link's own foreign key would lock them only at commit (it is deferred)."""
    _keep(Tag, tag_ids)


def segments_keep(segment_ids: Iterable[int]) -> None:
    """Hold these segments until the caller's transaction ends, as it links them (tags_keep says why)."""
    _keep(Segment, segment_ids)


def _keep(model, ids: Iterable[int]) -> None:
    if ids := sorted(set(ids)):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {model._meta.db_table} WHERE id = ANY(%s) FOR KEY SHARE", [ids])


def tags_holders(tag_ids: list[int]) -> list[models.Model]:
    """What still selects people by any of these tags: segments, and campaigns not finished."""
    return [holder for check in TAG_HOLDERS for holder in check(tag_ids)]


def segments_holders(segment_ids: list[int]) -> list[models.Model]:
    """What still selects people by any of these segments: campaigns not finished."""
    return [holder for check in SEGMENT_HOLDERS for holder in check(segment_ids)]


@transaction.atomic
def tags_delete(*, tags: Iterable[Tag]) -> int:
    """Delete tags (their contacts lose them) unless a segment or an unfinished campaign selects people by one."""
    return _delete_unless_held(Tag, [tag.pk for tag in tags], tags_holders)


@transaction.atomic
def segments_delete(*, segments: Iterable[Segment]) -> int:
    """Delete segments unless an unfinished campaign selects people by one."""
    return _delete_unless_held(Segment, [segment.pk for segment in segments], segments_holders)


def _delete_unless_held(model, ids: list[int], holders: Callable[[list[int]], list[models.Model]]) -> int:
    ids = list(model.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    if held := holders(ids):
        what = f"The {model._meta.verbose_name}" if len(ids) == 1 else f"A {model._meta.verbose_name}"
        named = ", ".join(f"{holder._meta.verbose_name} {str(holder)!r}" for holder in held)
        raise ProtectedError(f"{what} is still used by {named}: take it out of them first.", set(held))
    return model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)


# --- Suppressions ----------------------------------------------------------------------------------


# What only a vendor's signal records (campaigns.services.reports, the suppression sync): an opt-out that staff or an
# API client record saying so would pass for the recipient's own STOP.
SIGNAL_SOURCES = (Unsubscriber.Source.PROVIDER, Unsubscriber.Source.INBOUND)


def unsubscriber_check(
    *, address: str, scope: str, value: str, source: str, region: str | None = None, stored_source: str | None = None
) -> tuple[str, str]:
    """Validate a suppression's fields; returns the normalised (address, value). The admin form uses it too.
    `stored_source`: the source of the opt-out being edited, which stays as it is. Every problem is raised at once,
    each on its field (unsubscriber_problems)."""
    errors, address, value = unsubscriber_problems(
        address=address, scope=scope, value=value, source=source, region=region, stored_source=stored_source
    )
    if errors:
        raise ValidationError(errors)
    return address, value


def unsubscriber_problems(
    *, address: str, scope: str, value: str, source: str, region: str | None = None, stored_source: str | None = None
) -> tuple[dict[str, list[str]], str, str]:
    """unsubscriber_check's problems by field ({} if none), with the address and value as they would be stored: a bad
    address was told alone, and a value its scope refuses only in the next request."""
    errors: dict[str, list[str]] = {}
    try:
        address = normalize_address(address, region)
    except InvalidPhone:
        errors["address"] = ["Enter a valid phone number or e-mail address."]
    if scope is not None and scope not in Unsubscriber.Scope.values:
        errors["scope"] = [f"Choose one of: {', '.join(Unsubscriber.Scope.values)}."]
    if source not in Unsubscriber.Source.values:
        errors["source"] = [f"Choose one of: {', '.join(Unsubscriber.Source.values)}."]
    elif stored_source is not None and source != stored_source:
        errors["source"] = [f"The source says who recorded this opt-out ({stored_source}); it stays as recorded."]
    elif source in SIGNAL_SOURCES and stored_source is None:
        errors["source"] = [
            f"'{source}' is recorded only by a vendor's report of an opt-out; use "
            f"{', '.join(s for s in Unsubscriber.Source.values if s not in SIGNAL_SOURCES)}."
        ]
    value = (value or "").strip()
    if scope is None or "scope" in errors:  # a value is checked against its scope only
        return errors, address, value
    if scope == Unsubscriber.Scope.ALL and value:
        errors["value"] = [EVERYTHING_TAKES_NO_VALUE + "."]
    elif scope != Unsubscriber.Scope.ALL and not value:
        errors["value"] = [suppression_value_missing(scope) + "."]
    else:
        value = suppression_value(scope, value)
        if problem := suppression_value_problem(scope, value):
            errors["value"] = [problem[0].upper() + problem[1:] + "."]
    return errors, address, value


def unsubscriber_write_problems(
    *, unsubscriber: Unsubscriber | None, region: str | None = None, **fields
) -> dict[str, list[str]]:
    """What unsubscriber_create (no unsubscriber) or unsubscriber_update would refuse in these fields, by field,
    without writing; fields left out are the new opt-out's defaults or the stored ones, and a scope given as None is
    one refused already (its value and whether the address is taken are not checked against another scope). For the
    API, which tells them with the fields that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    stored = Unsubscriber(source=Unsubscriber.Source.ADMIN) if unsubscriber is None else unsubscriber
    merged = {name: fields.get(name, getattr(stored, name)) for name in ("address", "scope", "value", "source")}
    errors, address, value = unsubscriber_problems(
        region=region, stored_source=None if unsubscriber is None else unsubscriber.source, **merged
    )
    checked = merged["scope"] is not None and not errors.keys() & {"address", "scope", "value"}
    if checked and _opt_out_taken(address, merged["scope"], value, other_than=unsubscriber):
        errors["address"] = [UNSUBSCRIBED_ALREADY]
    return errors


def _opt_out_taken(address: str, scope: str, value: str, *, other_than: Unsubscriber | None = None) -> bool:
    """Whether another opt-out has this address, scope and value (the unique constraint's three)."""
    taken = Unsubscriber.objects.filter(address=address, scope=scope, value=value)
    if other_than is not None:
        taken = taken.exclude(pk=other_than.pk)
    return taken.exists()


def _squashed(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name.lower())


# A channel as people write it ("SMS", "E-mail", "voice sms") -> its value ("sms", "email", "voice_sms").
CHANNEL_BY_NAME = {_squashed(name): channel.value for channel in Channel for name in (channel.value, channel.label)}


# What a service-scoped suppression names (contacts.audience.suppression_match_sql compares it, in any case, with the
# campaign's purpose and the service code its vendor sends under): campaigns.models.Campaign.Purpose and
# providers.models.SENDER_SERVICES, written out here because contacts imports neither (a test holds them equal).
SERVICE_PURPOSES = ("transactional", "service", "promotional")
SERVICE_CODES = ("T", "P", "S", "G")


def suppression_value(scope: str, value: str) -> str:
    """A suppression's value as stored: trimmed, a channel as its value (the audience compares channels exactly:
    contacts.audience.suppression_match_sql), a service as a purpose in lower case or a service code in capitals; an
    unknown channel is lower-cased for suppression_value_problem."""
    value = (value or "").strip()
    if scope == Unsubscriber.Scope.CHANNEL:
        return CHANNEL_BY_NAME.get(_squashed(value), value.lower())
    if scope == Unsubscriber.Scope.SERVICE:
        return value.upper() if value.upper() in SERVICE_CODES else value.lower()
    return value


SCOPE_VALUE_NAMES = {  # what a scope's value names
    Unsubscriber.Scope.CHANNEL: "which channel",
    Unsubscriber.Scope.SENDER: "which sender ID",
    Unsubscriber.Scope.TAG: "which tag",
    Unsubscriber.Scope.SERVICE: "the purpose or service code",
}

# What an opt-out from everything given a value is told, in the words the admin's Scope offers it by ("everything"),
# whether the scope was sent as "all" or chosen: the admin, the API, an import's options and its rows.
EVERYTHING_TAKES_NO_VALUE = "An opt-out from everything takes no value"


def suppression_value_missing(scope: str) -> str:
    """What a suppression of this scope without a value is told, read the same whether the scope was sent as "tag"
    or chosen as "one tag": "A tag scope needs a value (which tag)"."""
    return f"A {SCOPE_WORDS[scope]} scope needs a value ({SCOPE_VALUE_NAMES[scope]})"


def suppression_value_problem(scope: str, value: str) -> str | None:
    """Why a channel- or service-scoped suppression's (stored) value is not one Herald sends on, or None: a misspelt
    channel or service would suppress nothing."""
    if scope == Unsubscriber.Scope.CHANNEL and value and value not in Channel.values:
        return f"unknown channel {value!r}; use one of {', '.join(Channel.values)}"
    if scope == Unsubscriber.Scope.SERVICE and value and value not in SERVICE_PURPOSES + SERVICE_CODES:
        return (
            f"unknown service {value!r}; use a purpose ({', '.join(SERVICE_PURPOSES)}) "
            f"or a sender's service code ({', '.join(SERVICE_CODES)})"
        )
    return None


@transaction.atomic
def unsubscriber_create(
    *,
    address: str,
    scope: str = Unsubscriber.Scope.ALL,
    value: str = "",
    source: str = Unsubscriber.Source.ADMIN,
    reason: str = "",
    region: str | None = None,
) -> Unsubscriber:
    """Suppress an address (phone in any format, or e-mail) within a scope; a duplicate is refused."""
    address, value = unsubscriber_check(address=address, scope=scope, value=value, source=source, region=region)
    if _opt_out_taken(address, scope, value):
        raise ValidationError({"address": UNSUBSCRIBED_ALREADY})
    unsubscriber = Unsubscriber(address=address, scope=scope, value=value, source=source, reason=reason)
    unsubscriber.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            unsubscriber.save()
    except IntegrityError:
        raise ValidationError({"address": UNSUBSCRIBED_ALREADY}) from None
    return unsubscriber


@transaction.atomic
def contacts_opt_out(*, contact_ids: ContactIds, reason: str = "") -> int:
    """Suppress the numbers of many contacts from everything (scope 'all', source admin), in one INSERT … SELECT;
    a number suppressed from everything already is left as it is. Returns how many opt-outs were recorded.
    `contact_ids`: ids, or a queryset of contacts."""
    ids_sql, params = _contact_ids_sql(contact_ids)
    reason = (reason or "").strip()[: Unsubscriber._meta.get_field("reason").max_length]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
                SELECT phone, %s, '', %s, %s, now() FROM contacts_contact WHERE id IN ({ids_sql})
                ON CONFLICT (address, scope, value) DO NOTHING""",
            [Unsubscriber.Scope.ALL, Unsubscriber.Source.ADMIN, reason, *params],
        )
        return cursor.rowcount


@transaction.atomic
def unsubscriber_update(
    *,
    unsubscriber: Unsubscriber,
    region: str | None = None,
    user=None,
    via: str = UnsubscriberRemoval.Via.API,
    **fields,
) -> Unsubscriber:
    """Change a suppression's address, scope, value, source or reason, with the same checks as on create. A change of
    address, scope or value lifts the opt-out as it stood: it is kept as removed (by `user`, `via`), as a delete
    is (unsubscribers_remove)."""
    unknown = set(fields) - {"address", "scope", "value", "source", "reason"}
    if unknown:
        raise TypeError(f"Unknown unsubscriber fields: {', '.join(sorted(unknown))}")
    stored = Unsubscriber.objects.select_for_update().get(pk=unsubscriber.pk)
    merged = {name: fields.get(name, getattr(unsubscriber, name)) for name in ("address", "scope", "value", "source")}
    address, value = unsubscriber_check(region=region, stored_source=stored.source, **merged)
    if _opt_out_taken(address, merged["scope"], value, other_than=unsubscriber):
        raise ValidationError({"address": UNSUBSCRIBED_ALREADY})
    unsubscriber.address, unsubscriber.scope, unsubscriber.value = address, merged["scope"], value
    unsubscriber.source = merged["source"]
    unsubscriber.reason = fields.get("reason", unsubscriber.reason)
    unsubscriber.full_clean(validate_unique=False)
    if (stored.address, stored.scope, stored.value) != (address, unsubscriber.scope, value):
        _removals_record([stored.pk], user=user, via=via, note=f"changed to {unsubscriber}")
    unsubscriber.save()
    return unsubscriber


def _removals_record(ids: list[int], *, user, via: str, note: str = "") -> int:
    """Copy these opt-outs into the removal record, naming who removes them and how: one INSERT … SELECT."""
    name = user.get_username() if user is not None and user.is_authenticated else ""
    user_id = user.pk if name else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {UnsubscriberRemoval._meta.db_table}
                    (address, scope, value, source, reason, opted_out_at, removed_at, removed_by_id, removed_by_name,
                     via, note)
                SELECT address, scope, value, source, reason, created_at, clock_timestamp(), %s, %s, %s, left(%s, 400)
                FROM {Unsubscriber._meta.db_table} WHERE id = ANY(%s) ORDER BY id""",
            [user_id, name, via, note, list(ids)],
        )
        return cursor.rowcount


@transaction.atomic
def unsubscribers_remove(*, unsubscribers: QuerySet[Unsubscriber] | Iterable[Unsubscriber], user, via: str) -> int:
    """Lift opt-outs: the addresses may be messaged again within their scopes. Each is kept as removed, by whom, how
    and when (UnsubscriberRemoval), so that a message sent after is explained. Set-based; returns how many."""
    if isinstance(unsubscribers, QuerySet):
        ids = list(unsubscribers.order_by().values_list("pk", flat=True))
    else:
        ids = [u.pk for u in unsubscribers]
    ids = list(Unsubscriber.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    if not ids:
        return 0
    _removals_record(ids, user=user, via=via)
    deleted, _ = Unsubscriber.objects.filter(pk__in=ids).delete()
    return deleted
