"""Contacts admin pages: changelists without N+1, segment live count and preview, field-named form errors."""

import datetime
import re
from functools import partial

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from config import pagination
from contacts import services
from contacts.admin import SegmentAdmin
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber, UnsubscriberRemoval
from tests.concurrency import second_waits_on_first
from tests.factories import (
    CampaignFactory,
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
def client():
    return admin_client_for()


def test_the_contact_list_does_not_query_per_contact(client, django_assert_max_num_queries):
    tags = [TagFactory(), TagFactory()]
    ContactFactory(tags=tags)
    with django_assert_max_num_queries(30) as few:
        assert client.get("/admin/contacts/contact/").status_code == 200
    for _ in range(20):
        ContactFactory(tags=tags)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/admin/contacts/contact/").status_code == 200


@pytest.mark.parametrize("term", ["098123 45678", "+91 98123-45678", "asha@example.com"])
def test_contacts_are_found_by_a_whole_number_in_any_format_or_an_email_through_their_index(client, term):
    """No scan of the table (no LIKE), which takes seconds on a million contacts. A contact whose identity is the
    term as typed (a CRM id that is a number or an e-mail) is found too; one that only contains it is not."""
    contact = ContactFactory(phone="+919812345678", email="asha@example.com")
    crm = ContactFactory(phone="+33612345678", identity=term)
    ContactFactory(identity=f"{term}9")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/contacts/contact/", {"q": term})
    assert sorted(c.pk for c in response.context["cl"].result_list) == [contact.pk, crm.pk]
    assert not [q["sql"] for q in queries.captured_queries if "LIKE" in q["sql"]]


@pytest.mark.parametrize(("term", "found"), [("Asha", ["asha"]), ("CUST-7", ["cust"]), ("9812345", ["asha", "cust"])])
def test_contacts_are_found_by_part_of_a_name_identity_or_number(client, term, found):
    contacts = {
        "asha": ContactFactory(phone="+919812345678", first_name="Asha", identity=""),
        "cust": ContactFactory(phone="+33612345678", identity="CUST-7-9812345"),
    }
    ContactFactory(phone="+33612340000", first_name="Ravi", identity="")
    response = client.get("/admin/contacts/contact/", {"q": term})
    assert sorted(c.pk for c in response.context["cl"].result_list) == sorted(contacts[k].pk for k in found)


def test_contacts_filter_by_tag(client):
    vip = TagFactory(name="vip")
    inside = ContactFactory(tags=[vip])
    ContactFactory()
    response = client.get("/admin/contacts/contact/", {"tag": vip.pk})
    assert list(response.context["cl"].result_list) == [inside]


class TestTheTagFilterAmongThousandsOfTags:
    """The filter listed the first 200 tags: with more, a contact could not be filtered by the 201st."""

    @pytest.fixture
    def last(self):
        Tag.objects.bulk_create(Tag(name=f"tag-{n:04}") for n in range(250))
        return TagFactory(name="Zz-Diwali-Late")

    def test_part_of_a_name_lists_the_tags_containing_it_and_one_leads_to_its_contacts(self, client, last):
        inside = ContactFactory(tags=[last])
        ContactFactory(tags=[Tag.objects.get(name="tag-0000")])
        response = client.get("/admin/contacts/contact/", {"tag_q": "diwali"})
        assert len(response.context["cl"].result_list) == 2  # nothing chosen yet: everyone
        link = f'href="?tag={last.pk}&amp;tag_q=diwali"'
        assert link in response.content.decode() and ">Zz-Diwali-Late</a>" in response.content.decode()
        response = client.get("/admin/contacts/contact/", {"tag": last.pk, "tag_q": "diwali"})
        assert list(response.context["cl"].result_list) == [inside]

    def test_a_whole_name_in_any_case_filters_at_once_and_shows_it_chosen(self, client, last):
        inside = ContactFactory(tags=[last])
        ContactFactory()
        response = client.get("/admin/contacts/contact/", {"tag_q": "zz-diwali-late"})
        assert list(response.context["cl"].result_list) == [inside]
        assert re.search(r'<li class="selected">\s*<a href="[^"]*">Zz-Diwali-Late</a>', response.content.decode())

    def test_a_name_python_and_postgresql_put_in_lower_case_apart_is_found(self, client, last):
        # 'ΠΕΛΑΤΕΣ' ends in 'ς' to str.lower() and in 'σ' to PostgreSQL's lower(): typed, it found no tag, not even
        # its own, when the typed text was put in lower case by Python and the names by PostgreSQL.
        inside = ContactFactory(tags=[TagFactory(name="ΠΕΛΑΤΕΣ")])
        ContactFactory()
        assert list(client.get("/admin/contacts/contact/", {"tag_q": "ΠΕΛΑΤΕΣ"}).context["cl"].result_list) == [inside]
        assert ">ΠΕΛΑΤΕΣ</a>" in client.get("/admin/contacts/contact/", {"tag_q": "ΛΑΤΕΣ"}).content.decode()

    def test_a_null_character_typed_in_the_box_is_searched_without_it_not_a_500(self, client, last):
        # PostgreSQL cannot take a NUL in a query: `?tag_q=%00` made the contact list a 500, as it made the admin's
        # autocomplete (bed41b4).
        inside = ContactFactory(tags=[last])
        ContactFactory()
        response = client.get("/admin/contacts/contact/", {"tag_q": "zz-diwali\x00-late"})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [inside]
        assert client.get("/admin/contacts/contact/", {"tag_q": "\x00"}).status_code == 200

    def test_the_panel_lists_no_tag_until_asked_and_says_when_none_or_too_many_match(self, client, last):
        assert "tag-0000" not in client.get("/admin/contacts/contact/").content.decode()
        html = client.get("/admin/contacts/contact/", {"tag_q": "nothing-like-it"}).content.decode()
        assert "No tag's name contains “nothing-like-it”." in html
        html = client.get("/admin/contacts/contact/", {"tag_q": "tag-"}).content.decode()
        assert html.count('href="?tag=') == 20 and "type more of the name" in html
        # Twenty found are all there are: nothing more to find by typing more (it said "The first 20 shown").
        Tag.objects.bulk_create(Tag(name=f"twenty-{n:02}") for n in range(20))
        html = client.get("/admin/contacts/contact/", {"tag_q": "twenty"}).content.decode()
        assert html.count('href="?tag=') == 20 and "type more" not in html
        Tag.objects.create(name="twenty-20")
        html = client.get("/admin/contacts/contact/", {"tag_q": "twenty"}).content.decode()
        assert html.count('href="?tag=') == 20 and "type more" in html

    def test_the_box_keeps_the_lists_other_filters_and_not_its_page(self, client, last):
        response = client.get("/admin/contacts/contact/", {"is_active__exact": "1", "p": "2", "tag_q": "x"})
        html = response.content.decode()
        assert '<input type="hidden" name="is_active__exact" value="1">' in html
        assert '<input type="hidden" name="p"' not in html and 'value="x"' in html
        faceted = client.get("/admin/contacts/contact/", {"_facets": "", "tag_q": "diwali"}).content.decode()
        assert re.search(r'<a href="[^"]*">Zz-Diwali-Late \(0\)</a>', faceted)  # the admin's counts still work


@pytest.mark.parametrize("value", ["abc", "²"])  # "²" is a digit to str.isdigit(), not a number to int()
def test_a_tag_filter_that_is_no_tag_id_is_the_admins_bad_filter_page_not_a_500(client, value):
    TagFactory(name="vip")  # the filter is shown, and applied, only when there are tags
    response = client.get("/admin/contacts/contact/", {"tag": value})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_adding_a_contact_normalises_the_phone_and_names_the_field_when_invalid(client):
    fields = {
        "phone": "098123 45678",
        "attributes": "{}",
        "is_active": "on",
    }
    response = client.post("/admin/contacts/contact/add/", fields)
    assert response.status_code == 302
    assert Contact.objects.get().phone == "+919812345678"
    response = client.post("/admin/contacts/contact/add/", {**fields, "phone": "12"})
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors


def test_a_contacts_tags_are_picked_in_one_field_and_its_page_says_when_each_was_put_on():
    """The link is keyed by (contact, tag) (migration 0011), which Django's inlines cannot edit: the page holds one
    tag field. Taking a tag off and putting another on in the same save changes only those two links."""
    client = admin_client_for()
    customers, vip, churned = TagFactory(name="customers"), TagFactory(name="vip"), TagFactory(name="churned")
    contact = ContactFactory(phone="+919812345678", tags=[customers, vip])
    ContactTag.objects.filter(contact=contact, tag=customers).update(
        created_at=timezone.make_aware(datetime.datetime(2026, 5, 1, 9, 30))
    )
    page = client.get(f"/admin/contacts/contact/{contact.pk}/change/")
    assert page.context["adminform"].form.initial["tag_list"] == [customers.pk, vip.pk]
    html = page.content.decode()
    assert f'<option value="{customers.pk}" selected>customers</option>' in html
    assert "customers (2026-05-01 09:30 UTC)" in html  # the History section's "tagged", as every time is shown
    fields = {"phone": contact.phone, "attributes": "{}", "is_active": "on", "tag_list": [customers.pk, churned.pk]}
    response = client.post(f"/admin/contacts/contact/{contact.pk}/change/", fields)
    assert response.status_code == 302
    links = dict(ContactTag.objects.filter(contact=contact).values_list("tag__name", "created_at"))
    assert sorted(links) == ["churned", "customers"]
    assert links["customers"] == timezone.make_aware(datetime.datetime(2026, 5, 1, 9, 30))  # kept, not re-made
    assert client.post("/admin/contacts/contact/add/", {**fields, "phone": "+919812345679"}).status_code == 302
    assert sorted(Contact.objects.get(phone="+919812345679").tags.values_list("name", flat=True)) == [
        "churned",
        "customers",
    ]


def test_a_user_who_may_only_view_contacts_sees_their_tags():
    viewer = UserFactory(is_staff=True, permissions=["contacts.view_contact"])
    contact = ContactFactory(tags=[TagFactory(name="vip"), TagFactory(name="customers")])
    response = admin_client_for(viewer).get(f"/admin/contacts/contact/{contact.pk}/change/")
    assert response.status_code == 200
    assert re.search(r'<div class="readonly">customers, vip</div>', response.content.decode())


@pytest.mark.parametrize(
    ("field", "value"),
    [("attributes", "[1, 2]"), ("attributes", '"vip"'), ("attributes", "42"), ("timezone", "Mars/Olympus")],
)
def test_a_contact_whose_attributes_are_no_object_or_whose_time_zone_is_unknown_is_refused_on_the_field(
    client, field, value
):
    """Texts fill {{name}} from the attributes: a list or a number saved here broke every launch page that sampled
    the contact (a 500), while the API refused it."""
    fields = {"phone": "+919812345678", "attributes": "{}", "is_active": "on"}
    response = client.post("/admin/contacts/contact/add/", {**fields, field: value})
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert not Contact.objects.exists()
    response = client.post("/admin/contacts/contact/add/", {**fields, "timezone": "europe/paris"})
    assert response.status_code == 302
    assert Contact.objects.get().timezone == "Europe/Paris"


def test_a_time_zone_abbreviation_is_read_in_the_contacts_country_on_its_page(client):
    """ "IST" is India's time for a contact in India; where it names none of the country's zones it is refused on the
    field, naming them."""
    fields = {"phone": "+14155550123", "attributes": "{}", "is_active": "on", "timezone": "IST"}
    response = client.post("/admin/contacts/contact/add/", fields)
    assert response.context["adminform"].form.errors == {
        "timezone": [
            "'IST' is an abbreviation of several time zones (Asia/Kolkata, Asia/Jerusalem or Europe/Dublin), none of "
            "them in the contact's country (US): give the zone."
        ]
    }
    assert client.post("/admin/contacts/contact/add/", {**fields, "country": "India"}).status_code == 302
    assert Contact.objects.get().timezone == "Asia/Kolkata"


def test_a_zone_abbreviation_stored_before_the_rule_does_not_block_an_edit_of_another_field(client):
    """A contact in the US stored with "IST" (written before abbreviations were read) refused a change of its name on
    `timezone`; the zone stays as stored until someone changes it, and a change to it is checked."""
    contact = ContactFactory(phone="+14155550123", country="US")
    Contact.objects.filter(pk=contact.pk).update(timezone="IST")  # as a row from before the rule
    fields = {"phone": contact.phone, "country": "US", "attributes": "{}", "is_active": "on", "timezone": "IST"}
    url = f"/admin/contacts/contact/{contact.pk}/change/"

    assert client.post(url, {**fields, "first_name": "Asha"}).status_code == 302

    contact.refresh_from_db()
    assert (contact.first_name, contact.timezone) == ("Asha", "IST")
    refused = client.post(url, {**fields, "timezone": "GST"})
    assert list(refused.context["adminform"].form.errors) == ["timezone"], "a new abbreviation is still checked"


def test_a_contacts_country_is_two_letters_stored_in_capitals_in_the_admin_as_in_the_api(client):
    """The admin stored "fr" as typed and took "1!"; the API stored "FR" and took "1!" too. Both now keep two letters
    in capitals, read a country's name as its code, and refuse anything else on the field."""
    fields = {"phone": "+33612345678", "attributes": "{}", "is_active": "on"}
    assert client.post("/admin/contacts/contact/add/", {**fields, "country": "fr "}).status_code == 302
    contact = Contact.objects.get()
    assert contact.country == "FR"
    response = client.post(f"/admin/contacts/contact/{contact.pk}/change/", {**fields, "country": "1!"})
    assert response.context["adminform"].form.errors == {
        "country": [
            "'1!' is not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)."
        ]
    }
    assert (
        client.post(f"/admin/contacts/contact/{contact.pk}/change/", {**fields, "country": "Belgium"}).status_code
        == 302
    )
    assert Contact.objects.get().country == "BE"
    api = api_client_for(UserFactory(superuser=True))
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"country": "Atlantis"}, format="json")
    assert response.status_code == 400
    assert response.json()["country"] == [
        "'Atlantis' is not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)."
    ]
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"country": "the netherlands"}, format="json")
    assert (response.status_code, response.json()["country"]) == (200, "NL")
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"country": "uk"}, format="json")
    assert (response.status_code, response.json()["country"]) == (200, "GB")
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"country": "QQ"}, format="json")
    assert response.status_code == 400 and response.json()["country"][0].startswith("'QQ' is not a country")
    Contact.objects.filter(pk=contact.pk).update(country="x")  # stored before the rule: an edit of another field
    response = client.post(
        f"/admin/contacts/contact/{contact.pk}/change/", {**fields, "country": "x", "first_name": "Chloé"}
    )
    assert response.status_code == 302
    assert Contact.objects.get().first_name == "Chloé"


