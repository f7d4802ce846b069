"""A campaign's page while it sends, in a real browser: what the live progress panel adds as reports arrive."""

import pytest
from playwright.sync_api import expect

from campaigns.models import NOT_SENT, Campaign, Message
from tests.factories import CampaignFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_export_of_failed_messages_appears_with_the_first_failure_without_a_reload(page, steps):
    campaign = CampaignFactory(state="sending", counters={"submitted": 2})
    messages = [MessageFactory(campaign=campaign, status="submitted") for _ in range(2)]
    failed_link = page.locator(".herald-export-failed")

    with steps("sending, nothing failed: no failed messages to export"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(page.locator(".herald-export")).to_be_visible()
        expect(failed_link).to_be_hidden()

    with steps("a report says one failed: the page offers the export of failed messages"):
        Message.objects.filter(pk=messages[0].pk).update(status="undelivered", error_code="013")
        Campaign.objects.filter(pk=campaign.pk).update(counters={"submitted": 1, "undelivered": 1})
        expect(page.locator("[data-progress='groups.failed']")).to_have_text("1")
        expect(failed_link).to_be_visible()

    assert not page.js_errors, page.js_errors


def test_the_cost_is_written_with_thousands_separators_as_it_refreshes(page, steps):
    """ "9272.50" beside counts written "3,746", once the panel's first refresh had redrawn it."""
    campaign = CampaignFactory(
        state="sending", counters={"submitted": 2}, cost_estimate="12345.6", cost_actual="9272.5"
    )
    MessageFactory(campaign=campaign, status="submitted")
    cost = page.locator("[data-progress=cost_actual]")

    with steps("sending: the cost so far and the estimate, grouped"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(cost).to_have_text("9,272.50")
        expect(page.locator("[data-progress=cost_estimate]")).to_have_text("12,345.60")

    with steps("the provider reports more: the refreshed cost is grouped too"):
        Campaign.objects.filter(pk=campaign.pk).update(cost_actual="10000")
        expect(cost).to_have_text("10,000.00")

    assert not page.js_errors, page.js_errors


def test_a_cancelled_campaigns_not_sent_are_a_slice_of_their_own_and_no_failure_by_reason(page, steps):
    """Cards said Failed 1 and Not sent 3 while the donut's legend said "failed 4" and failures by reason led with
    the 3 closed unsent."""
    campaign = CampaignFactory(state="cancelled", not_sent=3, counters={"delivered": 1, "failed": 4})
    MessageFactory(campaign=campaign, status="delivered")
    MessageFactory(campaign=campaign, status="failed", error_code="", reason="Connection refused")
    for _ in range(3):
        MessageFactory(campaign=campaign, status="failed", error_code=NOT_SENT, reason="cancelled before sending")

    with steps("the cancelled campaign's page: the donut and failures by reason count as the cards do"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(page.locator("#status-chart[data-ready=true]")).to_have_count(1)
        legend = page.evaluate("Chart.getChart(document.getElementById('status-chart')).data.labels")
        assert legend == ["delivered 1", "failed 1", "not sent 3"]
        failures = page.locator("[data-progress=failures] tr")
        expect(failures).to_have_count(1)
        expect(failures.locator("td").nth(0)).to_have_text("1")
        expect(failures.locator("td").nth(3)).to_have_text("Connection refused")

    assert not page.js_errors, page.js_errors
