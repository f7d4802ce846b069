"""/hooks/<kind>/<account uuid>/: authentic reports are stored and answered fast; forgeries and unknown
accounts are refused; nothing is applied inside the request."""

import json
import uuid

import pytest

from campaigns.models import StatusEvent
from tests.factories import ProviderAccountFactory
from tests.providers.backends.harness import fixture

pytestmark = pytest.mark.django_db

# vendor → (a callback fixture, how many reports it carries)
CALLBACKS = {
    "mobtexting": ("mobtexting/dlr_delivered.json", 1),
    "octopush": ("octopush/dlr_delivered.json", 1),
    "devino": ("devino/callback_batch.json", None),
    "hyber": ("hyber/dlr_batch.json", None),
}


def _authentic(client, account, body: bytes, **extra):
    """Post as the vendor would: MOBtexting with its bearer secret, the others with our URL secret."""
    if account.kind == "mobtexting":
        return client.post(account.webhook_url.replace("http://127.0.0.1:8000", ""), body, content_type="application/json",
                           headers={"Authorization": f"Bearer {account.webhook_secret}"}, **extra)  # fmt: skip
    path = account.webhook_url.replace("http://127.0.0.1:8000", "")
    return client.post(path, body, content_type="application/json", **extra)


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
def test_an_authentic_callback_is_stored_and_acknowledged(client, settings, kind):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind=kind)
    name, count = CALLBACKS[kind]
    body = fixture(name)
    response = _authentic(client, account, body)
    assert response.status_code == 200
    events = StatusEvent.objects.filter(account=account)
    expected = count or len(json.loads(body))
    assert events.count() == expected
    assert not events.filter(applied_at__isnull=False).exists(), "applied later, in batches, not in the request"
    account.refresh_from_db()
    assert account.last_dlr_at is not None


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
def test_a_forged_callback_is_refused_and_nothing_is_stored(client, kind):
    account = ProviderAccountFactory(kind=kind)
    path = f"/hooks/{kind}/{account.uuid}/"
    forged = client.post(f"{path}?secret=guess", fixture(CALLBACKS[kind][0]), content_type="application/json",
                         headers={"Authorization": "Bearer guess"})  # fmt: skip
    assert forged.status_code == 403
    assert not StatusEvent.objects.exists()


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
def test_an_unknown_account_is_404(client, kind):
    response = client.post(f"/hooks/{kind}/{uuid.uuid4()}/", b"{}", content_type="application/json")
    assert response.status_code == 404


def test_a_webhook_for_another_vendor_kind_is_404(client):
    account = ProviderAccountFactory(kind="octopush")
    assert client.post(f"/hooks/devino/{account.uuid}/", b"[]", content_type="application/json").status_code == 404
    assert client.post(f"/hooks/nosuch/{account.uuid}/", b"[]", content_type="application/json").status_code == 404


def test_a_malformed_body_is_a_400_naming_the_problem(client, settings):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind="octopush")
    response = _authentic(client, account, b"{not json")
    assert response.status_code == 400
    assert response.json()["detail"]


# vendor → the field of a report that carries the vendor's message id
MESSAGE_ID_FIELDS = {"mobtexting": "id", "octopush": "message_id", "devino": "messageId", "hyber": "message_id"}


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
def test_an_authentic_callback_with_nul_characters_is_stored_without_them(client, settings, kind):
    """PostgreSQL's text and jsonb cannot hold a NUL: the COPY of the events failed and the vendor got a 500
    (and sent the reports again, and again)."""
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind=kind)
    data = json.loads(fixture(CALLBACKS[kind][0]))
    report = data[0] if isinstance(data, list) else data
    report[MESSAGE_ID_FIELDS[kind]] = "msg\x00-1"
    report["note\x00"] = "a\x00b \\u0000"  # and a backslash before "u0000", which is text, not a NUL

    response = _authentic(client, account, json.dumps(data).encode())

    assert response.status_code == 200
    event = StatusEvent.objects.filter(account=account).order_by("id").first()
    assert event.provider_message_id == "msg-1"
    assert event.payload["note"] == "ab \\u0000"


