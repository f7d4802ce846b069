"""The estimate's parts and cost for a personalised text: each recipient's text is counted (in SQL, over the
audience), not the first recipient's for everyone, since names and attributes make texts longer or shorter and a
character outside GSM-7 puts a text in UCS-2 (70 characters a part instead of 160)."""

from decimal import Decimal

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Campaign, Message
from campaigns.rendering import contact_values, render
from campaigns.selectors import campaign_estimate
from campaigns.selectors.estimate import texts_measure
from campaigns.services.dispatch import SendContext, frames_claim, frames_send
from campaigns.services.prepare import campaign_prepare
from contacts.models import Contact
from providers.sms import sms_parts
from tests.campaigns.test_dispatch import _sandbox_account
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
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


@pytest.mark.parametrize("personalised", [True, False], ids=["a text with variables", "the same text for all"])
def test_the_audience_is_read_once_to_count_it_measure_its_texts_and_find_the_sample(campaign, personalised):
    """The composer asks for the estimate as staff type: counting the audience, measuring each one's text and finding
    the first recipient (the sample) share one pass over its rules and suppressions; each pass more cost as much
    again on a large audience (measuring in its own: 1.7 s instead of 1.2 on 300,000)."""
    if not personalised:
        campaign.text = "Your parcel ships today"
    with CaptureQueriesContext(connection) as queries:
        estimate = campaign_estimate(campaign=campaign)
    passes = [q["sql"] for q in queries if "contacts_unsubscriber" in q["sql"]]
    assert len(passes) == 1
    assert (estimate.audience, estimate.sendable, sum(estimate.suppressed.values())) == (10, 9, 1)
    if personalised:
        assert (estimate.spread.recipients, estimate.spread.total, estimate.missing_variables) == (9, 14, {"parcel": 1})
        assert estimate.text_sample == render(TEXT, {"first_name": "Ann", "parcel": "A-1"})[0]  # the lowest id's
    else:
        assert (estimate.spread.total, estimate.text_sample) == (9, "Your parcel ships today")


# Values of every kind the measuring tells apart: plain ASCII (one test in SQL), ASCII outside GSM-7 (`, a tab),
# the GSM-7 extension (two septets each), Latin letters in GSM-7 and outside it, beyond the BMP (two UTF-16 units).
VALUES = [
    "Ann",
    "",
    "O`Neil",
    "tab\there",
    "[Jo]",
    "a^b{c}d|e~f\\g",
    "€uro\f",
    "Zoë",
    "Åsa",
    "François",
    "😀😀",
    "अनन्या",
]


@pytest.mark.parametrize(
    "text",
    [
        "Hi {{first_name}}! {{first_name}} " + "x" * 120,  # GSM-7 unless a value says otherwise, twice each value
        "Привет {{first_name}}, " + "y" * 40,  # UCS-2 by its own text
        "{{first_name}}",  # nothing but the value: an empty one leaves an empty text, billed one part
    ],
    ids=["GSM-7 text", "UCS-2 text", "the value alone"],
)
def test_every_kind_of_value_is_measured_as_the_rendered_text_is(text):
    for value in VALUES:
        ContactFactory(first_name=value)
    parts = [sms_parts(render(text, {"first_name": value})[0]) for value in VALUES]
    spread, missing = texts_measure(text=text, contacts_sql="contacts_contact c", params=[])
    encodings = {}
    for each in parts:
        encodings[each.encoding] = encodings.get(each.encoding, 0) + 1
    assert (spread.recipients, spread.total) == (len(VALUES), sum(max(each.parts, 1) for each in parts))
    assert (spread.least, spread.most) == (min(p.parts for p in parts), max(p.parts for p in parts))
    assert (spread.encodings, missing) == (encodings, {"first_name": 1})


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


def test_a_dlt_variable_holding_contact_variables_is_held_to_30_characters_once_filled_for_each_recipient():
    """Template "Dear {#var#}, …" and a text "Dear Mr {{first_name}} {{last_name}}, …": the estimate refused the
    placeholders as written (32 characters) although most names are short, and said nothing of the long names DLT
    then refused (783). Now the text is matched without the limit, and each recipient's filled variable counted."""
    account = ProviderAccountFactory()  # MOBtexting
    sender = SenderFactory(account=account)
    template = DltTemplateFactory(
        account=account, senders=[sender], body="Dear {#var#}, your order {#var#} ships today. - Herald"
    )
    india = TagFactory(name="india")
    ContactFactory(tags=[india], first_name="Asha", last_name="Rao")  # "Mr Asha Rao": 11
    ContactFactory(tags=[india], first_name="Venkata Subrahmanya", last_name="Lakshminarayana")  # 38
    ContactFactory(tags=[india], first_name="Venkata", last_name="Ramanathan Iyer Krishnamurthy")  # 40
    text = "Dear Mr {{first_name}} {{last_name}}, your order {{order}} ships today. - Herald"
    campaign = CampaignFactory(account=account, sender=sender, template=template, text=text, tags=[india])

    estimate = campaign_estimate(campaign=campaign)

    assert estimate.problems == []
    assert estimate.warnings == [
        "For 2 recipients, the DLT variable 'var1' (Mr {{first_name}} {{last_name}}) is longer than 30 characters "
        "once filled: DLT refuses their messages (MOBtexting 783)."
    ]
    # Its fixed characters alone over 30 are a problem, filled or not.
    campaign.text = "Dear Mr and Mrs {{last_name}} and all the dear family, your order 7 ships today. - Herald"
    assert [(p.field, p.message) for p in campaign_estimate(campaign=campaign).problems] == [
        ("text", "The variable 'var1' is 35 characters ('Mr and Mrs {{last_name}} and all the dear family') before its "
         "{{…}} are filled; DLT allows at most 30.")
    ]  # fmt: skip
    # So are another variable's, beside one holding contact variables.
    campaign.text = f"Dear {{{{first_name}}}}, your order {'7' * 31} ships today. - Herald"
    assert [(p.field, p.message) for p in campaign_estimate(campaign=campaign).problems] == [
        ("text", f"The variable 'var2' would be 31 characters ('{'7' * 31}'); DLT allows at most 30.")
    ]
