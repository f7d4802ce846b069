"""The Hyber sandbox over real HTTP: its contract with the golden cases, its own checks, duplicates,
delivery reports pushed and pulled, recovery after a lost response, and the fault knobs."""

import json
import time

import pytest
import requests

from providers.backends.base import (
    Account,
    CheckResult,
    ConnectionFailed,
    MessageRef,
    PollQuery,
    Status,
    Throttled,
)
from providers.backends.hyber import HyberBackend
from tests.providers.backends.harness import assert_same_shape, fixture_json, frame
from tests.providers.backends.test_hyber import SEND_CASES

SECRET = "whsec-0123456789"
LOGIN, PASSWORD = "gms-login", "gms-password"
PHONE = "+380961111111"
SMS_BODY = {
    "phone_number": 380961111111,
    "extra_id": "AD-6640-7006",
    "channels": ["sms"],
    "channel_options": {"sms": {"text": "Text for SMS", "alpha_name": "GMSU", "ttl": 300}},
}
backend = HyberBackend()


@pytest.fixture
def hyber(sandbox):
    """Reports due after 0.1 s, and a DR pull that answers at once (Hyber's own waits about 10 s)."""
    sandbox.configure(dlr_delay=0.1, dlr_jitter=0)
    sandbox.vendors["hyber"].control("pull_delay", {"seconds": 0})
    return sandbox


def account(sandbox, webhook_url: str = "", **options) -> Account:
    return Account(
        kind="hyber",
        base_url=sandbox.base_url("hyber"),
        credentials={"login": LOGIN, "api_key": PASSWORD},
        options={"client_id": "2157", **options},
        webhook_url=webhook_url,
        webhook_secret=SECRET,
        timeout=5,
    )


def hook(receiver) -> str:
    """The callback URL as Herald builds it: the account's secret in the query."""
    return f"{receiver.url}?secret={SECRET}"


def post(sandbox, body=None, *, path: str = "/2157", auth=(LOGIN, PASSWORD), **kwargs) -> requests.Response:
    if body is not None:
        kwargs["json"] = body
    return requests.post(sandbox.base_url("hyber") + path, auth=auth, timeout=5, **kwargs)


def pull(sandbox, path: str) -> requests.Response:
    return requests.get(f"{sandbox.base_url('hyber')}/dr/2157/api/dr/{path}/simple", auth=(LOGIN, PASSWORD), timeout=5)


def send(sandbox, refs, webhook_url: str = "", **options):
    """Send one single-recipient frame per ref through the real backend; the results in order."""
    acc = account(sandbox, webhook_url, **options)
    return [backend.send(acc, frame([PHONE], "Hello", refs=[ref])).results[0] for ref in refs]


def wait_until_due(seconds: float = 0.15) -> None:
    time.sleep(seconds)


# --- (a) contract: the golden requests, answered in the golden responses' shapes -------------------

ACCEPTED_CASES = [c for c in SEND_CASES if c.expected_results and all(r.accepted for r in c.expected_results)]


@pytest.mark.parametrize("case", ACCEPTED_CASES, ids=lambda c: c.label)
def test_each_accepted_golden_send_is_accepted_by_the_sandbox(case, hyber):
    results = backend.send(account(hyber, **case.account.get("options", {})), case.frame).results
    assert [(r.external_ref, r.address, r.status) for r in results] == [
        (r.external_ref, r.address, r.status) for r in case.expected_results
    ]
    assert all(len(r.provider_message_id) == 36 for r in results)


def test_the_seeds_own_request_gets_the_golden_answer(hyber):
    response = post(hyber, fixture_json("hyber/send_request_sms.json") | {"callback_url": None})
    assert response.status_code == 200
    assert_same_shape(response.json(), fixture_json("hyber/send_ok.json"))


def test_refusals_have_the_golden_error_shape(hyber):
    response = post(hyber, SMS_BODY | {"phone_number": "38096x"})
    assert (response.status_code, response.json()["error_code"]) == (400, 36024)
    assert_same_shape(response.json(), fixture_json("hyber/send_phone_incorrect.json"))
    response = post(hyber, SMS_BODY, auth=None)
    assert response.status_code == 401
    assert_same_shape(response.json(), fixture_json("hyber/auth_failed.json"))


