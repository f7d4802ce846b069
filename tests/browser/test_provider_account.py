"""A provider account's page in the browser: the webhook URL to copy, the last delivery report, and a connection
test whose result shows on the page and, when it fails, on the dashboard."""

import pytest
from playwright.sync_api import expect

from providers.models import ProviderAccount, Sender
from tests.browser.conftest import sandbox_account

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_account_page_tests_the_connection_and_the_dashboard_lists_a_failing_account(
    media_root, settings, web_server, sandbox, page, steps
):
    settings.HERALD_PUBLIC_URL = web_server.url
    account = sandbox_account(sandbox, "octopush")
    broken = sandbox_account(sandbox, "hyber")
    # Nothing listens on the discard port: the connection is refused at once.
    ProviderAccount.objects.filter(pk=broken.pk).update(name="Hyber unreachable", base_url="http://127.0.0.1:9/hyber")
    broken.refresh_from_db()

    with steps("the account page shows its webhook URL and health"):
        page.goto(f"/admin/providers/provideraccount/{account.pk}/change/")
        health = page.locator("#account-health")
        expect(health).to_contain_text("not tested yet")
        expect(health).to_contain_text("none received yet")
        expect(health.locator(".webhook-url-top")).to_have_text(account.webhook_url)
        expect(health.locator("button.herald-copy")).to_be_visible()

    with steps("test the connection"):
        page.click(".herald-tool-test")
        expect(page.locator(".messagelist")).to_contain_text(account.name)
        expect(health).to_contain_text("working")
        account.refresh_from_db()
        assert account.last_check_ok is True

    with steps("a failing account shows on the dashboard"):
        page.goto(f"/admin/providers/provideraccount/{broken.pk}/change/")
        page.click(".herald-tool-test")
        expect(page.locator("#account-health")).to_contain_text("failing")
        assert ProviderAccount.objects.get(pk=broken.pk).last_check_ok is False
        page.goto("/admin/")
        expect(page.locator(".dashboard-accounts")).to_contain_text(broken.name)
        expect(page.locator(".dashboard-accounts")).not_to_contain_text(account.name)

    assert not page.js_errors, page.js_errors


def test_the_account_page_shows_its_webhook_url_once_and_its_senders_fit_the_page(
    media_root, settings, web_server, sandbox, page, steps
):
    """The URL was shown twice (the health panel and a "Delivery reports" fieldset), and the senders' table, with
    its help texts and long DLT entity ids, ran past the right edge of a 1400 px window."""
    settings.HERALD_PUBLIC_URL = web_server.url
    account = sandbox_account(sandbox, "mobtexting")
    Sender.objects.create(
        account=account, name="HERALDX", service="P", country="IN", status="pending",
        dlt_entity_id="1101234567890123456789012345678", dlt_entity_name="Herald Communications Private Limited",
    )  # fmt: skip

    with steps("the account page at 1400 px"):
        page.goto(f"/admin/providers/provideraccount/{account.pk}/change/")
        expect(page.locator("#account-health .webhook-url-top")).to_have_text(account.webhook_url)
        assert page.get_by_text(account.webhook_url, exact=True).count() == 1
        inline = page.locator("#senders-group")
        expect(inline).to_be_visible()
        sizes = page.evaluate(
            """() => {
                const group = document.querySelector('#senders-group');
                const table = group.querySelector('table');
                return {page: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth,
                        groupRight: group.getBoundingClientRect().right,
                        tableRight: table.getBoundingClientRect().right};
            }"""
        )
        assert sizes["scroll"] <= sizes["page"], sizes
        assert sizes["tableRight"] <= sizes["groupRight"] + 1, sizes

    assert not page.js_errors, page.js_errors
