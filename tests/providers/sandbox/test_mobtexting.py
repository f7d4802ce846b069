"""The MOBtexting sandbox over real HTTP: its answers have the golden shapes, it checks requests as the vendor
does, never counts a ref twice unless the client sent it twice, and reports delivery both ways."""

import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from config.processes import wait_until
from providers.backends.base import (
    Account,
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    MessageRef,
    PollQuery,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    Status,
    Throttled,
    UpdateKind,
    is_account_problem,
)
from providers.backends.mobtexting import MobtextingBackend
from providers.backends.mobtexting.client import Pace, pages
from tests.providers.backends.harness import assert_same_shape, fixture_json, frame

TOKEN = "sandbox-token-0001"
DLT = {"sender": "HERALD", "dlt_entity_id": "1101234567890123456", "dlt_template_id": "1107161234567890123"}
NUMBERS = ["+919812345601", "+919812345602", "+919812345603"]
backend = MobtextingBackend()
UNDELIVERABLE = (
    "Message is undeliverable. The message has encountered a delivery error and is deemed permanently undeliverable."
)


def golden(name: str):
    return fixture_json(f"mobtexting/{name}")


def account(sandbox, **overrides) -> Account:
    values = dict(
        kind="mobtexting",
        base_url=sandbox.base_url("mobtexting"),
        credentials={"api_key": TOKEN},
        webhook_url="http://127.0.0.1:9/unused/",
        webhook_secret="whsec-sandbox-secret",
        uuid="00000000-0000-0000-0000-00000000mt01",
        timeout=5.0,
    )
    return Account(**{**values, **overrides})


def api(sandbox, method: str, path: str, *, token: str | None = TOKEN, **kwargs) -> requests.Response:
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{sandbox.base_url('mobtexting')}/{path}", headers=headers, timeout=5, **kwargs)


def dlt_frame(addresses=NUMBERS, text="Your OTP is 4321", **kwargs):
    return frame(addresses, text=text, **{**DLT, "service": "T", **kwargs})


