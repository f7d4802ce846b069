"""One campaign's messages (the admin's "See every message", the API's `?campaign=`, the CSV export) are looked for
in the range of ids the campaign gave them (Campaign.message_ids_from/to), not through every message sent since."""

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Campaign, Message
from campaigns.selectors import campaign_message_rows
from campaigns.services.lifecycle import campaign_launch
from campaigns.services.prepare import campaign_prepare
from tests.campaigns.conftest import contacts_tagged
from tests.factories import (
    CampaignFactory,
    MessageFactory,
    ProviderAccountFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return admin_client_for()


def _sent(account, tag) -> Campaign:
    """A campaign launched and prepared as a launch from the admin or the API does it (the worker's prepare run
    here: its task is queued only on commit)."""
    campaign = CampaignFactory(account=account, tags=[tag], purpose=Campaign.Purpose.TRANSACTIONAL)
    campaign_launch(campaign_id=campaign.pk)
    campaign_prepare(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def older_and_newer():
    """Two campaigns sent one after the other to the same five people, a transactional message between them."""
    account, news = ProviderAccountFactory(kind="devino"), contacts_tagged(5, "news")
    older = _sent(account, news)
    MessageFactory(account=account, campaign=None)
    newer = _sent(account, news)
    return older, newer


def _ids(campaign, **filters):
    return list(Message.objects.filter(campaign=campaign, **filters).order_by("-id").values_list("id", flat=True))


def test_launch_and_prepare_bound_the_ids_of_the_campaigns_messages(older_and_newer):
    older, newer = older_and_newer
    for campaign in (older, newer):
        ids = _ids(campaign)
        assert len(ids) == 5
        assert campaign.message_ids_from <= min(ids) and max(ids) <= campaign.message_ids_to
    assert older.message_ids_to < newer.message_ids_from, "each range holds only its own campaign's messages"


def test_the_admin_list_the_api_and_the_export_show_exactly_the_older_campaigns_messages(client, older_and_newer):
    older, newer = older_and_newer
    response = client.get(reverse("admin:campaigns_message_changelist"), {"campaign__id__exact": older.pk})
    assert [m.pk for m in response.context["cl"].result_list] == _ids(older)

    api = api_client_for(UserFactory(superuser=True))
    page = api.get("/api/v1/messages/", {"campaign": older.pk}).json()
    assert [m["id"] for m in page["results"]] == _ids(older)

    assert [row[0] for row in campaign_message_rows(campaign=older)] == sorted(_ids(older))
    assert [row[0] for row in campaign_message_rows(campaign=newer)] == sorted(_ids(newer))


def test_a_campaign_prepared_again_after_a_failed_run_lists_the_messages_of_both_runs(older_and_newer):
    """A prepare that failed part-way leaves what it wrote; the second run writes the rest, with greater ids."""
    older, _ = older_and_newer
    first_run = _ids(older)[:2]
    Message.objects.filter(campaign=older).exclude(pk__in=first_run).delete()
    Campaign.objects.filter(pk=older.pk).update(state=Campaign.State.PREPARING, audience_size=None)
    MessageFactory(campaign=None)  # another send meanwhile

    campaign_prepare(campaign_id=older.pk)

    older.refresh_from_db()
    assert len(_ids(older)) == 5 and set(first_run) < set(_ids(older))
    assert [row[0] for row in campaign_message_rows(campaign=older)] == sorted(_ids(older))


def test_the_list_of_an_old_campaign_reads_its_range_of_the_primary_key(client):
    """Newest first, PostgreSQL walked the primary key back through every message sent since (0.4 s a million of
    them) before it reached an old campaign's newest; the range starts the walk there. Here 3,000 messages, then
    20,000 of a newer campaign."""
    account = ProviderAccountFactory(kind="devino")
    older = _sent(account, contacts_tagged(3000, "news"))
    newer = CampaignFactory(account=account, state=Campaign.State.COMPLETED)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO campaigns_message (campaign_id, account_id, channel, address, status)
               SELECT %s, %s, 'sms', '+9198' || lpad(n::text, 8, '0'), 'delivered' FROM generate_series(1, 20000) n""",
            [newer.pk, account.pk],
        )
        cursor.execute("ANALYZE campaigns_message")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:campaigns_message_changelist"), {"campaign__id__exact": older.pk})
    assert [m.pk for m in response.context["cl"].result_list] == _ids(older)[:100]
    (listing,) = [q["sql"] for q in queries.captured_queries if q["sql"].endswith("DESC LIMIT 100")]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + listing)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Cond: ((id >= {older.message_ids_from}) AND (id <= {older.message_ids_to}))" in plan, plan
