"""Finding one person in the admin and unsubscribing them by hand: the contact list finds them by their number
written as people write it, their page lists their opt-outs, and an opt-out recorded from there leads back to it."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Tag, Unsubscriber

pytestmark = pytest.mark.django_db(transaction=True)


def test_find_a_contact_and_unsubscribe_them_by_hand(web_server, page, steps):
    asha = Contact.objects.create(phone="+919812345678", first_name="Asha", last_name="Rao")
    asha.tags.add(Tag.objects.create(name="customers"))
    Contact.objects.create(phone="+919812345679", first_name="Ravi")

    with steps("find the contact by a national number"):
        page.goto("/admin/contacts/contact/")
        page.fill("#searchbar", "098123 45678")
        page.press("#searchbar", "Enter")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        page.click("#result_list >> text=Asha Rao")
        expect(page.locator("#contact-opt-outs")).to_contain_text("has not opted out")

    with steps("record an opt-out from the contact's page"):
        page.click("text=Record an opt-out for +919812345678")
        expect(page.locator("#id_address")).to_have_value("+919812345678")
        expect(page.locator("#content")).not_to_contain_text("object at 0x")
        page.fill("#id_reason", "asked by phone")
        page.click("input[name=_save]")

    with steps("back on the contact's page, which lists the opt-out"):
        expect(page.locator(".messagelist")).to_contain_text("The opt-out of +919812345678 is recorded")
        expect(page.locator("h2", has_text="Asha Rao (+919812345678)")).to_be_visible()
        opt_outs = page.locator("#contact-opt-outs")
        expect(opt_outs).to_contain_text("everything")
        expect(opt_outs).to_contain_text("asked by phone")
        assert Unsubscriber.objects.filter(address="+919812345678", scope="all", source="admin").exists()

    assert not page.js_errors, page.js_errors
