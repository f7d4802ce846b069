"""The Octopush sandbox over real HTTP: it answers the golden requests with the golden shapes, refuses what
Octopush refuses, honours request_id, and reports delivery by callback to the real backend."""

import json

import pytest
import requests

from providers.backends.base import (
    Account,
    ConfigError,
    ConnectionFailed,
    OutboundFrame,
    Recipient,
    Status,
    Throttled,
    UpdateKind,
)
from providers.backends.octopush import OctopushBackend
from providers.sandbox.client import SandboxClient
from tests.providers.backends.harness import assert_same_shape, fixture_json, frame
from tests.providers.backends.test_octopush import SEND_CASES

LOGIN, KEY = "demo@example.com", "KEY-0123456789"
HEADERS = {"api-login": LOGIN, "api-key": KEY}
SECRET = "whsec-0123456789"
A, B, C = "+33601020304", "+33605060708", "+33609080706"
SEND = "/multi-channel/send"
CAMPAIGN = "/sms-campaign/send"


@pytest.fixture
def account(sandbox):
    return Account(
        kind="octopush", base_url=sandbox.base_url("octopush"), credentials={"login": LOGIN, "api_key": KEY},
        webhook_secret=SECRET, timeout=5,
    )  # fmt: skip


@pytest.fixture
def callbacks(sandbox, callback_receiver):
    """Octopush's console settings for the login: DLR and STOP callbacks to the receiver, with ACKs."""
    url = f"{callback_receiver.url}?secret={SECRET}"
    SandboxClient(sandbox.url).vendor(
        "octopush", "callbacks", api_login=LOGIN, dlr_url=url, stop_url=url, with_ack=True
    )
    sandbox.configure(dlr_delay=0.1, dlr_jitter=0)
    return callback_receiver


def post(sandbox, path, body, headers=HEADERS):
    return requests.post(sandbox.base_url("octopush") + path, json=body, headers=headers, timeout=5)


def body(text="Hello", recipients=(A,), **fields):
    return {
        "channel": "sms", "text": text, "recipients": [{"phone_number": n} for n in recipients], "purpose": "alert",
        "metadata": {"type": "sms_premium", "with_replies": False}, **fields,
    }  # fmt: skip


def parsed(backend, account, received):
    updates = []
    for callback in received:
        result = backend.parse_callback(
            account, method=callback.method, headers=callback.headers, query=callback.query, body=callback.body
        )
        assert result.response.status == 200
        updates.extend(result.updates)
    return updates


# --- (a) the golden requests get the golden shapes ---


GOLDEN_SENDS = [c for c in SEND_CASES if c.expected_requests and c.expected_requests[0].json is not None]


@pytest.mark.parametrize("case", GOLDEN_SENDS, ids=lambda c: c.label)
def test_a_golden_request_gets_the_golden_answer(case, sandbox):
    golden = case.expected_requests[0]
    path = golden.route.split(" ", 1)[1].removeprefix("/v1/public")
    (canned,) = case.responses[golden.route]
    answer = post(sandbox, path, golden.json)
    assert answer.status_code == 201, answer.text
    assert_same_shape(answer.json(), json.loads(canned.body))
    assert answer.json()["number_of_contacts"] == len(golden.json["recipients"])


REFUSALS = [
    ("STOP mention missing", body("Soldes", purpose="wholesale"), "octopush/error_stop_missing.json", 121),
    (
        "no PUB=STOP missing",
        body("Soldes", purpose="wholesale", metadata={"type": "sms_low_cost"}),
        "octopush/error_no_pub_stop_missing.json",
        122,
    ),
    ("bad sender", body(sender="A!"), "octopush/error_bad_sender.json", 106),
    ("text too long", body("x" * 1225), "octopush/error_validation.json", 400),
]


