"""Contacts admin pages: a contact's opt-outs with their source, a segment's live count and preview while its rule
is edited (saved or not), the attribute keys the composer offers, the import button on the contact list."""

import pytest

from django.db import connection
from django.test import Client
from django.urls import reverse

from contacts import services
from contacts.models import Operator
from contacts.selectors import contact_attribute_keys, segment_count, segment_rule_preview
from tests.factories import (
    ContactFactory,
    SegmentFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
)

pytestmark = pytest.mark.django_db

PREVIEW = reverse("admin:contacts_segment_preview")


@pytest.fixture
def client():
    return admin_client_for()


@pytest.fixture
def tagged():
    news, vip = TagFactory(name="news"), TagFactory(name="vip")
    people = {
        "asha": ContactFactory(tags=[news], first_name="Asha"),
        "ravi": ContactFactory(tags=[news, vip], first_name="Ravi"),
        "meera": ContactFactory(tags=[vip], first_name="Meera"),
        "dev": ContactFactory(first_name="Dev"),
    }
    return {"news": news, "vip": vip, **people}


class TestSegmentPreview:
    def test_an_unsaved_rule_is_counted_and_previewed(self, client, tagged):
        body = client.post(PREVIEW, {"positive_tags": [tagged["news"].pk], "positive_operator": "any",
                                     "negative_tags": [tagged["vip"].pk], "negative_operator": "any"}).json()  # fmt: skip
        assert body["count"] == 1
        assert [c["name"] for c in body["contacts"]] == [f"Asha {tagged['asha'].last_name}"]
        assert body["contacts"][0]["url"] == reverse("admin:contacts_contact_change", args=[tagged["asha"].pk])

    def test_no_positive_tags_is_everyone(self, client, tagged):
        assert client.post(PREVIEW, {"positive_operator": "any", "negative_operator": "any"}).json()["count"] == 4

    @pytest.mark.parametrize(
        ("positive", "p_op", "negative", "n_op"),
        [
            (["news", "vip"], "all", [], "any"),
            (["news", "vip"], "any", ["news", "vip"], "all"),
            ([], "any", ["vip"], "any"),
        ],
    )
    def test_the_rule_means_what_a_saved_segment_means(self, tagged, positive, p_op, negative, n_op):
        segment = SegmentFactory(positive_tags=[tagged[n] for n in positive], positive_operator=p_op,
                                 negative_tags=[tagged[n] for n in negative], negative_operator=n_op)  # fmt: skip
        count, _ = segment_rule_preview(
            positive_tag_ids=[tagged[n].pk for n in positive], positive_operator=p_op,
            negative_tag_ids=[tagged[n].pk for n in negative], negative_operator=n_op,
        )  # fmt: skip
        assert count == segment_count(segment)

    def test_bad_input_is_refused_with_the_field(self, client):
        response = client.post(PREVIEW, {"positive_operator": "most", "positive_tags": ["x"]})
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"positive_operator", "positive_tags"}

    def test_two_queries_for_the_figures_whatever_the_segment(self, client, tagged, django_assert_max_num_queries):
        data = {"positive_tags": [tagged["news"].pk], "positive_operator": Operator.ANY, "negative_operator": "any"}
        with django_assert_max_num_queries(6) as few:
            client.post(PREVIEW, data)
        for _ in range(25):
            ContactFactory(tags=[tagged["news"]])
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert client.post(PREVIEW, data).json()["count"] == 27

    def test_permissions(self):
        response = Client().post(PREVIEW)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        segments_only = admin_client_for(UserFactory(is_staff=True, permissions=["contacts.view_segment"]))
        assert segments_only.post(PREVIEW).status_code == 403, "the preview shows contacts"
        both = admin_client_for(
            UserFactory(is_staff=True, permissions=["contacts.view_segment", "contacts.view_contact"])
        )
        assert both.post(PREVIEW).status_code == 200
        assert both.get(PREVIEW).status_code == 405

    def test_the_count_reads_the_same_on_load_and_after_a_refresh_as_the_segment_list_says_it(self, client):
        """It read "5000" on load and "2,161" once the rule changed (the browser's own formatting)."""
        news = TagFactory(name="news")
        with connection.cursor() as cursor:
            cursor.execute(
                """WITH added AS (INSERT INTO contacts_contact (phone) SELECT '+9199' || lpad(n::text, 8, '0')
                                  FROM generate_series(1, 1234) n RETURNING id)
                   INSERT INTO contacts_contacttag (contact_id, tag_id) SELECT id, %s FROM added""",
                [news.pk],
            )
        segment = SegmentFactory(positive_tags=[news])
        html = client.get(reverse("admin:contacts_segment_change", args=[segment.pk])).content.decode()
        assert 'data-segment="count">1,234</span>' in html
        body = client.post(PREVIEW, {"positive_tags": [news.pk], "positive_operator": "any",
                                     "negative_operator": "any"}).json()  # fmt: skip
        assert (body["count"], body["count_shown"]) == (1234, "1,234")
        listed = client.get(reverse("admin:contacts_segment_changelist")).content.decode()
        assert "1,234 (as of " in listed

    def test_the_add_page_starts_with_everyone(self, client, tagged):
        response = client.get(reverse("admin:contacts_segment_add"))
        assert response.context["segment_count"] == 4
        assert 'id="segment-live"' in response.content.decode()


