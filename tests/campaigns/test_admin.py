"""Every admin page renders for a superuser; campaign pages; the engine's tables are view-only and cheap to list."""

import re
from datetime import timedelta

import pytest

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from rest_framework.authtoken.models import Token, TokenProxy

from campaigns import admin as campaigns_admin
from campaigns.admin import EstimatedCountPaginator
from campaigns.models import Campaign, Frame, Message, StatusEvent
from campaigns.services import campaign_cancel
from campaigns.services.editing import campaigns_delete
from config import pagination
from config.times import time_shown
from contacts import services as contacts_services
from contacts.models import ContactImport, UnsubscriberRemoval
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
    FrameFactory,
    MessageFactory,
    ProviderAccountFactory,
    SegmentFactory,
    SenderFactory,
    StatusEventFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
)

pytestmark = pytest.mark.django_db
REGISTERED = list(admin.site._registry.items())


def _superuser_request():
    request = RequestFactory().get("/")
    request.user = get_user_model()(is_superuser=True, is_active=True, is_staff=True)  # unsaved: no query needed
    return request


# The admins with an add page (the engine's tables are view-only and have none).
ADDABLE = [
    (model, model_admin) for model, model_admin in REGISTERED if model_admin.has_add_permission(_superuser_request())
]
HERALD_APPS = {"contacts", "providers", "campaigns"}


def make_one(model):
    """One object of a registered model, for its change page; None for models this suite does not know."""
    builders = {
        "contacts.Contact": lambda: ContactFactory(tags=[TagFactory()]),
        "contacts.Tag": TagFactory,
        "contacts.Segment": lambda: SegmentFactory(positive_tags=[TagFactory()], negative_tags=[TagFactory()]),
        "contacts.Unsubscriber": UnsubscriberFactory,
        "contacts.UnsubscriberRemoval": lambda: UnsubscriberRemoval.objects.create(
            address="+33612345678", scope="all", source="api", opted_out_at="2026-11-01T09:00Z", via="admin"
        ),
        "contacts.ContactImport": lambda: ContactImport.objects.create(
            file="imports/contacts/a.csv", original_name="a.csv"
        ),  # fmt: skip
        "providers.ProviderAccount": ProviderAccountFactory,
        "providers.Sender": SenderFactory,
        "providers.DltTemplate": lambda: DltTemplateFactory(senders=[SenderFactory()]),
        "campaigns.Campaign": lambda: CampaignFactory(tags=[TagFactory()], segments=[SegmentFactory()]),
        "campaigns.Message": MessageFactory,
        "campaigns.Frame": FrameFactory,
        "campaigns.StatusEvent": lambda: StatusEventFactory(message=MessageFactory()),
        "auth.User": UserFactory,
        "authtoken.TokenProxy": lambda: TokenProxy.objects.get(key=Token.objects.create(user=UserFactory()).key),
        "auth.Group": lambda: Group.objects.create(name="operators"),
        "django_celery_beat.IntervalSchedule": lambda: IntervalSchedule.objects.create(every=10, period="seconds"),
        "django_celery_beat.CrontabSchedule": lambda: CrontabSchedule.objects.create(minute="5"),
        "django_celery_beat.SolarSchedule": lambda: SolarSchedule.objects.create(
            event="sunrise", latitude=1, longitude=2
        ),  # fmt: skip
        "django_celery_beat.ClockedSchedule": lambda: ClockedSchedule.objects.create(clocked_time="2030-01-01T00:00Z"),
        "django_celery_beat.PeriodicTask": lambda: PeriodicTask.objects.create(
            name="tick", task="config.celery.ping", interval=IntervalSchedule.objects.create(every=1, period="minutes")
        ),
    }
    builder = builders.get(model._meta.label)
    return builder() if builder else None


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser():
    return UserFactory(superuser=True)


@pytest.fixture
def client(superuser):
    return admin_client_for(superuser)


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_every_changelist_and_add_page_renders(client, superuser, model, model_admin):
    assert client.get(admin_url(model, "changelist")).status_code == 200
    request = RequestFactory().get("/")
    request.user = superuser
    # View-only admins (the engine's tables) refuse the add page, as they should.
    expected = 200 if model_admin.has_add_permission(request) else 403
    assert client.get(admin_url(model, "add")).status_code == expected