@pytest.mark.parametrize("label, request_body, golden, code", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refusal_has_the_golden_shape(label, request_body, golden, code, sandbox):
    answer = post(sandbox, SEND, request_body)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert_same_shape(answer.json(), fixture_json(golden))
    assert not sandbox.state.accepted


def test_the_balance_has_the_golden_shape(sandbox, account):
    answer = requests.get(sandbox.base_url("octopush") + "/wallet/check-balance", headers=HEADERS, timeout=5)
    assert_same_shape(answer.json(), fixture_json("octopush/balance_ok.json"))
    assert OctopushBackend().check(account).message == "Balance 1000 EUR"


def test_the_balance_by_product_counts_sms(sandbox):
    query = "?product_name=sms_premium&country_code=FR&with_details=true"
    answer = requests.get(sandbox.base_url("octopush") + "/wallet/check-balance" + query, headers=HEADERS, timeout=5)
    assert answer.json()["unit"] == "sms_premium"
    assert answer.json()["amount"] == 15384
    assert answer.json()["wallet_packs"][0]["credit"] == 1000.0


# --- (b) what the sandbox checks ---


def test_missing_credentials_are_a_401(sandbox):
    answer = post(sandbox, SEND, body(), headers={"api-login": LOGIN})
    assert answer.status_code == 401
    assert_same_shape(answer.json(), fixture_json("octopush/error_login.json"))


def test_a_wrong_key_for_a_registered_login_is_a_401(sandbox, account):
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=LOGIN, api_key="another-key")
    with pytest.raises(ConfigError, match="Incorrect login details") as error:
        OctopushBackend().send(account, frame([A]))
    assert (error.value.code, error.value.field, error.value.status_code) == ("101", "credentials", 401)


@pytest.mark.parametrize(
    "request_body, field, code",
    [
        (body(recipients=()), "recipients", 110),
        (body(recipients=[f"+336{i:08d}" for i in range(501)]), "recipients", 305),
        (body(text=""), "text", 107),
        ({**body(), "recipients": [{"first_name": "Ana"}]}, "recipients", 117),
        (body(purpose="marketing"), "purpose", 400),
        (body(metadata={"type": "sms_world"}), "type", 208),
        (body(send_at="tomorrow"), "send_at", 400),
        (body(channel="email"), "channel", 400),
    ],
    ids=["no recipients", "501 recipients", "no text", "no phone number", "purpose", "type", "send_at", "channel"],
)
def test_validation_errors_name_the_field(request_body, field, code, sandbox):
    answer = post(sandbox, SEND, request_body)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Payload validation error."
    assert answer.json()["errors"][field]["code"] == code


def test_a_body_that_is_not_json_is_a_validation_error(sandbox):
    answer = requests.post(sandbox.base_url("octopush") + SEND, data="text=Hello", headers=HEADERS, timeout=5)
    assert answer.status_code == 400
    assert "body" in answer.json()["errors"]


def test_what_real_clients_send_is_tolerated(sandbox):
    """Explicit nulls, unknown fields, a trailing slash, numbers as integers, a sender with a stray character."""
    request_body = {
        **body(recipients=()), "recipients": [{"phone_number": 33601020304, "param1": None, "first_name": None}],
        "send_at": None, "list_name": None, "sender": "Hé-rald", "recipient_tracking": True, "colour": "blue",
        "simulation_mode": None,
    }  # fmt: skip
    answer = post(sandbox, SEND + "/", request_body)
    assert answer.status_code == 201, answer.text
    assert sandbox.state.accepted[("octopush", A)] == 1


def test_marketing_needs_its_stop_mention(sandbox):
    assert post(sandbox, SEND, body("Soldes", purpose=None)).json()["code"] == 121  # wholesale is the default
    assert post(sandbox, SEND, body("Soldes STOP au XXXXX", purpose="wholesale")).status_code == 201
    low_cost = {"type": "sms_low_cost"}
    assert post(sandbox, SEND, body("Soldes no PUB=STOP", purpose="wholesale", metadata=low_cost)).status_code == 201


def test_out_of_credit_is_104_and_the_account_to_fix(sandbox, account):
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=LOGIN, balance=0.01)
    with pytest.raises(ConfigError) as error:
        OctopushBackend().send(account, frame([A]))
    assert (error.value.code, error.value.field) == ("104", "")


