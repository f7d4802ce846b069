"""A campaign's page while it sends, in a real browser: what the live progress panel adds as reports arrive."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Message
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
