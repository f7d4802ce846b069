"""Campaign models: one message per contact per campaign, frames numbered once per campaign."""

import time
import uuid

import pytest

from django.db import IntegrityError, connection
from django.db.models import ProtectedError
from django.urls import reverse

from campaigns.models import Message
from tests.factories import CampaignFactory, ContactFactory, FrameFactory, MessageFactory, StatusEventFactory

pytestmark = pytest.mark.django_db


def test_a_campaign_has_one_message_per_contact():
    campaign, contact = CampaignFactory(), ContactFactory()
    MessageFactory(campaign=campaign, contact=contact)
    MessageFactory(campaign=CampaignFactory(), contact=contact)  # another campaign: fine
    with pytest.raises(IntegrityError):
        MessageFactory(campaign=campaign, contact=contact)


def test_a_message_gets_its_own_external_reference():
    first, second = MessageFactory(), MessageFactory()
    assert first.external_ref and first.external_ref != second.external_ref


def test_external_references_are_time_ordered_whether_written_by_django_or_by_sql():
    """Version-7 UUIDs: the time of writing first, so a frame's references sit together in the index."""
    before = time.time() * 1000
    by_django = MessageFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_message (campaign_id, account_id, address, status) "
            "SELECT %s, %s, '+33600000000', 'pending' FROM generate_series(1, 50) RETURNING external_ref",
            [by_django.campaign_id, by_django.account_id],
        )
        by_sql = [row[0] for row in cursor.fetchall()]
    after = time.time() * 1000
    for ref in [by_django.external_ref, *by_sql]:
        assert ref.version == 7 and ref.variant == uuid.RFC_4122, ref
        assert before - 1 <= ref.int >> 80 <= after + 1, ref  # its first 48 bits are the time in milliseconds
    assert len(set(by_sql)) == 50


def test_deletes_follow_on_delete_although_messages_have_no_database_foreign_keys():
    """Django applies on_delete itself: a deleted contact leaves its messages (contact cleared), a deleted
    campaign takes its messages, and an account with messages cannot be deleted."""
    kept, gone = MessageFactory(), MessageFactory()
    kept.contact.delete()
    kept.refresh_from_db()
    assert kept.contact_id is None
    gone.campaign.delete()
    assert not Message.objects.filter(pk=gone.pk).exists()
    with pytest.raises(ProtectedError):
        kept.account.delete()


def test_a_deleted_campaigns_reports_stay_with_the_id_of_their_message(client, admin_user):
    """A report's link to its message has no database constraint and no index (applying reports marks them
    heap-only): deleting a campaign leaves its reports, which keep their message's id, no other message ever
    takes it, and the admin shows them without the message."""
    message = MessageFactory()
    event = StatusEventFactory(account=message.account, message=message, outcome="applied")
    message.campaign.delete()
    event.refresh_from_db()
    assert event.message_id == message.pk and not Message.objects.filter(pk=message.pk).exists()
    assert MessageFactory().pk > message.pk, "ids are not taken again"
    client.force_login(admin_user)
    assert client.get(reverse("admin:campaigns_statusevent_change", args=[event.pk])).status_code == 200
    assert client.get(reverse("admin:campaigns_statusevent_changelist")).status_code == 200


def test_frame_numbers_are_unique_within_a_campaign():
    campaign = CampaignFactory()
    FrameFactory(campaign=campaign, seq=1)
    FrameFactory(campaign=CampaignFactory(), seq=1)
    with pytest.raises(IntegrityError):
        FrameFactory(campaign=campaign, seq=1)
