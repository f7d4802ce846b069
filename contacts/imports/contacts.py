"""Contacts: one per phone number (E.164), upserted; other columns become attributes; the import's tags on every row.

"Create and update" fills in existing contacts too: a non-empty cell replaces the field, an empty one
leaves it alone, attributes are merged (the file's keys win). "Create only" leaves existing contacts
as they are. Either way every good row gets the import's tags, so that the file's audience can be
addressed by tag. A contact is only written when something changes, so a second run of the same file
writes nothing but reports every row unchanged.
"""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email

from contacts.imports.base import STAGE, Importer, RowError
from contacts.imports.readers import reason_unless_rounded, whole_number
from contacts.models import Contact, ContactImport
from contacts.phones import InvalidPhone, normalize_phone
from contacts.validators import country_code, time_zone_named

_json_string = json.encoder.encode_basestring  # the C encoder: a JSON string literal, non-ASCII kept as is

TEXT_FIELDS = ("email", "first_name", "last_name", "identity", "country", "language", "timezone")


# Django's own e-mail patterns, compiled once: what they accept, validate_email accepts, and it is
# asked only about the rest (an allow-listed or IP-literal domain, or a bad address), at a tenth of the cost.
_EMAIL_USER = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
_EMAIL_DOMAIN = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)


def _email(value: str) -> str:
    if len(value) > 254:
        raise ValueError("longer than 254 characters")
    user, _, domain = value.rpartition("@")
    if user and _EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain):
        return value
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError("not a valid e-mail address") from None
    return value


def _max_length(length: int):
    def check(value: str) -> str:
        if len(value) > length:
            raise ValueError(f"longer than {length} characters")
        return value

    return check


CHECKS = {
    "email": _email,
    "first_name": _max_length(Contact._meta.get_field("first_name").max_length),
    "last_name": _max_length(Contact._meta.get_field("last_name").max_length),
    "identity": _max_length(Contact._meta.get_field("identity").max_length),
    "country": country_code,
    "language": _max_length(Contact._meta.get_field("language").max_length),
}
# The time zone is checked after the rest of the row: an abbreviation is read with the row's country or number.
COUNTRY_POSITION, TIME_ZONE_POSITION = 1 + TEXT_FIELDS.index("country"), 1 + TEXT_FIELDS.index("timezone")