def test_an_attribute_that_is_an_object_is_a_form_error_naming_it(client):
    """As the API refuses it: a message's {{address}} would be filled with the object as Python writes it."""
    fields = {
        "phone": "+919812345678",
        "attributes": '{"city": "Pune", "address": {"street": "MG Road"}}',
        "is_active": "on",
    }
    response = client.post("/admin/contacts/contact/add/", fields)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "attributes": [
            "attributes.address is an object: give a text, a number, true/false or null, which a message's "
            "{{address}} is filled with."
        ]
    }
    assert not Contact.objects.exists()


def test_a_null_character_in_a_contacts_attributes_is_a_form_error_on_the_field(client):
    fields = {
        "phone": "+919812345678",
        "attributes": '{"note": "a\\u0000b"}',
        "is_active": "on",
    }
    response = client.post("/admin/contacts/contact/add/", fields)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"attributes": ["Null characters are not allowed."]}
    assert not Contact.objects.exists()


@pytest.mark.parametrize("depth", [100, 900])
@pytest.mark.parametrize("shape", ["a list", "under a key"])
def test_attributes_nested_too_deep_are_a_form_error_shown_as_typed(client, depth, shape):
    """900 levels typed in the admin were a 500 (RecursionError parsing them) where the API answers 400; 100 levels
    were told twice, the object's rule and the depth's. One error on the field, the text kept as typed."""
    typed = "[" * depth + "]" * depth if shape == "a list" else '{"a": ' * depth + "1" + "}" * depth
    fields = {"phone": "+919812345678", "attributes": typed, "is_active": "on"}
    response = client.post("/admin/contacts/contact/add/", fields)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"attributes": ["Nested deeper than 64 levels."]}
    assert escape(typed) in response.content.decode()
    assert not Contact.objects.exists()


