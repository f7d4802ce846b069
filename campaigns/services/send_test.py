"""Send a test: a draft or scheduled campaign's message to a few of staff's own numbers before launching it.

Each number gets a transactional message (services/transactional.py: the same checks, opt-outs and sending), with
the text the campaign would send, filled by the same rendering from a contact's fields, through the campaign's
account, sender, DLT template and vendor fields. The messages belong to no campaign: they never count in its
counters, progress or cost, and never stand in the way of its own message to the same contact. A CampaignTestSend
row ties each to the campaign it tried. Tests are limited per campaign and minute (CAMPAIGN_TESTS_PER_MINUTE), so
that they are no way around launching.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from math import ceil

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from campaigns.models import Campaign, CampaignTestSend, Message
from campaigns.rendering import contact_values, render, text_variables
from campaigns.selectors import campaign_first_recipient, estimate_fills_sample, messages_shown
from campaigns.selectors.estimate import SAMPLE_FIELDS
from campaigns.services.dispatch import DLT_VARIABLE_MAX, dlt_variables_too_long, frame_dispatch
from campaigns.services.side_by_side import on_own_connections
from campaigns.services.transactional import transactional_checked, transactional_send_checked
from contacts.models import Contact
from contacts.phones import InvalidPhone, normalize_address

logger = logging.getLogger("herald.send_test")

TEST_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED)
TEST_NUMBERS_MAX = 5
NO_CONTACT_FIELDS = "Filling the text from a contact's fields needs the permission to view contacts."


class SendTestThrottled(Exception):
    """The campaign had its CAMPAIGN_TESTS_PER_MINUTE tests in the last minute; `retry_after` seconds to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendTestResult:
    """What became of one number: its message (status as shown now) and whose fields filled its text."""

    to: str
    message: Message
    filled_from: Contact | None


