"""What every list of the API does alike, as an integrator meets it: pages and their size, ordering, filter
errors that name the query parameter sent."""

import io
import runpy

import pytest
import requests
import yaml

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path as route
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from campaigns.models import Campaign, Message
from config import urls as herald_urls
from contacts.models import Tag
from providers.models import DltTemplate, Sender
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
    MessageFactory,
    ProviderAccountFactory,
    SegmentFactory,
    SenderFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    api_client_for,
)

pytestmark = pytest.mark.django_db

LISTS = [
    "contacts", "tags", "segments", "unsubscribers", "imports", "provider-accounts", "senders", "templates",
    "campaigns", "messages",
]  # fmt: skip


@pytest.fixture
def api():
    return api_client_for(UserFactory(superuser=True))


@pytest.fixture(scope="module")
def schema() -> dict:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    return yaml.safe_load(out.getvalue())


class TestPages:
    def test_page_size_sets_the_size_of_a_page_and_the_next_page_keeps_it(self, api):
        ContactFactory.create_batch(3)
        first = api.get("/api/v1/contacts/?page_size=2").json()
        assert first["count"] == 3
        assert len(first["results"]) == 2
        second = api.get(first["next"]).json()
        assert len(second["results"]) == 1
        assert {c["id"] for c in first["results"]}.isdisjoint(c["id"] for c in second["results"])

    def test_a_huge_page_size_gives_a_page_of_1000(self, api):
        Tag.objects.bulk_create(Tag(name=f"tag-{n}") for n in range(1001))
        body = api.get("/api/v1/tags/?page_size=1000000").json()
        assert body["count"] == 1001
        assert len(body["results"]) == 1000
        assert body["next"]

    @pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/messages/"])
    def test_a_page_size_that_is_no_whole_number_from_1_is_a_400_naming_it(self, api, path):
        """It was taken as not given: `?page_size=all` answered the default 50, which looked like everything."""
        MessageFactory()
        for wrong in ("all", "0", "-5", "1.5"):
            response = api.get(path, {"page_size": wrong})
            assert response.status_code == 400, (wrong, response.content)
            assert response.json() == {"page_size": ["Give a whole number from 1 to 1000."]}
        assert api.get(path, {"page_size": ""}).status_code == 200
        assert len(api.get(path, {"page_size": "1"}).json()["results"]) == 1

    def test_a_page_past_the_end_is_a_404_saying_which_page_and_why(self, api):
        ContactFactory()
        response = api.get("/api/v1/contacts/?page=9")
        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page 9: That page contains no results."}

    @pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/tags/"])
    def test_a_page_that_is_no_whole_number_from_1_is_a_400_naming_it(self, api, path):
        """It was a 404, "Invalid page abc: That page number is not an integer.", as for a page past the end, where
        `?page_size=abc` is a 400."""
        ContactFactory(tags=[TagFactory()])
        for wrong in ("abc", "0", "-1", "1.5"):
            response = api.get(path, {"page": wrong})
            assert response.status_code == 400, wrong
            assert response.json() == {"page": ["Give a page number, a whole number from 1."]}
        assert len(api.get(path, {"page": ""}).json()["results"]) == 1
        assert len(api.get(path, {"page": "last"}).json()["results"]) == 1


class TestFilterErrors:
    @pytest.mark.parametrize(
        "url",
        ["/api/v1/messages/", "/api/v1/campaigns/", "/api/v1/contacts/", "/api/v1/unsubscribers/"],
    )
    def test_a_bad_date_is_a_400_naming_the_parameter_sent(self, api, url):
        response = api.get(url, {"created_after": "yesterday"})
        assert response.status_code == 400
        assert response.json() == {"created_after": ["Enter a valid date/time."]}

    @pytest.mark.parametrize(
        ("url", "said"),
        [
            ("/api/v1/messages/?campaign=999999", "No campaign has the id 999999."),
            ("/api/v1/messages/?contact=999999", "No contact has the id 999999."),
            ("/api/v1/contacts/?segment=1.5", "No segment has the id 1.5."),
            ("/api/v1/senders/?account=999999", "No provider account has the id 999999."),
            ("/api/v1/templates/?sender=abc", "No sender has the id abc."),
        ],
    )
    def test_an_id_that_is_no_object_is_a_400_naming_what_it_is_the_id_of(self, api, url, said):
        """It was Django's "Select a valid choice. That choice is not one of the available choices.", which named
        neither the object nor the id; a body's id that is none says it so (IdRelatedField)."""
        response = api.get(url)
        assert response.status_code == 400
        assert response.json() == {url.split("?")[1].split("=")[0]: [said]}

    def test_only_the_bad_end_of_a_range_is_named(self, api):
        response = api.get("/api/v1/campaigns/", {"send_at_after": "2026-01-01T00:00:00Z", "send_at_before": "soon"})
        assert response.status_code == 400
        assert list(response.json()) == ["send_at_before"]

    def test_a_good_range_filters(self, api):
        ContactFactory()
        assert api.get("/api/v1/contacts/", {"created_after": "2000-01-01T00:00:00Z"}).json()["count"] == 1
        assert api.get("/api/v1/contacts/", {"created_before": "2000-01-01T00:00:00Z"}).json()["count"] == 0


