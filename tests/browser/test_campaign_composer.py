"""The campaign composer in a real browser: what its script does as the account changes."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sandbox_account

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_account_added_after_the_page_opened_leaves_its_channels_to_the_server(page, sandbox, steps):
    sms_only = sandbox_account(sandbox, "mobtexting")

    with steps("an SMS-only account: the other channels cannot be chosen"):
        page.goto("/admin/campaigns/campaign/add/")
        page.select_option("#id_account", label=str(sms_only))
        expect(page.locator("#id_channel option[value=viber]")).to_be_disabled()

    with steps("an account added meanwhile (the '+' beside the field): the page does not know its channels"):
        added = sandbox_account(sandbox, "devino", name="Devino added meanwhile", channels=["sms", "viber"])
        page.evaluate(
            """([id, name]) => {
                const select = document.querySelector("#id_account");
                select.add(new Option(name, id, true, true));  // as Django's add-related popup answers
                select.dispatchEvent(new Event("change", {bubbles: true}));
            }""",
            [str(added.pk), str(added)],
        )
        # The SMS-only account's limits stayed: Viber could not be chosen for an account that has it.
        expect(page.locator("#id_channel option[value=viber]")).to_be_enabled()

    assert not page.js_errors, page.js_errors
