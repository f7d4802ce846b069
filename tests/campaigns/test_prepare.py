"""Audience materialisation (one INSERT … SELECT), suppression reasons, frames and the estimate."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from django.core.exceptions import ValidationError
from django.db import connection

from campaigns.models import Campaign, Frame, Message
from campaigns.selectors import Problem, campaign_estimate, promotional_window_opening
from campaigns.services.counters import counters_recount
from campaigns.services.lifecycle import campaign_launch
from campaigns.services.prepare import campaign_prepare, frames_build, messages_materialise
from contacts.models import Operator, Unsubscriber
from providers.models import ProviderAccount, Sender
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    DltTemplateFactory,
    ProviderAccountFactory,
    SegmentFactory,
    SenderFactory,
    TagFactory,
    UnsubscriberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def audience():
    """Tagged contacts: a, b in 'news'; c in 'news' + 'vip'; d in 'vip'; e untagged; f in 'news' but inactive."""
    news, vip, staff = TagFactory(name="news"), TagFactory(name="vip"), TagFactory(name="staff")
    people = {
        "a": ContactFactory(tags=[news]),
        "b": ContactFactory(tags=[news, staff]),
        "c": ContactFactory(tags=[news, vip]),
        "d": ContactFactory(tags=[vip]),
        "e": ContactFactory(),
        "f": ContactFactory(tags=[news], is_active=False),
    }
    return {"news": news, "vip": vip, "staff": staff, **people}


def _statuses(campaign):
    return {m.contact_id: (m.status, m.reason) for m in Message.objects.filter(campaign=campaign)}


def test_materialise_writes_one_message_per_member_with_suppression_reasons(audience):
    campaign = CampaignFactory(tags=[audience["news"]], excluded_tags=[audience["staff"]], contacts=[audience["e"]])
    UnsubscriberFactory(address=audience["c"].phone, scope=Unsubscriber.Scope.SENDER, value=campaign.sender.name)
    UnsubscriberFactory(address=audience["e"].phone, scope=Unsubscriber.Scope.CHANNEL, value="viber")  # other channel

    assert messages_materialise(campaign=campaign) == 4
    assert _statuses(campaign) == {
        audience["a"].pk: ("pending", ""),
        audience["c"].pk: ("suppressed", f"unsubscribed (sender: {campaign.sender.name})"),
        audience["e"].pk: ("pending", ""),
        audience["f"].pk: ("suppressed", "inactive contact"),
    }
    assert messages_materialise(campaign=campaign) == 0, "a second run must not duplicate messages"


@pytest.mark.parametrize(
    ("scope", "value", "suppressed"),
    [
        ("all", "", True),
        ("channel", "sms", True),
        ("channel", "email", False),
        ("service", "promotional", True),
        ("service", "transactional", False),
        ("tag", "news", True),
        ("tag", "NEWS", True),  # a tag is named in any case, anywhere
        ("tag", "vip", False),
    ],
)
def test_each_unsubscription_scope_applies_only_where_it_should(audience, scope, value, suppressed):
    campaign = CampaignFactory(tags=[audience["news"]], purpose=Campaign.Purpose.PROMOTIONAL)
    Unsubscriber.objects.create(address=audience["a"].phone, scope=scope, value=value)
    messages_materialise(campaign=campaign)
    status = Message.objects.get(campaign=campaign, contact=audience["a"]).status
    assert status == ("suppressed" if suppressed else "pending")


@pytest.mark.parametrize(
    ("purpose", "options", "value", "suppressed"),
    [
        (Campaign.Purpose.TRANSACTIONAL, {}, "T", True),
        (Campaign.Purpose.PROMOTIONAL, {}, "P", True),
        (Campaign.Purpose.SERVICE, {}, "S", True),
        (Campaign.Purpose.TRANSACTIONAL, {}, "P", False),
        (Campaign.Purpose.PROMOTIONAL, {"service": "S"}, "S", True),  # the account's service, over the purpose's
        (Campaign.Purpose.PROMOTIONAL, {"service": "S"}, "P", False),
    ],
)
def test_an_opt_out_of_a_service_code_applies_where_mobtexting_sends_under_that_code(
    audience, purpose, options, value, suppressed
):
    """A MOBtexting sender saved without a service code sends under the account's `service` option, else the one
    its campaign's purpose takes (transactional: T). An opt-out of T (the vendor's own, or added by staff) was
    compared with the sender's code alone, so the person still got every transactional campaign sent as T."""
    account = ProviderAccountFactory(kind="mobtexting", options=options)
    sender = SenderFactory(account=account, service="")
    campaign = CampaignFactory(account=account, sender=sender, tags=[audience["news"]], purpose=purpose)
    Unsubscriber.objects.create(address=audience["a"].phone, scope=Unsubscriber.Scope.SERVICE, value=value)
    messages_materialise(campaign=campaign)
    status = Message.objects.get(campaign=campaign, contact=audience["a"]).status
    assert status == ("suppressed" if suppressed else "pending")


