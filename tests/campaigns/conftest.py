"""The engine under test: a real worker, the sandbox over HTTP, webhooks into a live server."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from django.db import connection

from campaigns.models import Campaign, Frame
from campaigns.services import campaign_launch
from config import processes
from contacts.models import Tag
from providers.models import DltTemplate, ProviderAccount, Sender
from providers.sandbox.client import SandboxClient
from providers.services import provider_account_setup
from tests.conftest import ENGINE_TEST_SETTINGS
from tests.factories import CREDENTIALS

OPTIONS = {"hyber": {"client_id": "herald-test"}}
DLT_ENTITY = "1101234567890123456"


@dataclass
class Engine:
    sandbox: object
    worker: object
    web: object

    def account(self, kind: str, **fields) -> ProviderAccount:
        """An account of `kind` on the sandbox, set up as `make run` does, with an approved sender."""
        options = {**OPTIONS.get(kind, {}), **fields.pop("options", {})}
        account = ProviderAccount.objects.create(
            kind=kind, name=f"{kind} sandbox", base_url=self.sandbox.base_url(kind),
            credentials=dict(CREDENTIALS[kind]), options=options, channels=["sms"],
            rate_limit=fields.pop("rate_limit", 500), price_per_part="0.01", **fields,
        )  # fmt: skip
        SandboxClient(self.sandbox.url).console_settings(account)
        provider_account_setup(account=account)
        Sender.objects.create(
            account=account, name="HERALD", service="T", status="approved",
            country="IN" if kind == "mobtexting" else "", dlt_entity_id=DLT_ENTITY if kind == "mobtexting" else "",
        )  # fmt: skip
        return account

    def campaign(self, account: ProviderAccount, tag: Tag, **fields) -> Campaign:
        sender = account.senders.get()
        template = None
        if account.kind == "mobtexting":
            template = DltTemplate.objects.create(
                account=account, name="greeting", dlt_template_id=f"1107{account.pk:015d}",
                body="Hello {#var#}, your code is {#var#}. - Herald",
            )  # fmt: skip
            template.senders.set([sender])
        fields.setdefault("text", "Hello {{first_name}}, your code is 4711. - Herald")
        campaign = Campaign.objects.create(
            name="engine test", account=account, sender=sender, template=template, **fields
        )
        campaign.tags.set([tag])
        return campaign

    def sent_awaiting_poll(self, text: str) -> tuple[ProviderAccount, Campaign]:
        """A MOBtexting campaign of 4 frames, sent, whose reports wait in the vendor's pull API (the callbacks
        lost), past POLL_AFTER: for tests of polling."""
        self.sandbox.configure(callback_loss=1.0, dlr_mix={"delivered": 1.0}, dlr_delay=0.2)
        account = self.account("mobtexting")
        campaign = self.campaign(account, contacts_tagged(40), text=text, frame_size=10)
        campaign_launch(campaign_id=campaign.pk)
        wait_until(
            lambda: Frame.objects.filter(campaign=campaign, state="sent").count() == 4, timeout=60, what="4 frames sent"
        )
        time.sleep(1.2)  # past POLL_AFTER; the reports are in the vendor's pull API
        return account, campaign


def contacts_tagged(count: int, tag_name: str = "audience", start: int = 0) -> Tag:
    """`count` contacts with valid Indian mobiles (+9199…, numbered from `start`), all carrying one tag."""
    tag, _ = Tag.objects.get_or_create(name=tag_name)
    with connection.cursor() as cursor:
        cursor.execute(
            """WITH added AS (
                   INSERT INTO contacts_contact (phone, first_name)
                   SELECT '+9199' || lpad((%s + n)::text, 8, '0'), 'Guest ' || n FROM generate_series(1, %s) n
                   ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone RETURNING id)
               INSERT INTO contacts_contacttag (contact_id, tag_id) SELECT id, %s FROM added ON CONFLICT DO NOTHING""",
            [start, count, tag.pk],
        )
    return tag


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.25, tick=None, sandbox=None):
    """Poll `predicate` until it returns something truthy; `tick` runs each round (e.g. the beat's work).
    A timeout fails the test with the engine's state (and the `sandbox`'s callbacks, given one)."""
    try:
        return processes.wait_until(predicate, timeout=timeout, what=what, every=every, tick=tick)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{_engine_state(sandbox)}") from None


def _engine_state(sandbox=None) -> str:
    """What the campaigns, frames and messages look like, for a timeout's message."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, state, state_reason, counters FROM campaigns_campaign ORDER BY id")
        campaigns = cursor.fetchall()
        cursor.execute(
            "SELECT state, uncertain, attempts, left(error, 120), count(*) FROM campaigns_frame "
            "GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC LIMIT 12"
        )
        frames = cursor.fetchall()
        cursor.execute(
            "SELECT status, left(reason, 80), count(*) FROM campaigns_message GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 12"
        )
        messages = cursor.fetchall()
        cursor.execute(
            "SELECT e.source, e.outcome, e.applied_at IS NOT NULL, e.match_attempts, p.event_id IS NOT NULL, "
            "round(extract(epoch FROM max(p.due_at) - now())::numeric, 1), count(*) FROM campaigns_statusevent e "
            "LEFT JOIN campaigns_pendingstatusevent p ON p.event_id = e.id GROUP BY 1, 2, 3, 4, 5 ORDER BY 7 DESC LIMIT 12"
        )
        events = cursor.fetchall()
    return (
        f"campaigns: {campaigns}\nframes (state, uncertain, attempts, error, n): {frames}\nmessages: {messages}\n"
        f"reports (source, outcome, applied, match attempts, queued, last due in s, n): {events}"
        + (f"\nsandbox callbacks: {_callbacks(sandbox)}" if sandbox else "")
    )


def _callbacks(sandbox) -> dict:
    callbacks = sandbox.state.callbacks
    return {"sent": dict(callbacks.sent), "failed": dict(callbacks.failed), "lost": dict(callbacks.lost),
            "pending": callbacks.pending()}  # fmt: skip


@pytest.fixture
def engine(settings, web_server, sandbox, celery_worker) -> Engine:
    settings.HERALD_PUBLIC_URL = web_server.url
    for name, value in ENGINE_TEST_SETTINGS.items():
        setattr(settings, name, value)
    return Engine(sandbox, celery_worker, web_server)
