"""Deleting a campaign of many messages: hidden at once, its messages and frames deleted by a worker in batches."""

import pytest

from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Campaign, Frame, Message, StatusEvent
from campaigns.services.lifecycle import campaign_launch
from tests.campaigns.conftest import wait_until
from tests.campaigns.test_admin import completed_campaign
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    StatusEventFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)


@pytest.fixture
def small_requests(settings):
    """Requests delete campaigns of at most 5 messages themselves; more go to the background."""
    settings.CAMPAIGN_DELETE_INLINE_MAX_MESSAGES = 5


@pytest.mark.django_db(transaction=True)
def test_the_api_hides_a_big_campaign_at_once_and_a_worker_deletes_it(celery_worker, small_requests):
    api = api_client_for(UserFactory(superuser=True))
    big, kept = completed_campaign(messages=40, frames=8), completed_campaign(messages=3, frames=1)
    report = StatusEventFactory(message=Message.objects.filter(campaign=big).first())

    assert api.delete(f"/api/v1/campaigns/{big.pk}/").status_code == 204

    assert api.get(f"/api/v1/campaigns/{big.pk}/").status_code == 404
    assert [c["id"] for c in api.get("/api/v1/campaigns/").json()["results"]] == [kept.pk]
    wait_until(lambda: not Campaign.objects.filter(pk=big.pk).exists(), timeout=30, what="the worker's deletion")
    assert not Message.objects.filter(campaign=big.pk).exists() and not Frame.objects.filter(campaign=big.pk).exists()
    assert Message.objects.filter(campaign=kept).count() == 3 and Frame.objects.filter(campaign=kept).count() == 1
    assert StatusEvent.objects.filter(pk=report.pk).exists(), "delivery reports stay"


@pytest.mark.django_db
def test_the_admin_says_a_big_campaign_is_deleted_in_the_background_and_lists_it_no_more(
    small_requests, django_capture_on_commit_callbacks
):
    client = admin_client_for(UserFactory(superuser=True))
    big, small = completed_campaign(messages=40, frames=8), completed_campaign(messages=2, frames=1)
    changelist = reverse("admin:campaigns_campaign_changelist")

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        page = client.post(reverse("admin:campaigns_campaign_delete", args=[big.pk]), {"post": "yes"}, follow=True)

    assert "are being deleted in the background" in page.content.decode() and len(enqueued) == 1
    assert Campaign.objects.get(pk=big.pk).state == "deleting"
    listed = client.get(changelist).context["cl"].result_list
    assert list(listed) == [small]
    assert client.get(reverse("admin:campaigns_campaign_change", args=[big.pk])).status_code == 302  # "not found"
    assert client.get(changelist, {"state": "deleting"}).status_code == 200
    assert client.get(reverse("admin:campaigns_campaign_export", args=[big.pk])).status_code == 404, "nor exported"

    client.post(reverse("admin:campaigns_campaign_delete", args=[small.pk]), {"post": "yes"})
    assert not Campaign.objects.filter(pk=small.pk).exists(), "a small one still goes within the request"


@pytest.mark.django_db(transaction=True)
def test_a_purge_deletes_in_batches_runs_twice_safely_and_the_beat_finishes_a_lost_one(small_requests):
    from campaigns.services.editing import campaign_purge, campaigns_delete, campaigns_purge_deleting

    big, other = completed_campaign(messages=5, frames=7), completed_campaign(messages=6, frames=2)
    members = ContactFactory.create_batch(18)  # 5 messages whose contact was deleted, 18 with theirs
    Message.objects.bulk_create(Message(campaign=big, account=big.account, contact=c, address=c.phone) for c in members)
    MessageFactory(campaign=other, contact=members[0])
    draft = CampaignFactory(send_at="2030-01-01T00:00Z", state="scheduled")
    campaigns_delete(campaign_ids=[big.pk, other.pk])  # no worker here: both wait as `deleting`
    assert set(Campaign.objects.filter(state="deleting").values_list("pk", flat=True)) == {big.pk, other.pk}
    with pytest.raises(ValidationError, match="cannot be launched"):
        campaign_launch(campaign_id=big.pk)

    with CaptureQueriesContext(connection) as queries:
        assert campaign_purge(campaign_id=big.pk, batch_size=4) is True
    batches = [q["sql"] for q in queries.captured_queries if "DELETE FROM campaigns_message" in q["sql"]]
    assert len(batches) >= 7, "18 members and 5 without a contact, 4 at a time"
    assert campaign_purge(campaign_id=big.pk, batch_size=4) is False  # done already
    assert not Campaign.objects.filter(pk=big.pk).exists() and not Message.objects.filter(campaign=big.pk).exists()
    assert Message.objects.filter(campaign=other).count() == 7 and members[0].pk in Message.objects.values_list(
        "contact", flat=True
    )

    assert campaigns_purge_deleting() == 1  # the beat's safety net for a lost task
    assert list(Campaign.objects.all()) == [draft] and not Message.objects.exists() and not Frame.objects.exists()


@pytest.mark.django_db
def test_the_messages_of_a_campaign_being_deleted_are_hidden_with_it(small_requests):
    """Until the worker purges them: from the messages API, by id too, and the admin's message list."""
    from campaigns.services.editing import campaign_delete

    api, admin = api_client_for(UserFactory(superuser=True)), admin_client_for(UserFactory(superuser=True))
    big, kept = completed_campaign(messages=8, frames=1), completed_campaign(messages=2, frames=1)
    message = Message.objects.filter(campaign=big).first()
    assert campaign_delete(campaign=big).background

    listed = api.get("/api/v1/messages/").json()["results"]
    assert {m["campaign"] for m in listed} == {kept.pk}
    assert api.get(f"/api/v1/messages/?campaign={big.pk}").json()["results"] == []
    assert api.get(f"/api/v1/messages/{message.pk}/").status_code == 404
    assert admin.get(reverse("admin:campaigns_message_changelist")).context["cl"].result_count == 2