@pytest.mark.parametrize(("model", "model_admin"), ADDABLE, ids=[m._meta.label for m, _ in ADDABLE])
def test_no_add_page_shows_a_python_object_for_a_value_the_database_sets(client, model, model_admin):
    """A creation time the database sets on save shows nothing on the add page, not the placeholder that stands for
    it ("Created at: <django.db.models.expressions.DatabaseDefault object at 0x…>")."""
    html = client.get(admin_url(model, "add")).content.decode()
    assert "DatabaseDefault" not in html and " object at 0x" not in html


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_every_change_page_renders_with_one_object(client, model, model_admin):
    obj = make_one(model)
    if obj is None:
        assert model._meta.app_label not in HERALD_APPS, f"add a builder for {model._meta.label}"
        pytest.skip(f"no builder for {model._meta.label}")
    assert client.get(admin_url(model, "change", obj.pk)).status_code == 200
    assert client.get(admin_url(model, "changelist")).status_code == 200


@pytest.mark.parametrize("name", ["message", "frame", "statusevent"])
def test_engine_tables_are_view_only(client, name):
    obj = {"message": MessageFactory, "frame": FrameFactory, "statusevent": StatusEventFactory}[name]()
    change = reverse(f"admin:campaigns_{name}_change", args=[obj.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {}).status_code == 403
    assert client.get(reverse(f"admin:campaigns_{name}_delete", args=[obj.pk])).status_code == 403
    assert client.get(reverse(f"admin:campaigns_{name}_add")).status_code == 403


def test_the_message_list_does_not_query_per_message(client, django_assert_max_num_queries):
    campaign = CampaignFactory()
    MessageFactory(campaign=campaign)
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("admin:campaigns_message_changelist"))
    for _ in range(20):
        MessageFactory(campaign=CampaignFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("admin:campaigns_message_changelist"))
    assert len(response.context["cl"].result_list) == 21


def test_the_message_list_offers_no_sort_by_a_status_it_does_not_show(client):
    """The status column shows `sending` for a pending message whose frame is on the wire; sorting it sorted by the
    stored status (and sorting millions of rows by what it shows is no cheaper), so it is not sortable."""
    frame = FrameFactory(state=Frame.State.SENDING)
    MessageFactory(campaign=frame.campaign, frame=frame)
    MessageFactory(status="delivered")
    url = reverse("admin:campaigns_message_changelist")
    html = client.get(url).content.decode()
    assert '<th scope="col" class="column-status_shown">' in html
    status_at = client.get(url).context["cl"].list_display.index("status_shown")
    ordering = client.get(url, {"o": str(status_at)}).context["cl"].queryset.query.order_by
    assert not [field for field in ordering if "status" in str(field)], ordering


@pytest.mark.parametrize("model", ["message", "frame", "statusevent"])
def test_the_engines_record_lists_offer_to_sort_by_id_only(client, model):
    """Millions of rows, one index to sort them by: a click on another column's header sorted the whole table."""
    FrameFactory(), MessageFactory(), StatusEventFactory()
    html = client.get(reverse(f"admin:campaigns_{model}_changelist")).content.decode()
    assert re.findall(r'<th scope="col" class="sortable[^"]*column-(\w+)', html) == ["id"]


@pytest.mark.parametrize(
    ("model", "column"), [("message", "address"), ("frame", "state"), ("statusevent", "received_at")]
)
def test_the_engines_record_lists_sort_by_no_other_column_a_url_names(client, model, column):
    """A bookmark or a link kept from before (?o=<column>) sorted the whole table by that column all the same."""
    for _ in range(2):
        MessageFactory(), FrameFactory(), StatusEventFactory()
    url = reverse(f"admin:campaigns_{model}_changelist")
    at = client.get(url).context["cl"].list_display.index(column)
    for order in (str(at), f"-{at}"):
        changelist = client.get(url, {"o": order}).context["cl"]
        assert changelist.queryset.query.order_by == ("-id",)
        ids = [row.pk for row in changelist.result_list]
        assert ids == sorted(ids, reverse=True)


def test_messages_are_found_by_exact_address_or_reference(client):
    message = MessageFactory()
    MessageFactory()
    url = reverse("admin:campaigns_message_changelist")
    assert list(client.get(url, {"q": message.address}).context["cl"].result_list) == [message]
    assert list(client.get(url, {"q": str(message.external_ref)}).context["cl"].result_list) == [message]


