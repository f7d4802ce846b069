"""load_demo: sandbox accounts, senders, templates, contacts, segments and a draft; idempotent and set-based."""

import io

import pytest

from django.core.management import call_command
from django.db.models import Max

from campaigns.models import Campaign
from contacts.models import Contact, ContactTag, Segment, Tag, Unsubscriber
from contacts.selectors import segment_count
from providers.dlt import template_match
from providers.models import DltTemplate, ProviderAccount, Sender
from providers.sandbox.octopush import PRICES as OCTOPUSH_PRICES

pytestmark = pytest.mark.django_db
QUERY_BOUND = 120  # the same bound for 50 and 500 contacts: the query count does not grow per contact


def load(count: int) -> str:
    out = io.StringIO()
    call_command("load_demo", contacts=count, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """How many rows of each and the newest (a link keyed by its pair has no id: the time it was made)."""
    return {
        model.__name__: (
            model.objects.count(),
            model.objects.aggregate(last=Max("created_at" if model._meta.is_composite_pk else "pk"))["last"],
        )
        for model in (ProviderAccount, Sender, DltTemplate, Tag, Contact, ContactTag, Unsubscriber, Segment, Campaign)
    } | {"contacts_updated": Contact.objects.aggregate(last=Max("updated_at"))["last"]}


def test_loads_the_demo_pointing_at_the_sandbox(settings):
    settings.SANDBOX_URL = "http://127.0.0.1:8025"
    assert "Demo data ready" in load(300)
    accounts = {a.kind: a for a in ProviderAccount.objects.all()}
    assert accounts["mobtexting"].base_url == "http://127.0.0.1:8025/mobtexting/api/v2"
    assert accounts["octopush"].base_url == "http://127.0.0.1:8025/octopush/v1/public"
    assert accounts["devino"].base_url == "http://127.0.0.1:8025/devino"
    assert accounts["hyber"].base_url == "http://127.0.0.1:8025/hyber"
    assert accounts["octopush"].credentials == {"login": "demo@herald.local", "api_key": "demo-octopush-key"}
    assert accounts["hyber"].options == {"client_id": "demo"}
    # The estimate read 11.52 EUR where the sandbox charged 16.64: the low-cost price, for premium SMS.
    assert (
        float(accounts["octopush"].price_per_part)
        == OCTOPUSH_PRICES[accounts["octopush"].options.get("sms_type", "sms_premium")]
    )
    mobtexting_senders = Sender.objects.filter(account=accounts["mobtexting"], status="approved")
    assert sorted(mobtexting_senders.values_list("name", "service")) == [("756070", "P"), ("HERALD", "T")]
    assert all(t.senders.exists() for t in DltTemplate.objects.all())
    assert DltTemplate.objects.count() == 3

    assert Contact.objects.count() == 300
    assert Contact.objects.filter(is_active=False).exists()
    assert Contact.objects.filter(phone__startswith="+91").count() > 200
    assert {"customers", "vip", "newsletter", "delhi", "mumbai", "france"} <= set(Tag.objects.values_list("name", flat=True))  # fmt: skip
    assert Unsubscriber.objects.count() >= 3

    vip = Segment.objects.get(name="VIP customers")
    outside_delhi = Segment.objects.get(name="Newsletter outside Delhi")
    assert 0 < segment_count(vip) < segment_count(outside_delhi) < 300
    # The segment list's column shows the counts taken as the demo was loaded, not "not counted yet".
    assert (vip.contact_count, outside_delhi.contact_count) == (segment_count(vip), segment_count(outside_delhi))

    campaign = Campaign.objects.get()
    assert (campaign.state, campaign.account, list(campaign.segments.all())) == ("draft", accounts["mobtexting"], [vip])
    assert campaign.sender.name == "HERALD" and campaign.template.senders.filter(pk=campaign.sender.pk).exists()
    contact = Contact.objects.exclude(first_name="").first()
    rendered = campaign.text.replace("{{first_name}}", contact.first_name).replace(
        "{{last_order}}", contact.attributes["last_order"]
    )
    assert template_match(campaign.template.body, rendered)


def test_running_twice_changes_nothing():
    load(300)
    before = snapshot()
    load(300)
    assert snapshot() == before


@pytest.mark.parametrize("count", [50, 500])
def test_the_query_count_does_not_grow_with_the_contacts(count, django_assert_max_num_queries):
    with django_assert_max_num_queries(QUERY_BOUND):
        load(count)
    assert Contact.objects.count() == count