def test_simulation_mode_accepts_nothing(sandbox, account):
    simulated = Account(**{**account.__dict__, "options": {"simulation_mode": True}})
    result = OctopushBackend().send(simulated, frame([A]))
    assert result.ticket.startswith("sms_")
    assert not sandbox.state.accepted


def test_unknown_paths_and_methods(sandbox):
    assert requests.get(sandbox.base_url("octopush") + SEND, headers=HEADERS, timeout=5).status_code == 405
    assert post(sandbox, "/sms/send", body()).status_code == 404


# --- (c) request_id and "exactly once" ---


def test_the_same_frame_twice_is_accepted_once(sandbox, account):
    backend = OctopushBackend()
    first = backend.send(account, frame([A, B], key="frame-7"))
    again = backend.send(account, frame([A, B], key="frame-7"))
    assert first.ticket.startswith("sms_") and not first.already_accepted
    assert again.already_accepted and [r.status for r in again.results] == [Status.SUBMITTED] * 2
    assert sandbox.state.accepted[("octopush", A)] == sandbox.state.accepted[("octopush", B)] == 1
    assert sandbox.state.duplicates("octopush") == {}


def test_request_id_counts_in_either_place_on_either_path(sandbox):
    assert post(sandbox, SEND, body(metadata={"request_id": "r-1"})).status_code == 201
    campaign = {"text": "Hi", "recipients": [{"phone_number": B}], "purpose": "alert", "request_id": "r-1"}
    answer = post(sandbox, CAMPAIGN, campaign)
    assert answer.json()["code"] == 120
    other_login = {"api-login": "other@example.com", "api-key": KEY}
    assert post(sandbox, SEND, body(metadata={"request_id": "r-1"}), headers=other_login).status_code == 201


def test_a_refused_request_does_not_use_up_its_request_id(sandbox):
    assert post(sandbox, SEND, body("Soldes", purpose="wholesale", metadata={"request_id": "r-2"})).status_code == 400
    assert post(sandbox, SEND, body("Soldes STOP au XXXXX", purpose="wholesale", metadata={"request_id": "r-2"})).ok


def test_a_number_twice_in_one_request_is_one_contact(sandbox):
    answer = post(sandbox, SEND, body(recipients=(A, A, "0033601020304")))
    assert answer.json()["number_of_contacts"] == 1
    assert sandbox.state.accepted[("octopush", A)] == 1


def test_a_lost_response_is_recovered_by_resending(sandbox, account):
    backend = OctopushBackend()
    sandbox.configure(rate_drop=1.0, fault_after_accept=1.0)
    with pytest.raises(ConnectionFailed):
        backend.send(account, frame([A, B], key="frame-lost"))
    sandbox.configure(rate_drop=0.0)
    results = backend.recover(account, frame([A, B], key="frame-lost"))
    assert [(r.address, r.status) for r in results] == [(A, Status.SUBMITTED), (B, Status.SUBMITTED)]
    assert sandbox.state.accepted[("octopush", A)] == 1


def test_personalised_texts_are_accepted_once_each_in_frame_order(sandbox, account):
    recipients = [Recipient(f"ref-{i}", f"+336{i:08d}", f"Hi {i}", {"name": str(i)}) for i in range(3)]
    personalised = OutboundFrame(
        key="frame-p", channel="sms", sender="Herald", text="Hi {{name}}", recipients=recipients
    )
    result = OctopushBackend().send(account, personalised)
    assert [(r.external_ref, r.provider_message_id) for r in result.results] == [
        (f"ref-{i}", result.ticket) for i in range(3)
    ]
    assert sum(sandbox.state.accepted.values()) == 3


# --- (d) delivery reports, end to end ---


def test_delivery_reports_reach_the_backend(sandbox, account, callbacks):
    backend = OctopushBackend()
    result = backend.send(account, frame([A, B, C]))
    updates = parsed(backend, account, callbacks.wait_for(6))
    assert {(u.address, u.ticket, u.status) for u in updates} == {
        (n, result.ticket, s) for n in (A, B, C) for s in (Status.SENT, Status.DELIVERED)
    }
    assert all(u.kind is UpdateKind.STATUS and u.occurred_at for u in updates)