def test_the_tag_list_shows_contact_counts_linked_to_those_contacts(client):
    vip = TagFactory(name="vip")
    ContactFactory(tags=[vip])
    ContactFactory(tags=[vip])
    response = client.get("/admin/contacts/tag/")
    assert [tag.contact_count for tag in response.context["cl"].result_list] == [2]
    assert f'<a href="/admin/contacts/contact/?tag={vip.pk}">2</a>' in response.content.decode()  # leads to them


def test_adding_a_tag_whose_name_differs_only_in_case_is_refused_in_words(client):
    TagFactory(name="VIP")
    response = client.post("/admin/contacts/tag/add/", {"name": "vip", "description": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "A tag with this name already exists (in capitals or not)."
    ]
    assert list(Tag.objects.values_list("name", flat=True)) == ["VIP"]


def test_a_taken_value_is_told_once_in_the_apis_words(client):
    """A tag's name taken as typed was told twice, in two wordings ("Tag with this Name already exists." beside the
    any-case rule's); a segment's name and an opt-out in Django's ("Segment with this Name already exists.",
    "Unsubscriber with this Address, Scope and Value already exists."), not the API's."""
    TagFactory(name="VIP")
    SegmentFactory(name="Big spenders")
    UnsubscriberFactory(address="+919812345678")
    segment = {"name": "Big spenders", "positive_operator": "any", "negative_operator": "any"}
    opt_out = {"address": "+919812345678", "scope": "all", "value": "", "source": "admin", "reason": ""}

    tag_page = client.post("/admin/contacts/tag/add/", {"name": "VIP", "description": ""})
    segment_page = client.post("/admin/contacts/segment/add/", segment)
    opt_out_page = client.post("/admin/contacts/unsubscriber/add/", opt_out)

    assert tag_page.context["adminform"].form.errors == {
        "__all__": ["A tag with this name already exists (in capitals or not)."]
    }
    assert segment_page.context["adminform"].form.errors == {"name": ["A segment with this name already exists."]}
    assert opt_out_page.context["adminform"].form.errors == {
        "__all__": ["This address is already unsubscribed in this scope."]
    }
    assert (Tag.objects.count(), Segment.objects.count(), Unsubscriber.objects.count()) == (1, 1, 1)


def test_a_segment_page_shows_its_live_count_and_a_preview(client):
    vip = TagFactory(name="vip")
    ContactFactory(tags=[vip], first_name="Asha", phone="+919811111111")
    ContactFactory(first_name="Ravi")
    segment = SegmentFactory(positive_tags=[vip])
    html = client.get(f"/admin/contacts/segment/{segment.pk}/change/").content.decode()
    assert "+919811111111" in html
    assert "Asha" in html
    assert "Ravi" not in html
    assert 'class="segment-preview"' in html


@pytest.mark.parametrize("model", ["contact", "unsubscriber"])
def test_a_deep_page_of_a_big_list_builds_only_its_own_rows(client, monkeypatch, model):
    """Page 3,000 of 300,000 contacts was LIMIT 100 OFFSET 299,900 over every column (1.9 s): its ids come first."""
    monkeypatch.setattr(pagination, "DEEP_PAGE_ROWS", 100)  # from the second page on
    with connection.cursor() as cursor:
        if model == "contact":
            cursor.execute(
                "INSERT INTO contacts_contact (phone) SELECT '+9198' || lpad(n::text, 8, '0') FROM generate_series(1, 150) n"
            )
        else:
            cursor.execute(
                """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason)
                   SELECT '+9198' || lpad(n::text, 8, '0'), 'all', '', 'admin', '' FROM generate_series(1, 150) n"""
            )
    with CaptureQueriesContext(connection) as queries:
        shown = client.get(f"/admin/contacts/{model}/", {"p": 2}).context["cl"].result_list
    model_class = Contact if model == "contact" else Unsubscriber
    assert [row.pk for row in shown] == list(model_class.objects.order_by("-id").values_list("pk", flat=True))[100:]
    (listed,) = [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]
    assert listed.split(" FROM ")[0] == f'SELECT "contacts_{model}"."id" AS "pk"', listed


class TestSegmentCountsInTheList:
    """The segment list showed no member counts. It shows the last count with its time: counting every segment on
    every load would evaluate each rule over all contacts."""

    def _row(self, client, segment) -> str:
        html = client.get("/admin/contacts/segment/").content.decode()
        rows = re.findall(r"<tr>(?:(?!</tr>).)*</tr>", html, re.S)
        return next(row for row in rows if f">{segment.name}</a>" in row and "field-rule" in row)

    def _as_of(self, segment) -> str:
        segment.refresh_from_db()
        return timezone.localtime(segment.counted_at).strftime("%H:%M")

    def test_saving_a_segment_counts_it_and_the_list_shows_the_count_with_its_time(self, client):
        vip = TagFactory(name="vip")
        for _ in range(3):
            ContactFactory(tags=[vip])
        ContactFactory()
        response = client.post("/admin/contacts/segment/add/", {
            "name": "VIPs", "description": "", "positive_operator": "any", "positive_tags": [vip.pk],
            "negative_operator": "any",
        })  # fmt: skip
        assert response.status_code == 302
        segment = Segment.objects.get(name="VIPs")
        assert f'<td class="field-contacts">3 (as of {self._as_of(segment)})</td>' in self._row(client, segment)

    def test_the_list_counts_no_contact_and_says_when_a_segment_was_never_counted(self, client):
        segment = SegmentFactory(name="Loaded")
        ContactFactory()
        with CaptureQueriesContext(connection) as queries:
            row = self._row(client, segment)
        assert '<td class="field-contacts">not counted yet</td>' in row
        assert not [q["sql"] for q in queries.captured_queries if 'FROM "contacts_contact"' in q["sql"]]

    def test_a_count_stays_as_of_its_time_until_count_now_or_the_segments_page_counts_again(self, client):
        vip = TagFactory(name="vip")
        segment = SegmentFactory(name="VIPs", positive_tags=[vip])
        ContactFactory(tags=[vip])
        Segment.objects.filter(pk=segment.pk).update(
            contact_count=12345, counted_at=timezone.make_aware(datetime.datetime(2026, 1, 5, 10, 32))
        )
        assert "12,345 (as of 2026-01-05 10:32)" in self._row(client, segment)

        response = client.post("/admin/contacts/segment/", {"action": "count_now", "_selected_action": [segment.pk]})
        assert response.status_code == 302
        assert f"1 (as of {self._as_of(segment)})" in self._row(client, segment)

        ContactFactory(tags=[vip])
        assert client.get(f"/admin/contacts/segment/{segment.pk}/change/").status_code == 200
        assert f"2 (as of {self._as_of(segment)})" in self._row(client, segment)

    def test_sorted_by_their_counts_the_segments_never_counted_come_last_both_ways(self, client):
        small, big, never = SegmentFactory(name="Small"), SegmentFactory(name="Big"), SegmentFactory(name="Never")
        for segment, count in [(small, 5), (big, 300_000)]:
            Segment.objects.filter(pk=segment.pk).update(contact_count=count, counted_at=timezone.now())
        column = SegmentAdmin.list_display.index("contacts") + 1  # after the selection checkbox, as the header links
        for order, expected in [(f"{column}", [small, big, never]), (f"-{column}", [big, small, never])]:
            response = client.get("/admin/contacts/segment/", {"o": order})
            assert list(response.context["cl"].result_list) == expected, order

    def test_counts_are_for_whom_may_see_contacts(self):
        segment = SegmentFactory(name="VIPs")
        Segment.objects.filter(pk=segment.pk).update(contact_count=7, counted_at=timezone.now())
        viewer = admin_client_for(UserFactory(is_staff=True, permissions=["contacts.view_segment"]))
        html = viewer.get("/admin/contacts/segment/").content.decode()
        assert "VIPs" in html and "field-contacts" not in html and "count_now" not in html
        response = viewer.post("/admin/contacts/segment/", {"action": "count_now", "_selected_action": [segment.pk]})
        assert response.status_code == 200  # "No action selected": an action it may not run
        segment.refresh_from_db()
        assert segment.contact_count == 7


def test_the_lists_and_pages_show_times_as_herald_says_them(client, settings):
    """Django's "Nov. 26, 2026, 2:22 p.m." (no zone) stood in the lists and on a contact's page beside its opt-outs'
    "2026-11-26 14:22 UTC" and the campaigns' times: every time reads the second way (config/formats)."""
    settings.TIME_ZONE = "Asia/Kolkata"
    at = timezone.make_aware(datetime.datetime(2026, 11, 26, 8, 52), datetime.UTC)
    contact = ContactFactory()
    Contact.objects.filter(pk=contact.pk).update(created_at=at)
    opt_out = Unsubscriber.objects.create(address=contact.phone, scope="all", source="admin")
    Unsubscriber.objects.filter(pk=opt_out.pk).update(created_at=at)

    listed = client.get("/admin/contacts/unsubscriber/").content.decode()
    assert re.findall(r'<td class="field-created_at nowrap">([^<]*)</td>', listed) == ["2026-11-26 14:22 IST"]
    page = client.get(f"/admin/contacts/contact/{contact.pk}/change/").content.decode()
    assert '<div class="readonly">2026-11-26 14:22 IST</div>' in page, "its record"
    assert "<td>2026-11-26 14:22 IST</td>" in page, "its opt-outs"
    assert not re.search(r"\b(a\.m\.|p\.m\.|Nov\. )", page + listed)


def test_the_admin_names_opt_outs_as_the_imports_and_pages_do(client):
    """The sidebar and the list said "Unsubscribers" next to "Removed opt-outs", and the add page "Add unsubscriber",
    while the imports call the kind "opt-outs"."""
    UnsubscriberFactory()
    index = client.get("/admin/").content.decode()
    assert ">Opt-outs</a>" in index and ">Removed opt-outs</a>" in index
    listing = client.get("/admin/contacts/unsubscriber/")
    assert listing.context["title"] == "Select opt-out to change"
    assert client.get("/admin/contacts/unsubscriber/add/").context["title"] == "Add opt-out"
    assert "nsubscriber" not in re.sub(r"<[^>]*>", "", index + listing.content.decode())  # the text, not the links


def test_an_opt_out_is_named_by_its_scope_as_the_list_words_it(client):
    """Its page's title, breadcrumbs and delete page said "+919812345678 (all)" while the list's Scope column says
    "everything"; one from a tag said "(tag: news)"."""
    everything = UnsubscriberFactory(address="+919812345678")
    tagged = UnsubscriberFactory(address="+919812345679", scope="tag", value="news")

    page = client.get(f"/admin/contacts/unsubscriber/{everything.pk}/change/")
    assert page.context["title"] == "Change opt-out"
    assert page.context["subtitle"] == "+919812345678 (everything)"
    html = page.content.decode()
    assert "<title>+919812345678 (everything) | Change opt-out" in html
    breadcrumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.S).group(1)
    assert breadcrumbs.split("&rsaquo;")[-1].strip() == "+919812345678 (everything)"
    delete = client.get(f"/admin/contacts/unsubscriber/{tagged.pk}/delete/").content.decode()
    assert "+919812345679 (tag news)" in delete
    assert "(all)" not in html and "tag: news" not in delete
    # and once removed, by the same words
    services.unsubscribers_remove(unsubscribers=[everything, tagged], user=None, via="admin")
    removed = {str(removal) for removal in UnsubscriberRemoval.objects.all()}
    today = f"{timezone.now():%Y-%m-%d}"
    assert removed == {f"+919812345678 (everything), removed {today}", f"+919812345679 (tag news), removed {today}"}