def test_the_dr_pull_answers_in_the_golden_shapes(hyber):
    hyber.configure(dlr_mix={"delivered": 1}, dlr_delay=5)
    assert post(hyber, SMS_BODY).status_code == 200
    in_progress = pull(hyber, "external/AD-6640-7006")
    assert in_progress.status_code == 200
    assert_same_shape(in_progress.json(), fixture_json("hyber/dr_simple_in_progress.json"))
    hyber.configure(dlr_delay=0.1)
    assert post(hyber, SMS_BODY | {"extra_id": "AD-6640-7007"}).status_code == 200
    wait_until_due()
    delivered = pull(hyber, "external/AD-6640-7007")
    assert_same_shape(delivered.json(), fixture_json("hyber/dr_simple_delivered.json"))
    assert pull(hyber, delivered.json()["message_id"]).json() == delivered.json()
    not_found = pull(hyber, "external/never-sent")
    assert not_found.status_code == 404
    assert_same_shape(not_found.json(), fixture_json("hyber/dr_not_found.json"))


def test_the_dr_pull_refuses_within_its_delay_after_the_send(hyber):
    requests.post(f"{hyber.url}/_sandbox/hyber/pull_delay", json={"seconds": 10}, timeout=5).raise_for_status()
    assert post(hyber, SMS_BODY).status_code == 200
    too_early = pull(hyber, "external/AD-6640-7006")
    assert too_early.status_code == 425
    assert_same_shape(too_early.json(), fixture_json("hyber/dr_not_ready.json"))


def test_the_callback_has_the_golden_report_shape(hyber, callback_receiver):
    hyber.configure(dlr_mix={"delivered": 1})
    assert post(hyber, SMS_BODY | {"callback_url": hook(callback_receiver)}).status_code == 200
    (callback,) = callback_receiver.wait_for(1)
    assert (callback.method, callback.headers["content-type"]) == ("POST", "application/json")
    assert_same_shape(json.loads(callback.body), fixture_json("hyber/dlr_delivered.json"))


# --- (b) the sandbox's own checks --------------------------------------------------------------------


def sms(**changes) -> dict:
    options = {**SMS_BODY["channel_options"]["sms"], **changes.pop("sms", {})}
    return {**SMS_BODY, "channel_options": {"sms": options}, **changes}


def without(name: str) -> dict:
    return {k: v for k, v in SMS_BODY.items() if k != name}


