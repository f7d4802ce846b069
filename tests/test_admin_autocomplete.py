"""The admin's autocomplete (the search box of a relation's select), as any staff browser may call it."""

import pytest

from django.test import Client

from tests.factories import ProviderAccountFactory, SenderFactory, TagFactory, admin_client_for

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