@pytest.mark.parametrize(
    "outcome, raw, status, words",
    [
        (
            "undelivered",
            "NOT_DELIVERED",
            Status.UNDELIVERED,
            "Not delivered: the operator tried and could not deliver it",
        ),
        (
            "expired",
            "UNKNOWN_DELIVERY",
            Status.EXPIRED,
            "No delivery receipt came back within the message's validity period",
        ),
        ("rejected", "NOT_ALLOWED", Status.REJECTED, "Not allowed: the route or the operator refused this traffic"),
    ],
)
def test_each_outcome_becomes_its_status_in_words(outcome, raw, status, words, sandbox, account, callbacks):
    sandbox.configure(dlr_mix={outcome: 1})
    backend = OctopushBackend()
    backend.send(account, frame([A]))
    final = [u for u in parsed(backend, account, callbacks.wait_for(2)) if u.raw_status != "ACK"]
    assert [(u.raw_status, u.status, u.text) for u in final] == [(raw, status, words)]


def test_a_number_that_is_not_e164_is_a_bad_destination(sandbox, account, callbacks):
    backend = OctopushBackend()
    backend.send(account, frame(["+0601"]))
    final = [u for u in parsed(backend, account, callbacks.wait_for(2)) if u.raw_status != "ACK"]
    words = "Bad destination: not a valid mobile number, never attempted"
    assert [(u.raw_status, u.status, u.text) for u in final] == [("BAD_DESTINATION", Status.REJECTED, words)]


def test_a_stop_is_an_opt_out_and_blacklists_the_number(sandbox, account, callbacks):
    backend = OctopushBackend()
    result = backend.send(account, frame([A]))
    callbacks.wait_for(2)
    SandboxClient(sandbox.url).vendor("octopush", "optout", address=A)
    stop = parsed(backend, account, callbacks.wait_for(3)[2:])
    assert [(u.kind, u.address, u.ticket, u.optout_scope) for u in stop] == [
        (UpdateKind.OPT_OUT, A, result.ticket, "all")
    ]
    backend.send(account, frame([A], key="frame-2"))
    final = [u for u in parsed(backend, account, callbacks.wait_for(5)[3:]) if u.raw_status != "ACK"]
    assert [(u.raw_status, u.status) for u in final] == [("BLACKLISTED_NUMBER", Status.REJECTED)]


def test_a_failed_callback_is_retried(sandbox, account, callbacks):
    SandboxClient(sandbox.url).vendor("octopush", "callbacks", api_login=LOGIN, dlr_url=callbacks.url)
    callbacks.status = 500
    OctopushBackend().send(account, frame([A]))
    callbacks.wait_for(1)
    callbacks.status = 200
    first, retry = callbacks.wait_for(2)
    assert first.body == retry.body
    assert sandbox.state.callbacks.wait_idle(5)
    assert (sandbox.state.callbacks.failed["octopush"], sandbox.state.callbacks.sent["octopush"]) == (1, 1)


def test_no_callbacks_without_console_settings(sandbox, account, callback_receiver):
    sandbox.configure(dlr_delay=0, dlr_jitter=0)
    OctopushBackend().send(account, frame([A]))
    assert sandbox.state.callbacks.wait_idle(5)
    assert callback_receiver.received == []


# --- (e) knobs ---


def test_rate_429_is_throttled_with_retry_after(sandbox, account):
    sandbox.configure(rate_429=1.0, retry_after=2)
    with pytest.raises(Throttled) as error:
        OctopushBackend().send(account, frame([A]))
    assert error.value.retry_after == 2.0
    assert not sandbox.state.accepted


def test_rate_5xx_is_a_connection_failure(sandbox, account):
    sandbox.configure(rate_5xx=1.0)
    with pytest.raises(ConnectionFailed):
        OctopushBackend().send(account, frame([A]))
    assert not sandbox.state.accepted


def test_the_balance_check_is_not_a_send(sandbox, account):
    sandbox.configure(rate_429=1.0, rate_5xx=1.0)
    assert OctopushBackend().check(account).ok