VIBER_FILE = {"ttl": 60, "file_name": "Name_for_document.docx", "action": "https://example.com/file.docx"}
REFUSED = [
    ("no authorization", {"json": SMS_BODY, "auth": None}, 401, 36001),
    ("a bearer token instead of Basic", {"json": SMS_BODY, "auth": None, "headers": {"Authorization": "Bearer x"}},
     401, 36001),
    ("a form-encoded body", {"data": {"phone_number": "380961111111"}}, 400, 36003),
    ("a body that is not JSON", {"data": b'{"phone_number":', "headers": {"Content-Type": "application/json"}},
     400, 36002),
    ("phone_number missing", {"json": without("phone_number")}, 400, 36004),
    ("channels missing", {"json": without("channels")}, 400, 36004),
    ("letters in phone_number", {"json": sms(phone_number="38096ABC1111")}, 400, 36024),
    ("phone_number too short", {"json": sms(phone_number=12345)}, 400, 36024),
    ("phone_number true", {"json": sms(phone_number=True)}, 400, 36024),
    ("phone_number with +", {"json": sms(phone_number="+380961111111")}, 400, 36024),
    ("two phone numbers", {"json": sms(phone_number=[380961111111, 380962222222])}, 400, 36006),
    ("a batch in the single-message URL", {"json": {**SMS_BODY, "messages": [{"phone_number": 380961111111}]}},
     400, 36006),
    ("no channel", {"json": sms(channels=[])}, 400, 36011),
    ("an unknown channel", {"json": sms(channels=["telegram"])}, 400, 36011),
    ("a channel twice", {"json": sms(channels=["sms", "sms"])}, 400, 36011),
    ("a channel without its options", {"json": sms(channels=["viber", "sms"])}, 400, 36004),
    ("sms without text", {"json": sms(sms={"text": None})}, 400, 36004),
    ("sms without alpha_name", {"json": sms(sms={"alpha_name": ""})}, 400, 36004),
    ("alpha_name of 12 characters", {"json": sms(sms={"alpha_name": "GMSU-GMSU-GM"})}, 400, 36012),
    ("alpha_name outside GSM-7", {"json": sms(sms={"alpha_name": "ГМСУ"})}, 400, 36012),
    ("sms without ttl", {"json": sms(sms={"ttl": None})}, 400, 36004),
    ("sms ttl under 300 s", {"json": sms(sms={"ttl": 60})}, 400, 36012),
    ("sms ttl as text", {"json": sms(sms={"ttl": "five minutes"})}, 400, 36012),
    ("336 Cyrillic characters", {"json": sms(sms={"text": "Ж" * 336})}, 400, 36012),
    ("766 GSM characters", {"json": sms(sms={"text": "a" * 766})}, 400, 36012),
    ("push without title", {"json": sms(channels=["push"], channel_options={"push": {"text": "Hi", "ttl": 60}})},
     400, 36004),
    ("extra_id of 65 characters", {"json": sms(extra_id="x" * 65)}, 400, 36005),
    ("tag of 65 characters", {"json": sms(tag="x" * 65)}, 400, 36005),
    ("extra_id as a number", {"json": sms(extra_id=6640)}, 400, 36005),
    ("start_time in ISO 8601 with T", {"json": sms(start_time="2020-12-12T10:10:10+03:00")}, 400, 36005),
    ("start_time on the 13th month", {"json": sms(start_time="2020-13-12 10:10:10")}, 400, 36005),
]  # fmt: skip


@pytest.mark.parametrize("label, kwargs, status, code", REFUSED, ids=[r[0] for r in REFUSED])
def test_the_sandbox_refuses_what_hyber_refuses(label, kwargs, status, code, hyber):
    response = post(hyber, **kwargs)
    assert (response.status_code, response.json()["error_code"]) == (status, code), response.text
    assert response.json()["error_text"]
    assert hyber.state.accepted == {}


TOLERATED = [
    ("phone_number as a numeric string", {"json": sms(phone_number="380961111111")}),
    ("explicit nulls for unset fields", {"json": sms(callback_url=None, start_time=None, tag=None, division_code=None)}),
    ("a trailing slash on the URL", {"json": SMS_BODY, "path": "/2157/"}),
    ("ttl as a numeric string", {"json": sms(sms={"ttl": "300"})}),
    ("765 GSM characters", {"json": sms(sms={"text": "a" * 765})}),
    ("335 Cyrillic characters", {"json": sms(sms={"text": "Ж" * 335})}),
    ("a file-only viber message without text", {"json": sms(channels=["viber"], channel_options={"viber": VIBER_FILE})}),
    ("start_time without offset (Kyiv time)", {"json": sms(start_time="2020-12-12 10:10:10")}),
    ("unknown fields, ctr and division_code", {"json": sms(division_code="Division code", sms={"ctr": False}, x=1)}),
    ("Content-Type with a charset", {"data": json.dumps(SMS_BODY),
                                     "headers": {"Content-Type": "application/json; charset=utf-8"}}),
]  # fmt: skip


@pytest.mark.parametrize("label, kwargs", TOLERATED, ids=[t[0] for t in TOLERATED])
def test_the_sandbox_accepts_what_real_clients_send(label, kwargs, hyber):
    response = post(hyber, **kwargs)
    assert response.status_code == 200, response.text
    assert len(response.json()["message_id"]) == 36


def test_a_connection_close_request_is_answered_with_connection_close(hyber):
    response = post(hyber, SMS_BODY, headers={"Connection": "close"})
    assert (response.status_code, response.headers["Connection"]) == (200, "close")


def test_a_client_id_with_its_own_credentials_refuses_other_ones(hyber):
    hyber.vendors["hyber"].control("account", {"client_id": "2157", "login": LOGIN, "password": "right"})
    assert post(hyber, SMS_BODY).status_code == 401
    assert post(hyber, SMS_BODY, auth=(LOGIN, "right")).status_code == 200
    assert post(hyber, SMS_BODY, path="/3001").status_code == 200


