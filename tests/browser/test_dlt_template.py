"""A DLT template's page in the browser: the senders' search offers the senders of the account chosen above it."""

import pytest
from playwright.sync_api import expect

from providers.models import ProviderAccount, Sender
from tests.browser.conftest import DLT_ENTITY, assert_list_fits, pick

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


def test_the_preview_follows_the_body_and_values_as_they_are_typed(web_server, page, steps):
    """Staff could not see what a body with {#var#} slots makes, how many parts, or which value DLT would refuse."""
    preview = page.locator("#dlt-preview")

    with steps("type a body: a box for each of its variables"):
        page.goto("/admin/providers/dlttemplate/add/")
        page.fill("#id_body", "Dear {#var#}, your order {#var#} ships today.")
        expect(preview.locator("input[data-variable]")).to_have_count(2)

    with steps("fill them, one over 30 characters: the text, its parts, and the variable named"):
        page.fill("#dlt-preview-value-var1", "Venkata Subrahmanya Lakshminarayana")
        page.fill("#dlt-preview-value-var2", "A-1024")
        expect(preview.locator(".dlt-preview-text")).to_have_text(
            "Dear Venkata Subrahmanya Lakshminarayana, your order A-1024 ships today."
        )
        expect(preview.locator(".dlt-preview-parts")).to_have_text("1 SMS part, GSM-7, 72 characters (160 a part)")
        expect(preview.locator(".errorlist")).to_have_text(
            "The value of 'var1' is 35 characters long; DLT allows at most 30."
        )
        expect(preview.locator(".dlt-preview-length").first).to_have_text(" 35/30")

    with steps("check a campaign's text instead: it matches"):
        page.fill("#dlt-preview-text", "Dear {{first_name}}, your order 77 ships today.")
        expect(preview.locator(".dlt-preview-ok")).to_have_text("The text matches the template.")
        expect(preview.locator("#dlt-preview-value-var2")).to_have_attribute("placeholder", "77")

    assert not page.js_errors, page.js_errors


def test_the_list_shows_each_templates_senders_inside_a_1400_pixel_window(web_server, page, steps):
    """The senders, the list's last column, ran past the edge of the list (the account as "Mumbai (MOBtexting)" and
    the variables before them), and its filter offered accounts of every vendor, though only MOBtexting has DLT."""
    from providers.models import DltTemplate

    mumbai = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting Mumbai", channels=["sms"])
    ProviderAccount.objects.create(kind="octopush", name="Octopush Paris", channels=["sms"])
    senders = [
        Sender.objects.create(account=mumbai, name=name, service="T", country="IN", dlt_entity_id=DLT_ENTITY)
        for name in ("HERALD", "HRLDMB")
    ]
    template = DltTemplate.objects.create(
        account=mumbai, name="Order shipped with tracking", dlt_template_id="1107170000000000002",
        type="SE", status="pending", body="Order {#var#} shipped: track at {#var#}",
    )  # fmt: skip
    template.senders.set(senders)

    with steps("the DLT template list at 1400 px"):
        page.goto("/admin/providers/dlttemplate/")
        cell = page.locator("#result_list td.field-sender_names")
        expect(cell).to_have_text("HERALD, HRLDMB")
        expect(page.locator("#result_list td.field-account_name")).to_have_text("MOBtexting Mumbai")
        assert_list_fits(page, "td.field-sender_names")
        accounts = page.locator("#changelist-filter details[data-filter-title='account'] li")
        expect(accounts).to_have_text(["All", "MOBtexting Mumbai (MOBtexting)", "–"])

    assert not page.js_errors, page.js_errors


