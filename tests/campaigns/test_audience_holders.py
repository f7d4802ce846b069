"""A tag or segment that something still selects people by is not deleted from under it: an excluded tag gone
would widen a campaign without a word, a tag gone from a segment would change who it holds."""

import pytest

from django.db.models import ProtectedError
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.services.editing import campaign_create
from contacts.models import ContactTag, Segment, Tag
from contacts.services import tags_delete
from tests.concurrency import second_waits_on_first
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ProviderAccountFactory,
    SegmentFactory,
    SenderFactory,
    TagFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return api_client_for(UserFactory(superuser=True))


def test_a_tag_a_scheduled_campaign_leaves_out_is_kept_and_the_campaign_named(api):
    news, blocked = TagFactory(name="news"), TagFactory(name="do-not-contact")
    CampaignFactory(name="Diwali sale", tags=[news], excluded_tags=[blocked], state=Campaign.State.SCHEDULED)

    response = api.delete(f"/api/v1/tags/{blocked.pk}/")

    assert response.status_code == 409
    assert "Diwali sale" in response.json()["detail"]
    assert Tag.objects.filter(pk=blocked.pk).exists()
    assert list(Campaign.objects.get().excluded_tags.all()) == [blocked]


def test_a_tag_a_segment_selects_by_is_kept(api):
    churned = TagFactory(name="churned")
    SegmentFactory(name="Loyal", negative_tags=[churned])
    response = api.delete(f"/api/v1/tags/{churned.pk}/")
    assert response.status_code == 409 and "Loyal" in response.json()["detail"]
    assert Tag.objects.filter(pk=churned.pk).exists()


def test_a_tag_or_segment_only_finished_campaigns_used_is_deleted(api):
    news = TagFactory(name="news")
    loyal = SegmentFactory(name="Loyal", positive_tags=[TagFactory(name="vip")])
    for state in (Campaign.State.COMPLETED, Campaign.State.CANCELLED, Campaign.State.FAILED):
        CampaignFactory(tags=[news], segments=[loyal], state=state)
    ContactFactory(tags=[news])

    assert api.delete(f"/api/v1/tags/{news.pk}/").status_code == 204
    assert api.delete(f"/api/v1/segments/{loyal.pk}/").status_code == 204
    assert not ContactTag.objects.exists()


def test_a_segment_a_draft_campaign_sends_to_is_kept(api):
    loyal = SegmentFactory(name="Loyal")
    CampaignFactory(name="Welcome back", segments=[loyal])
    response = api.delete(f"/api/v1/segments/{loyal.pk}/")
    assert response.status_code == 409 and "Welcome back" in response.json()["detail"]
    assert Segment.objects.filter(pk=loyal.pk).exists()


def test_the_admin_names_the_campaign_and_refuses_and_counts_the_contacts_instead_of_listing_them():
    client = admin_client_for()
    blocked, news, old = TagFactory(name="do-not-contact"), TagFactory(name="news"), TagFactory(name="summer-2025")
    ContactFactory.create_batch(30, tags=[blocked, news, old])
    diwali = CampaignFactory(name="Diwali sale", tags=[news], excluded_tags=[blocked], state=Campaign.State.SCHEDULED)
    page = reverse("admin:contacts_tag_delete", args=[blocked.pk])

    html = client.get(page).content.decode()
    assert f'Campaign: <a href="{reverse("admin:campaigns_campaign_change", args=[diwali.pk])}">Diwali sale</a>' in html
    client.post(page, {"post": "yes"})
    assert Tag.objects.filter(pk=blocked.pk).exists()

    client.post(
        reverse("admin:contacts_tag_changelist"),
        {"action": "delete_selected", "_selected_action": [blocked.pk], "post": "yes"},
    )
    assert Tag.objects.filter(pk=blocked.pk).exists()

    page = reverse("admin:contacts_tag_delete", args=[old.pk])
    html = client.get(page).content.decode()
    assert "The tag comes off 30 contacts." in html
    assert html.count("<li>") < 10, "one line per contact link made the page megabytes for a big tag"
    assert client.post(page, {"post": "yes"}).status_code == 302
    assert not Tag.objects.filter(pk=old.pk).exists()
    assert ContactTag.objects.count() == 60  # the other tags' links


def test_the_segment_admin_refuses_a_segment_a_campaign_sends_to():
    client = admin_client_for()
    loyal = SegmentFactory(name="Loyal")
    welcome = CampaignFactory(name="Welcome back", segments=[loyal], state=Campaign.State.PAUSED)
    page = reverse("admin:contacts_segment_delete", args=[loyal.pk])
    linked = f'Campaign: <a href="{reverse("admin:campaigns_campaign_change", args=[welcome.pk])}">Welcome back</a>'
    assert linked in client.get(page).content.decode()
    client.post(page, {"post": "yes"})
    assert Segment.objects.filter(pk=loyal.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_tag_a_campaign_is_linking_at_that_moment_is_not_deleted_from_under_it():
    """The delete locks the tag before it looks for holders; a campaign being saved with it holds its link's
    key-share lock until it commits, so the delete waits and then sees the campaign."""
    account = ProviderAccountFactory()
    sender = SenderFactory(account=account)
    blocked = TagFactory(name="do-not-contact")
    outcome = {}

    def save_campaign():
        outcome["campaign"] = campaign_create(
            data={"name": "Promo", "account": account, "sender": sender, "text": "Hi", "excluded_tags": [blocked]}
        )

    def delete_tag():
        try:
            outcome["deleted"] = tags_delete(tags=[blocked])
        except ProtectedError as exc:
            outcome["refused"] = str(exc)

    second_waits_on_first(save_campaign, delete_tag, statement='SELECT "contacts_tag"')

    assert "deleted" not in outcome and "Promo" in outcome["refused"]
    assert list(Campaign.objects.get(pk=outcome["campaign"].pk).excluded_tags.all()) == [blocked]


def test_a_409_names_every_campaign_that_holds_the_tag(api):
    blocked = TagFactory(name="do-not-contact")
    for n in range(12):
        CampaignFactory(name=f"Campaign {n:02d}", excluded_tags=[blocked])
    assert "12 campaigns" in api.delete(f"/api/v1/tags/{blocked.pk}/").json()["detail"]