def test_segments_and_all_of_tags_select_the_right_people(audience):
    vip_news = SegmentFactory(positive_tags=[audience["news"], audience["vip"]], positive_operator=Operator.ALL)
    campaign = CampaignFactory(segments=[vip_news], tags=[audience["vip"]], tags_operator=Operator.ALL)
    messages_materialise(campaign=campaign)
    assert set(_statuses(campaign)) == {audience["c"].pk, audience["d"].pk}


def test_frames_group_pending_messages_and_spread_them_with_smooth_sending(audience):
    contacts = ContactFactory.create_batch(25, tags=[audience["news"]])
    campaign = CampaignFactory(tags=[audience["news"]], smooth_minutes=10)
    messages_materialise(campaign=campaign)
    assert frames_build(campaign=campaign, frame_size=10) == 3  # 25 + a, b, c pending = 28 → 10, 10, 8
    frames = list(Frame.objects.filter(campaign=campaign).order_by("seq"))
    assert [f.size for f in frames] == [10, 10, 8]
    assert Message.objects.filter(campaign=campaign, status="pending", frame__isnull=True).count() == 0
    assert Message.objects.filter(campaign=campaign, status="suppressed", frame__isnull=False).count() == 0
    gaps = [(b.next_attempt_at - a.next_attempt_at).total_seconds() for a, b in zip(frames, frames[1:], strict=False)]
    assert gaps == pytest.approx([200, 200], abs=2)  # 10 minutes over 3 frames
    assert frames_build(campaign=campaign, frame_size=10) == 3, "no second set of frames"
    assert len(contacts) == 25


@pytest.mark.parametrize("joins", ["as planned", "nested loops only"])
def test_materialising_into_frames_puts_members_in_contact_order_whatever_the_plan(audience, joins):
    """Messages get their frame's id by position, so the result (and the time) does not hang on a join plan."""
    ContactFactory.create_batch(8, tags=[audience["news"]])
    UnsubscriberFactory(address=audience["b"].phone)
    campaign = CampaignFactory(tags=[audience["news"]])
    if joins == "nested loops only":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")

    messages_materialise(campaign=campaign, frame_size=3)

    pending = Message.objects.filter(campaign=campaign, status="pending").order_by("contact_id")
    # a, c and the 8 new ones (f is inactive, b unsubscribed), three to a frame in contact order
    assert list(pending.values_list("frame__seq", flat=True)) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert [f.size for f in Frame.objects.filter(campaign=campaign).order_by("seq")] == [3, 3, 3, 1]
    assert not Message.objects.filter(campaign=campaign, status="suppressed", frame__isnull=False).exists()


def test_counters_recount_matches_the_messages(audience):
    campaign = CampaignFactory(tags=[audience["news"]])
    messages_materialise(campaign=campaign)
    assert counters_recount(campaign_id=campaign.pk) == {"pending": 3, "suppressed": 1}


