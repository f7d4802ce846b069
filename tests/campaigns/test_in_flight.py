"""A message whose frame is on the wire reads `sending` in the API and the admin, though its row stays `pending`
until the provider's answer is recorded (dispatch writes each message once)."""

import csv
import io
import threading

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Frame, Message
from campaigns.selectors import MESSAGE_CSV_COLUMNS, campaign_message_rows
from campaigns.services import frame_dispatch
from tests.campaigns.conftest import wait_until
from tests.campaigns.test_dispatch import _prepared_campaign, _sandbox_account, _send_due
from tests.factories import CampaignFactory, FrameFactory, MessageFactory, UserFactory, api_client_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_flight(sandbox, settings):
    """A campaign of three messages whose one frame is being sent: the sandbox holds its answer until the test
    calls `sandbox.release_answers()` (or ends)."""
    account = _sandbox_account(sandbox, settings, "octopush")
    campaign = _prepared_campaign(account, 3, frame_size=3)
    frame = Frame.objects.get(campaign=campaign)
    settings.PROVIDER_HTTP_TIMEOUT = 20.0
    sandbox.hold_answers()

    def send():
        try:
            _send_due(campaign, frame)
        finally:
            connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(
        lambda: Frame.objects.filter(pk=frame.pk, state=Frame.State.SENDING).exists(), timeout=10, what="the claim"
    )
    yield campaign
    sandbox.release_answers()
    sender.join(timeout=30)
    assert not sender.is_alive()


def test_the_api_shows_a_message_being_sent_as_sending_and_filters_by_it(in_flight, sandbox):
    api = api_client_for(UserFactory(superuser=True))
    other = MessageFactory()  # pending, in no frame yet
    message = Message.objects.filter(campaign=in_flight).first()
    assert message.status == "pending", "the row itself is written once, with the answer"

    assert api.get(f"/api/v1/messages/{message.pk}/").json()["status"] == "sending"
    listed = {m["id"]: m["status"] for m in api.get(f"/api/v1/messages/?campaign={in_flight.pk}").json()["results"]}
    assert set(listed.values()) == {"sending"} and len(listed) == 3
    sending = [m["id"] for m in api.get("/api/v1/messages/?status=sending").json()["results"]]
    pending = [m["id"] for m in api.get("/api/v1/messages/?status=pending").json()["results"]]
    assert sorted(sending) == sorted(listed) and pending == [other.pk]
    both = api.get("/api/v1/messages/?status=sending&status=pending").json()["results"]
    assert len(both) == 4

    sandbox.release_answers()
    wait_until(
        lambda: not Frame.objects.filter(pk=message.frame_id, state="sending").exists(), timeout=20, what="the answer"
    )
    assert api.get(f"/api/v1/messages/{message.pk}/").json()["status"] == "submitted"
    assert api.get("/api/v1/messages/?status=sending").json()["results"] == []


def test_the_admin_message_list_shows_a_message_being_sent_as_sending(in_flight, client):
    client.force_login(UserFactory(superuser=True))
    message = Message.objects.filter(campaign=in_flight).first()
    changelist = reverse("admin:campaigns_message_changelist")

    page = client.get(changelist, {"campaign__id__exact": in_flight.pk}).content.decode()
    assert page.count('<td class="field-status_shown">Sending</td>') == 3
    filtered = client.get(changelist, {"status": "sending"}).content.decode()
    assert filtered.count("field-status_shown") == 3
    assert "Sending" in client.get(reverse("admin:campaigns_message_change", args=[message.pk])).content.decode()


def test_the_schema_documents_sending(client):
    client.force_login(UserFactory(superuser=True))
    schema = client.get("/api/schema/?format=json").json()
    schemas = schema["components"]["schemas"]
    assert "sending" in schemas["MessageStatusEnum"]["enum"]
    assert "MessageStatusEnum" in str(schemas["TransactionalAccepted"]["properties"]["status"])
    stats = schemas["Stats"]["properties"]
    assert "`sending`" in stats["in_flight"]["description"] and "in_flight" in stats["counters"]["description"]
    assert "in_flight" in schemas["Campaign"]["properties"]["counters"]["description"]
    assert "`sent` as a percentage of `total`" in stats["sent_progress"]["description"]