def test_adding_an_unsubscriber_normalises_the_address_and_checks_the_scope(client):
    response = client.post(
        "/admin/contacts/unsubscriber/add/", {"address": "098123 45678", "scope": "all", "source": "admin"}
    )
    assert response.status_code == 302
    assert Unsubscriber.objects.get().address == "+919812345678"
    response = client.post(
        "/admin/contacts/unsubscriber/add/", {"address": "+919811111111", "scope": "sender", "source": "admin"}
    )
    assert response.context["adminform"].form.errors["value"] == ["A sender scope needs a value (which sender ID)."]
    response = client.post(
        "/admin/contacts/unsubscriber/add/",
        {"address": "+919811111111", "scope": "all", "value": "news", "source": "admin"},
    )
    assert response.context["adminform"].form.errors["value"] == ["An opt-out from everything takes no value."]
    response = client.post("/admin/contacts/unsubscriber/add/", {"address": "12", "scope": "all", "source": "admin"})
    assert "address" in response.context["adminform"].form.errors
    response = client.post(
        "/admin/contacts/unsubscriber/add/",
        {"address": "+919811111111", "scope": "channel", "value": "whatsap", "source": "admin"},
    )
    assert response.context["adminform"].form.errors["value"] == [
        "Unknown channel 'whatsap'; use one of sms, viber, whatsapp, rcs, push, email, voice_sms."
    ]
    assert Unsubscriber.objects.count() == 1


