"""The contacts API as an external system uses it: tokens, permissions, CRUD, filters, field-named errors."""

import io

import pytest

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from config.api import constraint_error_detail
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber
from tests.concurrency import second_waits_on_first
from tests.factories import (
    PASSWORD,
    ContactFactory,
    SegmentFactory,
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

    @pytest.mark.parametrize("attributes", [{"note": "a\x00b"}, {"no\x00te": "ab"}, {"notes": [{"x": ["\x00"]}]}])
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
        Contact.objects.filter(pk=contact.pk).update(timezone="IST", attributes=[1, 2])
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"first_name": "Asha", "is_active": False})
        assert response.status_code == 200, response.json()
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"timezone": "IST"})
        assert list(response.json()) == ["timezone"]

    @pytest.mark.parametrize("depth", [70, 900])
    def test_attributes_nested_too_deep_are_400_naming_the_field(self, api, depth):
        """900 levels parse, then overflowed the stack when encoded for the database: a 500."""
        nested = []
        for _ in range(depth):
            nested = [nested]
        response = api.post("/api/v1/contacts/", {"phone": "+919812345678", "attributes": {"a": nested}}, format="json")
        assert response.status_code == 400
        assert response.json() == {"attributes": ["Nested deeper than 64 levels."]}

    def test_a_taken_phone_is_400_on_phone(self, api):
        ContactFactory(phone="+919812345678")
        response = api.post("/api/v1/contacts/", {"phone": "+91 98123 45678"})
        assert response.status_code == 400
        assert list(response.json()) == ["phone"]

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

    def test_a_number_that_is_not_one_is_a_400_naming_the_parameter(self, api):
        response = api.get("/api/v1/contacts/", {"phone": "12"})

        assert response.status_code == 400
        assert response.json() == {
            "phone": ["Enter a valid phone number (E.164 such as +919812345678, or a national number of IN)."]
        }

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
        assert response.json() == {"name": ["A tag with this name exists already (in capitals or not)."]}
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
        response = api.post("/api/v1/segments/", {"name": "S", "positive_tags": ["ghost"]})
        assert response.status_code == 400
        assert "positive_tags" in response.json()
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
        assert ids("nobody") == []

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

    def test_a_duplicate_is_400_on_address(self, api):
        UnsubscriberFactory(address="+919812345678")
        response = api.post("/api/v1/unsubscribers/", {"address": "+919812345678"})
        assert response.status_code == 400
        assert "address" in response.json()


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
    assert answers[0].json() == {"name": ["A tag with this name exists already (in capitals or not)."]}
    assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]


def test_a_unique_field_the_database_enforced_is_named_with_djangos_message():
    """The same mapping for a plain unique field (its constraint carries no message of its own)."""
    ContactFactory(phone="+919812345678")
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Contact.objects.create(phone="+919812345678")
    assert constraint_error_detail(caught.value) == {"phone": ["Contact with this Phone already exists."]}
