"""The contacts API as an external system uses it: tokens, permissions, CRUD, filters, field-named errors."""

import io
import uuid

import pytest

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config import pagination
from config.api import constraint_error_detail
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from contacts.validators import COUNTRY_EXPECTED
from tests.concurrency import second_waits_on_first
from tests.factories import (
    PASSWORD,
    ContactFactory,
    SegmentFactory,
    SenderFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return api_client_for(UserFactory(superuser=True))


class TestAuthentication:
    def test_no_token_is_401(self):
        response = APIClient().get("/api/v1/contacts/")
        assert response.status_code == 401
        assert "detail" in response.json()

    def test_a_user_without_model_permissions_is_403(self):
        response = api_client_for(UserFactory()).get("/api/v1/contacts/")
        assert response.status_code == 403

    def test_view_permission_reads_but_does_not_write(self):
        client = api_client_for(UserFactory(permissions=["contacts.view_contact"]))
        assert client.get("/api/v1/contacts/").status_code == 200
        assert client.post("/api/v1/contacts/", {"phone": "+919812345678"}).status_code == 403
        assert client.post("/api/v1/contacts/tag/", {"contacts": [1], "tags": ["x"]}).status_code == 403

    def test_a_token_from_drf_create_token_works(self):
        UserFactory(username="robot", permissions=["contacts.view_contact"])
        out = io.StringIO()
        call_command("drf_create_token", "robot", stdout=out)
        token = out.getvalue().split()[2]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get("/api/v1/contacts/").status_code == 200

    def test_the_token_endpoint_gives_a_token_for_a_password(self):
        user = UserFactory(permissions=["contacts.view_contact"])
        response = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 200
        assert get_user_model().objects.get(auth_token__key=response.json()["token"]) == user

    def test_the_token_endpoint_reads_json_and_refuses_a_form_as_every_other_body(self):
        user = UserFactory(permissions=["contacts.view_contact"])
        form = f"username={user.username}&password={PASSWORD}"
        answer = APIClient().generic(
            "POST", "/api/v1/auth/token/", form, content_type="application/x-www-form-urlencoded"
        )
        assert answer.status_code == 415 and "Unsupported media type" in answer.json()["detail"]
        assert not Token.objects.filter(user=user).exists()

    def test_the_token_endpoint_refuses_a_field_it_does_not_have(self, settings):
        """It ignored one, as no other body does: `{"user": …}` for username was answered on username, as missing.
        Refused before the password is tried, it counts no failed sign-in."""
        settings.LOGIN_FAILURES_PER_USERNAME = 1
        user = UserFactory(username=f"robot-{uuid.uuid4().hex}")  # its own count: Redis is the session's
        body = {"username": user.username, "password": PASSWORD, "remember_me": True}
        client = APIClient(REMOTE_ADDR="10.21.0.1")
        for _ in range(2):
            response = client.post("/api/v1/auth/token/", body, format="json")
            assert response.status_code == 400
            assert response.json() == {"remember_me": ["Unknown field; this takes password, username."]}
        del body["remember_me"]
        assert client.post("/api/v1/auth/token/", body, format="json").status_code == 200

    def test_session_authentication_works_for_staff_in_the_browser(self):
        assert admin_client_for().get("/api/v1/contacts/").status_code == 200


class TestContacts:
    def test_create_normalises_the_phone_and_creates_tags(self, api):
        response = api.post(
            "/api/v1/contacts/",
            {"phone": "098123 45678", "first_name": "Asha", "tags": ["vip", "new"], "attributes": {"city": "Pune"}},
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["phone"] == "+919812345678"
        assert body["tags"] == ["new", "vip"]
        assert body["attributes"] == {"city": "Pune"}
        assert "region" not in body

    def test_a_region_reads_a_national_number(self, api):
        response = api.post("/api/v1/contacts/", {"phone": "06 12 34 56 78", "region": "FR"})
        assert response.status_code == 201
        assert response.json()["phone"] == "+33612345678"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"phone": "12"}, "phone"),
            ({}, "phone"),
            ({"phone": "+919812345678", "email": "nope"}, "email"),
            ({"phone": "+919812345678", "tags": "vip"}, "tags"),
            ({"phone": "+919812345678", "attributes": [1]}, "attributes"),
            ({"phone": "+919812345678", "attributes": "vip"}, "attributes"),
            ({"phone": "+919812345678", "timezone": "Mars/Olympus"}, "timezone"),
        ],
    )
    def test_bad_input_is_400_naming_the_field(self, api, payload, field):
        response = api.post("/api/v1/contacts/", payload)
        assert response.status_code == 400
        assert field in response.json()
        assert not Contact.objects.exists()

    def test_a_time_zone_in_any_case_is_stored_as_the_tz_database_spells_it(self, api):
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "timezone": "asia/KOLKATA"})
        assert response.status_code == 201, response.json()
        assert response.json()["timezone"] == Contact.objects.get().timezone == "Asia/Kolkata"

    @pytest.mark.parametrize("attributes", [{"note": "a\x00b"}, {"no\x00te": "ab"}])
    def test_a_null_character_in_attributes_is_400_naming_the_field(self, api, attributes):
        """PostgreSQL's jsonb cannot store one: this was a 500."""
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "attributes": attributes})
        assert response.status_code == 400
        assert response.json() == {"attributes": ["Null characters are not allowed."]}
        assert not Contact.objects.exists()

    def test_json_nested_deeper_than_the_parser_goes_is_a_400(self, api):
        """The parser raises RecursionError on it, which DRF did not catch: an HTML 500."""
        body = b'{"phone": "+919812345678", "attributes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = api.post("/api/v1/contacts/", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["JSON parse error - nested too deeply."]}

    def test_a_value_stored_before_its_rule_does_not_refuse_an_edit_of_another_field(self, api):
        contact = ContactFactory()
        Contact.objects.filter(pk=contact.pk).update(timezone="Mars/Base", attributes=[1, 2])
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"first_name": "Asha", "is_active": False})
        assert response.status_code == 200, response.json()
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"timezone": "Mars/Base"})
        assert list(response.json()) == ["timezone"]

    def test_a_time_zone_abbreviation_is_read_in_the_contacts_country(self, api):
        """ "IST" was refused as no zone: it is India's time for a contact in India (its number's country when it
        has none), and refused naming the zones it could be where the contact's country writes none of them."""
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "timezone": "IST"})
        assert response.status_code == 201, response.json()
        assert response.json()["timezone"] == "Asia/Kolkata"
        assert Contact.objects.get(phone="+919812345678").timezone == "Asia/Kolkata"
        response = api.post("/api/v1/contacts/", {"phone": "+919812345679", "country": "Israel", "timezone": "ist"})
        assert response.json()["timezone"] == "Asia/Jerusalem"
        response = api.post("/api/v1/contacts/", {"phone": "+14155550123", "timezone": "IST"})
        assert response.status_code == 400
        assert response.json() == {
            "timezone": [
                "'IST' is an abbreviation of several time zones (Asia/Kolkata, Asia/Jerusalem or Europe/Dublin), "
                "none of them in the contact's country (US): give the zone."
            ]
        }
        assert not Contact.objects.filter(phone="+14155550123").exists()

    @pytest.mark.parametrize("depth", [70, 900])
    @pytest.mark.parametrize("where", ["under a key", "whole"])
    def test_attributes_nested_too_deep_are_400_naming_the_field(self, api, depth, where):
        """900 levels parse, then overflowed the stack when encoded for the database: a 500. A list is no
        attribute's value at all now, and the attributes no list: refused as such before anything encodes them (DRF's
        JSON field encoded them first, which overflowed whenever the request's own stack was a few frames deeper, as
        under pytest-xdist once the serializer had one mixin more)."""
        nested = []
        for _ in range(depth):
            nested = [nested]
        attributes = {"a": nested} if where == "under a key" else nested
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "attributes": attributes}, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["attributes"], response.json()
        assert not Contact.objects.exists()

    def test_an_attribute_that_is_a_list_or_an_object_is_a_400_naming_its_key(self, api):
        """A message's {{address}} is filled with the attribute's value as text: an object reached the recipient as
        Python writes it, "{'street': 'MG Road'}". Texts, numbers, true/false and null are values."""
        attributes = {
            "city": "Pune",
            "visits": 3,
            "vip": True,
            "note": None,
            "address": {"street": "MG Road"},
            "kids": [],
        }
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "attributes": attributes}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "attributes": {
                "address": [
                    "attributes.address is an object: give a text, a number, true/false or null, which a message's "
                    "{{address}} is filled with."
                ],
                "kids": [
                    "attributes.kids is a list: give a text, a number, true/false or null, which a message's {{kids}} "
                    "is filled with."
                ],
            }
        }
        assert not Contact.objects.exists()
        del attributes["address"], attributes["kids"]
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "attributes": attributes}, format="json")
        assert response.status_code == 201, response.json()
        assert Contact.objects.get().attributes == attributes

    def test_a_taken_phone_is_400_on_phone(self, api):
        ContactFactory(phone="+919812345678")
        response = api.post("/api/v1/contacts/", {"phone": "+91 98123 45678"})
        assert response.status_code == 400
        assert list(response.json()) == ["phone"]

    def test_a_bad_time_zone_is_told_with_a_bad_country(self, api):
        """The time zone, refused by its field, was told alone; the country, refused by the contact's rules, came in
        the next request, on a create and on an edit alike."""
        payload = {"phone": "+919812345678", "timezone": "Mars/Olympus", "country": "Narnia"}
        told = {
            "timezone": ["'Mars/Olympus' is not a known time zone (e.g. Asia/Kolkata)."],
            "country": [f"'Narnia' is {COUNTRY_EXPECTED}."],
        }
        response = api.post("/api/v1/contacts/", payload, format="json")
        assert (response.status_code, response.json()) == (400, told)
        assert not Contact.objects.exists()
        contact = ContactFactory(country="IN", timezone="Asia/Kolkata")
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", payload, format="json")
        assert (response.status_code, response.json()) == (400, told)
        contact.refresh_from_db()
        assert (contact.country, contact.timezone) == ("IN", "Asia/Kolkata")

    def test_a_taken_phone_is_told_with_a_bad_country_and_a_tag_with_a_comma(self, api):
        """Each passes its field's own check: the contact's rules told the first of them, then the next."""
        ContactFactory(phone="+919812345678")
        payload = {"phone": "+91 98123 45678", "country": "Narnia", "tags": ["diwali,vip"]}
        response = api.post("/api/v1/contacts/", payload, format="json")
        assert response.status_code == 400
        assert response.json().keys() == {"phone", "country", "tags"}
        assert Contact.objects.count() == 1 and not Tag.objects.exists()

    def test_retrieve_update_and_delete(self, api):
        contact = ContactFactory(tags=[TagFactory(name="old")])
        url = f"/api/v1/contacts/{contact.pk}/"
        assert api.get(url).json()["tags"] == ["old"]
        response = api.patch(url, {"last_name": "Rao", "tags": ["fresh"]})
        assert response.status_code == 200
        assert response.json()["last_name"] == "Rao"
        assert response.json()["tags"] == ["fresh"]
        response = api.put(url, {"phone": "+919811111111", "first_name": "Ravi"})
        assert response.status_code == 200
        assert response.json()["tags"] == ["fresh"]  # tags not given: kept
        assert api.delete(url).status_code == 204
        assert not Contact.objects.filter(pk=contact.pk).exists()

    def test_the_list_does_not_query_per_contact(self, api, django_assert_max_num_queries):
        tags = [TagFactory(), TagFactory()]
        for _ in range(3):
            ContactFactory(tags=tags)
        with django_assert_max_num_queries(6) as few:
            api.get("/api/v1/contacts/")
        for _ in range(30):
            ContactFactory(tags=tags)
        with django_assert_max_num_queries(len(few.captured_queries)):
            response = api.get("/api/v1/contacts/")
        assert response.json()["count"] == 33

    def test_filters_search_and_ordering(self, api):
        vip, news = TagFactory(name="vip"), TagFactory(name="news")
        asha = ContactFactory(first_name="Asha", tags=[vip], country="IN")
        marie = ContactFactory(first_name="Marie", tags=[vip, news], country="FR", phone="+33612345678")
        ravi = ContactFactory(first_name="Ravi", is_active=False)
        segment = SegmentFactory(positive_tags=[vip], negative_tags=[news])

        def ids(query):
            response = api.get(f"/api/v1/contacts/?{query}")
            assert response.status_code == 200, response.json()
            return [row["id"] for row in response.json()["results"]]

        assert sorted(ids("tag=vip")) == sorted([asha.pk, marie.pk])
        assert sorted(ids("tag=news,vip")) == sorted([asha.pk, marie.pk])  # once each, no duplicates
        assert ids("is_active=false") == [ravi.pk]
        assert ids("country=fr") == [marie.pk]
        assert ids(f"segment={segment.pk}") == [asha.pk]
        assert ids("search=marie") == [marie.pk]
        assert ids("ordering=id") == sorted([asha.pk, marie.pk, ravi.pk])
        assert len(ids("created_after=2000-01-01T00:00:00Z")) == 3
        assert ids("created_before=2000-01-01T00:00:00Z") == []

    def test_the_country_filter_reads_a_country_as_the_fields_do(self, api):
        """`?country=uk` found nobody (UK is stored GB), `?country=India` nobody either, and a typo nobody,
        silently: the filter reads a country as the contact's field does, and names the parameter it cannot."""
        ali = ContactFactory(country="GB", phone="+447911123456")
        asha = ContactFactory(country="IN")
        for typed, found in [("uk", ali), ("GB", ali), ("United Kingdom", ali), ("india", asha), ("in", asha)]:
            response = api.get("/api/v1/contacts/", {"country": typed})
            assert [row["id"] for row in response.json()["results"]] == [found.pk], typed
        response = api.get("/api/v1/contacts/", {"country": "Indai"})
        assert response.status_code == 400
        assert response.json() == {"country": [f"'Indai' is {COUNTRY_EXPECTED}."]}

    def test_the_email_filter_finds_an_address_in_any_case(self, api):
        """People type an address as it comes (Asha@Example.com); suppressions compare them lower-cased, and so
        does the filter now: before, only the case it was stored in found it."""
        asha = ContactFactory(email="Asha.Rao@Example.com")
        ContactFactory(email="")
        for typed in ["asha.rao@example.com", "ASHA.RAO@EXAMPLE.COM", "Asha.Rao@Example.com"]:
            response = api.get("/api/v1/contacts/", {"email": typed})
            assert [row["id"] for row in response.json()["results"]] == [asha.pk], typed
        assert api.get("/api/v1/contacts/", {"email": "asha@example.com"}).json()["results"] == []

    def test_a_deep_page_builds_only_its_own_rows_in_the_order_asked(self, api, monkeypatch):
        """?page=3000 was LIMIT 50 OFFSET 149,950 over every column (1 s sorted by created_at on 300,000 contacts):
        the page's ids come first now, then its rows, in the same order."""
        monkeypatch.setattr(pagination, "DEEP_PAGE_ROWS", 10)  # from the second page of ten on
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO contacts_contact (phone, last_name) SELECT '+9198' || lpad(n::text, 8, '0'),
                   'Name' || (n % 7) FROM generate_series(1, 35) n"""
            )
        everyone = list(Contact.objects.order_by("-last_name", "id").values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/contacts/", {"ordering": "-last_name,id", "page": 3, "page_size": 10})
        assert [row["id"] for row in response.json()["results"]] == everyone[20:30]
        (listed,) = [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]
        assert listed.split(" FROM ")[0] == 'SELECT "contacts_contact"."id" AS "pk"', listed

    def test_the_email_filter_reads_its_index_among_many_contacts(self, api):
        """Newest first, the list could also find the address by reading contacts backwards from the newest;
        PostgreSQL takes the index only when it knows that an address is rare (migration contacts/0009)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO contacts_contact (phone, email) SELECT '+9198' || lpad(n::text, 8, '0'),
                   CASE WHEN n % 3 = 0 THEN '' ELSE 'user' || n || '@example.com' END FROM generate_series(1, 20000) n"""
            )
            cursor.execute("ANALYZE contacts_contact")
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/api/v1/contacts/", {"email": "User4@Example.com"})
        assert [row["phone"] for row in response.json()["results"]] == ["+919800000004"]
        (listing,) = [
            q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "contacts_contact"."id"')
        ]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + listing)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "contact_email_lower_idx" in plan and "pkey" not in plan, plan

    @pytest.mark.parametrize(
        ("value", "active"),
        [("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False), ("NO", False)],
    )
    def test_a_boolean_filter_takes_true_false_1_0_yes_no(self, api, value, active):
        contacts = {True: ContactFactory(is_active=True), False: ContactFactory(is_active=False)}
        response = api.get("/api/v1/contacts/", {"is_active": value})
        assert [row["id"] for row in response.json()["results"]] == [contacts[active].pk]

    @pytest.mark.parametrize("value", ["maybe", "2", "on"])
    def test_another_boolean_is_a_400_naming_the_parameter(self, api, value):
        """It was ignored: the answer listed every contact, active or not."""
        ContactFactory(is_active=True)
        ContactFactory(is_active=False)
        response = api.get("/api/v1/contacts/", {"is_active": value})
        assert response.status_code == 400
        assert response.json() == {"is_active": ["Enter true or false (1 or 0, yes or no)."]}

    @pytest.mark.parametrize("written", ["+33612345678", "+33 6 12 34 56 78", "0033612345678"])
    def test_a_contact_is_found_by_its_number_written_any_way(self, api, written):
        marie = ContactFactory(phone="+33612345678")
        ContactFactory(phone="+919812345678")

        response = api.get("/api/v1/contacts/", {"phone": written})

        assert [row["id"] for row in response.json()["results"]] == [marie.pk]
        national = api.get("/api/v1/contacts/", {"phone": "098123 45678"}).json()["results"]  # default region IN
        assert [row["phone"] for row in national] == ["+919812345678"]

    def test_a_number_whose_plus_the_url_did_not_encode_is_found(self, api):
        """`?phone=+33612345678` arrives as " 33612345678", which was read as a national number of the default region
        and refused (400); the opt-outs' `?address=` read it with its "+", as this does now."""
        marie = ContactFactory(phone="+33612345678")
        response = api.get("/api/v1/contacts/?phone=+33612345678")
        assert response.status_code == 200, response.json()
        assert [row["id"] for row in response.json()["results"]] == [marie.pk]
        assert api.get("/api/v1/contacts/?phone=+33 6 12 34 56 78").json()["count"] == 1

    def test_a_number_that_is_not_one_is_a_400_naming_the_parameter(self, api):
        response = api.get("/api/v1/contacts/", {"phone": "12"})

        assert response.status_code == 400
        assert response.json() == {
            "phone": ["Enter a valid phone number (E.164 such as +919812345678, or a national number of IN)."]
        }

    def test_tags_given_as_numbers_are_a_400_asking_for_their_names(self, api):
        """`"tags": [1, 2]` made tags named "1" and "2": tags are named, never given by id."""
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "tags": ["vip", 2]}, format="json")
        assert response.status_code == 400
        assert response.json() == {"tags": {"1": ['Give tags by name, as text such as "vip": 2 is not a tag\'s name.']}}
        contact = ContactFactory()
        response = api.post("/api/v1/contacts/tag/", {"contacts": [contact.pk], "tags": [True]}, format="json")
        assert response.json() == {
            "tags": {"0": ['Give tags by name, as text such as "vip": true is not a tag\'s name.']}
        }
        assert not Contact.objects.filter(phone="+919812345678").exists() and not Tag.objects.exists()

    def test_bulk_tag_and_untag(self, api):
        contacts = [ContactFactory() for _ in range(3)]
        ids = [c.pk for c in contacts]
        response = api.post("/api/v1/contacts/tag/", {"contacts": ids, "tags": ["spring", "sale"]})
        assert response.status_code == 200
        assert response.json() == {"contacts": 3, "tags": ["sale", "spring"]}
        assert ContactTag.objects.filter(contact_id__in=ids).count() == 6
        response = api.post("/api/v1/contacts/untag/", {"contacts": ids, "tags": ["sale"]})
        assert response.json() == {"removed": 3}
        response = api.post("/api/v1/contacts/tag/", {"contacts": [999999], "tags": ["x"]})
        assert response.status_code == 400
        assert "contacts" in response.json()