def test_an_opt_out_from_a_service_that_herald_does_not_send_is_refused_naming_the_services(client):
    """Opted out of 'promo' (a service no campaign has) the person would still get every promotional campaign: the
    service must be a purpose (transactional, service, promotional) or a sender's service code (T, P, S, G), and is
    taken in any case."""
    response = client.post(
        "/admin/contacts/unsubscriber/add/",
        {"address": "+919811111111", "scope": "service", "value": "promo", "source": "admin"},
    )
    assert response.context["adminform"].form.errors["value"] == [
        "Unknown service 'promo'; use a purpose (transactional, service, promotional) "
        "or a sender's service code (T, P, S, G)."
    ]
    assert not Unsubscriber.objects.exists()
    for value in ("Promotional", "t"):
        response = client.post(
            "/admin/contacts/unsubscriber/add/",
            {"address": "+919811111111", "scope": "service", "value": value, "source": "admin"},
        )
        assert response.status_code == 302
    assert sorted(Unsubscriber.objects.values_list("value", flat=True)) == ["T", "promotional"]


def _opt_out_warnings(client, scope: str, value: str) -> list[str]:
    """The warnings the admin gives as it records an opt-out of this scope and value."""
    response = client.post(
        "/admin/contacts/unsubscriber/add/",
        {"address": "+919811111111", "scope": scope, "value": value, "source": "admin"},
        follow=True,
    )
    return [str(message) for message in response.context["messages"] if message.level_tag == "warning"]


def test_an_opt_out_from_a_sender_or_tag_nobody_has_is_recorded_with_a_warning_that_it_suppresses_nothing(client):
    """A misspelt sender ('HERLAD') or tag was recorded as if it worked, and the person still got every message of
    HERALD: the admin now says so, while a name written in other capitals is matched as the audience matches it."""
    SenderFactory(name="HERALD")
    TagFactory(name="vip")

    added = partial(_opt_out_warnings, client)
    assert added("sender", "HERLAD") == [
        "No sender is named 'HERLAD': this opt-out suppresses nothing until one is. Check the spelling."
    ]
    assert added("tag", "vipp") == [
        "No tag is named 'vipp': this opt-out suppresses nothing until one is. Check the spelling."
    ]
    assert added("sender", "herald") == []
    assert added("tag", "VIP") == []
    assert Unsubscriber.objects.count() == 4