def messages_of_two_accounts(count: int) -> Campaign:
    """`count` messages, half on each of two accounts, to 1,000 numbers (+9199000…), then ANALYZE."""
    campaign, other = CampaignFactory(state="completed"), ProviderAccountFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO campaigns_message (campaign_id, account_id, address, status, channel, provider_message_id)
               SELECT %s, CASE WHEN n %% 2 = 0 THEN %s ELSE %s END, '+9199000' || lpad((n %% 1000)::text, 5, '0'),
                      'delivered', 'sms', 'pm-' || n
               FROM generate_series(1, %s) n""",
            [campaign.pk, campaign.account_id, other.pk, count],
        )
        cursor.execute("ANALYZE campaigns_message")
    return campaign


def plans_of(queries, table: str) -> list[str]:
    """The plans of the captured queries that read `table`, the planner steered off sequential scans (a few
    thousand rows: make it show which indexes it can use)."""
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]:
            cursor.execute("EXPLAIN " + sql)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plans


def test_message_search_is_an_equality_through_the_indexes_of_every_account(client):
    """Django's `=field` search compares UPPER(field) with UPPER(term), which no index serves; and (account,
    address) serves an address only with the accounts. A number typed the national way finds its messages."""
    messages_of_two_accounts(5000)
    url = reverse("admin:campaigns_message_changelist")
    with CaptureQueriesContext(connection) as queries:
        found = client.get(url, {"q": "+919900000042"}).context["cl"].result_list
    assert {m.address for m in found} == {"+919900000042"} and len(found) == 5
    searches = [q for q in queries.captured_queries if 'FROM "campaigns_message"' in q["sql"]]
    assert searches and all("UPPER(" not in q["sql"] and '"account_id" IN (' in q["sql"] for q in searches)
    for plan in plans_of(searches, "campaigns_message"):
        assert "message_account_address_idx" in plan and "message_provider_id_idx" in plan, plan
        assert "Seq Scan on campaigns_message" not in plan, plan
    assert list(client.get(url, {"q": "099000 00042"}).context["cl"].result_list) == list(found)
    assert [m.provider_message_id for m in client.get(url, {"q": "pm-77"}).context["cl"].result_list] == ["pm-77"]
    assert not client.get(url, {"q": "PM-77"}).context["cl"].result_list  # case-sensitive, as stored


def test_a_frame_cancelled_while_it_waited_shows_no_next_attempt_and_a_waiting_one_its_time(client):
    """A cancelled frame read "Next attempt at" a time to come, though it is never attempted again."""
    campaign = CampaignFactory(state="sending", audience_size=2)
    later = timezone.now() + timedelta(minutes=30)
    waiting = FrameFactory(campaign=campaign, seq=0, state="pending", next_attempt_at=later)
    campaign_cancel(campaign_id=campaign.pk)
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"
    shown = time_shown(later)
    frames = reverse("admin:campaigns_frame_changelist")
    cell = re.compile(r'<td class="field-next_attempt">(.*?)</td>')
    listed = client.get(frames).content.decode()
    assert shown not in listed and cell.findall(listed) == ["–"]
    page = client.get(reverse("admin:campaigns_frame_change", args=[waiting.pk])).content.decode()
    assert "Next attempt at" in page and shown not in page

    pending = FrameFactory(state="pending", next_attempt_at=later)
    assert cell.findall(client.get(frames).content.decode()) == [shown, "–"]
    assert shown in client.get(reverse("admin:campaigns_frame_change", args=[pending.pk])).content.decode()


def test_frame_and_report_searches_compare_whole_values_and_use_the_indexes_there_are(client):
    """A frame's key and a report's Herald reference are indexed; a ticket, a report's provider message id or
    address are not (the report path pays for every index), but are still compared as stored, not UPPER()."""
    frame = FrameFactory(ticket="grp-Abc")
    event = StatusEventFactory(external_ref="0190a2c4-7a11-7000-8000-000000000001", provider_message_id="pm-X1")
    StatusEventFactory.create_batch(3)
    frames, events = reverse("admin:campaigns_frame_changelist"), reverse("admin:campaigns_statusevent_changelist")
    assert list(client.get(frames, {"q": "grp-Abc"}).context["cl"].result_list) == [frame]
    assert not client.get(frames, {"q": "GRP-ABC"}).context["cl"].result_list
    assert list(client.get(frames, {"q": str(frame.key)}).context["cl"].result_list) == [frame]
    assert list(client.get(events, {"q": "pm-X1"}).context["cl"].result_list) == [event]
    assert not client.get(events, {"q": "PM-x1"}).context["cl"].result_list
    with CaptureQueriesContext(connection) as queries:
        found = client.get(events, {"q": event.external_ref.upper()}).context["cl"].result_list
    assert list(found) == [event]
    searches = [q for q in queries.captured_queries if '"campaigns_statusevent"."external_ref" IN (' in q["sql"]]
    assert searches and all("UPPER(" not in q["sql"] for q in queries.captured_queries)
    plans = plans_of(searches, "campaigns_statusevent")
    assert all("status_event_ref_idx" in plan for plan in plans), plans


def test_the_report_list_reads_no_report_to_offer_its_filters(client):
    """The kind filter offers the kinds a backend reports, not the distinct values of millions of reports."""
    status, opt_out = StatusEventFactory(kind="status"), StatusEventFactory(kind="opt_out")
    url = reverse("admin:campaigns_statusevent_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert not [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"]]
    assert "?kind=opt_out" in response.content.decode()
    assert list(client.get(url, {"kind": "opt_out"}).context["cl"].result_list) == [opt_out]
    assert list(client.get(url, {"kind": "status"}).context["cl"].result_list) == [status]


def test_a_filtered_message_list_counts_a_bounded_number_of_rows(client, monkeypatch):
    """A filter of millions of messages must not COUNT(*) them all: the count stops past a cap, and says so."""
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 3, raising=False)
    account = ProviderAccountFactory()
    MessageFactory.create_batch(5, campaign=CampaignFactory(account=account), status="delivered")
    MessageFactory(status="delivered")
    url = reverse("admin:campaigns_message_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"status": "delivered", "account__id__exact": account.pk, "_facets": "True"})
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and "campaigns_message" in q["sql"]]
    assert counts and all("LIMIT 4" in sql for sql in counts), counts  # and no facet counts the whole table
    assert "3+ messages" in response.content.decode()
    response = client.get(url, {"status": "delivered", "account__id__exact": ProviderAccountFactory().pk})
    assert "0 messages" in response.content.decode()


def test_the_unfiltered_message_list_takes_its_size_from_the_statistics(client, monkeypatch):
    """It always leaves out a campaign being deleted, which made it look filtered: it counted 100,001 messages on
    every load (0.3 s) to read "100,000+", where the frames' and reports' lists take PostgreSQL's estimate."""
    monkeypatch.setattr(campaigns_admin, "ESTIMATE_ABOVE", 100)
    messages_of_two_accounts(250)  # and ANALYZE: the statistics say 250
    url = reverse("admin:campaigns_message_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert response.context["cl"].result_count == 250 and "about 250 messages" in response.content.decode()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, {"status": "delivered"}).status_code == 200
    assert [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]], "a filtered list is counted"


