"""The admin's autocomplete (the search box of a relation's select), as any staff browser may call it."""

import pytest

from django.test import Client
from django.urls import reverse

from tests.factories import ContactFactory, ProviderAccountFactory, SenderFactory, TagFactory, admin_client_for

pytestmark = pytest.mark.django_db

# A contact's tag, as the contact page's inline asks for it.
TAG_OF_A_CONTACT = {"app_label": "contacts", "model_name": "contacttag", "field_name": "tag"}


def test_it_finds_by_part_of_a_name():
    TagFactory(name="Diwali 2026")
    TagFactory(name="Newsletter")
    body = admin_client_for().get("/admin/autocomplete/", {**TAG_OF_A_CONTACT, "term": "diwali"}).json()
    assert [result["text"] for result in body["results"]] == ["Diwali 2026"]


def test_a_nul_character_in_the_term_is_searched_without_it_not_a_500():
    # PostgreSQL cannot take a NUL in a query: `?term=%00` made every autocomplete a 500.
    TagFactory(name="Diwali 2026")
    response = admin_client_for().get("/admin/autocomplete/", {**TAG_OF_A_CONTACT, "term": "diw\x00ali"})
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["Diwali 2026"]


def test_it_still_asks_for_a_sign_in():
    response = Client().get("/admin/autocomplete/", {**TAG_OF_A_CONTACT, "term": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_dlt_templates_sender_search_does_not_query_per_sender(django_assert_max_num_queries):
    """Each sender is listed by its label (Sender.__str__: 'HERALD (SMS on MOBtexting sandbox; transactional, IN)'),
    which names its account: the search box of a DLT template's senders read each sender's account in a query of
    its own, twenty more queries a page of answers."""
    senders = {"app_label": "providers", "model_name": "dlttemplate", "field_name": "senders", "term": "HR"}
    client = admin_client_for()
    SenderFactory(account=ProviderAccountFactory(name="Delhi"))
    with django_assert_max_num_queries(20) as few:
        assert client.get("/admin/autocomplete/", senders).status_code == 200
    for _ in range(15):
        SenderFactory(account=ProviderAccountFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get("/admin/autocomplete/", senders).json()
    assert len(body["results"]) == 16 and any(" on Delhi;" in result["text"] for result in body["results"])


@pytest.mark.parametrize("junk", ["france", "²"])  # "²": a digit to str.isdigit(), not a number to int()
@pytest.mark.parametrize(
    ("page", "field"),
    [
        ("contact", "tag_list"),
        ("segment", "positive_tags"),
        ("import", "tags"),
        ("sender", "account"),
        ("dlt template", "senders"),
    ],
)
def test_a_choice_posted_by_hand_that_is_no_id_is_refused_on_its_field_not_a_500(page, field, junk):
    """The search box, shown again beside the form's errors, looked the posted value up as an id: ValueError, a 500."""
    contact = ContactFactory()
    url = {
        "contact": reverse("admin:contacts_contact_change", args=[contact.pk]),
        "segment": reverse("admin:contacts_segment_add"),
        "import": reverse("admin:contacts_contactimport_add"),
        "sender": reverse("admin:providers_sender_add"),
        "dlt template": reverse("admin:providers_dlttemplate_add"),
    }[page]
    response = admin_client_for().post(url, {"phone": contact.phone, "name": "Spring", field: [junk]})
    assert response.status_code == 200
    form = response.context["form"] if page == "import" else response.context["adminform"].form  # its own page
    assert field in form.errors
