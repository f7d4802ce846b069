"""The promotional window on the recipient's own clock: a contact with a time zone gets a promotion only while the
account's window is open and the same hours are open where they are (Réunion and Guadeloupe for a French account)."""

from datetime import UTC, datetime

import pytest

from campaigns.models import Campaign
from campaigns.selectors import campaign_estimate
from tests.factories import CampaignFactory, ContactFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

PARIS_DAYTIME = {"start": "09:00", "end": "21:00", "tz": "Europe/Paris"}
# A Wednesday: 13:00 in Paris, 16:00 in Réunion, 08:00 in Guadeloupe.
NOON_UTC = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _contacts(zones: dict[str, int]) -> list:
    contacts, n = [], 0
    for zone, count in zones.items():
        for _ in range(count):
            n += 1
            contacts.append(ContactFactory(phone=f"+336123450{n:02d}", timezone=zone))
    return contacts


def test_the_estimate_warns_of_recipients_outside_the_window_in_their_own_zone_without_stopping_the_launch():
    account = ProviderAccountFactory(kind="octopush", options={"promo_window": PARIS_DAYTIME})
    contacts = _contacts({"Europe/Paris": 2, "Indian/Reunion": 1, "America/Guadeloupe": 2, "": 1})
    campaign = CampaignFactory(
        account=account, purpose=Campaign.Purpose.PROMOTIONAL, text="Soldes -50% STOP au 30101", contacts=contacts
    )

    estimate = campaign_estimate(campaign=campaign, at=NOON_UTC)
    assert estimate.problems == [], estimate.problems
    assert estimate.sendable == 6
    assert estimate.as_dict()["warnings"] == [
        "2 recipients are outside the promotional window in their own time zone; they will get it when it opens there."
    ]
    late = campaign_estimate(campaign=campaign, at=NOON_UTC.replace(hour=18, minute=30))  # 22:30 in Réunion
    assert late.warnings == [
        "1 recipient is outside the promotional window in their own time zone; they will get it when it opens there."
    ]
    campaign.text = "Soldes -50% {{first_name}} STOP au 30101"  # texts measured per recipient: the same count
    campaign.save()
    assert campaign_estimate(campaign=campaign, at=NOON_UTC).warnings == estimate.warnings
    campaign.purpose = Campaign.Purpose.TRANSACTIONAL
    campaign.save()
    assert campaign_estimate(campaign=campaign, at=NOON_UTC).warnings == [], "only promotions keep to the window"