def _one_removed_opt_out():
    contacts_services.unsubscribers_remove(unsubscribers=[UnsubscriberFactory()], user=None, via="admin")


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("campaigns_message", MessageFactory),
        ("campaigns_frame", FrameFactory),
        ("campaigns_statusevent", StatusEventFactory),
        ("contacts_contact", ContactFactory),
        ("contacts_unsubscriber", UnsubscriberFactory),
        ("contacts_unsubscriberremoval", _one_removed_opt_out),
    ],
)
def test_an_unfiltered_large_list_does_not_offer_to_show_all(client, name, make):
    """Lists that do not count their whole table said "1 result (Show all)" beside the search box when nothing
    narrowed them (the link led to the same list); a search still says what it found and links back to them all."""
    make()
    url = reverse(f"admin:{name}_changelist")
    assert "Show all" not in client.get(url).content.decode()
    searched = client.get(url, {"q": "+447700900123"}).content.decode()
    assert re.search(r"0 results \(<a href=\"\?\">Show all</a>\)", searched), searched


def test_a_deep_page_of_messages_builds_only_its_own_rows(client, monkeypatch):
    """The last page of a big list was LIMIT 100 OFFSET k over the list's joins and columns (4.5 s for page 1,000 of
    the delivered messages, 3.5 s for the last page of 500,000 reports). Its ids come first now, then its rows."""
    monkeypatch.setattr(pagination, "DEEP_PAGE_ROWS", 100)  # from the second page on, as from the 11th by default
    campaign = messages_of_two_accounts(250)
    url = reverse("admin:campaigns_message_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"campaign": campaign.pk, "p": 2})
    newest_first = list(Message.objects.filter(campaign=campaign).order_by("-id").values_list("pk", flat=True))
    assert [m.pk for m in response.context["cl"].result_list] == newest_first[100:200]
    listed = [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]
    assert len(listed) == 1 and listed[0].split(" FROM ")[0] == 'SELECT "campaigns_message"."id" AS "pk"', listed
    assert client.get(url, {"campaign": campaign.pk, "p": 3}).context["cl"].result_list.count() == 50


def completed_campaign(messages: int, frames: int) -> Campaign:
    """A completed campaign with an audience tag and `messages` messages spread over `frames` frames."""
    campaign = CampaignFactory(state="completed", tags=[TagFactory()])
    sent = Frame.objects.bulk_create(
        Frame(campaign=campaign, account=campaign.account, seq=n + 1) for n in range(frames)
    )
    Message.objects.bulk_create(
        Message(campaign=campaign, account=campaign.account, frame=sent[n % frames], address=f"+9199{n:08d}")
        for n in range(messages)
    )
    return campaign


def test_a_finished_campaign_is_deleted_with_its_messages_by_whoever_may_delete_campaigns():
    """The confirmation page counts what goes instead of listing it; the messages and frames go with their
    campaign, although nobody may delete a message by hand; reports stay, and other campaigns' messages."""
    campaign, other = completed_campaign(messages=1200, frames=3), MessageFactory()
    StatusEventFactory(account=campaign.account, message=Message.objects.filter(campaign=campaign).first())
    client = admin_client_for(UserFactory(is_staff=True, permissions=["campaigns.view_campaign", "campaigns.delete_campaign"]))  # fmt: skip
    url = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])
    html = client.get(url).content.decode()
    assert "Campaigns: 1" in html and "Messages: 1,200" in html and "Frames: 3" in html
    assert "+9199" not in html  # no message is listed
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Message.objects.filter(campaign=campaign.pk).exists() and not Frame.objects.exists()
    assert list(Message.objects.all()) == [other] and StatusEvent.objects.count() == 1


