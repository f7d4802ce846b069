"""Finding one person in the admin and unsubscribing them by hand: the contact list finds them by their number
written as people write it, their page lists their opt-outs, and an opt-out recorded from there leads back to it."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Segment, Tag, Unsubscriber
from tests.browser.conftest import contacts_tagged

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


def test_delete_every_contact_a_filter_found(web_server, page, steps):
    """ "Select all" past Django's 1,000 form fields: the confirmation's form sent one field per contact back, and
    "Yes, I'm sure" was a 400 Bad Request."""
    gone = contacts_tagged(1200, "gone")
    kept = Contact.objects.create(phone="+33612345678", first_name="Chloé")

    with steps("select every contact with the tag"):
        page.goto(f"/admin/contacts/contact/?tag={gone.pk}")
        page.click("#action-toggle")
        page.click("text=Select all 1200 contacts")
        page.select_option("select[name=action]", "delete_selected")
        page.click("button[name=index]")

    with steps("the confirmation counts them"):
        expect(page.locator("#content")).to_contain_text("Contacts: 1200")
        expect(page.locator("#content")).to_contain_text("… and 1,190 more contacts.")
        page.click("input[type=submit]")

    with steps("they are deleted"):
        expect(page.locator(".messagelist")).to_contain_text("Successfully deleted 1200 contacts.")
        assert list(Contact.objects.all()) == [kept]

    assert not page.js_errors, page.js_errors


def test_a_segments_count_reads_the_same_on_load_and_after_its_rule_changes(web_server, page, steps):
    """It read "1200" on load and "1,050" once the rule changed: the page's number and the browser's."""
    news, vip = contacts_tagged(1200, "news"), contacts_tagged(1050, "vip")
    segment = Segment.objects.create(name="Readers")
    segment.positive_tags.set([news, vip])
    count = page.locator("#segment-live [data-segment=count]")

    with steps("the segment's page counts its contacts"):
        page.goto(f"/admin/contacts/segment/{segment.pk}/change/")
        expect(count).to_have_text("1,200")

    with steps("its rule changed: counted again, the number written the same way"):
        page.select_option("#id_positive_operator", "all")
        expect(count).to_have_text("1,050")

    assert not page.js_errors, page.js_errors