class TestOrdering:
    def test_ordering_sorts_by_the_fields_given(self, api):
        for name in ("b", "c", "a"):
            Tag.objects.create(name=name)
        names = [tag["name"] for tag in api.get("/api/v1/tags/?ordering=-name").json()["results"]]
        assert names == ["c", "b", "a"]

    def test_an_unknown_ordering_field_is_a_400_naming_ordering_and_the_fields_it_takes(self, api):
        response = api.get("/api/v1/campaigns/?ordering=-create_at")
        assert response.status_code == 400
        assert response.json() == {
            "ordering": ["Cannot order by -create_at; choose from id, name, state, created_at, send_at, launched_at."]
        }

    def test_empty_terms_order_nothing_as_an_empty_ordering_does(self, api):
        # `?ordering=,` (a form that joined no fields) was a 400 "Cannot order by , ;": an empty name among the fields.
        for name in ("b", "c", "a"):
            Tag.objects.create(name=name)
        by_default = api.get("/api/v1/tags/").json()["results"]
        assert api.get("/api/v1/tags/?ordering=,").json()["results"] == by_default
        assert [tag["name"] for tag in api.get("/api/v1/tags/?ordering=,-name,").json()["results"]] == ["c", "b", "a"]


class TestBodies:
    def test_a_body_that_is_not_json_is_a_400_in_the_shape_of_every_400(self, api):
        response = api.generic("POST", "/api/v1/contacts/", "phone=+919812345678", "application/json")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["JSON parse error - Expecting value: line 1 column 1 (char 0)"]}

    def test_a_body_that_is_not_an_object_is_a_400_in_that_same_shape(self, api):
        response = api.post("/api/v1/tags/", ["vip"], format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["non_field_errors"]

    def test_a_body_over_the_size_limit_is_a_413_saying_so_in_json(self, api, settings):
        """It was Django's HTML page "Bad Request (400)", which said nothing of why."""
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
        body = {"phone": "+33611111111", "attributes": {"notes": "x" * (1024 * 1024)}}
        response = api.post("/api/v1/contacts/", body, format="json")
        assert response.status_code == 413
        assert response.json() == {
            "detail": "The request body is over 1 MB (DATA_UPLOAD_MAX_MEMORY_SIZE): send less at a time, or many "
            "contacts as a file to /api/v1/imports/."
        }


class TestTokens:
    def test_a_token_with_a_null_character_is_a_401_like_any_wrong_token_not_a_500(self):
        client = APIClient(HTTP_AUTHORIZATION="Token 3f9a\x00b")
        client.raise_request_exception = False
        response = client.get("/api/v1/contacts/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token."}

    def test_a_token_sent_as_bearer_is_a_401_saying_to_write_token(self):
        """Most HTTP clients and OpenAPI generators send a token as `Bearer <key>`; the 401 said that no credentials
        were provided, which sent integrators looking for a missing header."""
        token = Token.objects.create(user=UserFactory(superuser=True))
        response = APIClient(HTTP_AUTHORIZATION=f"Bearer {token.key}").get("/api/v1/contacts/")
        assert response.status_code == 401
        assert response.json() == {
            "detail": 'Send the token as "Authorization: Token <key>": this API takes the word Token, not Bearer.'
        }
        assert APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/v1/contacts/").status_code == 200


class TestSearch:
    def test_search_finds_by_the_list_s_text_columns(self, api):
        ContactFactory(first_name="Zubin")
        ContactFactory(first_name="Asha")
        assert [c["first_name"] for c in api.get("/api/v1/contacts/?search=zub").json()["results"]] == ["Zubin"]

    def test_a_search_it_cannot_run_is_a_400_naming_search(self, api):
        response = api.get("/api/v1/contacts/?search=a%00b")
        assert response.status_code == 400
        assert response.json() == {"search": ["Null characters are not allowed."]}


class TestIdAndAddressFilters:
    def test_a_segment_that_does_not_exist_is_a_400_like_any_other_id_filter(self, api):
        segment = SegmentFactory(positive_tags=[TagFactory(name="vip")])
        ContactFactory(tags=list(segment.positive_tags.all()))
        assert api.get(f"/api/v1/contacts/?segment={segment.pk}").json()["count"] == 1
        for wrong in (f"{segment.pk}.5", str(segment.pk + 1000)):
            response = api.get(f"/api/v1/contacts/?segment={wrong}")
            assert response.status_code == 400, wrong
            assert list(response.json()) == ["segment"]

    def test_messages_are_found_by_a_number_as_people_write_it(self, api):
        message = MessageFactory(contact=ContactFactory(phone="+919812345678"))
        for written in ("+919812345678", "098123 45678", "+91 98123-45678"):
            results = api.get("/api/v1/messages/", {"address": written}).json()["results"]
            assert [m["id"] for m in results] == [message.pk], written

    def test_messages_are_found_by_a_number_whose_plus_the_url_did_not_encode(self, api):
        """`?address=+33612345678` arrives as " 33612345678", which found no message."""
        message = MessageFactory(contact=ContactFactory(phone="+33612345678"))
        response = api.get("/api/v1/messages/?address=+33612345678")
        assert response.status_code == 200, response.json()
        assert [m["id"] for m in response.json()["results"]] == [message.pk]

    def test_a_message_address_that_is_neither_a_number_nor_an_e_mail_is_a_400_naming_it(self, api):
        MessageFactory()
        response = api.get("/api/v1/messages/", {"address": "garbage"})
        assert response.status_code == 400
        assert list(response.json()) == ["address"]
        assert "'garbage' is neither" in response.json()["address"][0]

    @pytest.mark.parametrize("name, value", [("address", "+919812345678"), ("provider_message_id", "pm-42")])
    def test_messages_by_address_or_vendor_id_are_looked_up_in_their_index(self, api, name, value):
        """Both columns are indexed after the account, (account, address) and (account, provider_message_id): a
        filter without the account read the whole message table, millions of rows."""
        message = MessageFactory(contact=ContactFactory(phone="+919812345678"), provider_message_id="pm-42")
        MessageFactory()
        with connection.cursor() as cursor:  # the account's other messages: on two rows either index could serve
            cursor.execute(
                """INSERT INTO campaigns_message (account_id, address, status, channel, provider_message_id)
                   SELECT %s, '+9198' || lpad(n::text, 8, '0'), 'delivered', 'sms', 'other-' || n
                   FROM generate_series(1, 2000) n""",
                [message.account_id],
            )
        with CaptureQueriesContext(connection) as queries:
            results = api.get("/api/v1/messages/", {name: value}).json()["results"]
        assert [m["id"] for m in results] == [message.pk]
        listing = next(q["sql"] for q in queries if 'FROM "campaigns_message"' in q["sql"] and "LIMIT" in q["sql"])
        with connection.cursor() as cursor:
            # Analysed (autovacuum may have, after other tests), PostgreSQL rightly walks the primary key backwards
            # on so few rows; planned with neither that nor a table scan, it shows which index the filter can use.
            cursor.execute("ANALYZE campaigns_message")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("EXPLAIN " + listing)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        index = {"address": "message_account_address_idx", "provider_message_id": "message_provider_id_idx"}[name]
        lines = plan.splitlines()
        scan = next((n for n, line in enumerate(lines) if f"Bitmap Index Scan on {index}" in line), None)
        assert scan is not None, plan
        # Led by the account: a descent per account, not a read of the whole index (PostgreSQL 16 has no skip scan)
        assert "Index Cond: ((account_id = ANY" in lines[scan + 1] and name in lines[scan + 1], plan

    @pytest.mark.parametrize("path, name", [("/api/v1/messages/", "status"), ("/api/v1/campaigns/", "state")])
    def test_an_empty_choice_filters_nothing_as_every_other_empty_parameter(self, api, path, name):
        MessageFactory(status="delivered")
        everything = api.get(path).json()["results"]
        answer = api.get(path, {name: ""})
        assert answer.status_code == 200, answer.content
        assert answer.json()["results"] == everything and everything

    def test_a_tag_name_that_is_no_tag_is_a_400_naming_it_not_an_empty_list(self, api):
        ContactFactory(tags=[TagFactory(name="VIP")])
        assert api.get("/api/v1/contacts/?tag=vip").json()["count"] == 1
        response = api.get("/api/v1/contacts/?tag=vip,newsleter")
        assert response.status_code == 400
        assert response.json() == {"tag": ["No tag named 'newsleter'."]}

    @pytest.mark.parametrize(
        "path, param, value",
        [("/api/v1/contacts/", "country", "fr"), ("/api/v1/senders/", "country", "fr"),
         ("/api/v1/senders/", "service", "t"), ("/api/v1/provider-accounts/", "currency", "eur")],
    )  # fmt: skip
    def test_a_code_is_found_in_any_case_as_the_writes_take_it(self, api, path, param, value):
        """The writes store a country, service or currency code in capitals whatever the case sent; the contacts'
        `?country=fr` found it, the senders' `?country=fr` and the accounts' `?currency=eur` answered nothing."""
        account = ProviderAccountFactory(kind="octopush", currency="EUR")
        ContactFactory(country="FR")
        SenderFactory(account=account, country="FR", service="T")
        assert api.get(path, {param: value}).json()["count"] == 1
        assert api.get(path, {param: value.upper()}).json()["count"] == 1
        if param == "country":  # read as the fields read it: two letters that are no country are a 400
            assert list(api.get(path, {param: "zz"}).json()) == ["country"]
        else:
            assert api.get(path, {param: "zz"}).json()["count"] == 0

    def test_templates_by_a_sender_that_does_not_exist_is_a_400_like_any_other_id_filter(self, api):
        sender = SenderFactory()
        template = DltTemplateFactory(account=sender.account, senders=[sender])
        DltTemplateFactory(account=sender.account)
        assert [t["id"] for t in api.get(f"/api/v1/templates/?sender={sender.pk}").json()["results"]] == [template.pk]
        response = api.get(f"/api/v1/templates/?sender={sender.pk + 1000}")
        assert response.status_code == 400
        assert list(response.json()) == ["sender"]


class TestUnknownParameters:
    """A query parameter that a list does not read was ignored, and the answer was the whole list: a typo
    (`?campaign_id=` for `?campaign=`, `?tags=` for `?tag=`) looked like a filter that worked."""

    def test_a_parameter_no_filter_reads_is_a_400_naming_it_not_the_whole_list(self, api):
        MessageFactory()
        MessageFactory()
        response = api.get("/api/v1/messages/", {"campaign_id": 999, "status": "pending"})
        assert response.status_code == 400
        assert list(response.json()) == ["campaign_id"]
        assert "campaign, " in response.json()["campaign_id"][0] and "cursor" in response.json()["campaign_id"][0]

    def test_a_parameter_given_twice_is_a_400_unless_it_takes_several_values(self, api):
        """The last value was kept: `?campaign=1&campaign=2` answered campaign 2's messages alone, silently."""
        first, second = MessageFactory(status="delivered"), MessageFactory(status="read")
        response = api.get(f"/api/v1/messages/?campaign={first.campaign_id}&campaign={second.campaign_id}")
        assert response.status_code == 400
        assert response.json() == {"campaign": ["Give one value: this parameter is not repeated."]}
        assert list(api.get("/api/v1/contacts/?page_size=1&page_size=2").json()) == ["page_size"]
        both = api.get("/api/v1/messages/?status=delivered&status=read").json()["results"]
        assert sorted(m["id"] for m in both) == [first.pk, second.pk]
        assert api.get(f"/api/v1/messages/?campaign={first.campaign_id}&campaign=").status_code == 200

    def test_a_segment_s_contacts_take_their_pages_only(self, api):
        segment = SegmentFactory(positive_tags=[TagFactory(name="vip")])
        ContactFactory(tags=list(segment.positive_tags.all()), first_name="Zubin")
        url = f"/api/v1/segments/{segment.pk}/contacts/"
        assert api.get(url, {"page_size": 1, "page": 1}).json()["count"] == 1
        response = api.get(url, {"search": "nobody"})
        assert response.status_code == 400
        assert response.json() == {"search": ["Unknown parameter; this list takes page, page_size."]}

    @pytest.mark.parametrize("name", LISTS)
    def test_every_list_refuses_a_parameter_it_does_not_take(self, api, name):
        response = api.get(f"/api/v1/{name}/", {"nonsense": "1"})
        assert response.status_code == 400, response.content
        assert list(response.json()) == ["nonsense"]

    @pytest.mark.parametrize("name", LISTS)
    def test_every_parameter_the_schema_lists_is_taken(self, api, schema, name):
        operation = schema["paths"][f"/api/v1/{name}/"]["get"]
        params = [p["name"] for p in operation["parameters"] if p["in"] == "query"]
        assert params
        for param in [*params, "format"]:
            response = api.get(f"/api/v1/{name}/", {param: "json" if param == "format" else "1"})
            assert "Unknown parameter" not in str(response.content), (param, response.content)

    def test_every_operation_refuses_a_parameter_it_does_not_take_not_only_the_lists(self, api, schema):
        """Off the lists a query parameter was ignored: `GET /campaigns/5/?fields=name` answered the whole campaign
        as if trimmed to its name, `POST /messages/?dry_run=true` sent the message."""
        answers = {}
        for path, operations in schema["paths"].items():
            for method in set(operations) & {"get", "post", "put", "patch", "delete"}:
                url = path.replace("{id}", "1") + "?nonsense=1"
                response = getattr(api, method)(url, {}, format="json")
                json = response.get("Content-Type") == "application/json"
                answers[f"{method.upper()} {path}"] = (response.status_code, tuple(response.json()) if json else None)
        assert len(answers) > 40
        assert set(answers.values()) == {(400, ("nonsense",))}, answers

    def test_an_object_read_with_a_parameter_is_a_400_saying_it_takes_none_but_format(self, api):
        campaign = CampaignFactory()
        response = api.get(f"/api/v1/campaigns/{campaign.pk}/", {"fields": "name"})
        assert response.status_code == 400
        assert response.json() == {
            "fields": ["Unknown parameter; this takes no query parameter (a list's filters go there)."]
        }
        assert api.get(f"/api/v1/campaigns/{campaign.pk}/", {"format": "json"}).json()["id"] == campaign.pk

    def test_paging_searching_and_ordering_go_on_as_before(self, api):
        ContactFactory.create_batch(3)
        response = api.get(
            "/api/v1/contacts/", {"page": 2, "page_size": 2, "ordering": "-id", "search": "", "format": "json"}
        )
        assert response.status_code == 200
        assert len(response.json()["results"]) == 1


class TestIdsInBodies:
    """An id in a body was passed to the database as sent, and PostgreSQL read 1.5 as 1: `"account": 1.5` named
    account 1 instead of being refused, as `?account=1.5` is."""

    @pytest.mark.parametrize(
        "path, model, body, field",
        [
            ("/api/v1/senders/", Sender, {"name": "NEW", "channel": "sms"}, "account"),
            ("/api/v1/templates/", DltTemplate, {"name": "t", "dlt_template_id": "1107000000000000099",
                                                 "type": "T", "body": "Hi {#var#}"}, "senders"),
            ("/api/v1/campaigns/", Campaign, {"name": "c", "text": "Hello"}, "account"),
            ("/api/v1/campaigns/", Campaign, {"name": "c", "text": "Hello"}, "sender"),
            ("/api/v1/campaigns/", Campaign, {"name": "c", "text": "Hello"}, "segments"),
            ("/api/v1/messages/", Message, {"to": "+33612345678", "text": "Code 4711"}, "sender"),
        ],
    )  # fmt: skip
    def test_an_id_that_is_not_a_whole_number_is_a_400_naming_the_field(self, api, path, model, body, field):
        account = ProviderAccountFactory(kind="octopush")
        sender = SenderFactory(account=account, country="FR", service="")
        segment = SegmentFactory()
        ids = {"account": account.pk, "sender": sender.pk, "segments": [segment.pk], "senders": [sender.pk]}
        others = ("account", "sender") if path in ("/api/v1/campaigns/", "/api/v1/messages/") else ("account",)
        body = {**body, **{name: ids[name] for name in others if name != field}}
        wrong = [ids[field][0] + 0.5] if isinstance(ids[field], list) else ids[field] + 0.5
        before = model.objects.count()
        response = api.post(path, {**body, field: wrong}, format="json")
        assert response.status_code == 400, response.content
        assert field in response.json()
        assert "Incorrect type. Expected the " in str(response.json()[field]) and "received float." in str(
            response.json()[field]
        )
        assert model.objects.count() == before
        assert api.post(path, {**body, field: ids[field]}, format="json").status_code in (201, 202)

    def test_a_refused_id_says_what_it_is_the_id_of(self, api):
        # DRF said "Incorrect type. Expected pk value, received str." for a sender given by its name, and
        # 'Invalid pk "99" - object does not exist.' for one that is not there.
        account = ProviderAccountFactory(kind="octopush")
        body = {"account": account.pk, "to": "+33612345678", "text": "Code 4711"}
        for sender, said in [
            ("HERALD", "'HERALD' is not an id: give the sender's id, a whole number."),
            (987654, "No sender has the id 987654."),
            (True, "Incorrect type. Expected the sender's id, a whole number, received bool."),
            ({"id": 1}, "Incorrect type. Expected the sender's id, a whole number, received dict."),
        ]:
            response = api.post("/api/v1/messages/", {**body, "sender": sender}, format="json")
            assert (response.status_code, response.json()) == (400, {"sender": [said]}), sender
        response = api.post("/api/v1/templates/", {"name": "t", "dlt_template_id": "1107000000000000099", "type": "T",
                                                   "body": "Hi {#var#}", "senders": ["HERALD"]}, format="json")  # fmt: skip
        assert response.json() == {"senders": ["'HERALD' is not an id: give the sender's id, a whole number."]}
        response = api.post("/api/v1/messages/", {**body, "account": "octopush"}, format="json")
        assert response.json() == {
            "account": ["'octopush' is not an id: give the provider account's id, a whole number."]
        }


class TestListsInBodies:
    """A relation of many given as a JSON object was read as the object's keys, and `{}` as no object at all:
    `"excluded_tags": {}` left a campaign excluding no one, `"positive_tags": {}` made a segment of everyone."""

    @pytest.mark.parametrize(
        "factory, path, field",
        [
            ("segment", "/api/v1/segments/{}/", "positive_tags"),
            ("segment", "/api/v1/segments/{}/", "negative_tags"),
            ("campaign", "/api/v1/campaigns/{}/", "excluded_tags"),
            ("campaign", "/api/v1/campaigns/{}/", "tags"),
            ("template", "/api/v1/templates/{}/", "senders"),
        ],
    )
    def test_an_object_where_a_list_of_related_objects_goes_is_a_400_naming_the_field_and_changes_nothing(
        self, api, factory, path, field
    ):
        tag = TagFactory(name="churned")
        sender = SenderFactory()
        objects = {
            "segment": lambda: SegmentFactory(positive_tags=[tag], negative_tags=[tag]),
            "campaign": lambda: CampaignFactory(tags=[tag], excluded_tags=[tag]),
            "template": lambda: DltTemplateFactory(account=sender.account, senders=[sender]),
        }
        target = objects[factory]()
        response = api.patch(path.format(target.pk), {field: {}}, format="json")
        assert response.status_code == 400, response.content
        assert response.json() == {field: ['Expected a list of items but got type "dict".']}
        assert getattr(target, field).count() == 1, "nothing changed"


class TestLinks:
    """Behind a proxy that ends TLS (the README's production), the links the API gave were http://: a client
    following a status URL or a next page sent its token in clear, or was refused."""

    @pytest.mark.parametrize("proxies, scheme", [("1", "https"), ("0", "http")])
    def test_behind_a_trusted_proxy_the_links_say_https_as_the_client_came(
        self, api, settings, monkeypatch, proxies, scheme
    ):
        monkeypatch.setenv("TRUSTED_PROXIES", proxies)
        configured = runpy.run_path(str(settings.BASE_DIR / "config" / "settings.py"))
        settings.SECURE_PROXY_SSL_HEADER = configured.get("SECURE_PROXY_SSL_HEADER")  # None unless proxies are trusted
        account = ProviderAccountFactory(kind="octopush")
        MessageFactory.create_batch(2)
        https = {"HTTP_X_FORWARDED_PROTO": "https"}

        sent = api.post(
            "/api/v1/messages/", {"account": account.pk, "to": "+33612345678", "text": "Code 4711"}, **https
        )
        page = api.get("/api/v1/messages/", {"page_size": 1}, **https).json()

        assert sent.status_code == 202, sent.json()
        links = [sent["Location"], sent.json()["status_url"], page["next"]]
        assert [link.split("://")[0] for link in links] == [scheme] * 3


class TestPaths:
    """Answers about the path itself are JSON too. A path without its trailing slash was Django's 301, which a
    client following redirects sent again as a GET (the list answered 200, nothing was written), or with DEBUG a
    500 for a POST; a path that is none was the HTML 404 page."""

    def test_a_post_without_the_trailing_slash_is_followed_with_its_method_and_body(self, web_server):
        token = Token.objects.create(user=UserFactory(superuser=True))
        response = requests.post(
            f"{web_server.url}/api/v1/tags", json={"name": "vip"}, headers={"Authorization": f"Token {token.key}"},
            timeout=30,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        assert [(r.status_code, r.headers["Location"]) for r in response.history] == [(308, "/api/v1/tags/")]
        assert list(Tag.objects.values_list("name", flat=True)) == ["vip"]

    @pytest.mark.parametrize("debug", [False, True])
    def test_the_redirect_says_why_in_json_with_or_without_debug(self, api, settings, debug):
        settings.DEBUG = debug
        response = api.post("/api/v1/tags?page=1", {"name": "vip"}, format="json")
        assert response.status_code == 308
        assert response["Location"] == "/api/v1/tags/?page=1"
        assert response.json() == {
            "detail": "The API's paths end with a slash: /api/v1/tags/ (this answer redirects there)."
        }
        assert not Tag.objects.exists()

    @pytest.mark.parametrize("path", ["/api/v1/contact/", "/api/v1/contacts/1/nothing/", "/api/v2/contacts/"])
    def test_a_path_that_is_none_is_a_json_404(self, api, path):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}


def _broken_view(request):
    raise RuntimeError("a bug, with its traceback")


class _BrokenApiView(APIView):
    """An API view (DRF's handling of its errors first) that fails, open to anyone."""

    authentication_classes, permission_classes = [], []

    def get(self, request):
        raise RuntimeError("a bug, with its traceback")


# The project's URLs and error handlers, with views that fail, for TestServerErrors (@pytest.mark.urls).
urlpatterns = [
    route("api/v1/broken/", _broken_view),
    route("api/v1/broken-api-view/", _BrokenApiView.as_view()),
    route("broken/", _broken_view),
    *herald_urls.urlpatterns,
]
handler400, handler500 = herald_urls.handler400, herald_urls.handler500


@pytest.mark.urls("tests.test_api_conventions")
class TestServerErrors:
    """With DEBUG off, an error Herald did not expect, and a request with a Host header it does not serve, were
    Django's HTML pages under /api/ too; they are JSON there now, and still logged with their traceback."""

    @pytest.fixture
    def client(self, settings):
        settings.DEBUG = False
        return APIClient(raise_request_exception=False)

    @pytest.mark.parametrize(
        ("debug", "path"), [(False, "/api/v1/broken/"), (True, "/api/v1/broken/"), (True, "/api/v1/broken-api-view/")]
    )
    def test_a_server_error_is_a_json_500_without_the_traceback_which_goes_to_the_log(
        self, client, settings, caplog, debug, path
    ):
        """With DEBUG on too (`make run`): Django answered its debugging page there (HTML, or the traceback as text),
        not the JSON the API's error table promises, which only DEBUG off gave."""
        settings.DEBUG = debug
        response = client.get(path, HTTP_ACCEPT="text/html,application/json")
        assert response.status_code == 500
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "detail": "Server error: Herald could not answer this request. The error is in its log."
        }
        (record,) = [r for r in caplog.records if r.name == "django.request"]
        assert record.levelname == "ERROR" and "a bug, with its traceback" in str(record.exc_info[1])

    @pytest.mark.parametrize("debug", [False, True])
    def test_outside_the_api_a_server_error_is_still_the_html_page(self, client, settings, debug):
        settings.DEBUG = debug
        response = client.get("/broken/", HTTP_ACCEPT="text/html")
        assert response.status_code == 500
        assert response["Content-Type"].startswith("text/html")

    def test_a_host_the_server_does_not_answer_to_is_a_json_400_and_logged(self, client, caplog):
        response = client.get("/api/v1/tags/", HTTP_HOST="herald.evil.example")
        assert response.status_code == 400
        assert response.json() == {
            "detail": "The Host header names no host this server answers to (its ALLOWED_HOSTS)."
        }
        assert [r.name for r in caplog.records] == ["django.security.DisallowedHost"]