class TestTags:
    def test_crud_with_contact_counts(self, api):
        response = api.post("/api/v1/tags/", {"name": "vip", "description": "Best"})
        assert response.status_code == 201
        tag_id = response.json()["id"]
        assert response.json()["contact_count"] == 0
        ContactFactory(tags=[Tag.objects.get(pk=tag_id)])
        assert api.get("/api/v1/tags/").json()["results"][0]["contact_count"] == 1
        assert api.patch(f"/api/v1/tags/{tag_id}/", {"description": "Top"}).json()["description"] == "Top"
        assert api.post("/api/v1/tags/", {"name": "vip"}).json().keys() == {"name"}
        assert api.delete(f"/api/v1/tags/{tag_id}/").status_code == 204

    def test_a_tag_name_with_a_comma_is_refused_naming_the_field(self, api):
        """The tag filter (?tag=a,b) and the import's new tags split on commas: such a tag could not be found."""
        response = api.post("/api/v1/tags/", {"name": "diwali,vip"})
        assert response.status_code == 400 and "cannot contain a comma" in response.json()["name"][0]
        contact = ContactFactory()
        response = api.post("/api/v1/contacts/tag/", {"contacts": [contact.pk], "tags": ["diwali,vip"]})
        assert response.status_code == 400 and "cannot contain a comma" in response.json()["tags"][0]
        assert not Tag.objects.exists()

    def test_a_name_in_another_case_is_the_same_tag(self, api):
        vip = TagFactory(name="VIP")
        contacts = [ContactFactory(), ContactFactory()]
        ids = [c.pk for c in contacts]

        response = api.post("/api/v1/tags/", {"name": "vip"})
        assert response.status_code == 400
        assert response.json() == {"name": ["A tag with this name already exists (in capitals or not)."]}
        assert api.patch(f"/api/v1/tags/{vip.pk}/", {"name": "Vip"}).status_code == 200, "renaming itself is fine"

        response = api.post("/api/v1/contacts/tag/", {"contacts": ids, "tags": ["vip", "VIP", "news"]})
        assert response.json() == {"contacts": 2, "tags": ["Vip", "news"]}, "the existing tag, not a second one"
        assert sorted(Tag.objects.values_list("name", flat=True)) == ["Vip", "news"]
        assert sorted(r["id"] for r in api.get("/api/v1/contacts/?tag=VIP").json()["results"]) == sorted(ids)
        response = api.post("/api/v1/segments/", {"name": "vips", "positive_tags": ["vIp"]})
        assert response.status_code == 201 and response.json()["positive_tags"] == ["Vip"]
        assert api.post("/api/v1/segments/", {"name": "x", "positive_tags": ["nobody"]}).status_code == 400
        assert api.post("/api/v1/contacts/untag/", {"contacts": ids, "tags": ["VIP"]}).json() == {"removed": 2}

    def test_a_name_that_python_and_postgresql_put_in_lower_case_apart_is_found(self, api):
        """Python writes a Greek word's last sigma in lower case as 'ς' ('ΠΕΛΑΤΕΣ' → 'πελατες'), PostgreSQL's lower()
        as 'σ'; a tag was looked up by the one against the other, and so never found by its own name: tagging with it
        created it and tagged no one, and ?tag= with it was a 400 'No tag named'."""
        contact = ContactFactory()

        response = api.post("/api/v1/contacts/tag/", {"contacts": [contact.pk], "tags": ["ΠΕΛΑΤΕΣ"]})

        assert response.json() == {"contacts": 1, "tags": ["ΠΕΛΑΤΕΣ"]}
        assert api.get(f"/api/v1/contacts/{contact.pk}/").json()["tags"] == ["ΠΕΛΑΤΕΣ"]
        found = api.get("/api/v1/contacts/?tag=ΠΕΛΑΤΕΣ")
        assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == [contact.pk]
        assert api.post("/api/v1/tags/", {"name": "πελατεσ"}).status_code == 400, "the same name in lower case"
        assert api.post("/api/v1/contacts/untag/", {"contacts": [contact.pk], "tags": ["ΠΕΛΑΤΕΣ"]}).json() == {
            "removed": 1
        }

    def test_a_tag_filter_of_no_name_filters_nothing_as_an_empty_one_does(self, api):
        """`?tag=,` (a form's list left empty) answered no contact, where `?tag=` filters nothing."""
        ContactFactory(tags=[TagFactory(name="vip")])
        assert api.get("/api/v1/contacts/?tag=, ").json()["count"] == api.get("/api/v1/contacts/?tag=").json()["count"]
        assert api.get("/api/v1/contacts/?tag=,").json()["count"] == 1


