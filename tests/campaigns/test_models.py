"""Campaign models: one message per contact per campaign, frames numbered once per campaign."""

import pytest

from django.db import IntegrityError

from tests.factories import CampaignFactory, ContactFactory, FrameFactory, MessageFactory

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


def test_frame_numbers_are_unique_within_a_campaign():
    campaign = CampaignFactory()
    FrameFactory(campaign=campaign, seq=1)
    FrameFactory(campaign=CampaignFactory(), seq=1)
    with pytest.raises(IntegrityError):
        FrameFactory(campaign=campaign, seq=1)