class ContactImporter(Importer):
    label = "contact"
    import_name = "contacts import"
    model = Contact
    fields = ("phone", *TEXT_FIELDS)
    required = ("phone",)
    key_field = "phone"
    key_words = "phone number"
    keeps_attributes = True
    takes_tags = True
    mode_help = (
        "Contacts already there are updated from the file, or with create only left as they are (the import's tags "
        "go to every row either way)."
    )
    mapping_help = (
        'Optional: {"Mobile": "phone", "City": "attributes.city", "Notes": ""}. Without it, columns named phone, '
        "mobile, email, first name… are recognised and the others become attributes."
    )
    synonyms = {
        "phone": ("mobile", "msisdn", "number", "phone number", "mobile number", "mobile no", "phone no", "cell",
                  "cell phone", "contact number", "telephone", "tel", "whatsapp number", "phone numbers",
                  "mobile numbers", "numbers", "mobile phone", "contact no", "mob no", "cell number",
                  "portable", "телефон", "мобильный", "номер телефона", "मोबाइल", "फ़ोन"),
        "email": ("e mail", "email address", "e mail address", "mail", "courriel", "почта"),
        "first_name": ("first name", "firstname", "given name", "name", "full name", "prenom", "имя", "नाम"),
        "last_name": ("last name", "lastname", "surname", "family name", "nom de famille", "фамилия"),
        "identity": ("external id", "customer id", "user id", "id", "external identity"),
        "country": ("country code", "country iso", "country name", "nation"),
        "language": ("lang", "locale"),
        "timezone": ("time zone", "tz"),
    }  # fmt: skip
    stage_columns = (*((name, "text") for name in TEXT_FIELDS), ("attributes", "jsonb"))

    @classmethod
    def changes_existing(cls, mode: str, tagged: bool) -> tuple[str, str] | None:
        """The import's tags go to every good row in either mode, contacts that exist already too: tagging those
        changes them (the API's contacts/tag/ takes the change permission too)."""
        if tagged and mode == ContactImport.Mode.CREATE_ONLY:
            return "tags", "to tag them: the import's tags go to the file's contacts that exist already too"
        return super().changes_existing(mode, tagged)

    def __init__(self, contact_import, layout):
        super().__init__(contact_import, layout)
        self.phone_index, self.phone_column = self.column("phone")
        # (position in the staged row, column index, column name, check) for the fields the file has
        self.text_columns = [
            (position, *self.column(name), CHECKS[name])
            for position, name in enumerate(TEXT_FIELDS, start=1)
            if name in layout.fields and name in CHECKS
        ]
        self.time_zone_column = self.column("timezone") if "timezone" in layout.fields else None
        self.attribute_columns = [(_json_string(key) + ":", index) for key, index in layout.attributes]
        self.columns = len(layout.names)
        self.attribute_keys = {key for key, _ in layout.attributes}
        self.blank = ["", *("" for _ in TEXT_FIELDS), "{}"]
        self.tag_ids = list(contact_import.tags.values_list("id", flat=True))

    @staticmethod
    def key_number(key: str) -> int:
        return int(key[1:])  # E.164 digits: exact, and at most 15 of them

    def clean(self, cells: list[str]) -> list[str]:
        width = len(cells)
        raw = cells[self.phone_index].strip() if self.phone_index < width else ""
        if not raw:
            raise RowError(self.phone_column, "", "no phone number")
        values = self.blank.copy()
        try:
            values[0] = normalize_phone(whole_number(raw), self.region)
        except InvalidPhone:
            reason = reason_unless_rounded(raw, f"not a valid phone number (E.164, or national for {self.region})")
            raise RowError(self.phone_column, raw, reason) from None
        for position, index, column, check in self.text_columns:
            if index < width and (value := cells[index].strip()):
                try:
                    values[position] = check(value)
                except ValueError as exc:
                    raise RowError(column, value, str(exc)) from None
        if self.time_zone_column is not None:
            index, column = self.time_zone_column
            if index < width and (value := cells[index].strip()):
                try:
                    values[TIME_ZONE_POSITION] = time_zone_named(
                        value, country=values[COUNTRY_POSITION], phone=values[0]
                    )
                except ValueError as exc:
                    raise RowError(column, value, str(exc)) from None
        if self.attribute_columns or width > self.columns:
            pairs = [
                key + _json_string(value)
                for key, index in self.attribute_columns
                if index < width and (value := cells[index].strip())
            ]
            if width > self.columns:
                pairs += self._cells_beyond_the_columns(cells)
            values[-1] = "{" + ",".join(pairs) + "}"
        return values

    def _cells_beyond_the_columns(self, cells: list[str]) -> list[str]:
        """A row longer than the file's first row (a column with no title past the last one, or a value holding
        the delimiter outside quotes): its extra cells are kept as attributes `column_<n>`, not dropped."""
        pairs = []
        for index in range(self.columns, len(cells)):
            if value := cells[index].strip():
                key = f"column_{index + 1}"
                while key in self.attribute_keys:  # a title that reads the same
                    key += "_extra"
                pairs.append(_json_string(key) + ":" + _json_string(value))
        return pairs

    def merge(self, cursor) -> tuple[int, int]:
        """Upsert the staged contacts and tag them: the new contacts in the upsert's statement, the others after it.

        The contacts `merged` creates get their links with a plain INSERT in the same statement, which skips the
        conflict check (a third of the cost of a link). The contacts that were there already are tagged by a
        second statement (their links may exist: ON CONFLICT DO NOTHING), because it must see them all: the
        upsert's own snapshot misses a contact another transaction (another import's chunk, the API) committed
        while the upsert waited on its phone number, and such a contact is updated or skipped, not created.
        """
        contacts, links = Contact._meta.db_table, Contact.tags.through._meta.db_table
        insert = (
            f"INSERT INTO {contacts} AS c (phone, {', '.join(TEXT_FIELDS)}, attributes, is_active, created_at, updated_at)"
            f" SELECT key, {', '.join(TEXT_FIELDS)}, attributes, TRUE, now(), now() FROM {STAGE} ORDER BY key"
        )
        if self.contact_import.mode == ContactImport.Mode.CREATE_ONLY:
            upsert = f"{insert} ON CONFLICT (phone) DO NOTHING RETURNING id, TRUE AS created"
        else:
            kept = {name: f"COALESCE(NULLIF(EXCLUDED.{name}, ''), c.{name})" for name in TEXT_FIELDS}  # empty keeps
            upsert = (
                f"{insert} ON CONFLICT (phone) DO UPDATE SET"
                f" {', '.join(f'{name} = {value}' for name, value in kept.items())},"
                " attributes = c.attributes || EXCLUDED.attributes, updated_at = EXCLUDED.updated_at"
                f" WHERE ({', '.join(f'c.{name}' for name in TEXT_FIELDS)}) IS DISTINCT FROM ({', '.join(kept.values())})"
                " OR NOT c.attributes @> EXCLUDED.attributes"
                " RETURNING id, xmax = 0 AS created"
            )
        tagging = ""
        if self.tag_ids:
            tagging = (
                f", new_links AS (INSERT INTO {links} (contact_id, tag_id, created_at)"
                "  SELECT m.id, t.id, now() FROM merged m CROSS JOIN unnest(%(tags)s::bigint[]) AS t (id)"
                "  WHERE m.created ORDER BY m.id, t.id)"
            )
        cursor.execute(
            f"WITH merged AS ({upsert}){tagging}"
            " SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created),"
            f" (SELECT count(*) FROM {STAGE}) FROM merged",
            {"tags": self.tag_ids},
        )
        created, updated, staged = cursor.fetchone()
        if self.tag_ids and created < staged:  # (skipped when every staged contact was new: a first import)
            cursor.execute(
                f"INSERT INTO {links} (contact_id, tag_id, created_at)"
                f" SELECT c.id, t.id, now() FROM {contacts} c CROSS JOIN unnest(%(tags)s::bigint[]) AS t (id)"
                f" WHERE c.phone = ANY (ARRAY (SELECT key FROM {STAGE}))"
                " ORDER BY c.id, t.id ON CONFLICT (contact_id, tag_id) DO NOTHING",
                {"tags": self.tag_ids},
            )
        return created, updated
