"""A campaign sent the way a typical tutorial does it: one Celery task per recipient, one HTTP request each.

Used only by bench/bench_naive.py, to show what Herald is compared against; the product never imports it.
Its own Celery app (queue `naive`, Celery's default settings as a tutorial leaves them) on the benchmark's
Redis and database:

    celery -A bench.naive worker -Q naive --concurrency=2

For each recipient the task loads the contact and the campaign, checks the suppression list, fills in the
text, posts one single-recipient request to the provider (Octopush's API, through a keep-alive session, which
is more than most tutorials do) and saves a Message row with the answer.
"""

from __future__ import annotations

import os
import uuid

import requests
from celery import Celery

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

app = Celery("naive", broker=settings.CELERY_BROKER_URL)
app.conf.task_default_queue = "naive"
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False

_session = requests.Session()


@app.task(name="naive.send_sms")
def send_sms(contact_id: int, campaign_id: int) -> None:
    from campaigns.models import Campaign, Message
    from contacts.models import Contact, Unsubscriber

    contact = Contact.objects.get(pk=contact_id)
    campaign = Campaign.objects.select_related("account", "sender").get(pk=campaign_id)
    if Unsubscriber.objects.filter(address=contact.phone, scope="all").exists():
        return
    text = campaign.text.replace("{{first_name}}", contact.first_name)
    account = campaign.account
    response = _session.post(
        f"{account.base_url}/sms-campaign/send",
        json={
            "text": text,
            "recipients": [{"phone_number": contact.phone}],
            "sender": campaign.sender.name,
            "purpose": "alert",
            "type": "sms_premium",
            "request_id": str(uuid.uuid4()),
        },
        headers={"api-login": account.credentials["login"], "api-key": account.credentials["api_key"]},
        timeout=30,
    )
    response.raise_for_status()
    Message.objects.create(
        campaign=campaign, contact=contact, account=account, address=contact.phone, text=text, status="submitted",
        provider_message_id=response.json()["sms_ticket"], submitted_at=timezone.now(),
    )  # fmt: skip


def send_campaign(campaign_id: int, contact_ids: list[int]) -> None:
    """What the tutorial's view does: one task per recipient."""
    for contact_id in contact_ids:
        send_sms.delay(contact_id, campaign_id)