def test_prepare_reckons_parts_and_cost_from_every_pending_recipient_as_the_estimate_does(audience):
    """a (the first member) is suppressed, so b's text is the sample: b's long name makes it two parts. c's short
    one keeps it in one: the cost is of three parts, not of the sample's two for each."""
    audience["a"].first_name, audience["b"].first_name, audience["c"].first_name = "Al", "B" * 60, "Cy"
    for person in ("a", "b", "c"):
        audience[person].save()
    UnsubscriberFactory(address=audience["a"].phone, scope=Unsubscriber.Scope.ALL)
    campaign = CampaignFactory(tags=[audience["news"]], text="Hi {{first_name}}, " + "x" * 110)
    estimate = campaign_estimate(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PREPARING)

    campaign_prepare(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    assert (campaign.parts, estimate.parts.parts) == (2, 2)
    assert campaign.cost_estimate == estimate.cost == Decimal("0.3")  # b (2 parts) and c (1) pending, 0.1 a part


@pytest.mark.parametrize("sample", [20, 0])  # 0: one slice's first each, not a sample of no one (a cost of 0)
def test_prepare_costs_a_large_personalised_audience_from_a_sample_spread_over_it(settings, sample):
    """Past PREPARE_COST_SAMPLE recipients, the stored cost is measured on a sample taken from every part of the
    audience, not from its first contacts: here the first half has long names (2 parts), the second short (1)."""
    settings.PREPARE_COST_SAMPLE = sample
    tag = TagFactory(name="sampled")
    for n in range(100):
        ContactFactory(first_name="B" * 60 if n < 50 else "Cy", tags=[tag])
    campaign = CampaignFactory(tags=[tag], text="Hi {{first_name}}, " + "x" * 110)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PREPARING)

    campaign_prepare(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.cost_estimate == Decimal("15.0"), "150 parts (50 × 2 + 50 × 1) at 0.1, not 200 from the first 20"
    assert campaign_estimate(campaign=campaign).cost == Decimal("15.0"), "the composer's estimate measures all"


# --- Estimate and pre-flight -------------------------------------------------------------------


def _problems(campaign, **kwargs):
    return {p.field: p.message for p in campaign_estimate(campaign=campaign, **kwargs).problems}


def test_estimate_counts_audience_suppressions_parts_and_cost(audience):
    campaign = CampaignFactory(tags=[audience["news"]], text="Hi {{first_name}}, your parcel — is on its way")
    estimate = campaign_estimate(campaign=campaign)
    assert (estimate.audience, estimate.sendable, estimate.suppressed) == (4, 3, {"inactive contact": 1})
    assert estimate.parts.encoding == "UCS-2"
    assert estimate.parts.first_ucs2_char == "—"
    assert str(estimate.cost) == "0.30000"  # 3 recipients × 1 part × 0.1
    assert estimate.text_sample.startswith(f"Hi {audience['a'].first_name},")


def test_preflight_names_the_field_of_each_problem(audience):
    account = ProviderAccountFactory(kind="mobtexting")
    pending_sender = SenderFactory(account=account, status="pending")
    campaign = CampaignFactory(account=account, sender=pending_sender, tags=[audience["news"]], frame_size=5000)
    problems = _problems(campaign)
    assert "pending" in problems["sender"]
    assert "DLT template" in problems["template"]
    assert "500" in problems["frame_size"]


def test_preflight_checks_the_text_against_the_dlt_template(audience):
    campaign = CampaignFactory(tags=[audience["news"]], text="Your OTP is 1234. Valid for 15 minutes. - Herald")
    campaign.template = DltTemplateFactory(account=campaign.account, senders=[campaign.sender])
    assert "text" in _problems(campaign)
    campaign.text = "Your OTP is {{otp}}. Valid for 10 minutes. - Herald"
    assert "text" not in _problems(campaign)
    campaign.text = "Your OTP is " + "9" * 31 + ". Valid for 10 minutes. - Herald"
    assert "30" in _problems(campaign)["text"]


def test_octopush_marketing_needs_the_stop_mention(audience):
    account = ProviderAccountFactory(kind="octopush")
    campaign = CampaignFactory(account=account, sender__account=account, sender__country="FR", tags=[audience["news"]],
                               purpose=Campaign.Purpose.PROMOTIONAL, text="Soldes -50% ce week-end")  # fmt: skip
    assert "STOP" in _problems(campaign)["text"]
    campaign.text += " STOP au 30101"
    assert "text" not in _problems(campaign)


@pytest.mark.parametrize(
    ("kind", "name", "country", "said", "accepted"),
    [
        pytest.param(
            "octopush", "My Shop", "FR",
            "Octopush takes a sender of 3 to 11 letters (a-z, A-Z) and digits, with no accent, space or punctuation.",
            "MyShop", id="octopush: 3 to 11 letters and digits (106)",
        ),
        pytest.param(
            "mobtexting", "herald2", "IN",
            "A transactional (service T) sender ID for India is 6 capital letters or digits, e.g. HERALD (TRAI's rule: "
            "MOBtexting refuses every message sent through any other).",
            "HERALD", id="mobtexting: service T for India, 6 capitals or digits (422)",
        ),
    ],
)  # fmt: skip
def test_preflight_names_a_sender_its_vendor_would_refuse(audience, kind, name, country, said, accepted):
    """A sender saved before its vendor's name rule was checked when senders are saved: the vendor would refuse every
    message through it, so the pre-flight says so before anything is sent."""
    account = ProviderAccountFactory(kind=kind)
    campaign = CampaignFactory(account=account, sender__account=account, sender__name=name, sender__country=country,
                               tags=[audience["news"]], text="Your parcel is on its way")  # fmt: skip
    assert _problems(campaign)["sender"] == f"Sender {name}: {said}"
    Sender.objects.filter(pk=campaign.sender_id).update(name=accepted)
    campaign.sender.refresh_from_db()
    assert "sender" not in _problems(campaign)


def test_launch_refuses_with_the_failing_fields(audience):
    campaign = CampaignFactory(tags=[], text="")
    with pytest.raises(ValidationError) as exc:
        campaign_launch(campaign_id=campaign.pk)
    assert set(exc.value.message_dict) >= {"text", "tags"}
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


def test_launch_refuses_an_audience_where_everyone_is_suppressed(audience):
    account = ProviderAccountFactory(kind="devino")
    campaign = CampaignFactory(account=account, tags=[audience["vip"]], purpose=Campaign.Purpose.TRANSACTIONAL)  # c, d
    for person in ("c", "d"):
        UnsubscriberFactory(address=audience[person].phone, scope=Unsubscriber.Scope.ALL)
    with pytest.raises(ValidationError) as exc:
        campaign_launch(campaign_id=campaign.pk)
    assert "No one to send to" in exc.value.message_dict["tags"][0]

    Unsubscriber.objects.filter(address=audience["d"].phone).delete()
    assert campaign_launch(campaign_id=campaign.pk).state == Campaign.State.PREPARING


@pytest.mark.parametrize(
    ("members", "said"),
    [
        (("c", "d"), "No one to send to: all 2 selected are suppressed."),
        (("d",), "No one to send to: the 1 selected is suppressed."),
        ((), "No one to send to: the audience chosen has no contacts."),
    ],
    ids=["all suppressed", "the one suppressed", "no one"],
)
def test_the_launch_and_the_estimate_word_an_audience_with_no_one_to_send_to_alike(audience, members, said):
    """The launch (and a scheduled campaign's edit) said "No one to send to: everyone selected is suppressed (or there
    is no one).", its estimate "No one to send to: all 1 selected are suppressed.": one problem, two wordings."""
    chosen = TagFactory(name="chosen")
    for person in members:
        audience[person].tags.add(chosen)
        UnsubscriberFactory(address=audience[person].phone, scope=Unsubscriber.Scope.ALL)
    campaign = CampaignFactory(account=ProviderAccountFactory(kind="devino"), tags=[chosen],
                               purpose=Campaign.Purpose.TRANSACTIONAL)  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        campaign_launch(campaign_id=campaign.pk)
    assert exc.value.message_dict["tags"] == [said]
    assert Problem("tags", said) in campaign_estimate(campaign=campaign).problems


def test_no_one_to_send_to_is_told_on_the_audience_field_that_chose_them(audience):
    """A campaign of chosen contacts alone, every one suppressed, was told so on its empty Tags."""
    UnsubscriberFactory(address=audience["d"].phone, scope=Unsubscriber.Scope.ALL)
    campaign = CampaignFactory(account=ProviderAccountFactory(kind="devino"), contacts=[audience["d"]],
                               purpose=Campaign.Purpose.TRANSACTIONAL)  # fmt: skip
    said = "No one to send to: the 1 selected is suppressed."
    with pytest.raises(ValidationError) as exc:
        campaign_launch(campaign_id=campaign.pk)
    assert exc.value.message_dict == {"contacts": [said]}
    assert campaign_estimate(campaign=campaign).problems == [Problem("contacts", said)]
    # tags beside them that choose no one (no contact has both): still on Contacts, which chose them
    both = CampaignFactory(account=campaign.account, tags=[audience["staff"], audience["vip"]], tags_operator="all",
                           contacts=[audience["d"]], purpose=Campaign.Purpose.TRANSACTIONAL)  # fmt: skip
    assert campaign_estimate(campaign=both).problems == [Problem("contacts", said)]
    # tags that choose someone, suppressed too: on Tags, the first field that chose anyone
    UnsubscriberFactory(address=audience["b"].phone, scope=Unsubscriber.Scope.ALL)
    tagged = CampaignFactory(account=campaign.account, tags=[audience["staff"]], contacts=[audience["d"]],
                             purpose=Campaign.Purpose.TRANSACTIONAL)  # fmt: skip
    assert [problem.field for problem in campaign_estimate(campaign=tagged).problems] == ["tags"]


def test_promotional_launch_outside_the_window_is_deferred_to_the_next_opening(audience):
    account = ProviderAccountFactory(kind="devino")  # the default window: 09:00-21:00 Asia/Kolkata
    campaign = CampaignFactory(account=account, tags=[audience["news"]], purpose=Campaign.Purpose.PROMOTIONAL)
    night = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 23:30 in Kolkata
    assert promotional_window_opening(campaign=campaign, at=night) == datetime(2026, 11, 24, 3, 30, tzinfo=UTC)
    campaign_launch(campaign_id=campaign.pk, now=night)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SCHEDULED
    assert campaign.send_at == datetime(2026, 11, 24, 3, 30, tzinfo=UTC)
    assert "promotional" in campaign.state_reason
    assert not Message.objects.filter(campaign=campaign).exists(), "deferred, not dropped, and not sent"


def test_a_promotional_window_stored_unreadable_is_a_launch_problem_on_the_account_not_a_crash(audience):
    """Accounts saved before the window was checked (providers.promo_window) may hold one the launch cannot read."""
    account = ProviderAccountFactory(kind="devino")
    ProviderAccount.objects.filter(pk=account.pk).update(options={"promo_window": {"start": "9am", "end": "21:00"}})
    campaign = CampaignFactory(account=account, tags=[audience["news"]], purpose=Campaign.Purpose.PROMOTIONAL)
    campaign = Campaign.objects.get(pk=campaign.pk)

    assert campaign_estimate(campaign=campaign).problems == [
        Problem("account", "The account's promo_window option cannot be read: start must be a time of day as "
                "\"HH:MM\", not '9am'.")
    ]  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        campaign_launch(campaign_id=campaign.pk)
    assert list(refused.value.message_dict) == ["account"]
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT


def test_a_window_with_a_note_saved_before_keys_were_checked_still_launches(audience):
    account = ProviderAccountFactory(kind="devino")
    window = {"start": "00:00", "end": "23:59", "tz": "UTC", "comment": "all day"}
    ProviderAccount.objects.filter(pk=account.pk).update(options={"promo_window": window})
    campaign = CampaignFactory(account=account, tags=[audience["news"]], purpose=Campaign.Purpose.PROMOTIONAL)
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert [p.field for p in campaign_estimate(campaign=campaign).problems] == []


def test_transactional_traffic_ignores_the_promotional_window(audience):
    campaign = CampaignFactory(tags=[audience["news"]], purpose=Campaign.Purpose.TRANSACTIONAL)
    assert promotional_window_opening(campaign=campaign, at=datetime(2026, 11, 23, 18, 0, tzinfo=UTC)) is None


def test_preflight_refuses_a_seventh_identical_text_within_the_hour(audience):
    from django.utils import timezone

    from tests.factories import MessageFactory

    campaign = CampaignFactory(tags=[audience["news"]], text="Flash sale today only")
    earlier = CampaignFactory(account=campaign.account, sender=campaign.sender, text=campaign.text)
    for _ in range(6):
        MessageFactory(campaign=earlier, contact=None, account=campaign.account, address=audience["a"].phone,
                       text=campaign.text, status="delivered", submitted_at=timezone.now())  # fmt: skip
    assert "1 recipients already got this text" in _problems(campaign)["text"]
