"""The admin's lists in the browser: at 1400 pixels with the navigation open, their last columns are in sight. The
contact, campaign, sender and account lists ran past the page's edge (Django keeps headings, related objects and
times on one line), so the time a contact was added, or a campaign's send time, needed a sideways scroll."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from django.utils import timezone

from campaigns.models import Campaign
from providers.models import ProviderAccount, Sender
from tests.browser.conftest import DLT_ENTITY, assert_list_fits
from tests.factories import CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

LISTS = {
    "contacts": ("/admin/contacts/contact/", "created_at"),
    "campaigns": ("/admin/campaigns/campaign/", "created_at_shown"),
    "senders": ("/admin/providers/sender/", "status"),
    "accounts": ("/admin/providers/provideraccount/", None),
}


def test_the_main_lists_show_their_last_column_in_a_1400_pixel_window(web_server, page, steps):
    account = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting Mumbai production", channels=["sms"])
    sender = Sender.objects.create(
        account=account, name="HERALD", service="T", country="IN", dlt_entity_id=DLT_ENTITY,
        dlt_entity_name="Herald Communications Private Limited",
    )  # fmt: skip
    ContactFactory(first_name="Kateryna", last_name="Lysenko-Bondarenko",
                   email="kateryna.lysenko-bondarenko4995@customers.example.com")  # fmt: skip
    CampaignFactory(
        account=account, sender=sender, name="Diwali offer for newsletter readers", state=Campaign.State.SENDING,
        send_at=timezone.now() - timedelta(hours=1), audience_size=120_000,
        counters={"pending": 30_000, "sent": 50_000, "delivered": 40_000},
    )  # fmt: skip

    for name, (path, last_column) in LISTS.items():
        with steps(f"the {name} list at 1400 px"):
            page.goto(path)
            expect(page.locator("#result_list tbody tr")).not_to_have_count(0)
            assert_list_fits(page, "td:last-child")
            if last_column:
                expect(page.locator(f"#result_list tbody tr td:last-child.field-{last_column}").first).to_be_visible()

    assert not page.js_errors, page.js_errors


def test_the_contact_lists_action_bar_keeps_go_on_its_line_in_a_1400_pixel_window(web_server, page, steps):
    """The longest action's label made the dropdown so wide that "Go" went to a line of its own."""
    ContactFactory()

    with steps("the contact list's action bar at 1400 px"):
        page.goto("/admin/contacts/contact/")
        action, go = (
            page.locator("#changelist-form select[name=action]"),
            page.locator("#changelist-form button[name=index]"),
        )
        expect(go).to_be_visible()
        action_box, go_box = action.bounding_box(), go.bounding_box()
        assert abs(go_box["y"] - action_box["y"]) < action_box["height"], (action_box, go_box)

    assert not page.js_errors, page.js_errors


def test_the_dashboards_campaigns_under_way_fit_their_panel_in_a_1400_pixel_window(web_server, page, steps):
    """Django's index keeps its tables' cells on one line and each heading 100 % wide: with campaigns sending, paused
    and scheduled, "Campaigns under way and scheduled" was a table 760 pixels wide in a 500-pixel panel, its account
    cut ("MOBtexting sandbo") and its progress under the next panel."""
    account = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting sandbox", channels=["sms"])
    sender = Sender.objects.create(account=account, name="756070", service="P", country="IN", dlt_entity_id=DLT_ENTITY,
                                   dlt_entity_name="Herald Demo Pvt Ltd")  # fmt: skip
    for name, state in [("Diwali offer for newsletter readers", Campaign.State.SENDING),
                        ("Order shipped (demo)", Campaign.State.PAUSED),
                        ("Weekend sale reminder", Campaign.State.SCHEDULED)]:  # fmt: skip
        CampaignFactory(account=account, sender=sender, name=name, state=state,
                        send_at=timezone.now() + timedelta(days=1), audience_size=120_000,
                        counters={"pending": 30_000, "sent": 50_000, "delivered": 40_000})  # fmt: skip

    with steps("the dashboard at 1400 px"):
        page.goto("/admin/")
        panel = page.locator(".dashboard-campaigns")
        expect(panel.locator("tbody tr")).to_have_count(3)
        sizes = panel.evaluate(
            """(panel) => ({panel: panel.getBoundingClientRect().right, table: panel.querySelector('table').scrollWidth,
                           width: panel.clientWidth,
                           cells: [...panel.querySelectorAll('td')].map((td) => td.getBoundingClientRect().right)})"""
        )
        assert sizes["table"] <= sizes["width"], sizes
        assert max(sizes["cells"]) <= sizes["panel"], sizes
        expect(panel.locator("tbody tr").first.locator("td").nth(2)).to_have_text("MOBtexting sandbox")
        expect(panel.locator("progress").first).to_be_visible()
        # The scheduled one's time read "scheduled 2026-" on one line and "11-27 03:30 UTC" on the next.
        when = panel.locator("tbody tr", has_text="Weekend sale reminder").locator("td").nth(1).locator(".help")
        expect(when).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d \S+$"))
        assert when.evaluate("(span) => span.getClientRects().length") == 1, "its date and time on one line"

    assert not page.js_errors, page.js_errors
