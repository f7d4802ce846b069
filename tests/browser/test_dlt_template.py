"""A DLT template's page in the browser: the senders' search offers the senders of the account chosen above it."""

import pytest
from playwright.sync_api import expect

from providers.models import ProviderAccount, Sender
from tests.browser.conftest import DLT_ENTITY, pick

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_senders_search_follows_the_template_account(web_server, page, steps):
    """It offered every account's senders, and a sender of another account was refused on save."""
    mumbai = ProviderAccount.objects.create(kind="mobtexting", name="Mumbai", channels=["sms"])
    delhi = ProviderAccount.objects.create(kind="mobtexting", name="Delhi", channels=["sms"])
    for account, name in [(mumbai, "HERALD"), (mumbai, "HRLDMB"), (delhi, "HERALD"), (delhi, "HRLDDL")]:
        Sender.objects.create(account=account, name=name, service="T", country="IN", dlt_entity_id=DLT_ENTITY)

    def offers(*expected: str) -> None:
        """The senders' search for "HR" lists `expected` (waiting for the answer: select2 shows the last one until)."""
        page.locator(".field-senders .select2-selection").click()
        page.keyboard.type("HR")
        expect(page.locator(".select2-results__option")).to_have_text(list(expected))
        page.keyboard.press("Escape")

    with steps("choose Mumbai: its senders only"):
        page.goto("/admin/providers/dlttemplate/add/")
        pick(page, ".field-account", "Mumbai")
        offers("HRLDMB (SMS on Mumbai; transactional, IN)")

    with steps("change the account to Delhi: Delhi's senders"):
        pick(page, ".field-account", "Delhi")
        offers("HRLDDL (SMS on Delhi; transactional, IN)")

    assert not page.js_errors, page.js_errors
