"""The estimate's parts and cost for a personalised text: each recipient's text is counted (in SQL, over the
audience), not the first recipient's for everyone, since names and attributes make texts longer or shorter and a
character outside GSM-7 puts a text in UCS-2 (70 characters a part instead of 160)."""

from decimal import Decimal

import pytest

from django.urls import reverse

from campaigns.models import Campaign, Message
from campaigns.rendering import contact_values, render
from campaigns.selectors import campaign_estimate
from campaigns.services.dispatch import SendContext, frames_claim, frames_send
from campaigns.services.prepare import campaign_prepare
from campaigns.sms import sms_parts
from contacts.models import Contact
from tests.campaigns.test_dispatch import _sandbox_account
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ProviderAccountFactory,
    SenderFactory,
    TagFactory,
    UnsubscriberFactory,
    UserFactory,
    admin_client_for,
    api_client_for,
)

pytestmark = pytest.mark.django_db

# 120 characters without its values: 160 (one GSM-7 part) is reached with a 20-character name and parcel, and a
# character more takes two parts of 153; a character outside GSM-7 puts it in UCS-2, two parts up to 134.
TEXT = (
    "Dear {{first_name}}, your parcel {{parcel}} ships today and arrives tomorrow before noon. "
    "Follow it on our website. Thanks for shopping with us!"
)
PEOPLE = [  # first name, attributes: what each one's text takes
    ("Ann", {"parcel": "A-1"}),  # the first (lowest id): 126 characters, 1 part
    ("Bob", {}),  # no parcel: 123, 1 part
    ("Maximilian-Alexander", {"parcel": "PX-2024-000000000001"}),  # 160: 1 part
    ("Maximilian-Alexander", {"parcel": "PX-2024-€0000000001"}),  # 159 characters, 160 septets (€ takes two): 1 part
    ("Maximilian-Alexander", {"parcel": "PX-2024-€€000000001"}),  # 159 characters, 161 septets: 2 parts
    ("Maximilian-Alexander", {"parcel": "PX-2024-000000000001B"}),  # 161: 2 parts
    ("अनन्या", {"parcel": "A-7"}),  # UCS-2, 129 units: 2 parts of 67
    ("Zoë", {"parcel": "😀" * 10}),  # UCS-2 (ë), each emoji two UTF-16 units: 143 units, 3 parts
    ("Ann", {"parcel": True}),  # rendered "True", as dispatch renders it: 1 part
]


@pytest.fixture
def campaign():
    account = ProviderAccountFactory(kind="octopush", price_per_part="0.05", currency="EUR")
    news = TagFactory(name="news")
    for first_name, attributes in PEOPLE:
        ContactFactory(tags=[news], first_name=first_name, attributes=attributes)
    UnsubscriberFactory(address=ContactFactory(tags=[news], first_name="ब" * 100).phone)  # never sent: not counted
    sender = SenderFactory(account=account, country="FR")
    return CampaignFactory(account=account, sender=sender, text=TEXT, purpose="service", tags=[news])


def billed_parts() -> list[int]:
    """What dispatch bills for each person's text: their text rendered as it is sent, measured."""
    sendable = Contact.objects.exclude(first_name__startswith="ब").order_by("pk")
    return [
        sms_parts(render(TEXT, contact_values({"first_name": c.first_name, "attributes": c.attributes}))[0]).parts
        for c in sendable
    ]


def test_each_recipients_text_is_counted_and_costed_through_the_api(campaign):
    body = api_client_for(UserFactory(superuser=True)).post(f"/api/v1/campaigns/{campaign.pk}/estimate/").json()
    assert billed_parts() == [1, 1, 1, 1, 2, 2, 2, 3, 1]
    assert (body["sendable"], body["parts_total"], body["parts_least"], body["parts_most"]) == (9, 14, 1, 3)
    assert body["encodings"] == {"GSM-7": 7, "UCS-2": 2}
    assert body["missing_variables"] == {"parcel": 1}  # Bob, in the same pass over the audience
    assert body["cost"] == "0.70"  # 14 parts at 0.05, not 9 × the first text's 1 part (0.45)
    assert body["parts_summary"] == "Texts differ by recipient: 1 to 3 parts (7 in GSM-7, 2 in UCS-2), 14 parts in all."
    # The first recipient's text is still shown as a sample, with its own figures.
    assert (body["text_sample"].startswith("Dear Ann,"), body["encoding"], body["parts"]) == (True, "GSM-7", 1)


def test_the_admins_live_estimate_and_launch_confirmation_say_so(campaign):
    client = admin_client_for()
    data = {
        "name": campaign.name, "channel": "sms", "purpose": "service", "account": campaign.account_id,
        "sender": campaign.sender_id, "template": "", "text": TEXT, "tags_operator": "any",
        "tags": [campaign.tags.get().pk], "recurrence": "", "send_at_0": "", "send_at_1": "", "send_by_0": "",
        "send_by_1": "", "smooth_minutes": "", "frame_size": "",
    }  # fmt: skip
    body = client.post(reverse("admin:campaigns_campaign_estimate", args=[campaign.pk]), data).json()
    assert (body["parts_total"], body["cost"]) == (14, "0.70")
    assert body["parts_summary"].startswith("Texts differ by recipient: 1 to 3 parts")
    page = client.get(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "launch"])).content.decode()
    assert "Texts differ by recipient: 1 to 3 parts" in page and "0.70 EUR" in page


@pytest.mark.parametrize(
    ("text", "summary", "encodings"),
    [
        ("Your parcel ships today", "", {"GSM-7": 9}),
        (
            "Hello {{first_name}}",
            "Texts differ by recipient: 1 part each (7 in GSM-7, 2 in UCS-2), 9 parts in all.",
            {"GSM-7": 7, "UCS-2": 2},
        ),
    ],  # fmt: skip
    ids=["the same text", "one part each"],
)
def test_texts_that_take_one_part_each_cost_one_part_each(campaign, text, summary, encodings):
    campaign.text = text
    campaign.save()
    body = api_client_for(UserFactory(superuser=True)).post(f"/api/v1/campaigns/{campaign.pk}/estimate/").json()
    assert (body["parts_total"], body["parts_summary"], body["encodings"]) == (9, summary, encodings)
    assert Decimal(body["cost"]) == Decimal("0.45")


@pytest.mark.django_db(transaction=True)
def test_the_estimate_is_what_the_texts_dispatch_sends_take(sandbox, settings):
    """Sent through the sandbox's Octopush: the parts the estimate counted in SQL are those of the texts the
    dispatcher rendered and sent, and the cost stored when preparing is the estimate's."""
    account = _sandbox_account(sandbox, settings, "octopush")
    news = TagFactory(name="news")
    for first_name, attributes in PEOPLE:
        ContactFactory(tags=[news], first_name=first_name, attributes=attributes)
    campaign = CampaignFactory(account=account, sender=account.senders.get(), text=TEXT, purpose="service", tags=[news])
    estimate = campaign_estimate(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PREPARING)
    campaign_prepare(campaign_id=campaign.pk)
    context = SendContext.for_campaign(
        Campaign.objects.select_related("account", "sender", "template").get(pk=campaign.pk)
    )
    while frames := frames_claim(campaign_id=campaign.pk):
        frames_send(frames, context)

    sent = [sms_parts(text).parts for text in Message.objects.filter(campaign=campaign).values_list("text", flat=True)]
    assert len(sent) == 9 and all(Message.objects.filter(campaign=campaign).values_list("submitted_at", flat=True))
    assert sum(sent) == estimate.spread.total == 14
    campaign.refresh_from_db()
    assert campaign.cost_estimate == estimate.cost