def make_webhook(sandbox, uri: str, **fields) -> dict:
    """A webhook without a verification token: the vendor verifies only when given one."""
    answer = api(sandbox, "POST", "developer/webhooks", json={"name": "test", "uri": uri, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def subscribe(sandbox, webhook_id: str, event: str = "sms:message:status") -> None:
    body = {"event": event, "identity": "all", "webhook_id": webhook_id}
    assert api(sandbox, "POST", "developer/subscriptions", json=body).status_code == 200


def send_json(sandbox, nodes, **root) -> requests.Response:
    root = {"sender": "HERALD", "service": "T", "message": "Your OTP is 4321", **DLT_IDS, **root}
    return api(sandbox, "POST", "sms/send/json", json={"root": root, "nodes": nodes})


DLT_IDS = {"entity_id": DLT["dlt_entity_id"], "template_id": DLT["dlt_template_id"]}


def parse(acct, callback):
    return backend.parse_callback(
        acct, method=callback.method, headers=callback.headers, query=callback.query, body=callback.body
    )


class HeraldHook(ThreadingHTTPServer):
    """Stands in for Herald's webhook view: authenticate and parse with the backend, answer what it says."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.account: Account | None = None
        self.updates = []
        self.refused = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/mobtexting/mt01/"


class _HookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HeraldHook

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            parsed = backend.parse_callback(
                self.server.account, method=self.command, headers=dict(self.headers), query=query, body=body
            )
            status, answer, kind = parsed.response.status, parsed.response.body.encode(), parsed.response.content_type
            with self.server.lock:
                self.server.updates += parsed.updates
        except (AuthenticationFailed, ResponseUnparseable):
            status, answer, kind = 403, b"", "text/plain"
            with self.server.lock:
                self.server.refused += 1
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST


@pytest.fixture
def herald_hook():
    hook = HeraldHook()
    yield hook
    hook.shutdown()


# --- (a) the golden shapes --------------------------------------------------------------------------------


def test_the_golden_send_request_gets_the_golden_answer(sandbox):
    webhook = make_webhook(sandbox, "http://127.0.0.1:9/unused/")
    body = golden("send_request.json")
    body["root"]["webhook_id"] = webhook["id"]
    answer = api(sandbox, "POST", "sms/send/json", json=body)
    assert answer.status_code == 200, answer.text
    assert_same_shape(answer.json(), golden("send_accepted.json"))
    assert [row["customid"] for row in answer.json()["data"]] == ["ref-1", "ref-2"]


def test_the_backend_gets_per_recipient_ids_from_the_sandbox(sandbox):
    result = backend.send(account(sandbox), dlt_frame())
    assert [r.status for r in result.results] == [Status.SUBMITTED] * 3
    assert [r.provider_message_id for r in result.results] == [f"{result.ticket}:{i}" for i in (1, 2, 3)]
    assert [r.external_ref for r in result.results] == ["ref-1", "ref-2", "ref-3"]


def test_pull_pages_have_the_golden_shapes(sandbox):
    answer = send_json(sandbox, [{"to": f"9198123{i:05d}", "custom": f"ref-{i}"} for i in range(101)])
    group_id = answer.json()["group_id"]
    page1 = api(sandbox, "GET", "sms/status", params={"group_id": group_id}).json()
    page2 = api(sandbox, "GET", "sms/status", params={"group_id": group_id, "page": 2}).json()
    assert_same_shape(page1, golden("status_page1.json"))
    assert_same_shape(page2, golden("status_page2.json"))
    assert (len(page1["data"]), len(page2["data"]), page1["meta"]["total"]) == (100, 1, 101)
    by_cid = api(sandbox, "GET", "sms/status", params={"cid": "ref-7"}).json()
    assert_same_shape(by_cid, golden("status_by_cid.json"))
    assert [row["custom"] for row in by_cid["data"]] == ["ref-7"]


def test_account_and_error_answers_have_the_golden_shapes(sandbox):
    assert_same_shape(api(sandbox, "GET", "auth/me").json(), golden("auth_me.json"))
    unauthenticated = api(sandbox, "GET", "auth/me", token=None)
    assert unauthenticated.status_code == 401
    assert_same_shape(unauthenticated.json(), golden("error_unauthenticated.json"))
    invalid = send_json(sandbox, [{"to": "919812345601"}], entity_id=None, template_id=None)
    assert invalid.status_code == 422
    assert_same_shape(invalid.json(), golden("error_validation.json"))


def test_registry_answers_have_the_golden_shapes(sandbox):
    hook = api(sandbox, "POST", "developer/webhooks", json={"name": "Herald", "uri": "http://127.0.0.1:9/h/"})
    assert_same_shape(hook.json(), golden("webhook_created.json"))
    body = {"event": "sms:unsubscription", "identity": "all", "webhook_id": hook.json()["data"]["id"]}
    assert_same_shape(
        api(sandbox, "POST", "developer/subscriptions", json=body).json(), golden("subscription_created.json")
    )
    assert_same_shape(api(sandbox, "GET", "developer/webhooks").json(), golden("webhooks_herald.json"))
    sender = {"name": "HERALD", "service": "T", "country_code": "IN", "entity_id": "1101", "entity_name": "ACME"}
    assert_same_shape(api(sandbox, "POST", "sms/senders", json=sender).json(), golden("sender_created.json"))
    assert_same_shape(api(sandbox, "GET", "sms/senders").json(), golden("senders_list.json"))
    template = {"sender": "HERALD", "name": "otp", "body": "Your OTP is {{otp}}.", "template_id": "1107", "type": "T"}
    assert_same_shape(api(sandbox, "POST", "sms/templates", json=template).json(), golden("template_created.json"))
    assert_same_shape(api(sandbox, "GET", "sms/templates").json(), golden("templates_list.json"))
    receiver = {"receiver": "919876543210", "type": "sender", "value": "HERALD"}
    created = api(sandbox, "POST", "sms/suppressions/unsubscribers", json=receiver).json()
    assert_same_shape(created, golden("unsubscriber_created.json"))
    listed = api(sandbox, "GET", "sms/suppressions/unsubscribers").json()
    assert_same_shape(listed, golden("unsubscribers_list.json"))


def test_pushed_reports_have_the_golden_shapes(sandbox, callback_receiver):
    sandbox.configure(dlr_mix={"delivered": 1}, dlr_delay=0.05, dlr_jitter=0)
    flat = make_webhook(sandbox, callback_receiver.url)
    subscribe(sandbox, make_webhook(sandbox, callback_receiver.url)["id"])
    send_json(sandbox, [{"to": "919812345601", "custom": "ref-1"}], webhook_id=flat["id"])
    send_json(sandbox, [{"to": "919812345602", "custom": "ref-2"}])
    received = callback_receiver.wait_for(2)
    bodies = {("event" in json.loads(c.body)): json.loads(c.body) for c in received}
    assert_same_shape(bodies[False], golden("dlr_delivered.json"))
    assert_same_shape(bodies[True], golden("dlr_envelope.json"))


# --- (b) the sandbox's own checks ---------------------------------------------------------------------------


def test_authentication_by_header_or_access_token_and_revocation(sandbox):
    assert api(sandbox, "GET", "auth/me", token=None, params={"access_token": TOKEN}).status_code == 200
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/revoke", json={"token": TOKEN}, timeout=5)
    answer = api(sandbox, "GET", "auth/me")
    assert (answer.status_code, answer.json()["message"]) == (401, "Unauthenticated.")


@pytest.mark.parametrize(
    ("root", "nodes", "fields"),
    [
        ({"sender": None, "message": None}, [{"to": "919812345601"}], {"nodes.0.sender", "nodes.0.message"}),
        ({"service": None}, [{"to": "919812345601"}], {"service"}),
        ({"service": "X"}, [{"to": "919812345601"}], {"service"}),
        ({"entity_id": None, "template_id": None}, [{"to": "919812345601"}], {"entity_id", "template_id"}),
        ({"sender": "Herald"}, [{"to": "919812345601"}], {"sender"}),
        ({"time": "10/03/2024 14:06"}, [{"to": "919812345601"}], {"time"}),
        ({"webhook_id": "no-such-hook"}, [{"to": "919812345601"}], {"webhook_id"}),
        ({}, [], {"nodes"}),
    ],
    ids=[
        "sender and message",
        "service",
        "unknown service",
        "DLT ids",
        "transactional sender",
        "time",
        "webhook",
        "no nodes",
    ],
)
def test_bad_sends_get_a_422_naming_the_fields(sandbox, root, nodes, fields):
    answer = send_json(sandbox, nodes, **root)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()["errors"]) == fields
    assert not sandbox.state.accepted


def test_foreign_numbers_need_no_dlt_ids(sandbox):
    answer = send_json(sandbox, [{"to": "447700900123", "custom": "ref-1"}], entity_id=None, template_id=None)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["iso_code"] is None


def test_sms_send_as_get_form_and_json(sandbox):
    query = {
        "access_token": TOKEN,
        "message": "Hello",
        "sender": "HERALD",
        "to": "919812345601",
        "service": "T",
        "custom": "get-1",
        **DLT_IDS,
    }
    assert api(sandbox, "GET", "sms/send", token=None, params=query).json()["message"] == (
        "1 numbers accepted for delivery."
    )
    form = {**query, "to": "919812345602,919812345603", "custom": "form-1"}
    answer = api(sandbox, "POST", "sms/send", token=None, data=form)
    assert answer.json()["message"] == "2 numbers accepted for delivery."
    as_json = api(sandbox, "POST", "sms/send", json={**query, "to": ["919812345604"], "custom": "json-1"})
    assert as_json.json()["data"][0]["customid"] == "json-1"
    assert sandbox.state.accepted[("mobtexting", "get-1")] == 1
    assert sandbox.state.accepted[("mobtexting", "form-1/919812345602")] == 1


def test_a_message_cut_at_an_unencoded_ampersand_is_a_validation_error(sandbox):
    url = f"{sandbox.base_url('mobtexting')}/sms/send?access_token={TOKEN}&message=Tom%20&%20Jerry&sender=HERALD"
    answer = requests.get(url + "&to=919812345601&service=G", timeout=5)
    assert answer.status_code == 422
    assert "unencoded '&'" in answer.json()["errors"]["message"][0]
    form = f"access_token={TOKEN}&message=Fish & Chips&sender=HERALD&to=919812345601&service=G"
    answer = requests.post(
        f"{sandbox.base_url('mobtexting')}/sms/send",
        data=form.encode(),
        timeout=5,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 422


def test_tolerates_trailing_slashes_nulls_and_method_tunnelling(sandbox):
    answer = api(
        sandbox,
        "POST",
        "sms/send/json/",
        json={
            "root": {**DLT_IDS, "sender": "HERALD", "service": "T", "message": "Hi", "time": None, "webhook_id": None},
            "nodes": [{"to": "919812345601", "custom": None}],
        },
    )
    assert answer.status_code == 200, answer.text
    sender = {"name": "HERALD", "service": "T", "country_code": "IN", "entity_id": "1101", "entity_name": "ACME"}
    sender_id = api(sandbox, "POST", "sms/senders", json=sender).json()["data"]["id"]
    edited = api(sandbox, "POST", f"sms/senders/{sender_id}", params={"_method": "PUT"}, json={"entity_name": "ACME 2"})
    assert edited.json()["data"]["entity_name"] == "ACME 2"
    assert api(sandbox, "POST", f"sms/senders/{sender_id}", data={"_method": "DELETE"}).status_code == 200
    assert api(sandbox, "GET", f"sms/senders/{sender_id}").status_code == 404
    assert (
        api(
            sandbox, "POST", "sms/send/json", data=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert api(sandbox, "GET", "sms/nothing").status_code == 404


def test_promotional_traffic_outside_9_to_21_ist_is_refused_with_457(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/clock", json={"now": "2024-03-10 22:15:00"}, timeout=5)
    result = backend.send(account(sandbox), dlt_frame(NUMBERS[:1], purpose="promotional", service="P"))
    assert result.results[0].status is Status.REJECTED
    assert (result.results[0].code, result.results[0].text) == ("457", "Promotional time exceeded")
    assert not sandbox.state.accepted


def test_promotional_messages_get_no_delivery_report(sandbox, callback_receiver):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/clock", json={"now": "2024-03-10 10:15:00"}, timeout=5)
    subscribe(sandbox, make_webhook(sandbox, callback_receiver.url)["id"])
    sandbox.configure(dlr_delay=0.05, dlr_jitter=0)
    result = backend.send(account(sandbox), dlt_frame(NUMBERS[:2], service="P"))
    assert all(r.accepted for r in result.results)
    time.sleep(0.3)
    assert callback_receiver.received == []
    updates = backend.poll(account(sandbox), PollQuery(tickets=[result.ticket]))
    assert [(u.raw_status, u.status) for u in updates] == [("AWAITING-DLR", Status.SUBMITTED)] * 2


def test_the_seventh_identical_message_within_the_hour_is_reported_duplicate(sandbox):
    sandbox.configure(dlr_delay=0.0, dlr_jitter=0, dlr_mix={"delivered": 1})
    answer = send_json(sandbox, [{"to": "919812345601", "custom": f"ref-{i}"} for i in range(7)])
    updates = backend.poll(account(sandbox), PollQuery(tickets=[answer.json()["group_id"]]))
    assert [u.raw_status for u in updates] == ["DELIVRD"] * 6 + ["DUPLICATE"]
    assert (updates[-1].status, updates[-1].code) == (Status.REJECTED, "460")


def test_unsubscribed_and_ndnc_numbers_are_refused(sandbox):
    unsubscriber = {"receiver": "919812345601", "type": "sender", "value": "HERALD"}
    assert api(sandbox, "POST", "sms/suppressions/unsubscribers", json=unsubscriber).status_code == 200
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/dnd", json={"address": "+919812345602"}, timeout=5)
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/clock", json={"now": "2024-03-10 10:15:00"}, timeout=5)
    transactional = backend.send(account(sandbox), dlt_frame(NUMBERS[:2]))
    assert [(r.accepted, r.code) for r in transactional.results] == [(False, "456"), (True, "")]
    promotional = backend.send(account(sandbox), dlt_frame(NUMBERS[1:3], service="P"))
    assert [(r.accepted, r.code) for r in promotional.results] == [(False, "408"), (True, "")]


def test_credit_exhausted_part_way_sends_what_was_paid_for_and_holds_the_rest_for_the_account(sandbox):
    """A metered balance of 2 credits pays for two one-part messages: the third number gets 401 NO-CREDITS in its
    row, which is no fault of the number's: it is not failed but left for a retry once the account is topped up."""
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/balance", json={"token": TOKEN, "credits": 2}, timeout=5)
    result = backend.send(account(sandbox), dlt_frame(NUMBERS))
    assert [(r.address, r.accepted) for r in result.results] == [(NUMBERS[0], True), (NUMBERS[1], True)]
    assert isinstance(result.unsent_error, ConfigError) and result.unsent_error.code == "401"
    assert "NO-CREDITS" in result.unsent_error.message and "Credit exhausted." in result.unsent_error.message
    assert sorted(sandbox.state.accepted) == [("mobtexting", "ref-1"), ("mobtexting", "ref-2")]

    empty = backend.send(account(sandbox), dlt_frame(NUMBERS[2:]))
    assert empty.results == [] and "1 of 1 numbers with 401 NO-CREDITS" in empty.unsent_error.message
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/balance", json={"token": TOKEN, "credits": 5}, timeout=5)
    topped_up = backend.send(account(sandbox), dlt_frame(NUMBERS[2:]))
    assert [r.accepted for r in topped_up.results] == [True] and topped_up.unsent_error is None


def test_numbers_past_the_sending_limit_are_held_for_a_later_try_not_failed(sandbox):
    """With a limit of 2 numbers a minute, the third of a request gets 463 THROTTLED in its row: it comes back
    unsent with a retryable error, and the two before it are sent."""
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/limits", json={"sms_per_minute": 2}, timeout=5)
    result = backend.send(account(sandbox), dlt_frame(NUMBERS))
    assert [(r.address, r.accepted) for r in result.results] == [(NUMBERS[0], True), (NUMBERS[1], True)]
    assert isinstance(result.unsent_error, Throttled) and result.unsent_error.code == "463"
    assert "1 of 3 numbers with 463 THROTTLED: Maximum Sent Limit is Reached" in result.unsent_error.message
    assert sorted(sandbox.state.accepted) == [("mobtexting", "ref-1"), ("mobtexting", "ref-2")]


def test_a_sender_registered_but_not_approved_is_refused_number_by_number_in_the_vendors_words(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/approval", json={"senders": 0}, timeout=5)
    sender = {"name": "HERALD", "service": "T", "country_code": "IN", "entity_id": "1101", "entity_name": "ACME"}
    assert api(sandbox, "POST", "sms/senders", json=sender).json()["data"]["status"] == 0
    result = backend.send(account(sandbox), dlt_frame(NUMBERS[:2]))
    words = "Message rejected as sender ID not allotted for ESME"
    assert [(r.accepted, r.status, r.code, r.text) for r in result.results] == [
        (False, Status.REJECTED, "454", words)
    ] * 2
    assert not sandbox.state.accepted


def test_a_text_that_does_not_match_its_registered_template_is_refused_and_a_long_variable_reported(sandbox):
    sandbox.configure(dlr_delay=0.0, dlr_jitter=0, dlr_mix={"delivered": 1})
    sender = {"name": "HERALD", "service": "T", "country_code": "IN", "entity_id": "1101", "entity_name": "ACME"}
    api(sandbox, "POST", "sms/senders", json=sender)
    template = {"sender": "HERALD", "name": "otp", "body": "Your OTP is {{otp}}.", "type": "T",
                "template_id": DLT["dlt_template_id"]}  # fmt: skip
    api(sandbox, "POST", "sms/templates", json=template)
    acct = account(sandbox)
    matching = backend.send(acct, dlt_frame(NUMBERS[:1], text="Your OTP is 4321."))
    other = backend.send(acct, dlt_frame(NUMBERS[1:2], text="Your code: 4321"))
    long = backend.send(acct, dlt_frame(NUMBERS[2:], text=f"Your OTP is {'x' * 31}."))
    assert [r.accepted for r in matching.results + long.results] == [True, True]
    assert [(r.status, r.code, r.text) for r in other.results] == [(Status.REJECTED, "452", "No matching templates")]
    (report,) = backend.poll(acct, PollQuery(tickets=[long.ticket]))
    assert (report.status, report.code, report.text) == (
        Status.REJECTED, "783", "Template variable exceeded 30 characters."
    )  # fmt: skip


def test_errors_answered_with_http_200_are_read_by_their_envelopes_code(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/envelope", json={"errors_with_200": True}, timeout=5)
    with pytest.raises(Rejected) as refused:
        backend.send(account(sandbox), frame(NUMBERS, text="Hi", sender="HERALD", service="T"))  # no DLT ids
    assert refused.value.code == "422" and "entity id" in refused.value.message
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/revoke", json={"token": TOKEN}, timeout=5)
    with pytest.raises(ResponseStatusError) as unauthenticated:
        backend.send(account(sandbox), dlt_frame())
    assert (unauthenticated.value.status_code, unauthenticated.value.code) == (401, "401")
    assert is_account_problem(unauthenticated.value), "the campaign pauses for the account to be fixed"
    assert not sandbox.state.accepted


def test_a_template_send_renders_the_registered_template(sandbox):
    sandbox.configure(dlr_delay=0.0, dlr_jitter=0, dlr_mix={"delivered": 1})
    sender = {"name": "HERALD", "service": "T", "country_code": "IN", "entity_id": "1101", "entity_name": "ACME"}
    api(sandbox, "POST", "sms/senders", json=sender)
    template = {"sender": "HERALD", "name": "otp", "body": "Your OTP is {{otp}}.", "template_id": "1107", "type": "T"}
    api(sandbox, "POST", "sms/templates", json=template)
    ok = api(
        sandbox,
        "POST",
        "sms/send/template",
        json={"alias": "otp", "data": {"otp": "4321"}, "recipient": {"to": ["919812345601"]}},
    ).json()
    assert (ok["message"], ok["data"][0]["length"]) == ("1 numbers accepted for delivery.", 17)
    long = api(
        sandbox,
        "POST",
        "sms/send/template",
        json={"alias": "otp", "data": {"otp": "x" * 31}, "recipient": {"to": ["919812345602"]}},
    ).json()
    updates = backend.poll(account(sandbox), PollQuery(tickets=[long["group_id"]]))
    assert [(u.raw_status, u.code) for u in updates] == [("DLT-TM-VAR-EXECEED", "783")]
    missing = api(sandbox, "POST", "sms/send/template", json={"alias": "otp", "recipient": {"to": ["919812345601"]}})
    assert set(missing.json()["errors"]) == {"data.otp"}


def test_registries_check_their_fields(sandbox):
    sender = api(sandbox, "POST", "sms/senders", json={"name": "Herald", "service": "T", "country_code": "IN"})
    assert set(sender.json()["errors"]) == {"name", "entity_id", "entity_name"}
    template = {"sender": "NOBODY", "name": "x", "body": "Hi {{first name}}", "template_id": "1", "type": "Q"}
    assert set(api(sandbox, "POST", "sms/templates", json=template).json()["errors"]) == {"sender", "body", "type"}
    subscription = {"event": "sms:nothing", "identity": "all", "webhook_id": "missing"}
    assert set(api(sandbox, "POST", "developer/subscriptions", json=subscription).json()["errors"]) == {
        "event",
        "webhook_id",
    }
    assert api(sandbox, "POST", "developer/webhooks", json={"name": "x", "uri": "ftp://x"}).status_code == 422


def test_get_requests_are_limited_per_minute(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/limits", json={"get_per_minute": 2}, timeout=5)
    statuses = [api(sandbox, "GET", "auth/me").status_code for _ in range(5)]  # one minute may turn over meanwhile
    assert statuses[:2] == [200, 200] and 429 in statuses
    with pytest.raises(Throttled) as caught:
        for _ in range(3):
            backend.poll(account(sandbox), PollQuery(tickets=["g"]))
    assert caught.value.retry_after >= 1


def _opt_outs_at_vendor(sandbox, count: int) -> None:
    for n in range(count):
        api(sandbox, "POST", "sms/suppressions/unsubscribers", json={"receiver": f"91981110{n:04d}", "type": "all"})


def test_a_paced_listing_waits_out_the_get_limit_and_reads_every_page(sandbox):
    """MOBtexting lists opt-outs 15 a page and answers 429 past its GET limit: a list longer than the limit's pages
    is read whole by waiting as the vendor says (Retry-After) and asking for the same page again."""
    _opt_outs_at_vendor(sandbox, 100)  # 7 pages
    requests.post(
        f"{sandbox.url}/_sandbox/mobtexting/limits", json={"get_per_minute": 3, "window_seconds": 2}, timeout=5
    )
    with pytest.raises(Throttled):  # unpaced, as the report poll reads
        list(pages(account(sandbox), "sms/suppressions/unsubscribers", {}))
    rows = list(pages(account(sandbox), "sms/suppressions/unsubscribers", {}, pace=Pace(per_minute=6000, patience=30)))
    assert len(rows) == 100 and len({row["receiver"] for row in rows}) == 100


def test_a_paced_listing_spaces_its_pages_and_gives_up_past_its_patience(sandbox):
    _opt_outs_at_vendor(sandbox, 40)  # 3 pages
    started = time.monotonic()
    rows = list(pages(account(sandbox), "sms/suppressions/unsubscribers", {}, pace=Pace(per_minute=120, patience=0)))
    assert len(rows) == 40
    assert time.monotonic() - started >= 1.0, "two pauses of half a second between three pages"
    requests.post(
        f"{sandbox.url}/_sandbox/mobtexting/limits", json={"get_per_minute": 1, "window_seconds": 60}, timeout=5
    )
    started = time.monotonic()
    with pytest.raises(Throttled):
        list(pages(account(sandbox), "sms/suppressions/unsubscribers", {}, pace=Pace(per_minute=6000, patience=1)))
    assert time.monotonic() - started < 5, "a wait longer than the patience left is not waited out"


# --- (c) idempotency: nothing is counted twice ---------------------------------------------------------------


def test_a_lost_answer_after_acceptance_is_recovered_by_cid_not_resent(sandbox):
    sandbox.configure(rate_drop=1.0, fault_after_accept=1.0)
    with pytest.raises(ConnectionFailed):
        backend.send(account(sandbox), dlt_frame())
    sandbox.configure(rate_drop=0.0)
    recovered = backend.recover(account(sandbox), dlt_frame())
    assert [(r.external_ref, r.status) for r in recovered] == [(f"ref-{i}", Status.SUBMITTED) for i in (1, 2, 3)]
    assert all(r.provider_message_id for r in recovered)
    assert {ref: n for (_vendor, ref), n in sandbox.state.accepted.items()} == {"ref-1": 1, "ref-2": 1, "ref-3": 1}


def test_a_request_lost_before_acceptance_is_resent_once(sandbox):
    sandbox.configure(rate_drop=1.0, fault_after_accept=0.0)
    with pytest.raises(ConnectionFailed):
        backend.send(account(sandbox), dlt_frame())
    sandbox.configure(rate_drop=0.0)
    assert backend.recover(account(sandbox), dlt_frame()) == []
    backend.send(account(sandbox), dlt_frame())
    assert sandbox.state.duplicates() == {}
    assert sum(sandbox.state.accepted.values()) == 3


def test_the_vendor_does_not_deduplicate_a_blind_resend(sandbox):
    """Why Herald looks refs up instead of resending: the sandbox, like the vendor, accepts the same custom twice."""
    backend.send(account(sandbox), dlt_frame(NUMBERS[:1]))
    backend.send(account(sandbox), dlt_frame(NUMBERS[:1]))
    assert sandbox.state.duplicates("mobtexting") == {"ref-1": 2}


# --- (d) end to end: push and pull ---------------------------------------------------------------------------


@pytest.mark.parametrize("callback_auth", ["bearer", "signature"])
def test_setup_verifies_the_webhook_and_reports_reach_herald(sandbox, herald_hook, callback_auth):
    sandbox.configure(dlr_mix={"delivered": 1}, dlr_delay=0.1, dlr_jitter=0)
    acct = account(sandbox, webhook_url=herald_hook.url, options={"callback_auth": callback_auth})
    herald_hook.account = acct
    options = backend.setup(acct)
    assert options["webhook_verified"] is True
    acct = replace(acct, options={**acct.options, **options})
    herald_hook.account = acct
    assert backend.setup(acct)["webhook_id"] == options["webhook_id"]  # a second run reuses the webhook
    result = backend.send(acct, dlt_frame())
    updates = wait_until(lambda: len(herald_hook.updates) >= 3 and herald_hook.updates, timeout=5, what="3 callbacks")
    by_ref = {u.external_ref: u for u in updates}
    assert {ref: (u.status, u.provider_message_id) for ref, u in by_ref.items()} == {
        r.external_ref: (Status.DELIVERED, r.provider_message_id) for r in result.results
    }
    assert herald_hook.refused == 0


def test_reports_pushed_to_a_receiver_parse_to_canonical_statuses(sandbox, callback_receiver):
    sandbox.configure(dlr_mix={"delivered": 1}, dlr_delay=0.1, dlr_jitter=0)
    acct = account(sandbox, webhook_url=callback_receiver.url)
    options = backend.setup(acct)
    assert options["webhook_verified"] is False  # the plain receiver does not echo the challenge
    handshake = callback_receiver.wait_for(1)[0]
    assert json.loads(parse(acct, handshake).response.body) == {"challenge": json.loads(handshake.body)["challenge"]}
    acct = replace(acct, options=options)
    backend.send(acct, dlt_frame(NUMBERS[:1]))
    time.sleep(0.4)
    assert len(callback_receiver.received) == 1  # an unverified webhook gets nothing
    requests.post(f"{sandbox.url}/_sandbox/mobtexting/verify", json={"webhook_id": options["webhook_id"]}, timeout=5)
    result = backend.send(acct, dlt_frame())
    callbacks = callback_receiver.wait_for(4)[1:]
    updates = [u for c in callbacks for u in parse(acct, c).updates]
    assert sorted((u.external_ref, u.status, u.provider_message_id) for u in updates) == sorted(
        (r.external_ref, Status.DELIVERED, r.provider_message_id) for r in result.results
    )
    assert all(
        c.headers["authorization"] == "Bearer whsec-sandbox-secret" and c.headers["signature"] for c in callbacks
    )


def test_reports_are_pulled_by_group_and_by_ref(sandbox):
    sandbox.configure(dlr_mix={"delivered": 1}, dlr_delay=0.6, dlr_jitter=0)
    acct = account(sandbox)
    result = backend.send(acct, dlt_frame())
    early = backend.poll(acct, PollQuery(tickets=[result.ticket]))
    assert [(u.raw_status, u.status) for u in early] == [("AWAITING-DLR", Status.SUBMITTED)] * 3
    time.sleep(0.7)
    late = backend.poll(acct, PollQuery(tickets=[result.ticket]))
    assert [(u.external_ref, u.status, u.code) for u in late] == [
        (f"ref-{i}", Status.DELIVERED, "000") for i in (1, 2, 3)
    ]
    refs = backend.poll(acct, PollQuery(messages=[MessageRef("ref-2", NUMBERS[1]), MessageRef("ref-9", NUMBERS[0])]))
    assert [(u.external_ref, u.address, u.status) for u in refs] == [("ref-2", NUMBERS[1], Status.DELIVERED)]


def test_a_large_group_is_pulled_page_after_page(sandbox):
    sandbox.configure(dlr_mix={"expired": 1}, dlr_delay=0.0, dlr_jitter=0)
    addresses = [f"+9198{i:08d}" for i in range(250)]
    result = backend.send(account(sandbox), dlt_frame(addresses))
    updates = backend.poll(account(sandbox), PollQuery(tickets=[result.ticket]))
    assert len(updates) == 250 and {u.status for u in updates} == {Status.EXPIRED}
    assert [u.external_ref for u in updates] == [r.external_ref for r in result.results]


def test_an_end_user_opt_out_reaches_herald(sandbox, callback_receiver):
    acct = account(sandbox)
    subscribe(
        sandbox, make_webhook(sandbox, callback_receiver.url, secret=acct.webhook_secret)["id"], "sms:unsubscription"
    )
    requests.post(
        f"{sandbox.url}/_sandbox/mobtexting/optout", json={"address": "+919812345601", "token": TOKEN}, timeout=5
    )
    (update,) = parse(acct, callback_receiver.wait_for(1)[0]).updates
    assert (update.kind, update.address, update.optout_scope) == (UpdateKind.OPT_OUT, "+919812345601", "all")
    assert backend.list_unsubscribers(acct)[0].address == "+919812345601"
    assert backend.send(acct, dlt_frame(NUMBERS[:1])).results[0].code == "456"


def test_a_customised_get_webhook_fills_its_placeholders(sandbox, callback_receiver):
    sandbox.configure(dlr_mix={"undelivered": 1}, dlr_delay=0.05, dlr_jitter=0)
    acct = account(sandbox)
    uri = callback_receiver.url + "?message_id={{id}}&mobile_number={{mobile}}&message_status={{status}}&cid={{cid}}"
    hook = make_webhook(sandbox, uri, method="GET", secret=acct.webhook_secret)
    result = backend.send(replace(acct, options={"webhook_id": hook["id"]}), dlt_frame(NUMBERS[:1]))
    callback = callback_receiver.wait_for(1)[0]
    assert callback.method == "GET"
    (update,) = parse(acct, callback).updates
    assert (update.status, update.provider_message_id, update.external_ref) == (
        Status.UNDELIVERED,
        result.results[0].provider_message_id,
        "ref-1",
    )


# --- (e) knobs ---------------------------------------------------------------------------------------------


def test_rate_429_is_throttled_with_retry_after(sandbox):
    sandbox.configure(rate_429=1.0, retry_after=2.0)
    with pytest.raises(Throttled) as caught:
        backend.send(account(sandbox), dlt_frame())
    assert caught.value.retry_after == 2.0
    assert not sandbox.state.accepted


def test_rate_5xx_is_a_connection_failure(sandbox):
    sandbox.configure(rate_5xx=1.0)
    with pytest.raises(ConnectionFailed):
        backend.send(account(sandbox), dlt_frame())


def test_dlr_mix_undelivered_reports_undelivered_both_ways(sandbox, callback_receiver):
    sandbox.configure(dlr_mix={"undelivered": 1}, dlr_delay=0.05, dlr_jitter=0)
    acct = account(sandbox)
    subscribe(sandbox, make_webhook(sandbox, callback_receiver.url, secret=acct.webhook_secret)["id"])
    result = backend.send(acct, dlt_frame())
    pushed = [u for c in callback_receiver.wait_for(3) for u in parse(acct, c).updates]
    pulled = backend.poll(acct, PollQuery(tickets=[result.ticket]))
    assert {u.status for u in pushed + pulled} == {Status.UNDELIVERED}
    assert {(u.raw_status, u.text) for u in pushed} == {("UNDELIV", UNDELIVERABLE)}


def test_a_rejected_frame_leaves_nothing_accepted(sandbox):
    with pytest.raises(Rejected) as caught:
        backend.send(account(sandbox), frame(NUMBERS, text="Hi", sender="HERALD", service="T"))
    assert caught.value.code == "422" and "entity id" in caught.value.message
    assert not sandbox.state.accepted