@pytest.mark.parametrize("how", ["page", "selected"])
def test_deleting_campaigns_takes_the_same_queries_for_ten_messages_or_a_thousand(client, how):
    """Neither the confirmation page nor the deletion loads the messages or frames: COUNT and DELETE statements."""

    def delete(campaign):
        if how == "page":
            url, data = reverse("admin:campaigns_campaign_delete", args=[campaign.pk]), {}
            with CaptureQueriesContext(connection) as page:
                assert client.get(url).status_code == 200
        else:
            url, data = reverse("admin:campaigns_campaign_changelist"), {"action": "delete_selected", "_selected_action": [campaign.pk]}  # fmt: skip
            with CaptureQueriesContext(connection) as page:
                assert client.post(url, data).status_code == 200
        with CaptureQueriesContext(connection) as deletion:
            assert client.post(url, {**data, "post": "yes"}).status_code == 302
        assert not Campaign.objects.filter(pk=campaign.pk).exists()
        return len(page.captured_queries), len(deletion.captured_queries)

    # The history entry reads the campaign's content type once a process (then cached): read it first, or the first
    # deletion takes a query more than the second when this test is its process's first to write one (run alone).
    ContentType.objects.get_for_model(Campaign)
    few = delete(completed_campaign(messages=10, frames=2))
    assert delete(completed_campaign(messages=1000, frames=250)) == few
    assert not Message.objects.exists() and not Frame.objects.exists()


def test_selected_campaigns_are_summarised_and_deleted_together(client):
    first, second = completed_campaign(messages=3, frames=1), completed_campaign(messages=4, frames=2)
    draft = CampaignFactory()
    url = reverse("admin:campaigns_campaign_changelist")
    data = {"action": "delete_selected", "_selected_action": [first.pk, second.pk, draft.pk]}
    html = client.post(url, data).content.decode()
    assert "Campaigns: 3" in html and "Messages: 7" in html and "Frames: 3" in html
    response = client.post(url, {**data, "post": "yes"}, follow=True)
    assert "Successfully deleted 3 campaigns." in response.content.decode()
    assert not Campaign.objects.exists() and not Message.objects.exists() and not Frame.objects.exists()


def test_campaigns_delete_deletes_none_of_a_selection_in_which_one_is_running():
    """What the admin's bulk delete calls: a campaign launched since its confirmation page stops it all."""
    done, running = completed_campaign(messages=2, frames=1), CampaignFactory(state="sending")
    with pytest.raises(ValidationError, match="cancel it first"):
        campaigns_delete(campaign_ids=[done.pk, running.pk])
    assert Campaign.objects.count() == 2 and Message.objects.count() == 2


def test_adding_a_campaign_records_who_created_it(client):
    account = ProviderAccountFactory()
    response = client.post(
        reverse("admin:campaigns_campaign_add"),
        {"name": "Hello", "channel": "sms", "purpose": "transactional", "account": account.pk, "text": "Hi",
         "tags_operator": "any", "recurrence": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Campaign.objects.get().created_by.is_superuser


def test_a_started_campaign_is_read_only_in_the_admin(client):
    campaign = CampaignFactory(state="sending")
    html = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="name"' not in html
    assert "See the messages of this campaign" in html
