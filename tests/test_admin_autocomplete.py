"""The admin's autocomplete (the search box of a relation's select), as any staff browser may call it."""

import pytest

from django.test import Client

from tests.factories import TagFactory, admin_client_for

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