def test_unknown_urls_and_methods_are_not_found(hyber):
    assert requests.get(hyber.base_url("hyber") + "/2157", timeout=5).status_code == 404
    assert post(hyber, SMS_BODY, path="/2157/batch/sync").status_code == 404
    assert requests.get(hyber.base_url("hyber") + "/dr/2157/api/dr/x/advanced", timeout=5).status_code == 404


# --- (c) idempotency: what was accepted, and how often -------------------------------------------------


def test_each_accepted_message_is_counted_once_under_its_extra_id(hyber):
    results = send(hyber, ["ref-1", "ref-2", "ref-3"])
    assert [r.status for r in results] == [Status.SUBMITTED] * 3
    assert len({r.provider_message_id for r in results}) == 3
    post(hyber, sms(extra_id="ref-4", phone_number="nope"))
    assert dict(hyber.state.accepted) == {("hyber", "ref-1"): 1, ("hyber", "ref-2"): 1, ("hyber", "ref-3"): 1}


def test_a_repeated_extra_id_is_accepted_again_and_shows_as_a_duplicate(hyber):
    first, second = send(hyber, ["ref-1", "ref-1"])
    assert first.provider_message_id != second.provider_message_id
    assert hyber.state.duplicates("hyber") == {"ref-1": 2}
    wait_until_due()
    assert pull(hyber, "external/ref-1").json()["message_id"] == second.provider_message_id


# --- (d) end to end: reports pushed and pulled ---------------------------------------------------------


def received_updates(sandbox, receiver, count: int, timeout: float = 5.0) -> list:
    """Feed every callback received into the backend, as the webhook does, until `count` updates came."""
    deadline = time.monotonic() + timeout
    while True:
        updates = [
            update
            for cb in list(receiver.received)
            for update in backend.parse_callback(
                account(sandbox), method=cb.method, headers=cb.headers, query=cb.query, body=cb.body
            ).updates
        ]
        if len(updates) >= count or time.monotonic() > deadline:
            return updates
        time.sleep(0.02)


def test_delivery_reports_are_pushed_to_the_callback_url(hyber, callback_receiver):
    hyber.configure(dlr_mix={"delivered": 1})
    sent = send(hyber, ["ref-1", "ref-2", "ref-3"], hook(callback_receiver))
    updates = received_updates(hyber, callback_receiver, 3)
    assert sorted((u.external_ref, u.provider_message_id, u.status, u.raw_status, u.address) for u in updates) == [
        (r.external_ref, r.provider_message_id, Status.DELIVERED, "2/23", PHONE) for r in sent
    ]
    assert all(not isinstance(json.loads(cb.body), list) for cb in callback_receiver.received)


def test_delivery_reports_can_be_pulled_by_extra_id_or_message_id(hyber):
    hyber.configure(dlr_mix={"delivered": 1})
    first, second = send(hyber, ["ref-1", "ref-2"])
    wait_until_due()
    query = PollQuery(messages=[MessageRef("ref-1", PHONE), MessageRef("ref-2", PHONE, second.provider_message_id)])
    updates = backend.poll(account(hyber), query)
    assert [(u.external_ref, u.provider_message_id, u.status) for u in updates] == [
        ("ref-1", first.provider_message_id, Status.DELIVERED),
        ("ref-2", second.provider_message_id, Status.DELIVERED),
    ]


def test_before_the_report_is_due_the_pull_shows_the_message_in_progress(hyber):
    hyber.configure(dlr_delay=5)
    send(hyber, ["ref-1"])
    (update,) = backend.poll(account(hyber), PollQuery(messages=[MessageRef("ref-1", PHONE)]))
    assert (update.raw_status, update.status) == ("1/12", Status.SUBMITTED)


