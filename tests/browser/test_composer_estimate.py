"""The composer's live estimate while staff type, in a real browser: on a large audience an estimate takes a second or
more, so one is on its way at a time, what was typed meanwhile is asked for when it answers, an answer to a text
since changed is never shown as the estimate, and typing the campaign's name (no part of it) asks for none."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from django.utils import timezone

from tests.factories import CampaignFactory, ContactFactory, ProviderAccountFactory, SenderFactory, TagFactory

pytestmark = pytest.mark.django_db(transaction=True)


def until(page, condition, seconds: float = 10) -> None:
    """Let the page run until `condition()` holds (a route handler records requests only while the page runs)."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page never got there")


@pytest.fixture
def composer(web_server, page, steps):
    """A draft campaign on three contacts, its page open and its first estimate shown."""
    account = ProviderAccountFactory(kind="octopush", price_per_part="0.05", currency="EUR")
    news = TagFactory(name="news")
    for name in ("Ann", "Bob", "Eve"):
        ContactFactory(tags=[news], first_name=name)
    campaign = CampaignFactory(
        account=account, sender=SenderFactory(account=account, country="FR"), purpose="service", tags=[news],
        text="Hello {{first_name}}",
    )  # fmt: skip
    with steps("open the composer: its estimate answers"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(page.locator("#estimate-panel [data-estimate=status]")).to_have_text("up to date")
        expect(page.locator("#estimate-panel [data-estimate=text_sample]")).to_have_text("Hello Ann")
    return campaign


def test_typing_while_an_estimate_is_slow_sends_one_at_a_time_and_shows_the_latest(composer, page, steps):
    panel = page.locator("#estimate-panel")

    # From here the server's answers are held (a slow estimate) until the test lets each one through.
    held = []
    page.route("**/estimate/", lambda route: held.append(route))

    with steps("type with pauses longer than the debounce while the first estimate is on its way"):
        text = page.locator("#id_text")
        for word in (", welcome", " back", " to our shop"):
            text.press("End")
            text.press_sequentially(word)
            page.wait_for_timeout(900)  # twice the debounce: each pause would have sent an estimate
        assert len(held) == 1, f"{len(held)} estimates on their way at once"
        assert ", welcome" in held[0].request.post_data and " back" not in held[0].request.post_data
        expect(panel.locator("[data-estimate=status]")).to_have_text("updating…")

    with steps("the first answer, to a text changed since, is not shown; the latest text is asked for"):
        held[0].fulfill(response=held[0].fetch())
        until(page, lambda: len(held) > 1)
        assert len(held) == 2, f"{len(held)} estimates asked for"
        assert "Hello {{first_name}}, welcome back to our shop" in held[1].request.post_data
        expect(panel.locator("[data-estimate=status]")).to_have_text("updating…")
        expect(panel.locator("[data-estimate=text_sample]")).to_have_text("Hello Ann")  # the old one, still

    with steps("the latest answer is shown"):
        held[1].fulfill(response=held[1].fetch())
        expect(panel.locator("[data-estimate=status]")).to_have_text("up to date")
        expect(panel.locator("[data-estimate=text_sample]")).to_have_text("Hello Ann, welcome back to our shop")
        page.wait_for_timeout(900)
        assert len(held) == 2  # nothing more was asked for

    assert not page.js_errors, page.js_errors


def test_typing_the_campaigns_name_asks_for_no_estimate(composer, page, steps):
    """The name plays no part in the estimate: typing it asked for one at each pause, the whole audience read again."""
    asked = []
    page.route("**/estimate/", lambda route: (asked.append(route.request), route.continue_()))

    with steps("type a new name with pauses, then leave the field"):
        name = page.locator("#id_name")
        name.fill("")
        for word in ("Spring", " sale", " 2027"):
            name.press_sequentially(word)
            page.wait_for_timeout(900)
        name.press("Tab")
        page.wait_for_timeout(900)
        assert asked == []
        expect(page.locator("#estimate-panel [data-estimate=status]")).to_have_text("up to date")

    with steps("the text still asks for one"):
        page.locator("#id_text").press("End")
        page.locator("#id_text").press_sequentially("!")
        until(page, lambda: len(asked) == 1)
        expect(page.locator("#estimate-panel [data-estimate=text_sample]")).to_have_text("Hello Ann!")

    assert not page.js_errors, page.js_errors


def test_the_estimated_cost_is_written_with_thousands_separators(web_server, page, steps):
    """It read "9272.50" beside counts written "3,746"."""
    account = ProviderAccountFactory(kind="octopush", price_per_part="4636.25", currency="EUR")
    news = TagFactory(name="news")
    ContactFactory.create_batch(2, tags=[news])
    campaign = CampaignFactory(
        account=account, sender=SenderFactory(account=account, country="FR"), purpose="service", tags=[news], text="Hi"
    )
    panel = page.locator("#estimate-panel")

    with steps("open the composer: the estimate's cost is grouped"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(panel.locator("[data-estimate=status]")).to_have_text("up to date")
        expect(panel.locator("[data-estimate=cost]")).to_have_text("9,272.50")
        expect(panel.locator("[data-estimate=currency]")).to_have_text("EUR")

    assert not page.js_errors, page.js_errors


def test_a_scheduled_campaigns_estimate_follows_the_form_as_a_drafts_does(web_server, page, steps):
    """Its text emptied, the panel kept the saved text's parts and cost beside "Write the message text"; its send time
    cleared, it said "Ready: it is sent at its send time." of a campaign that goes back to draft when saved."""
    account = ProviderAccountFactory(kind="octopush", price_per_part="0.05", currency="EUR")
    news = TagFactory(name="news")
    ContactFactory.create_batch(2, tags=[news])
    campaign = CampaignFactory(
        account=account, sender=SenderFactory(account=account, country="FR"), purpose="service", tags=[news],
        text="Hi", state="scheduled", send_at=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    panel = page.locator("#estimate-panel")

    with steps("open it: ready, sent at its send time"):
        page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        expect(panel.locator("[data-estimate=status]")).to_have_text("up to date")
        expect(panel.locator("[data-estimate=ready]")).to_have_text("Ready: it is sent at its send time.")
        expect(panel.locator("[data-estimate=cost]")).to_have_text("0.10")

    with steps("empty its text: no parts nor cost, and what stops it being sent"):
        page.locator("#id_text").fill("")
        expect(panel.locator("[data-estimate=parts]")).to_have_text("0")
        expect(panel.locator("[data-estimate=cost]")).to_have_text("0.00")
        expect(panel.locator("[data-estimate=problems_heading]")).to_have_text("Before it can be sent")
        expect(panel.locator("[data-estimate=problems]")).to_contain_text("Write the message text")
        expect(panel.locator("[data-estimate=ready]")).to_be_hidden()

    with steps("write it again and clear its send time: saved, it goes back to draft"):
        page.locator("#id_text").fill("Hello")
        page.locator("#id_send_at_0").fill("")
        page.locator("#id_send_at_1").fill("")
        expect(panel.locator("[data-estimate=ready]")).to_have_text(
            "Ready to launch: saved without a send time, it goes back to draft."
        )

    assert not page.js_errors, page.js_errors
