"""A provider account's page in the browser: the webhook URL to copy, the last delivery report, and a connection
test whose result shows on the page and, when it fails, on the dashboard."""

import pytest
from playwright.sync_api import expect

from providers.models import ProviderAccount
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