def test_deeply_nested_json_is_a_400_from_the_vendor_and_a_403_from_anyone_else(client, settings):
    """The JSON parser gives up on it (RecursionError): that was a 500, even before authentication (MOBtexting
    reads the body first, to recognise its webhook handshake)."""
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    body = b"[" * 5000 + b"]" * 5000
    for kind in sorted(CALLBACKS):
        account = ProviderAccountFactory(kind=kind)
        assert _authentic(client, account, body).status_code == 400, kind
        anyone = client.post(f"/hooks/{kind}/{account.uuid}/", body, content_type="application/json")
        assert anyone.status_code == 403, kind
    assert not StatusEvent.objects.exists()


def test_mobtexting_webhook_verification_is_answered_with_the_challenge(client, settings):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind="mobtexting")
    body = json.dumps({"validation_key": "9012", "challenge": "a234qwe"}).encode()
    path = account.webhook_url.replace("http://127.0.0.1:8000", "") + "?token=9012"
    response = client.post(
        path, body, content_type="application/json", headers={"Authorization": f"Bearer {account.webhook_secret}"}
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": "a234qwe"}
    assert not StatusEvent.objects.exists()


def test_a_webhook_answers_with_a_constant_number_of_queries(client, settings, django_assert_max_num_queries):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind="devino")
    body = fixture("devino/callback_batch.json")
    _authentic(client, account, body)  # warms the account cache
    with django_assert_max_num_queries(4):
        assert _authentic(client, account, body).status_code == 200


# JSON that Python's parser takes but PostgreSQL's jsonb cannot hold: NaN/Infinity (or a number that overflows
# to it), and a lone UTF-16 surrogate
UNSTORABLE_BODIES = {
    "nan": b'{"status": "DELIVERED", "number": "+33600000000", "cost": NaN}',
    "infinity": b'[{"status": "delivered", "ts": -Infinity}]',
    "lone surrogate": b'{"status": "DELIVERED", "number": "+33600000000", "text": "\\ud800"}',
    "number past a float": b'[{"status": "DELIVERED", "number": "+33600000000", "ts": 1e400}]',
}


@pytest.mark.parametrize("kind", sorted(CALLBACKS))
@pytest.mark.parametrize("body", sorted(UNSTORABLE_BODIES))
def test_an_authentic_body_jsonb_cannot_hold_is_a_400_and_stores_nothing(client, settings, kind, body):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind=kind)
    client.raise_request_exception = False
    response = _authentic(client, account, UNSTORABLE_BODIES[body])
    assert response.status_code == 400, response.content[:300]
    assert response.json()["detail"]
    assert not StatusEvent.objects.exists()


def test_an_escaped_surrogate_pair_is_a_character_and_is_stored(client, settings):
    settings.HERALD_PUBLIC_URL = "http://127.0.0.1:8000"
    account = ProviderAccountFactory(kind="hyber")
    body = b'{"message_id": "1", "status": 2, "number": "79001234567", "status_text": "ok \\ud83d\\ude00"}'
    assert _authentic(client, account, body).status_code == 200
    assert StatusEvent.objects.get(account=account).payload["status_text"] == "ok \N{GRINNING FACE}"


@pytest.mark.parametrize("kind", ["octopush", "devino", "hyber"])
def test_one_accounts_secret_does_not_open_another_accounts_url(client, kind):
    """A replayed report, or one posted with the secret of another account of the same vendor, is refused."""
    mine, theirs = ProviderAccountFactory(kind=kind), ProviderAccountFactory(kind=kind)
    body = fixture(CALLBACKS[kind][0])
    for query in (f"?secret={mine.webhook_secret}", "", "?secret=", f"?secret={theirs.webhook_secret[:-1]}"):
        response = client.post(f"/hooks/{kind}/{theirs.uuid}/{query}", body, content_type="application/json")
        assert response.status_code == 403, query
    assert not StatusEvent.objects.exists()