def test_the_preview_asks_for_no_value_before_one_is_typed(web_server, page, steps):
    """A template's page opened with "No value yet for 'var1', 'var2'." in red, before anything was typed."""
    from providers.models import DltTemplate

    template = DltTemplate.objects.create(
        name="Order shipped", dlt_template_id="1107170000000000004", body="Dear {#var#}, your order {#var#} ships."
    )
    preview = page.locator("#dlt-preview")

    with steps("open the template's page: its text, and a quiet hint of the values to type"):
        page.goto(f"/admin/providers/dlttemplate/{template.pk}/change/")
        expect(preview.locator(".dlt-preview-text")).to_have_text("Dear {#var#}, your order {#var#} ships.")
        expect(preview.locator(".dlt-preview-hint")).to_have_text("No value yet for 'var1', 'var2'.")
        expect(preview.locator(".errorlist")).to_have_count(0)

    with steps("type one value: the other is then missing, in red"):
        page.fill("#dlt-preview-value-var1", "Asha")
        expect(preview.locator(".errorlist")).to_have_text("No value yet for 'var2'.")
        expect(preview.locator(".dlt-preview-hint")).to_have_count(0)

    assert not page.js_errors, page.js_errors


def test_the_add_page_says_nothing_of_the_body_before_one_is_typed(web_server, page, steps):
    """The add page opened with "The template body cannot be empty." in red under Preview, before anything was typed."""
    preview = page.locator("#dlt-preview")

    with steps("open the add page: no problem under the preview"):
        with page.expect_response(lambda response: response.url.endswith("/preview/")):
            page.goto("/admin/providers/dlttemplate/add/")
        page.wait_for_timeout(300)  # the answer shown
        expect(preview.locator(".errorlist")).to_have_count(0)
        expect(preview).not_to_contain_text("cannot be empty")

    with steps("type a body and take it away again: now it is a problem, in red"):
        page.fill("#id_body", "Dear {#var#}")
        expect(preview.locator("input[data-variable]")).to_have_count(1)
        page.fill("#id_body", "")
        expect(preview.locator(".errorlist")).to_have_text("The template body cannot be empty.")

    assert not page.js_errors, page.js_errors


def test_a_templates_page_shows_its_account_and_senders_whole_in_a_1400_pixel_window(web_server, page, steps):
    """At 1400 pixels with the navigation open, the account's box read "MOBtexting sandbox (MOBtexti…" and a sender
    "756070 (SMS on MOBtexting sandbo", cut at the search boxes' 20em."""
    from providers.models import DltTemplate

    account = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting Mumbai production", channels=["sms"])
    senders = [
        Sender.objects.create(account=account, name=name, service=service, country="IN", dlt_entity_id=DLT_ENTITY)
        for name, service in (("756070", "P"), ("HERALD", "T"), ("HRLDOT", "S"), ("HRLDMB", "T"))
    ]
    template = DltTemplate.objects.create(
        account=account, name="Festive offer", dlt_template_id="1107170000000000003", type="P", body="Sale {#var#}"
    )
    template.senders.set(senders)

    with steps("the template's page at 1400 px"):
        page.goto(f"/admin/providers/dlttemplate/{template.pk}/change/")
        expect(page.locator(".field-senders .select2-selection__choice")).to_have_count(4)
        sizes = page.evaluate(
            """() => {
                const account = document.querySelector('.field-account .select2-selection__rendered');
                const style = getComputedStyle(account), text = document.createRange();
                text.selectNodeContents(account.lastChild);
                const senders = document.querySelector('.field-senders .select2-selection__rendered');
                const form = document.querySelector('.field-senders').getBoundingClientRect();
                return {
                    accountText: text.getBoundingClientRect().width,
                    accountClear: account.querySelector('.select2-selection__clear').getBoundingClientRect().width,
                    accountRoom: account.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
                    senders: [senders.scrollWidth, senders.clientWidth],
                    chips: [...senders.querySelectorAll('.select2-selection__choice')].map(
                        (chip) => [chip.scrollWidth <= chip.clientWidth, chip.getBoundingClientRect().right <= form.right]
                    ),
                    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
                };
            }"""
        )
        assert sizes["accountText"] + sizes["accountClear"] <= sizes["accountRoom"] + 1, sizes
        assert sizes["senders"][0] <= sizes["senders"][1], sizes
        assert sizes["chips"] == [[True, True]] * 4, sizes
        assert sizes["page"][0] <= sizes["page"][1], sizes
        expect(page.locator(".field-account .select2-selection__rendered")).to_contain_text(
            "MOBtexting Mumbai production (MOBtexting)"
        )

    assert not page.js_errors, page.js_errors