class TestSegments:
    def test_crud_with_tag_names_count_and_contacts(self, api):
        vip, news = TagFactory(name="vip"), TagFactory(name="news")
        inside = ContactFactory(tags=[vip])
        ContactFactory(tags=[vip, news])
        response = api.post(
            "/api/v1/segments/",
            {"name": "VIP not news", "positive_tags": ["vip"], "negative_tags": ["news"], "positive_operator": "all"},
        )
        assert response.status_code == 201, response.json()
        segment_id = response.json()["id"]
        assert response.json()["positive_tags"] == ["vip"]
        assert api.get(f"/api/v1/segments/{segment_id}/count/").json() == {"count": 1}
        page = api.get(f"/api/v1/segments/{segment_id}/contacts/").json()
        assert page["count"] == 1
        assert page["results"][0]["id"] == inside.pk
        response = api.patch(f"/api/v1/segments/{segment_id}/", {"negative_tags": []})
        assert response.json()["negative_tags"] == []
        assert api.get(f"/api/v1/segments/{segment_id}/count/").json() == {"count": 2}
        assert api.get("/api/v1/segments/").json()["count"] == 1
        assert api.delete(f"/api/v1/segments/{segment_id}/").status_code == 204
        assert not Segment.objects.exists()

    def test_listing_or_counting_a_segments_contacts_needs_the_permission_to_view_contacts(self):
        """As in the admin, whose segment list and page show counts only to whom may view contacts."""
        segment = SegmentFactory()
        ContactFactory()
        url = f"/api/v1/segments/{segment.pk}/contacts/"
        count_url = f"/api/v1/segments/{segment.pk}/count/"
        viewer = api_client_for(UserFactory(permissions=["contacts.view_segment"]))
        assert viewer.get(url).status_code == 403
        assert viewer.get(count_url).status_code == 403
        assert viewer.get(count_url).json() == {
            "detail": "Counting a segment's contacts needs the permission to view contacts."
        }
        both = api_client_for(UserFactory(permissions=["contacts.view_segment", "contacts.view_contact"]))
        assert both.get(url).json()["count"] == 1
        assert both.get(count_url).json() == {"count": 1}

    def test_an_unknown_tag_or_operator_is_400_naming_the_field(self, api):
        """A tag that is none was DRF's "Object with name=ghost does not exist.", and one given by id "Invalid
        value.": both say what to give now."""
        response = api.post("/api/v1/segments/", {"name": "S", "positive_tags": ["ghost"]})
        assert response.status_code == 400
        assert response.json() == {"positive_tags": ["No tag named 'ghost'."]}
        response = api.post("/api/v1/segments/", {"name": "S", "negative_tags": [7]}, format="json")
        assert response.json() == {
            "negative_tags": ['Give tags by name, as text such as "vip": 7 is not a tag\'s name.']
        }
        response = api.post("/api/v1/segments/", {"name": "S", "negative_operator": "most"})
        assert "negative_operator" in response.json()