def test_batched_callbacks_arrive_as_arrays(hyber, callback_receiver):
    requests.post(f"{hyber.url}/_sandbox/hyber/batch_callbacks", json={"enabled": True}, timeout=5).raise_for_status()
    sent = send(hyber, ["ref-1", "ref-2", "ref-3", "ref-4"], hook(callback_receiver))
    updates = received_updates(hyber, callback_receiver, 4)
    assert sorted(u.external_ref for u in updates) == [r.external_ref for r in sent]
    assert any(len(json.loads(cb.body)) > 1 for cb in callback_receiver.received)
    assert all(isinstance(json.loads(cb.body), list) for cb in callback_receiver.received)


@pytest.mark.parametrize(
    "outcome, raw, status, words",
    [
        ("undelivered", "3/35", Status.UNDELIVERED, "Not delivered"),
        ("expired", "3/26", Status.EXPIRED, "Not delivered within the message's time to live (TTL)"),
        ("rejected", "-1/36", Status.REJECTED, "Not sent to any channel"),
    ],
)
def test_each_failed_outcome_is_reported_both_ways_in_words(outcome, raw, status, words, hyber, callback_receiver):
    hyber.configure(dlr_mix={outcome: 1})
    send(hyber, ["ref-1"], hook(callback_receiver))
    (pushed,) = received_updates(hyber, callback_receiver, 1)
    (pulled,) = backend.poll(account(hyber), PollQuery(messages=[MessageRef("ref-1", PHONE)]))
    seen = {(u.raw_status, u.status, u.text) for u in (pushed, pulled)}
    assert seen == {(raw, status, words)}


# --- (e) knobs, lost responses and recovery ------------------------------------------------------------


def test_rate_429_makes_the_backend_wait_retry_after(hyber):
    hyber.configure(rate_429=1.0, retry_after=3)
    with pytest.raises(Throttled) as raised:
        send(hyber, ["ref-1"])
    assert raised.value.retry_after == 3.0
    assert hyber.state.accepted == {}


def test_rate_5xx_is_a_retryable_connection_failure(hyber):
    hyber.configure(rate_5xx=1.0)
    with pytest.raises(ConnectionFailed):
        send(hyber, ["ref-1"])
    assert hyber.state.accepted == {}


def test_a_response_lost_after_acceptance_is_recovered_by_extra_id_not_resent(hyber):
    hyber.configure(rate_drop=1.0, fault_after_accept=1.0)
    with pytest.raises(ConnectionFailed):
        send(hyber, ["ref-1"])
    hyber.configure(rate_drop=0.0)
    (recovered,) = backend.recover(account(hyber), frame([PHONE], refs=["ref-1"]))
    assert (recovered.accepted, recovered.status) == (True, Status.SUBMITTED)
    assert recovered.provider_message_id == pull(hyber, "external/ref-1").json()["message_id"]
    assert dict(hyber.state.accepted) == {("hyber", "ref-1"): 1}


def test_a_request_lost_before_acceptance_is_left_for_resending(hyber):
    hyber.configure(rate_drop=1.0, fault_after_accept=0.0)
    with pytest.raises(ConnectionFailed):
        send(hyber, ["ref-1"])
    hyber.configure(rate_drop=0.0)
    assert backend.recover(account(hyber), frame([PHONE], refs=["ref-1"])) == []
    send(hyber, ["ref-1"])
    assert dict(hyber.state.accepted) == {("hyber", "ref-1"): 1}


def test_recovery_within_the_pull_delay_is_retried_later(hyber):
    hyber.vendors["hyber"].control("pull_delay", {"seconds": 10})
    send(hyber, ["ref-1"])
    with pytest.raises(ConnectionFailed) as raised:
        backend.recover(account(hyber), frame([PHONE], refs=["ref-1"]))
    assert raised.value.code == "36101"


def test_check_tells_good_credentials_from_bad_ones(hyber):
    assert backend.check(account(hyber)).ok
    hyber.vendors["hyber"].control("account", {"client_id": "2157", "login": LOGIN, "password": "other"})
    assert backend.check(account(hyber)) == CheckResult(False, "Hyber refused the login/password")


def test_optout_sends_nothing_because_hyber_has_no_opt_out_events(hyber, callback_receiver):
    answer = requests.post(f"{hyber.url}/_sandbox/hyber/optout", json={"address": PHONE}, timeout=5)
    assert answer.json()["sent"] == 0
    time.sleep(0.2)
    assert callback_receiver.received == []