def campaign_send_test(
    *, campaign_id: int, to: list[str], contact_id: int | None = None, user=None
) -> list[SendTestResult]:
    """Send the campaign's message to one to five numbers now, each filled from `contact_id`'s fields, else from
    the number's own contact, else from the campaign's first recipient; answer what became of each. A `user` who
    may not view contacts gets no contact's fields in the text (its variables stay empty), as the estimate's sample
    shows them none (estimate_fills_sample), and may not choose a contact.

    Everything that stops a number (not a number, the campaign's sender, template or text, the promotional window)
    is a ValidationError before anything is sent; an opted-out number is answered `suppressed` and not sent."""
    batch = uuid.uuid4()
    # Read first, unlocked: a launched campaign's prepare holds its row while it writes a message per recipient
    # (seconds a million), and a test waiting for it was refused only then.
    _check_state(Campaign.objects.get(pk=campaign_id))
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("account", "sender", "template")
            .get(pk=campaign_id)
        )
        _check_state(campaign)
        addresses = _addresses(to, campaign=campaign)
        fills_from_contacts = estimate_fills_sample(user)
        if contact_id is not None and not fills_from_contacts:
            raise ValidationError({"contact": NO_CONTACT_FIELDS})
        _check_rate(campaign)
        chosen = _contact(contact_id)
        fills = _fills(campaign, addresses, chosen) if fills_from_contacts else [None] * len(addresses)
        checked, errors = [], {}
        for address, contact in zip(addresses, fills, strict=True):
            text, variables = render(campaign.text, contact_values(contact) if contact else {})
            if campaign.template_id and (too_long := dlt_variables_too_long(variables)):
                who = contact["first_name"] or contact["phone"]  # variables are filled only from a contact
                said = errors.setdefault("contact", [])
                words = (
                    f"{who}'s {too_long[0]} is over {DLT_VARIABLE_MAX} characters, which DLT refuses in a variable: the "
                    "campaign would fail this recipient. Choose another contact to fill the text."
                )
                said += [words] if words not in said else []
                continue
            try:
                checked.append(
                    transactional_checked(
                        account=campaign.account,
                        to=address,
                        text=text,
                        sender=campaign.sender,
                        template=campaign.template,
                        channel=campaign.channel,
                        purpose=campaign.purpose,
                        sender_required=True,  # the launch refuses a campaign without one: no test from the default
                    )
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    said = errors.setdefault(field, [])
                    said += [m for m in messages if m not in said]
        if errors:
            raise ValidationError(errors)
        messages = [
            transactional_send_checked(send, "", campaign_name=campaign.name, enqueue=False) for send in checked
        ]
        CampaignTestSend.objects.bulk_create(
            CampaignTestSend(
                campaign=campaign,
                message=message,
                batch=batch,
                requested_by=user,
                filled_from_id=contact["id"] if contact else None,
            )
            for message, contact in zip(messages, fills, strict=True)
        )
    if frames := [(message.frame_id,) for message in messages if message.frame_id is not None]:
        # Side by side: the request waits for the slowest number's answer (a vendor that does not answer: its
        # PROVIDER_HTTP_TIMEOUT once), not for each in turn (five times that: minutes, past a proxy's patience).
        on_own_connections(_dispatch_now, frames, name="send-test")
    shown = {m.pk: m for m in messages_shown(Message.objects.filter(pk__in=[m.pk for m in messages]))}
    contacts = Contact.objects.in_bulk([c["id"] for c in fills if c])
    return [
        SendTestResult(to=m.address, message=shown[m.pk], filled_from=contacts.get(c["id"]) if c else None)
        for m, c in zip(messages, fills, strict=True)
    ]


def _check_state(campaign: Campaign) -> None:
    if campaign.state not in TEST_STATES:
        raise ValidationError(
            {"state": f"A {campaign.get_state_display()} campaign is not tested: only a draft or a scheduled one."}
        )


def send_test_region(campaign: Campaign) -> str:
    """The country a national number typed for a test is read in: the campaign's sender's, else the default region
    (DEFAULT_PHONE_REGION). A French campaign's 06 12 34 56 99 is +33612345699, not refused as no Indian number."""
    country = campaign.sender.country if campaign.sender_id else ""
    return (country or settings.DEFAULT_PHONE_REGION).upper()


def send_test_region_words(campaign: Campaign) -> str:
    """That country as the test page and its refusals name it: "France (the sender's country)"."""
    from django_countries import countries  # loads its list of names on first use

    region = send_test_region(campaign)
    whose = "the sender's country" if campaign.sender_id and campaign.sender.country else "the default region"
    return f"{countries.name(region) or region} ({whose})"


def _addresses(to: list[str], *, campaign: Campaign) -> list[str]:
    """The numbers typed, normalised (a national one read in send_test_region), each once; one that is none is
    refused naming it."""
    region = send_test_region(campaign)
    typed = [t.strip() for t in to if t and t.strip()]
    if not typed:
        raise ValidationError({"to": "Give one to five numbers to send the test to."})
    addresses, wrong = [], []
    for raw in typed:
        try:
            address = normalize_address(raw, region)
        except InvalidPhone:
            wrong.append(raw)
            continue
        if address not in addresses:
            addresses.append(address)
    if wrong:
        what = f"a phone number (E.164, or national of {send_test_region_words(campaign)})"
        if campaign.channel == "email":
            what += " or an e-mail address"
        raise ValidationError({"to": f"Not {what}: {', '.join(wrong)}."})
    if len(addresses) > TEST_NUMBERS_MAX:
        raise ValidationError({"to": f"A test goes to at most {TEST_NUMBERS_MAX} numbers; launch it for more."})
    return addresses


def _check_rate(campaign: Campaign) -> None:
    """At most CAMPAIGN_TESTS_PER_MINUTE tests in the last minute (the campaign's row lock orders two at once); 0 is
    no limit, as for the other limits (it was a 500 on every test)."""
    now = timezone.now()
    limit = settings.CAMPAIGN_TESTS_PER_MINUTE
    if limit <= 0:
        return
    recent = list(
        CampaignTestSend.objects.filter(campaign=campaign, created_at__gte=now - timedelta(minutes=1))
        .values("batch")
        .annotate(at=Min("created_at"))
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        wait = max(1, ceil((recent[-1] + timedelta(minutes=1) - now).total_seconds()))
        raise SendTestThrottled(
            f"“{campaign.name}” was tested {limit} times in the last minute, the most it may be: try again in "
            f"{wait} s.",
            retry_after=wait,
        )


def _contact(contact_id: int | None) -> dict | None:
    if contact_id is None:
        return None
    row = Contact.objects.filter(pk=contact_id).values("id", *SAMPLE_FIELDS).first()
    if row is None:
        raise ValidationError({"contact": f"No contact with id {contact_id}."})
    return row


def _fills(campaign: Campaign, addresses: list[str], chosen: dict | None) -> list[dict | None]:
    """Whose fields fill the text for each address: the chosen contact, else the address's own contact, else the
    campaign's first recipient (the estimate's sample: the first not suppressed); None where the text has no
    variables, or nobody is found."""
    if not text_variables(campaign.text):
        return [None] * len(addresses)
    if chosen is not None:
        return [chosen] * len(addresses)
    own = {
        row["phone"] if campaign.channel != "email" else (row["email"] or "").lower(): row
        for row in Contact.objects.filter(
            **({"phone__in": addresses} if campaign.channel != "email" else {"email__in": addresses})
        ).values("id", *SAMPLE_FIELDS)
    }
    first = campaign_first_recipient(campaign) if any(address not in own for address in addresses) else None
    return [own.get(address, first) for address in addresses]


def _dispatch_now(frame_id: int) -> None:
    """Send a test's frame in this request, so that its answer is shown at once; a retry the vendor asks for (429,
    5xx) goes to a worker, and a frame this process never gets to is sent by the watchdog."""
    from campaigns.tasks import frame_send_task

    due = frame_dispatch(frame_id=frame_id)
    if due is not None:
        try:
            frame_send_task.apply_async((frame_id,), countdown=min(due, 60.0))
        except Exception:  # the broker is down: beat's watchdog sends transactional frames left pending
            logger.warning("test frame %s: retry not enqueued; the watchdog will send it", frame_id, exc_info=True)