class TestUnsubscribers:
    def test_crud(self, api):
        response = api.post("/api/v1/unsubscribers/", {"address": "098123 45678", "reason": "asked"})
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["address"], body["scope"], body["source"]) == ("+919812345678", "all", "api")
        url = f"/api/v1/unsubscribers/{body['id']}/"
        response = api.patch(url, {"scope": "sender", "value": "HERALD"})
        assert response.status_code == 200, response.json()
        assert response.json()["value"] == "HERALD"
        assert api.get("/api/v1/unsubscribers/?scope=sender").json()["count"] == 1
        assert api.delete(url).status_code == 204
        assert not Unsubscriber.objects.exists()

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"address": "12"}, "address"),
            ({"address": "+919812345678", "scope": "sender"}, "value"),
            ({"address": "+919812345678", "value": "x"}, "value"),
            ({"address": "+919812345678", "scope": "channel", "value": "telegram"}, "value"),
            ({"address": "+919812345678", "scope": "service", "value": "promo"}, "value"),
        ],
    )
    def test_bad_input_is_400_naming_the_field(self, api, payload, field):
        response = api.post("/api/v1/unsubscribers/", payload)
        assert response.status_code == 400
        assert field in response.json()

    def test_suppressions_are_found_by_an_address_written_any_way(self, api):
        phone = UnsubscriberFactory(address="+919812345678")
        email = UnsubscriberFactory(address="asha@example.com")

        def ids(address):
            response = api.get("/api/v1/unsubscribers/", {"address": address})
            assert response.status_code == 200, response.json()
            return [row["id"] for row in response.json()["results"]]

        assert ids("098123 45678") == ids("+919812345678") == [phone.pk]
        assert ids("Asha@Example.com") == [email.pk]
        # a provider's opt-out may store an address that is no valid number: it is looked up as written
        unchecked = UnsubscriberFactory(address="+9812345678", source="provider")
        assert ids("+9812345678") == [unchecked.pk]

    @pytest.mark.parametrize("path", ["/api/v1/unsubscribers/", "/api/v1/unsubscriber-removals/"])
    def test_a_number_whose_plus_the_url_did_not_encode_is_found(self, api, path):
        """`?address=+33611111111` arrives as " 33611111111": a "not opted out" for a number that was."""
        opt_out = UnsubscriberFactory(address="+33611111111")
        if "removals" in path:
            api.delete(f"/api/v1/unsubscribers/{opt_out.pk}/")
        response = api.get(f"{path}?address=+33611111111")
        assert response.status_code == 200, response.json()
        assert [row["address"] for row in response.json()["results"]] == ["+33611111111"]

    @pytest.mark.parametrize("path", ["/api/v1/unsubscribers/", "/api/v1/unsubscriber-removals/"])
    @pytest.mark.parametrize("written", ["garbage", "asha@"])
    def test_an_address_that_is_neither_a_number_nor_an_e_mail_is_a_400_naming_it(self, api, path, written):
        UnsubscriberFactory(address="+33611111111")
        response = api.get(path, {"address": written})
        assert response.status_code == 400
        assert response.json() == {
            "address": [
                "Enter a valid phone number (E.164 such as +919812345678, or a national number of IN) or e-mail "
                f"address: {written!r} is neither."
            ]
        }

    def test_a_channel_is_stored_as_its_value_and_an_unknown_one_is_named(self, api):
        response = api.post(
            "/api/v1/unsubscribers/", {"address": "+919812345678", "scope": "channel", "value": "E-mail"}
        )
        assert response.status_code == 201, response.json()
        assert response.json()["value"] == "email"
        response = api.post("/api/v1/unsubscribers/", {"address": "+919812345678", "scope": "channel", "value": "SMSS"})
        assert response.status_code == 400
        assert response.json()["value"] == [
            "Unknown channel 'smss'; use one of sms, viber, whatsapp, rcs, push, email, voice_sms."
        ]

    def test_every_problem_of_an_opt_out_is_told_at_once(self, api):
        """A bad address was told alone, and the value its scope refuses only in the next request; a source the field
        refuses hid a taken address (on an edit too, where a PUT's missing source is not taken for a new one)."""
        response = api.post("/api/v1/unsubscribers/", {"address": "not a number", "scope": "all", "value": "news"})
        assert (response.status_code, response.json()) == (
            400,
            {
                "address": ["Enter a valid phone number or e-mail address."],
                "value": ["An opt-out from everything takes no value."],
            },
        )
        UnsubscriberFactory(address="+919812345678")
        response = api.post("/api/v1/unsubscribers/", {"address": "098123 45678", "source": "fax", "reason": "x" * 300})
        assert response.status_code == 400
        assert response.json().keys() == {"address", "source", "reason"}
        assert response.json()["address"] == ["This address is already unsubscribed in this scope."]
        assert Unsubscriber.objects.count() == 1
        # a scope the field refuses is not checked as the default 'all' (the address is taken in 'all' only)
        response = api.post(
            "/api/v1/unsubscribers/", {"address": "+919812345678", "scope": "bogus", "value": "newsletter"}
        )
        assert (response.status_code, response.json().keys()) == (400, {"scope"}), response.json()
        reported = UnsubscriberFactory(address="+919812345679", source="provider")
        response = api.put(
            f"/api/v1/unsubscribers/{reported.pk}/", {"address": "+919812345678", "scope": "all", "reason": "x" * 300}
        )
        assert response.status_code == 400
        assert response.json().keys() == {"address", "reason"}, "the stored source is kept, not told"
        reported.refresh_from_db()
        assert reported.address == "+919812345679"

    def test_a_duplicate_is_400_on_address(self, api):
        UnsubscriberFactory(address="+919812345678")
        response = api.post("/api/v1/unsubscribers/", {"address": "+919812345678"})
        assert response.status_code == 400
        assert "address" in response.json()

    def test_a_contacts_new_phone_or_e_mail_keeps_the_opt_outs_of_the_old_one(self, api):
        """The person replied STOP, then the CRM sent their new number: the opt-out stayed on the old number, the
        contact showed none, and the next campaign messaged the new one."""
        contact = ContactFactory(phone="+919812345678", email="asha@example.com")
        UnsubscriberFactory(address="+919812345678", source="provider", reason="STOP")
        UnsubscriberFactory(address="+919812345678", scope="tag", value="news")
        UnsubscriberFactory(address="asha@example.com", scope="channel", value="email")
        response = api.patch(
            f"/api/v1/contacts/{contact.pk}/", {"phone": "098123 45679", "email": "Asha.New@Example.com"}
        )
        assert response.status_code == 200, response.json()

        def opt_outs(address):
            rows = api.get("/api/v1/unsubscribers/", {"address": address}).json()["results"]
            return sorted((row["scope"], row["value"], row["source"], row["reason"]) for row in rows)

        said = "carried from {}, the contact's address before an edit"
        assert opt_outs("+919812345679") == [
            ("all", "", "api", said.format("+919812345678") + ": STOP"),
            ("tag", "news", "api", said.format("+919812345678")),
        ]
        assert opt_outs("asha.new@example.com") == [("channel", "email", "api", said.format("asha@example.com"))]
        assert len(opt_outs("+919812345678")) == 2  # the old number keeps its own
        # an edit of another field, or of the e-mail's capitals only, carries nothing
        count = Unsubscriber.objects.count()
        api.patch(f"/api/v1/contacts/{contact.pk}/", {"first_name": "Asha", "email": "ASHA.NEW@example.com"})
        assert Unsubscriber.objects.count() == count

    def test_an_opt_out_from_a_sender_or_tag_nobody_has_is_recorded_with_a_warning_that_it_suppresses_nothing(
        self, api
    ):
        """A typo'd tag ('newsleter') was a 201 like any other and suppressed nobody: the person still got the
        newsletter. The answer now says so, as the admin does; names in other capitals match, as in the audience."""
        TagFactory(name="newsletter")
        SenderFactory(name="HERALD")
        warning = "No {} is named {!r}: this opt-out suppresses nothing until one is. Check the spelling."

        def recorded(scope, value, address):
            response = api.post("/api/v1/unsubscribers/", {"address": address, "scope": scope, "value": value})
            assert response.status_code == 201, response.json()
            return response.json()

        typo = recorded("tag", "newsleter", "+919812345678")
        assert typo["warnings"] == [warning.format("tag", "newsleter")]
        assert recorded("sender", "HERLAD", "+919812345678")["warnings"] == [warning.format("sender", "HERLAD")]
        assert recorded("tag", "NEWSLETTER", "+919812345679")["warnings"] == []
        assert recorded("sender", "herald", "+919812345679")["warnings"] == []
        assert recorded("all", "", "+919812345670")["warnings"] == []
        response = api.patch(f"/api/v1/unsubscribers/{typo['id']}/", {"value": "newsletter"})
        assert (response.status_code, response.json()["warnings"]) == (200, [])
        # a read does not look names up
        assert "warnings" not in api.get(f"/api/v1/unsubscribers/{typo['id']}/").json()

    def test_an_api_client_cannot_record_an_opt_out_as_a_vendors_report_but_may_edit_one(self, api):
        # `provider` and `inbound` say the recipient's own STOP came through a vendor: only those signals write them.
        for source in ("provider", "inbound"):
            response = api.post("/api/v1/unsubscribers/", {"address": "+919812345678", "source": source})
            assert response.status_code == 400, response.json()
            assert response.json()["source"] == [
                f"'{source}' is recorded only by a vendor's report of an opt-out; use admin, api, import."
            ]
        assert not Unsubscriber.objects.exists()
        reported = UnsubscriberFactory(address="+919812345678", source="provider", reason="STOP")
        url = f"/api/v1/unsubscribers/{reported.pk}/"
        response = api.put(url, {**api.get(url).json(), "reason": "STOP, confirmed by phone"})
        assert response.status_code == 200, response.json()
        assert (response.json()["source"], response.json()["reason"]) == ("provider", "STOP, confirmed by phone")
        made = UnsubscriberFactory(address="+919812345679", source="api")
        response = api.patch(f"/api/v1/unsubscribers/{made.pk}/", {"source": "inbound"})
        assert response.status_code == 400
        assert response.json()["source"] == ["The source says who recorded this opt-out (api); it stays as recorded."]
        # nor does a PUT that leaves it out make a vendor's opt-out the client's
        response = api.put(url, {"address": "+919812345678", "scope": "all", "reason": "STOP"})
        assert (response.status_code, response.json()["source"]) == (200, "provider")

    def test_a_removed_opt_out_is_kept_with_who_removed_it_and_when(self):
        # "Why did you message this person on the 12th?": the opt-out was lifted, by this client, then.
        user = UserFactory(
            username="crm-sync", permissions=["contacts.delete_unsubscriber", "contacts.change_unsubscriber"]
        )
        client = api_client_for(user)
        stop = UnsubscriberFactory(address="+919812345678", source="provider", reason="opt-out reported by MT")
        edited = UnsubscriberFactory(address="+919812345679", scope="tag", value="news")
        before = timezone.now()
        assert client.delete(f"/api/v1/unsubscribers/{stop.pk}/").status_code == 204
        response = client.patch(f"/api/v1/unsubscribers/{edited.pk}/", {"value": "offers"})
        assert response.status_code == 200, response.json()
        assert not Unsubscriber.objects.filter(pk=stop.pk).exists()
        removed = {r.address: r for r in UnsubscriberRemoval.objects.all()}
        assert set(removed) == {"+919812345678", "+919812345679"}
        deleted, changed = removed["+919812345678"], removed["+919812345679"]
        assert (deleted.scope, deleted.value, deleted.source, deleted.reason) == (
            "all", "", "provider", "opt-out reported by MT"
        )  # fmt: skip
        assert deleted.opted_out_at == stop.created_at and deleted.removed_at >= before
        assert (deleted.removed_by, deleted.removed_by_name, deleted.via, deleted.note) == (user, "crm-sync", "api", "")
        assert (changed.scope, changed.value, changed.note) == ("tag", "news", "changed to +919812345679 (tag offers)")
        # an edit that keeps the address, scope and value lifts nothing
        assert client.patch(f"/api/v1/unsubscribers/{edited.pk}/", {"reason": "asked"}).status_code == 200
        assert UnsubscriberRemoval.objects.count() == 2
        # removing takes the permission to delete opt-outs
        viewer = api_client_for(UserFactory(permissions=["contacts.view_unsubscriber"]))
        assert viewer.delete(f"/api/v1/unsubscribers/{edited.pk}/").status_code == 403
        assert UnsubscriberRemoval.objects.count() == 2

    def test_removed_opt_outs_are_listed_read_only_by_address_written_any_way(self, api):
        stop = UnsubscriberFactory(address="+919812345678", source="provider", reason="STOP")
        api.delete(f"/api/v1/unsubscribers/{stop.pk}/")
        response = api.get("/api/v1/unsubscriber-removals/", {"address": "098123 45678"})
        assert response.status_code == 200, response.json()
        (row,) = response.json()["results"]
        assert (row["address"], row["source"], row["reason"], row["via"], row["note"]) == (
            "+919812345678", "provider", "STOP", "api", ""
        )  # fmt: skip
        assert row["removed_by"] == UnsubscriberRemoval.objects.get().removed_by_name != ""
        assert api.get("/api/v1/unsubscriber-removals/", {"address": "+919800000000"}).json()["results"] == []
        assert api.post("/api/v1/unsubscriber-removals/", {"address": "+919812345678"}).status_code == 405
        assert api.delete(f"/api/v1/unsubscriber-removals/{row['id']}/").status_code == 405
        others = api_client_for(UserFactory(permissions=["contacts.view_unsubscriber"]))
        assert others.get("/api/v1/unsubscriber-removals/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_clients_creating_one_tag_in_two_cases_at_once_get_one_tag_and_a_400_naming_the_field():
    """Both pass validation (neither sees the other's uncommitted tag); the database's unique index stops
    the second, and its client gets the field message validation would have given, not a 500."""
    client = api_client_for(UserFactory(superuser=True))
    client.raise_request_exception = False  # a 500 is an answer too
    answers = []

    def first_client():  # inserts "vip"; its transaction stays open
        Tag.objects.create(name="vip")

    def second_client():
        answers.append(client.post("/api/v1/tags/", {"name": "VIP"}, format="json"))

    second_waits_on_first(first_client, second_client, insert_into="contacts_tag")

    assert answers[0].status_code == 400, answers[0].content
    assert answers[0].json() == {"name": ["A tag with this name already exists (in capitals or not)."]}
    assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]


def test_a_unique_field_the_database_enforced_is_named_with_the_fields_message():
    """The same mapping for a plain unique field (its constraint carries no message of its own): the field's words,
    as validation tells them (it said Django's "Contact with this Phone already exists.")."""
    ContactFactory(phone="+919812345678")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Contact.objects.create(phone="+919812345678")
    assert constraint_error_detail(caught.value) == {"phone": ["A contact with this phone number already exists."]}