def test_an_opt_out_lifted_in_the_admin_is_kept_as_removed_with_who_lifted_it_and_when():
    """Deleting an opt-out (its page, or the list's delete action) or editing its address left no trace but the
    admin's own log line: a regulator asking why a number was messaged after its STOP got no answer from Herald."""
    user = UserFactory(username="ops-anna", superuser=True)
    client = admin_client_for(user)
    one, two, three = (UnsubscriberFactory(address=f"+91981234567{n}", reason="STOP") for n in range(3))
    edited = UnsubscriberFactory(address="+919812345679", source="provider", reason="STOP")

    assert client.post(f"/admin/contacts/unsubscriber/{one.pk}/delete/", {"post": "yes"}).status_code == 302
    response = client.post(
        "/admin/contacts/unsubscriber/",
        {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
    )
    assert response.status_code == 302
    response = client.post(
        f"/admin/contacts/unsubscriber/{edited.pk}/change/",
        {"address": "+919811111111", "scope": "all", "value": "", "source": "provider", "reason": "STOP"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(Unsubscriber.objects.values_list("address", flat=True)) == ["+919811111111"]
    removed = UnsubscriberRemoval.objects.order_by("address")
    assert [(r.address, r.source, r.reason, r.removed_by_name, r.via) for r in removed] == [
        (address, source, "STOP", "ops-anna", "admin")
        for address, source in [
            ("+919812345670", "admin"), ("+919812345671", "admin"), ("+919812345672", "admin"),
            ("+919812345679", "provider"),
        ]
    ]  # fmt: skip
    assert removed.last().note == "changed to +919811111111 (everything)"
    # staff find it by the number written any way; nobody adds, edits or deletes the record
    page = client.get("/admin/contacts/unsubscriberremoval/", {"q": "098123 45679"})
    assert [r.address for r in page.context["cl"].result_list] == ["+919812345679"]
    assert client.get("/admin/contacts/unsubscriberremoval/add/").status_code == 403
    record = removed.first()
    assert client.post(f"/admin/contacts/unsubscriberremoval/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert UnsubscriberRemoval.objects.count() == 4


def test_changing_a_contacts_number_in_the_admin_keeps_its_opt_outs_and_says_so(client):
    contact = ContactFactory(phone="+919812345678", first_name="Asha")
    UnsubscriberFactory(address="+919812345678", source="provider", reason="STOP")
    fields = {"phone": "098123 45679", "first_name": "Asha", "attributes": "{}", "is_active": "on"}
    response = client.post(f"/admin/contacts/contact/{contact.pk}/change/", fields, follow=True)
    assert response.redirect_chain, response.context["adminform"].form.errors
    assert [m.message for m in response.context["messages"] if m.level_tag == "warning"] == [
        "The contact's old address had 1 opt-out that the new one lacked: it holds for the new one too."
    ]
    assert Unsubscriber.objects.get(address="+919812345679").source == "admin"


def test_staff_cannot_record_an_opt_out_as_a_vendors_report():
    client = admin_client_for()
    response = client.post(
        "/admin/contacts/unsubscriber/add/", {"address": "+919812345678", "scope": "all", "source": "inbound"}
    )
    assert response.context["adminform"].form.errors["source"] == [
        "Select a valid choice. inbound is not one of the available choices."
    ]
    assert not Unsubscriber.objects.exists()
    page = client.get("/admin/contacts/unsubscriber/add/").content.decode()
    assert 'value="admin"' in page and 'value="provider"' not in page and 'value="inbound"' not in page
    # an opt-out a vendor reported keeps its source through an edit, whatever the form sends
    reported = UnsubscriberFactory(address="+919812345678", source="provider", reason="STOP")
    response = client.post(
        f"/admin/contacts/unsubscriber/{reported.pk}/change/",
        {"address": "+919812345678", "scope": "all", "value": "", "source": "admin", "reason": "STOP (confirmed)"},
    )
    assert response.status_code == 302
    reported.refresh_from_db()
    assert (reported.source, reported.reason) == ("provider", "STOP (confirmed)")


def test_the_warning_compares_names_as_the_audience_does_with_postgresqls_lower_case(client):
    """The audience matches an opt-out's sender or tag name by PostgreSQL's lower() on both sides; the warning asked
    with iexact (upper()), which takes 'πελατες' for 'ΠΕΛΑΤΕΣ' where lower() does not ('πελατεσ': the last sigma is
    another letter). Such an opt-out was recorded without a word and suppressed nobody."""
    SenderFactory(name="ΠΕΛΑΤΕΣ")
    TagFactory(name="ΠΕΛΑΤΕΣ")

    for scope in ("sender", "tag"):
        assert _opt_out_warnings(client, scope, "πελατες") == [
            f"No {scope} is named 'πελατες': this opt-out suppresses nothing until one is. Check the spelling."
        ]
        assert _opt_out_warnings(client, scope, "πελατεσ") == []


@pytest.mark.django_db(transaction=True)
def test_two_staff_adding_one_tag_at_once_the_second_gets_the_form_back_saying_why():
    """Both forms pass the uniqueness check (neither sees the other's uncommitted tag); the database's unique
    index stops the second save, and its page comes back with the message the check gives and what was typed,
    not a 500, and nothing of it saved."""
    client = admin_client_for()
    answers = []

    def first_staff():  # adds "vip"; the transaction stays open
        Tag.objects.create(name="vip")

    def second_staff():
        answers.append(client.post("/admin/contacts/tag/add/", {"name": "VIP", "description": "Loyal"}))

    second_waits_on_first(first_staff, second_staff, insert_into="contacts_tag")

    assert answers[0].status_code == 200
    form = answers[0].context["adminform"].form
    assert form.non_field_errors() == ["A tag with this name already exists (in capitals or not)."]
    assert form.data["description"] == "Loyal"
    assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("098123 45678", ["phone"]),
        ("Asha@Example.COM", ["email"]),
        ("HERALD", ["sender"]),
        ("asked", ["phone"]),
        ("+919812345678", ["phone", "long code"]),  # the address of one, the value of the other
    ],
)
def test_suppressions_are_found_by_an_address_written_any_way_or_by_their_value_or_reason(client, term, found):
    """Addresses are stored normalised (E.164, e-mails lower-cased): a national number, as staff paste it, found
    nothing before."""
    suppressions = {
        "phone": Unsubscriber.objects.create(address="+919812345678", reason="asked by phone"),
        "email": Unsubscriber.objects.create(address="asha@example.com"),
        "sender": Unsubscriber.objects.create(address="+919812345679", scope="sender", value="HERALD"),
        "long code": Unsubscriber.objects.create(address="+919812345670", scope="sender", value="+919812345678"),
    }
    response = client.get("/admin/contacts/unsubscriber/", {"q": term})
    assert sorted(u.pk for u in response.context["cl"].result_list) == sorted(suppressions[k].pk for k in found)


def test_an_opt_out_recorded_from_a_contacts_page_leads_back_to_it_and_only_to_a_contact(client):
    contact = ContactFactory(phone="+919812345678")
    fields = {"address": "+919812345678", "scope": "all", "source": "admin", "reason": ""}
    response = client.post(f"/admin/contacts/unsubscriber/add/?contact={contact.pk}", fields)
    assert response.url == f"/admin/contacts/contact/{contact.pk}/change/"
    fields["address"] = "+919812345679"
    response = client.post("/admin/contacts/unsubscriber/add/?contact=https://elsewhere.example", fields)
    assert response.url == "/admin/contacts/unsubscriber/"
    fields["address"] = "+919812345670"  # "²" is a digit to str.isdigit(), not a number to int(): it was a 500
    response = client.post("/admin/contacts/unsubscriber/add/?contact=²", fields)
    assert response.url == "/admin/contacts/unsubscriber/"
    assert Unsubscriber.objects.count() == 3


def test_deleting_a_tag_a_segment_uses_says_it_is_refused_and_what_to_do_not_that_the_segment_goes_too(client):
    gold = TagFactory(name="gold")
    segment = SegmentFactory(name="Gold customers", positive_tags=[gold])

    for response in (
        client.get(f"/admin/contacts/tag/{gold.pk}/delete/"),
        client.post("/admin/contacts/tag/", {"action": "delete_selected", "_selected_action": [gold.pk]}),
        client.get(f"/admin/contacts/segment/{segment.pk}/delete/"),
    ):
        html = response.content.decode()
        assert "would require deleting" not in html
    tag_page = client.get(f"/admin/contacts/tag/{gold.pk}/delete/").content.decode()
    assert "The tag “gold” cannot be deleted: it still selects people for what is listed below." in tag_page
    assert f'<li>Segment: <a href="/admin/contacts/segment/{segment.pk}/change/">Gold customers</a></li>' in tag_page
    selected = client.post("/admin/contacts/tag/", {"action": "delete_selected", "_selected_action": [gold.pk]})
    assert (
        "Nothing was deleted: what is listed below still selects people by the selected tag."
        in selected.content.decode()
    )
    assert Tag.objects.filter(pk=gold.pk).exists()


def test_the_refused_delete_pages_link_what_uses_the_tag_or_segment_for_whom_may_see_it(client):
    """They named the segments and campaigns as plain text: finding each to take the tag out of it was a search."""
    gold = TagFactory(name="gold")
    segment = SegmentFactory(name="Gold customers", positive_tags=[gold])
    campaign = CampaignFactory(name="Gold week", tags=[gold], segments=[segment])
    segment_link = f'<li>Segment: <a href="/admin/contacts/segment/{segment.pk}/change/">Gold customers</a></li>'
    campaign_link = f'<li>Campaign: <a href="/admin/campaigns/campaign/{campaign.pk}/change/">Gold week</a></li>'

    tag_page = client.get(f"/admin/contacts/tag/{gold.pk}/delete/").content.decode()
    assert segment_link in tag_page and campaign_link in tag_page
    selected = client.post("/admin/contacts/tag/", {"action": "delete_selected", "_selected_action": [gold.pk]})
    assert segment_link in selected.content.decode() and campaign_link in selected.content.decode()
    assert campaign_link in client.get(f"/admin/contacts/segment/{segment.pk}/delete/").content.decode()

    tagger = admin_client_for(UserFactory(is_staff=True, permissions=["contacts.view_tag", "contacts.delete_tag"]))
    tag_page = tagger.get(f"/admin/contacts/tag/{gold.pk}/delete/").content.decode()
    assert "<li>Segment: Gold customers</li>" in tag_page and "<li>Campaign: Gold week</li>" in tag_page, "no 403"


@pytest.mark.parametrize("via", ["admin", "api"])
def test_renaming_a_tag_keeps_the_opt_outs_from_it_so_those_people_are_not_messaged_under_its_new_name(client, via):
    """A tag-scoped opt-out names its tag: renamed alone, the tag left its opt-outs naming a tag nobody has, and a
    campaign to the renamed tag messaged everyone who had opted out of it. One address opted out under both names
    keeps one opt-out."""
    from contacts.audience import AudienceSpec, audience_rows_sql

    news = TagFactory(name="newsletter")
    asha = ContactFactory(phone="+919812345678", tags=[news])
    ravi = ContactFactory(phone="+919812345679", tags=[news])
    UnsubscriberFactory(address=asha.phone, scope="tag", value="Newsletter", reason="asked")
    UnsubscriberFactory(address=ravi.phone, scope="tag", value="newsletter")
    UnsubscriberFactory(address=ravi.phone, scope="tag", value="weekly news")  # a name no tag had until now
    UnsubscriberFactory(address=asha.phone, scope="tag", value="vip")

    if via == "admin":
        response = client.post(f"/admin/contacts/tag/{news.pk}/change/", {"name": "Weekly news", "description": ""})
        assert response.status_code == 302
    else:
        response = api_client_for(UserFactory(superuser=True)).patch(
            f"/api/v1/tags/{news.pk}/", {"name": "Weekly news"}, format="json"
        )
        assert response.status_code == 200, response.content

    assert sorted(Unsubscriber.objects.values_list("address", "value", "reason")) == [
        (asha.phone, "Weekly news", "asked"),
        (asha.phone, "vip", ""),
        (ravi.phone, "weekly news", ""),
    ]
    sql, params = audience_rows_sql(AudienceSpec(tag_ids=[news.pk], channel="sms"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT address, status FROM ({sql}) a ORDER BY address", params)
        assert cursor.fetchall() == [(asha.phone, "suppressed"), (ravi.phone, "suppressed")]


def test_deleting_every_contact_a_filter_found_counts_them_and_deletes_them_set_based(
    client, django_assert_max_num_queries
):
    """ "Select all 1,200 contacts", then "Delete selected contacts": Django's confirmation page listed every contact
    and tag link (most of a minute for 100,000) and its form sent one field per contact back, which Django refuses
    past 1,000 fields (a 400); then it deleted them 100 at a time. Now the page counts them, its form says "all
    that this filter finds", and the contacts go in a few statements; their messages stay, without the contact, as
    do the opt-outs of their addresses."""
    from campaigns.models import Message
    from tests.browser.conftest import contacts_tagged
    from tests.factories import CampaignFactory, MessageFactory

    gone = contacts_tagged(1200, "gone")
    kept = ContactFactory(phone="+33612345678", tags=[TagFactory(name="kept")])
    first = Contact.objects.filter(tags=gone).order_by("pk").first()
    message = MessageFactory(contact=first)
    campaign = CampaignFactory(contacts=[first, kept])
    UnsubscriberFactory(address=first.phone)
    url = f"/admin/contacts/contact/?tag={gone.pk}"

    page = client.post(
        url, {"action": "delete_selected", "select_across": "1", "index": "0", "_selected_action": [first.pk]}
    )
    html = page.content.decode()
    assert "<li>Contacts: 1200</li>" in html
    assert "… and 1,190 more contacts." in html
    assert "Their tags come off them (1,200 tag links)." in html
    form = re.search(r'<form method="post">(.*?)</form>', html, re.S).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert len(re.findall(r'name="_selected_action"', form)) == 1  # not one field per contact

    with django_assert_max_num_queries(40):
        response = client.post(url, fields | {"post": "yes"})
    assert response.status_code == 302
    assert list(Contact.objects.all()) == [kept]
    assert set(Tag.objects.values_list("name", flat=True)) == {"gone", "kept"}
    assert list(kept.tags.values_list("name", flat=True)) == ["kept"]
    assert not gone.contacts.exists()
    assert Message.objects.get(pk=message.pk).contact_id is None
    assert list(campaign.contacts.all()) == [kept]
    assert Unsubscriber.objects.filter(address=first.phone).exists()


def test_the_contact_list_tags_untags_and_opts_out_the_selected_contacts_or_every_one_a_filter_found(client):
    """The list's actions take tag names typed beside them; "Select all" applies them to every contact the filter
    finds, set-based. Only the contacts' numbers are opted out, from everything, once."""
    france = TagFactory(name="france")
    chloe = ContactFactory(phone="+33612345678", tags=[france])
    louis = ContactFactory(phone="+33612345679", tags=[france])
    asha = ContactFactory(phone="+919812345678")
    UnsubscriberFactory(address=louis.phone, reason="asked before")
    url = f"/admin/contacts/contact/?tag={france.pk}"
    every = {"select_across": "1", "index": "0", "_selected_action": [chloe.pk]}

    page = client.get("/admin/contacts/contact/").content.decode()
    assert 'name="tags"' in page and "Add tags to selected contacts" in page

    response = client.post(url, {**every, "action": "add_tags", "tags": "Paris, vip ,"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Tagged 2 contacts with Paris, vip."]
    assert sorted(chloe.tags.values_list("name", flat=True)) == ["Paris", "france", "vip"]
    assert sorted(louis.tags.values_list("name", flat=True)) == ["Paris", "france", "vip"]
    assert not asha.tags.exists()

    response = client.post(url, {**every, "action": "add_tags", "tags": " "}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Tags: Give at least one tag name."]

    chosen = {"index": "0", "_selected_action": [chloe.pk], "action": "remove_tags", "tags": "paris,VIP"}
    response = client.post("/admin/contacts/contact/", chosen, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["2 tags taken off the selected contacts."]
    assert list(chloe.tags.values_list("name", flat=True)) == ["france"]

    response = client.post(url, {**every, "action": "opt_out"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["1 number opted out of everything; 1 already were."]
    assert sorted(Unsubscriber.objects.values_list("address", "scope", "source", "reason")) == [
        (chloe.phone, "all", "admin", ""),
        (louis.phone, "all", "admin", "asked before"),
    ]


def test_opting_contacts_out_from_their_list_is_offered_only_to_whom_may_add_opt_outs():
    may_change = UserFactory(is_staff=True, permissions=["contacts.view_contact", "contacts.change_contact"])
    may_opt_out = UserFactory(is_staff=True, permissions=["contacts.view_contact", "contacts.add_unsubscriber"])
    contact = ContactFactory()

    def offered(user):
        return re.findall(
            r'<option value="(\w*)"', admin_client_for(user).get("/admin/contacts/contact/").content.decode()
        )

    assert offered(may_change) == ["", "add_tags", "remove_tags", "make_active", "make_inactive"]
    assert offered(may_opt_out) == ["", "opt_out"]
    refused = admin_client_for(may_change).post(
        "/admin/contacts/contact/", {"action": "opt_out", "index": "0", "_selected_action": [contact.pk]}, follow=True
    )
    assert [str(m) for m in refused.context["messages"]] == ["No action selected."]
    assert not Unsubscriber.objects.exists()


def test_a_segments_page_names_the_campaigns_it_would_change_and_a_change_of_its_rule_warns_them(client):
    """Editing a segment that a scheduled campaign selects people by changed that campaign's audience without a word.
    Its page now lists them (linked only for whom may open them), and saving another rule says so."""
    from tests.factories import CampaignFactory

    vip, gold = TagFactory(name="vip"), TagFactory(name="gold")
    segment = SegmentFactory(name="Best", positive_tags=[vip])
    campaign = CampaignFactory(name="Spring sale", state="scheduled", segments=[segment])
    CampaignFactory(name="Done", state="completed", segments=[segment])
    page = client.get(f"/admin/contacts/segment/{segment.pk}/change/").content.decode()
    assert f'<a href="/admin/campaigns/campaign/{campaign.pk}/change/">Campaign: Spring sale</a>' in page
    assert "Done" not in page
    contacts_only = UserFactory(is_staff=True, permissions=["contacts.view_segment", "contacts.change_segment"])
    page = admin_client_for(contacts_only).get(f"/admin/contacts/segment/{segment.pk}/change/").content.decode()
    assert "<li>Campaign: Spring sale</li>" in page

    fields = {"name": "Best", "description": "", "positive_operator": "any", "negative_operator": "any"}
    url = f"/admin/contacts/segment/{segment.pk}/change/"
    response = client.post(url, {**fields, "positive_tags": [vip.pk, gold.pk]}, follow=True)
    assert [str(m) for m in response.context["messages"]][:1] == [
        "Campaign “Spring sale” selects people by this segment: from now on by its new rule, unless already sending."
    ]
    response = client.post(url, {**fields, "positive_tags": [vip.pk, gold.pk], "description": "ours"}, follow=True)
    assert not [m for m in response.context["messages"] if "selects people" in str(m)]  # the rule is as it was


def test_tagging_untagging_or_opting_out_every_contact_a_filter_found_takes_as_many_statements_for_any_number():
    """The contacts are chosen by the statement that writes (INSERT … SELECT), not read into Python and written in
    batches: 12,000 contacts take the statements that 100 do."""
    from tests.browser.conftest import contacts_tagged

    client = admin_client_for()

    def statements(tag: Tag, action: str) -> int:
        every = {"select_across": "1", "index": "0", "_selected_action": ["1"], "action": action, "tags": "spring"}
        with CaptureQueriesContext(connection) as queries:
            assert client.post(f"/admin/contacts/contact/?tag={tag.pk}", every).status_code == 302
        return len(queries.captured_queries)

    few, many = contacts_tagged(100, "few"), contacts_tagged(12_000, "many", start=1000)
    for action in ("add_tags", "remove_tags", "opt_out"):
        assert statements(many, action) == statements(few, action), action
    assert not Tag.objects.get(name="spring").contacts.exists()
    assert Unsubscriber.objects.count() == 12_100