def test_the_status_shown_costs_no_query_per_message(client):
    """The frame's state comes in the page's own query (a join), for any number of messages and frames."""
    user = UserFactory(superuser=True)
    api = api_client_for(user)
    client.force_login(user)
    counts = {}
    for size in (1, 20):
        for _ in range(size):
            frame = FrameFactory(state=Frame.State.SENDING)
            MessageFactory(campaign=frame.campaign, frame=frame)
        with CaptureQueriesContext(connection) as api_queries:
            assert {m["status"] for m in api.get("/api/v1/messages/").json()["results"]} == {"sending"}
        with CaptureQueriesContext(connection) as admin_queries:
            assert client.get(reverse("admin:campaigns_message_changelist")).status_code == 200
        counts[size] = (len(api_queries), len(admin_queries))
    assert counts[1] == counts[20]


def test_the_csv_export_says_sending_like_the_message_list(in_flight, client):
    """Staff compare the export with the list: both say `sending` while the frame is on the wire."""
    client.force_login(UserFactory(superuser=True))
    export = client.get(reverse("admin:campaigns_campaign_export", args=[in_flight.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [row["status"] for row in rows] == ["sending"] * 3
    assert all(row["meaning"] == "" for row in rows)
    url = reverse("admin:campaigns_campaign_export", args=[in_flight.pk])
    for status, count in (("sending", 3), ("pending", 0)):  # exported as the list's status filter finds them
        export = client.get(url, {"status": status})
        assert len(list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))) == count


def test_the_csv_export_reads_the_frames_in_its_one_streamed_query():
    """The shown status joins the frames in the cursor's query: no query per row or per frame."""
    counts = {}
    for size in (1, 20):
        campaign = CampaignFactory()
        for _ in range(size):
            MessageFactory(campaign=campaign, frame=FrameFactory(campaign=campaign, state=Frame.State.SENDING))
        with CaptureQueriesContext(connection) as queries:
            rows = list(campaign_message_rows(campaign=campaign, chunk_size=5))
        assert {row[MESSAGE_CSV_COLUMNS.index("status")] for row in rows} == {"sending"} and len(rows) == size
        counts[size] = len(queries)
    assert counts[1] == counts[20]


def test_a_transactional_send_replayed_while_in_flight_says_sending_as_its_status_url_does(sandbox, settings):
    """An integrator's retry (same Idempotency-Key) while the first request's message is on the wire is answered
    with the status its status URL and the message list show, not the row's `pending`."""
    account = _sandbox_account(sandbox, settings, "octopush")
    settings.PROVIDER_HTTP_TIMEOUT = 20.0
    api = api_client_for(UserFactory(superuser=True))
    body = {"account": account.pk, "to": "+33612345678", "text": "Your code is 4711"}

    def send():
        return api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-7-otp")

    first = send()
    assert (first.status_code, first.json()["status"]) == (202, "pending")
    message = Message.objects.get(pk=first.json()["id"])
    sandbox.hold_answers()
    sender = threading.Thread(target=lambda: (frame_dispatch(frame_id=message.frame_id), connection.close()))
    sender.start()
    try:
        wait_until(
            lambda: Frame.objects.filter(pk=message.frame_id, state=Frame.State.SENDING).exists(),
            timeout=10, what="the claim",
        )  # fmt: skip
        again = send()
        assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == message.pk
        assert again.json()["status"] == "sending"
        assert api.get(again.json()["status_url"]).json()["status"] == "sending"
        listed = api.get("/api/v1/messages/?status=sending").json()["results"]
        assert [m["id"] for m in listed] == [message.pk]
    finally:
        sandbox.release_answers()
        sender.join(timeout=30)
    assert not sender.is_alive()
    after = send()
    assert after.json()["status"] == "submitted" == api.get(after.json()["status_url"]).json()["status"]


def test_stats_and_the_admin_progress_count_the_messages_being_sent(in_flight, sandbox, client):
    """The counters keep them `pending` (dispatch writes a message once); stats/ and the progress panel say how many
    of those are being sent, as the message list shows them, and no longer once the provider has answered."""
    user = UserFactory(superuser=True)
    client.force_login(user)
    api = api_client_for(user)
    stats = api.get(f"/api/v1/campaigns/{in_flight.pk}/stats/").json()
    progress = client.get(reverse("admin:campaigns_campaign_progress", args=[in_flight.pk])).json()
    assert (stats["counters"], stats["in_flight"], stats["sent"]) == ({"pending": 3}, 3, 0)
    assert (progress["groups"]["pending"], progress["groups"]["sending"]) == (0, 3)
    assert progress["breakdown"] == [{"status": "sending", "count": 3}]

    sandbox.release_answers()
    wait_until(
        lambda: not Frame.objects.filter(campaign=in_flight, state="sending").exists(), timeout=20, what="the answer"
    )
    stats = api.get(f"/api/v1/campaigns/{in_flight.pk}/stats/").json()
    assert (stats["counters"], stats["in_flight"], stats["sent"]) == ({"submitted": 3}, 0, 3)
