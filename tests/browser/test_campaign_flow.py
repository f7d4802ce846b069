"""A staff member's day in the admin, in a real browser: tags, a contact and a segment; a campaign composed with a
DLT template, its live estimate, the launch confirmation, live progress through pause and resume to 100 %, the
delivery report and the CSV export."""

import csv
import io
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from django.utils import timezone

from campaigns.models import Campaign
from contacts.models import Contact, Segment
from tests.browser.conftest import contacts_tagged, dlt_template, pick, sandbox_account

pytestmark = pytest.mark.django_db(transaction=True)

AUDIENCE = 200


def test_compose_launch_pause_resume_and_read_the_delivery_report(stack, sandbox, page, steps):
    # Requests of 10 recipients, one a second: about 20 s of sending, time enough to pause and resume.
    account = sandbox_account(sandbox, "mobtexting", max_recipients_per_request=10, rate_limit=1)
    template = dlt_template(account)
    contacts_tagged(AUDIENCE, "customers")

    with steps("create a tag"):
        page.goto("/admin/contacts/tag/add/")
        page.fill("#id_name", "vip")
        page.click("input[name=_save]")
        expect(page.locator(".messagelist")).to_contain_text("vip")

    with steps("create a contact with tags"):
        page.goto("/admin/contacts/contact/add/")
        page.fill("#id_phone", "098111 11111")
        page.fill("#id_first_name", "Asha")
        page.fill("#id_last_name", "Rao")
        for name in ("customers", "vip"):
            pick(page, ".field-tag_list", name)
        page.click("input[name=_continue]")
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        expect(page.locator("#contact-opt-outs")).to_contain_text("has not opted out")
        contact = Contact.objects.get(phone="+919811111111")
        assert sorted(contact.tags.values_list("name", flat=True)) == ["customers", "vip"]

    with steps("a new segment counts its contacts live"):
        page.goto("/admin/contacts/segment/add/")
        page.fill("#id_name", "Customers but not VIP")
        pick(page, ".field-positive_tags", "customers")
        expect(page.locator("[data-segment=count]")).to_have_text(str(AUDIENCE + 1))
        pick(page, ".field-negative_tags", "vip")
        expect(page.locator("[data-segment=count]")).to_have_text(str(AUDIENCE))
        expect(page.locator("#segment-live")).not_to_contain_text("+919811111111")

    with steps("save the segment"):
        page.click("input[name=_save]")
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        assert Segment.objects.filter(name="Customers but not VIP").exists()

    with steps("compose: account, sender, template"):
        page.goto("/admin/campaigns/campaign/add/")
        page.fill("#id_name", "Welcome codes")
        expect(page.locator("[data-estimate=problems]")).to_contain_text("Choose a provider account")
        page.select_option("#id_channel", "viber")  # before any account: every channel is offered
        page.select_option("#id_account", label=str(account))
        # The account has SMS only: the other channels cannot be chosen, and the channel chosen gives way to SMS.
        expect(page.locator("#id_channel")).to_have_value("sms")
        expect(page.locator("#id_channel option[value=viber]")).to_be_disabled()
        expect(page.locator("#id_sender option", has_text="HERALD")).to_have_count(1)
        page.select_option("#id_sender", label=f"HERALD (SMS on {account.name}; transactional, IN)")
        expect(page.locator("#id_template option", has_text="Greeting")).to_have_count(1)
        page.select_option("#id_template", label=f"Greeting ({template.dlt_template_id})")
        slots = page.locator(".composer-slot")
        expect(slots).to_have_count(2)

    with steps("fill the template's variables"):
        # A slot's {{first_name}} is each recipient's value, counted once filled by the estimate: 38 characters as
        # written were marked too long, though only 8 of them are the slot's own. 31 of its own are.
        slots.nth(0).fill("Dear Mr {{first_name}} {{last_name}}")
        expect(slots.nth(0)).not_to_have_class(re.compile("is-too-long"))
        slots.nth(0).fill("x" * 31)
        expect(slots.nth(0)).to_have_class(re.compile("is-too-long"))
        slots.nth(0).fill("")
        slots.nth(0).click()
        page.click(".composer-chip:text-is('{{first_name}}')")
        slots.nth(1).fill("4711")
        expect(page.locator("#id_text")).to_have_value("Hello {{first_name}}, your code is 4711. - Herald")

    with steps("choose the audience and read the estimate"):
        pick(page, ".field-segments", "Customers but not VIP")
        panel = page.locator("#estimate-panel")
        expect(panel.locator("[data-estimate=sendable]")).to_have_text(str(AUDIENCE))
        expect(panel.locator("[data-estimate=encoding]")).to_have_text("GSM-7")
        expect(panel.locator("[data-estimate=cost]")).to_have_text("2.00")
        expect(panel.locator("[data-estimate=ready]")).to_be_visible()
        expect(panel.locator("[data-estimate=text_sample]")).to_contain_text("Hello Guest")

    with steps("names of different lengths: the estimate counts each recipient's parts"):
        expect(panel.locator("[data-estimate=parts_summary]")).to_be_hidden()
        expect(panel.locator("[data-estimate=parts_total]")).to_have_text(str(AUDIENCE))
        slots.nth(1).fill("4" * 121)  # 160 characters for Guest 10 to 99, 161 (two parts) for Guest 100 to 200
        summary = "Texts differ by recipient: 1 to 2 parts (200 in GSM-7), 301 parts in all."
        expect(panel.locator("[data-estimate=parts_summary]")).to_have_text(summary)
        expect(panel.locator("[data-estimate=cost]")).to_have_text("3.01")
        slots.nth(1).fill("4711")
        expect(panel.locator("[data-estimate=parts_summary]")).to_be_hidden()

    with steps("a non-GSM character switches the estimate to UCS-2"):
        slots.nth(1).fill("4711 ✓")
        expect(panel.locator("[data-estimate=encoding]")).to_have_text("UCS-2")
        expect(panel.locator("[data-estimate=ucs2] mark.ucs2-char")).to_have_text("✓")
        expect(panel.locator("[data-estimate=text_sample] mark")).to_have_text("✓")
        slots.nth(1).fill("4711")
        expect(panel.locator("[data-estimate=encoding]")).to_have_text("GSM-7")

    with steps("promotional, sent at night: the estimate says when the window opens, in its zone and the form's"):
        day = timezone.localdate() + timedelta(days=1)
        page.select_option("#id_purpose", "promotional")
        page.fill("#id_send_at_0", f"{day:%Y-%m-%d}")
        page.fill("#id_send_at_1", "20:00")  # 01:30 in India: the window opens at 09:00 IST, 03:30 UTC
        expect(panel.locator("[data-estimate=deferred_until]")).to_have_text(
            f"{day + timedelta(days=1):%Y-%m-%d} 09:00 IST (03:30 UTC)"
        )
        page.select_option("#id_purpose", "transactional")
        page.fill("#id_send_at_0", "")
        page.fill("#id_send_at_1", "")
        expect(panel.locator("[data-estimate=deferred]")).to_be_hidden()

    with steps("save: the launch page states audience and cost"):
        page.click("input[name=_saveandlaunch]")
        expect(page.locator(".confirm-audience")).to_have_text(str(AUDIENCE))
        expect(page.locator(".confirm-cost")).to_have_text("2.00 INR")
        campaign = Campaign.objects.get(name="Welcome codes")
        assert campaign.state == Campaign.State.DRAFT
        assert campaign.created_by.username == "staff-admin"

    with steps("launch"):
        page.click(".herald-confirm-button")
        expect(page.locator(".messagelist")).to_contain_text("is launched")

    progress = page.locator("#campaign-progress")
    with steps("watch it send, then ask to pause"):
        expect(progress.locator("[data-progress=state_display]")).to_have_text("sending", timeout=30_000)
        expect(progress.locator("[data-progress='groups.submitted']")).not_to_have_text("0", timeout=20_000)
        page.click(".herald-action-pause")
        expect(page.locator(".confirm-audience")).to_have_text(str(AUDIENCE))

    with steps("pause"):
        page.click(".herald-confirm-button")
        expect(page.locator(".messagelist")).to_contain_text("is paused")
        expect(progress.locator("[data-progress=state_display]")).to_have_text("paused")
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.PAUSED

    with steps("resume"):
        page.click(".herald-action-resume")
        page.click(".herald-confirm-button")
        expect(page.locator(".messagelist")).to_contain_text("is resumed")
        expect(progress.locator("[data-progress=state_display]")).to_have_text("sending")

    with steps("progress reaches 100 % and the delivery report appears"):
        expect(progress.locator("[data-progress=progress]")).to_have_text("100", timeout=60_000)
        expect(progress.locator("[data-progress=state_display]")).to_have_text("completed", timeout=30_000)
        expect(page.locator("#funnel-chart")).to_have_attribute("data-ready", "true")
        expect(page.locator("#status-chart")).to_have_attribute("data-ready", "true")
        campaign.refresh_from_db()
        undelivered = campaign.counters.get("undelivered", 0)
        assert campaign.counters.get("delivered", 0) + undelivered == AUDIENCE
        if undelivered:
            expect(progress.locator("[data-progress=failures]")).to_contain_text("undelivered")
        # The status chart's legend says each count, as the cards do (it named the statuses only).
        legend = [f"delivered {campaign.counters['delivered']}"] + (
            [f"undelivered {undelivered}"] if undelivered else []
        )
        page.wait_for_function(
            """(legend) => {
                const chart = Chart.getChart(document.getElementById("status-chart"));
                return chart && legend.every((label) => chart.data.labels.includes(label));
            }""",
            arg=legend,
            timeout=10_000,
        )
        expect(page.locator(".herald-action-pause")).to_be_hidden()

    with steps("export the messages as CSV"):
        with page.expect_download() as download:
            page.click(".herald-export")
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
        assert len(rows) == AUDIENCE
        assert {row["status"] for row in rows} <= {"delivered", "undelivered"}

    with steps("see every message: the list names the campaign, filters by status and exports what it shows"):
        page.click("#campaign-progress a:text-is('See every message')")
        sidebar = page.locator("#changelist-filter")
        expect(sidebar).to_contain_text("Welcome codes")
        expect(sidebar).to_contain_text("Clear all filters")
        sidebar.locator("a:text-is('Delivered')").click()
        expect(page.locator(".herald-export")).to_have_text("Export these (CSV)")
        with page.expect_download() as download:
            page.click(".herald-export")
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
        assert len(rows) == AUDIENCE - undelivered and {row["status"] for row in rows} == {"delivered"}

    with steps("the dashboard shows the day's messages"):
        page.goto("/admin/")
        expect(page.locator(".dashboard-today")).to_contain_text("Delivered")
        expect(page.locator("#delivery-chart")).to_have_attribute("data-ready", "true")

    assert not page.js_errors, page.js_errors