def test_a_contacts_page_lists_its_opt_outs_with_their_source(client):
    contact = ContactFactory(phone="+919812345678", email="asha@example.com")
    UnsubscriberFactory(address=contact.phone, scope="sender", value="HERALD", source="inbound", reason="STOP")
    UnsubscriberFactory(address="asha@example.com", scope="all", source="provider")
    UnsubscriberFactory(address="+919800000000")
    response = client.get(reverse("admin:contacts_contact_change", args=[contact.pk]))
    html = response.content.decode()
    assert [u.source for u in response.context["opt_outs"]] == ["provider", "inbound"]
    assert "inbound STOP" in html and "provider webhook" in html and "HERALD" in html
    assert "+919800000000" not in html


def test_a_contacts_page_lists_the_opt_outs_lifted_from_it_with_who_lifted_them_and_when(client):
    """The person opted out, then was messaged: the page showed no opt-out at all and staff could not say why."""
    contact = ContactFactory(phone="+919812345678", email="asha@example.com")
    stop = UnsubscriberFactory(address=contact.phone, source="provider", reason="STOP")
    services.unsubscribers_remove(unsubscribers=[stop], user=UserFactory(username="ops-anna"), via="admin")
    response = client.get(reverse("admin:contacts_contact_change", args=[contact.pk]))
    html = response.content.decode()
    assert [(r.address, r.source, r.removed_by_name) for r in response.context["opt_outs_removed"]] == [
        ("+919812345678", "provider", "ops-anna")
    ]
    assert "Removed opt-outs" in html and "<td>ops-anna</td>" in html and "has not opted out" in html


@pytest.mark.parametrize(
    ("permissions", "linked"),
    [(["contacts.view_contact"], False), (["contacts.change_contact", "contacts.view_unsubscriber"], True)],
)
def test_a_contacts_opt_outs_link_to_their_pages_only_for_whom_may_open_them(permissions, linked):
    """A staff user who may see contacts but not opt-outs saw each opt-out's address as a link to a 403."""
    contact = ContactFactory(phone="+919812345678")
    opt_out = UnsubscriberFactory(address=contact.phone, reason="STOP")
    user = UserFactory(is_staff=True, permissions=permissions)
    html = admin_client_for(user).get(reverse("admin:contacts_contact_change", args=[contact.pk])).content.decode()
    assert "<td>STOP</td>" in html  # listed either way
    link = f'<a href="{reverse("admin:contacts_unsubscriber_change", args=[opt_out.pk])}">+919812345678</a>'
    assert (link in html) is linked


def test_a_contacts_delete_page_counts_its_tags_in_words_for_one(client):
    contact = ContactFactory(phone="+919812345678", first_name="Asha", last_name="", tags=[TagFactory(name="vip")])
    html = client.get(reverse("admin:contacts_contact_delete", args=[contact.pk])).content.decode()
    assert "<li>Contact: Asha (+919812345678)</li>" in html
    assert "<li>Its tags come off it (1 tag link).</li>" in html


def test_a_contact_without_opt_outs_says_so(client):
    contact = ContactFactory()
    html = client.get(reverse("admin:contacts_contact_change", args=[contact.pk])).content.decode()
    assert "has not opted out" in html
    assert "Record an opt-out" in html


def test_attribute_keys_come_from_a_sample_of_the_newest_contacts():
    ContactFactory(attributes={"old_key": 1})
    ContactFactory(attributes={"city": "Pune", "plan": "gold"})
    ContactFactory(attributes={"city": "Delhi"})
    assert contact_attribute_keys() == ["city", "old_key", "plan"]
    assert contact_attribute_keys(sample=2) == ["city", "plan"]


def test_the_contact_list_offers_the_import_page(client):
    html = client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert reverse("admin:contacts_contactimport_add") in html and "Import a file" in html


@pytest.mark.parametrize("model", ["contact", "tag", "segment", "unsubscriber"])
def test_an_add_page_shows_no_python_object_for_a_time_not_yet_set(client, model):
    """A new record's creation time is the database's to set: the add page shows nothing of it, not the
    placeholder object ("<django.db.models.expressions.DatabaseDefault object at 0x…>") that stands for it."""
    response = client.get(reverse(f"admin:contacts_{model}_add"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "DatabaseDefault" not in html and " object at 0x" not in html


def test_a_contacts_attributes_say_once_what_they_are_for_and_how_to_write_them(client):
    html = client.get(reverse("admin:contacts_contact_add")).content.decode()
    assert html.count("Free fields, usable in texts as {{name}}.") == 1
    assert 'Written as JSON: {"city": "Pune", "plan": "gold"}.' in html