class TestUnknownFields:
    """A body's field that the operation does not have was ignored: a typo did nothing, silently, and the write
    went through without it (`exclude_tags` for excluded_tags: a campaign that sends to those it meant to leave
    out)."""

    def test_a_campaign_with_a_misspelt_field_is_refused_naming_it_and_not_created(self, api):
        account = ProviderAccountFactory(kind="octopush")
        TagFactory(name="staff")
        response = api.post(
            "/api/v1/campaigns/",
            {"name": "Sale", "account": account.pk, "text": "Hello", "exclude_tags": ["staff"]},
            format="json",
        )
        assert response.status_code == 400
        assert list(response.json()) == ["exclude_tags"]
        message = response.json()["exclude_tags"][0]
        assert (
            message.startswith("Unknown field; this takes ") and "excluded_tags" in message and "state," not in message
        )
        assert not Campaign.objects.exists()

    def test_every_body_refuses_a_field_it_does_not_have(self, api, schema):
        account = ProviderAccountFactory(kind="octopush")
        sender = SenderFactory(account=account, country="FR", service="")
        ids = {
            "contacts": ContactFactory().pk, "tags": TagFactory().pk, "segments": SegmentFactory().pk,
            "unsubscribers": UnsubscriberFactory().pk, "provider-accounts": account.pk, "senders": sender.pk,
            "templates": DltTemplateFactory(account=account, senders=[sender]).pk,
            "campaigns": CampaignFactory(account=account, sender=sender).pk,
        }  # fmt: skip
        checked = []
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                content = operation.get("requestBody", {}).get("content", {})
                if method not in ("post", "put", "patch") or not content:
                    continue
                url = path.replace("{id}", str(ids.get(path.split("/")[3], 1)))
                if "application/json" in content:
                    response = api.generic(method.upper(), url, '{"nonsense": 1}', "application/json")
                else:  # an import's upload
                    response = api.post(url, {"nonsense": "1"}, format="multipart")
                assert response.status_code == 400, (method, url, response.content)
                assert list(response.json()) == ["nonsense"], (method, url, response.content)
                checked.append(f"{method.upper()} {path}")
        assert len(checked) >= 20, checked

    def test_read_only_fields_sent_back_as_a_get_shows_them_are_no_unknown_fields(self, api):
        tag = TagFactory(name="vip")
        shown = api.get(f"/api/v1/tags/{tag.pk}/").json()
        response = api.put(f"/api/v1/tags/{tag.pk}/", {**shown, "description": "Best customers"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["description"] == "Best customers"


class TestTakenValues:
    """A value another record has already was told in Django's words, which differed in capitals and words from
    model to model ("segment with this name already exists.", "Contact with this Phone already exists.", "DLT template
    with this DLT template id already exists."): each now reads "A <thing> with this <field> already exists.", on
    its field, as the admin tells it."""

    @pytest.mark.parametrize(
        ("path", "existing", "body", "field", "told"),
        [
            ("contacts", lambda: ContactFactory(phone="+919812345678"), {"phone": "+91 98123 45678"}, "phone",
             "A contact with this phone number already exists."),
            ("tags", lambda: TagFactory(name="VIP"), {"name": "VIP"}, "name",
             "A tag with this name already exists (in capitals or not)."),
            ("tags", lambda: TagFactory(name="VIP"), {"name": "vip"}, "name",
             "A tag with this name already exists (in capitals or not)."),
            ("segments", lambda: SegmentFactory(name="Big spenders"), {"name": "Big spenders"}, "name",
             "A segment with this name already exists."),
            ("provider-accounts", lambda: ProviderAccountFactory(name="MOB"),
             {"kind": "mobtexting", "name": "MOB", "credentials": {"api_key": "k"}}, "name",
             "A provider account with this name already exists."),
            ("templates", lambda: DltTemplateFactory(dlt_template_id="1107000000000000001"),
             {"name": "OTP", "dlt_template_id": "1107000000000000001", "body": "OTP {#var#}"}, "dlt_template_id",
             "A DLT template with this DLT template id already exists."),
            ("unsubscribers", lambda: UnsubscriberFactory(address="+919812345678"), {"address": "+919812345678"},
             "address", "This address is already unsubscribed in this scope."),
        ],
        ids=["contact phone", "tag name", "tag name in other capitals", "segment name", "account name",
             "DLT template id", "opt-out"],
    )  # fmt: skip
    def test_a_taken_value_is_told_one_way_on_its_field(self, api, path, existing, body, field, told):
        existing()
        response = api.post(f"/api/v1/{path}/", body, format="json")
        assert (response.status_code, response.json()) == (400, {field: [told]})