def test_a_send_from_a_login_octopush_has_not_validated_is_refused_with_113(sandbox, account):
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=LOGIN, status="not_validated")
    refused = post(sandbox, SEND, body())
    assert refused.status_code == 400 and refused.json()["code"] == 113
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=LOGIN, status="active")
    assert post(sandbox, SEND, body()).status_code == 201


def _campaign_on_sandbox(sandbox, settings, size: int, **account_control):
    """A campaign of `size` recipients in frames of 10 on an Octopush account on the sandbox, prepared; the
    sandbox's `account` control action applied to its login first."""
    from campaigns.models import Campaign
    from campaigns.services.prepare import campaign_prepare
    from providers.models import ProviderAccount, Sender
    from tests.campaigns.conftest import contacts_tagged
    from tests.factories import CREDENTIALS

    sandbox.configure(callbacks=False)
    settings.FRAME_RETRY_BASE = settings.FRAME_RETRY_MAX = 0.0
    account = ProviderAccount.objects.create(
        kind="octopush", name="Octopush", base_url=sandbox.base_url("octopush"), credentials=dict(CREDENTIALS["octopush"]),
        channels=["sms"], rate_limit=1000,
    )  # fmt: skip
    sender = Sender.objects.create(account=account, name="Herald", status="approved")
    SandboxClient(sandbox.url).vendor("octopush", "account", api_login=account.credentials["login"], **account_control)
    campaign = Campaign.objects.create(
        name="On the sandbox", account=account, sender=sender, text="Hello {{first_name}}", frame_size=10,
        state=Campaign.State.PREPARING,
    )  # fmt: skip
    campaign.tags.set([contacts_tagged(size, tag_name=f"octopush-{size}")])
    campaign_prepare(campaign_id=campaign.pk)
    return campaign


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["not_validated", "under_investigation"])
def test_a_campaign_on_an_octopush_account_not_validated_pauses_and_fails_no_message(sandbox, settings, status):
    """Octopush refuses such an account's sends with 113 or 114 and HTTP 400. The backend raised a permanent
    error for the frame: every frame's messages failed for good ("account not validated") and the campaign
    completed with nothing sent (a longer one paused only after ten rounds of failed frames). Now it pauses at
    once, as for a refused login, and is resumed once the account is sorted out."""
    from campaigns.models import Campaign, Message
    from campaigns.services.dispatch import campaign_dispatch

    campaign = _campaign_on_sandbox(sandbox, settings, 30, status=status)

    campaign_dispatch(campaign_id=campaign.pk, budget=10)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED, campaign.state_reason
    assert "needs attention" in campaign.state_reason and "Octopush" in campaign.state_reason
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"pending"}
    assert not sandbox.state.accepted


@pytest.mark.django_db(transaction=True)
def test_a_campaign_that_runs_out_of_credit_pauses_and_resumes_after_a_top_up(sandbox, settings):
    """Out of credit (104), every further frame is refused alike: their messages failed for good ("run out of
    credit"), frame after frame, and had to be sent again by hand after a top-up. Now the campaign pauses with
    Octopush's words and the resume after the top-up sends the rest."""
    from campaigns.models import Campaign, Message
    from campaigns.services.dispatch import campaign_dispatch
    from campaigns.services.lifecycle import campaign_resume

    campaign = _campaign_on_sandbox(sandbox, settings, 30, balance=1.0)  # one frame of 10 costs 0.65 EUR

    campaign_dispatch(campaign_id=campaign.pk, budget=10)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED, campaign.state_reason
    assert "You have run out of credit." in campaign.state_reason
    statuses = list(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert sorted(set(statuses)) == ["pending", "submitted"] and statuses.count("submitted") == 10

    SandboxClient(sandbox.url).vendor(
        "octopush", "account", api_login=campaign.account.credentials["login"], balance=100
    )
    campaign_resume(campaign_id=campaign.pk)
    campaign_dispatch(campaign_id=campaign.pk, budget=10)

    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"submitted"}
    assert len(sandbox.state.accepted) == 30
