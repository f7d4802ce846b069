"""The Devino OMNI emulation over real HTTP: its answers have the golden shapes, it checks requests as Devino
does, it never records a contact twice for one request, and it reports delivery the way Devino does
(JSON-array callbacks, task counters) so that the real backend works against it end to end."""

import json
import time
from dataclasses import replace

import pytest
import requests

from providers.backends.base import (
    Account,
    ConfigError,
    ConnectionFailed,
    Recipient,
    Rejected,
    Status,
    Throttled,
    UpdateKind,
)
from providers.backends.devino import DevinoBackend
from tests.providers.backends.harness import assert_same_shape, fixture_json, frame

KEY = "devino-sandbox-key-0001"
SECRET = "whsec-sandbox-0001"
SEND, TASKS = "/omni-scheduler/api/messages", "/omni-task-api/tasks"
PHONES = ["+79103398080", "+79103398081", "+79103398082", "+79103398083"]


@pytest.fixture
def backend():
    return DevinoBackend()


@pytest.fixture
def account(sandbox, backend):
    """A Devino account on the sandbox with its scenario task set up (no webhook: no reports)."""
    sandbox.configure(dlr_delay=0.1, dlr_jitter=0)
    bare = Account(
        kind="devino",
        base_url=sandbox.base_url("devino"),
        credentials={"api_key": KEY},
        webhook_secret=SECRET,
        timeout=5,
    )
    return replace(bare, options=backend.setup(bare))


@pytest.fixture
def hooked(account, callback_receiver):
    """The same account with its reports going to the callback receiver (Herald's webhook URL carries ?secret=)."""
    return replace(account, webhook_url=f"{callback_receiver.url}?secret={SECRET}")


def call(sandbox, method: str, path: str, *, key: str | None = KEY, **kwargs) -> requests.Response:
    """A raw request to the emulated Devino, as any client would make it."""
    headers = {**({"Authorization": f"Key {key}"} if key else {}), **kwargs.pop("headers", {})}
    return requests.request(method, sandbox.base_url("devino") + path, headers=headers, timeout=5, **kwargs)


def send_body(account: Account, contacts: list[dict], **extra) -> dict:
    template = {"smsTemplate": {"text": "Hello", "from": "Herald", "validity": 600}}
    return {
        "contacts": contacts,
        "taskId": account.options["task_id"],
        "templates": {account.options["trigger_id"]: template},
        **extra,
    }


def reports(receiver, backend: DevinoBackend, account: Account, count: int, timeout: float = 10.0) -> list:
    """Parse every callback the receiver got until `count` updates arrived."""
    deadline = time.monotonic() + timeout
    while True:
        with receiver.lock:
            received = list(receiver.received)
        updates = [
            update
            for cb in received
            for update in backend.parse_callback(
                account, method=cb.method, headers=cb.headers, query=cb.query, body=cb.body
            ).updates
        ]
        if len(updates) >= count or time.monotonic() > deadline:
            assert len(updates) == count, f"expected {count} reports, got {len(updates)}"
            return updates
        time.sleep(0.05)


# --- (a) contract: the sandbox answers with the golden responses' shapes ----------------------------


def test_the_golden_send_gets_an_answer_shaped_like_the_seeds(sandbox, account):
    sandbox.configure(callbacks=False)  # the golden callback URL is herald.example
    golden = fixture_json("devino/send_seed_request.json")
    golden.update(
        taskId=account.options["task_id"], templates={account.options["trigger_id"]: golden["templates"]["63322"]}
    )
    answer = call(sandbox, "POST", SEND, json=golden)
    assert answer.status_code == 200
    assert_same_shape(answer.json(), fixture_json("devino/send_seed_response.json"))
    assert answer.json()["result"]["errorAnswers"][0]["description"].endswith(
        " #invalid.phone.size; Invalid phone size"
    )


def test_the_backend_replays_the_golden_frame_against_the_sandbox(sandbox, account, backend):
    result = backend.send(account, frame(["+79103398080", "+0"], text="We have new new shop!", sender="TESTADR"))
    accepted, refused = result.results
    assert (accepted.status, accepted.external_ref) == (Status.SUBMITTED, "ref-1")
    assert accepted.provider_message_id.isdigit()
    assert (refused.status, refused.code, refused.text) == (Status.REJECTED, "invalid.phone.size", "Invalid phone size")


def test_task_answers_are_shaped_like_the_seeds(sandbox, account):
    task = call(sandbox, "GET", f"{TASKS}/{account.options['task_id']}")
    assert task.status_code == 200
    assert_same_shape(task.json(), fixture_json("devino/task_api.json"))
    assert_same_shape(task.json(), fixture_json("devino/task_seed.json"))


def test_the_seeds_own_task_examples_are_accepted_and_listed_in_its_shape(sandbox):
    simple = call(sandbox, "POST", TASKS, json=fixture_json("devino/task_create_simple_seed.json"))
    cascade = call(sandbox, "POST", TASKS, json=fixture_json("devino/task_create_cascade_seed.json"))
    assert simple.status_code == cascade.status_code == 200, (simple.text, cascade.text)
    assert_same_shape(cascade.json(), fixture_json("devino/task_created.json"))
    listed = call(sandbox, "GET", TASKS, params={"ascending": "true", "count": 10, "offset": 0, "orderBy": "ID"}).json()
    assert [t["taskName"] for t in listed["result"]] == ["NEW_SMS", "PUSH -> EMAIL -> SMS"]
    task = listed["result"][1]
    children = [t for t in task["triggersInfo"] if "parentTriggerId" in t]  # the seed's listed trigger is a child
    assert len(children) == 2
    assert_same_shape({**task, "triggersInfo": children}, fixture_json("devino/task_list_seed.json")["result"][0])


def test_the_seeds_own_send_example_is_accepted(sandbox):
    """The seed's send [seed 000:433-460]: e-mail first, SMS when the e-mail is not delivered, templates for both."""
    triggers = [
        {"index": 0, "type": "TRAN_API_SOURCE", "channel": "EMAIL"},
        {
            "index": 1,
            "parentIndex": 0,
            "type": "NO_EVENT_SOURCE",
            "channel": "SMS",
            "eventSources": [{"channel": "EMAIL", "eventType": "STATE", "eventValue": "delivered"}],
        },
    ]
    created = call(
        sandbox,
        "POST",
        TASKS,
        json={"taskName": "TRANSACTIONAL_CASCADE", "type": "API", "channel": "OMNI", "triggers": triggers},
    )
    task_id = created.json()["result"]["result"]
    email_trigger, sms_trigger = (
        t["triggerId"] for t in call(sandbox, "GET", f"{TASKS}/{task_id}").json()["result"]["triggersInfo"]
    )
    seed = fixture_json("devino/send_seed_example_request.json")
    seed.update(
        taskId=int(task_id),
        templates={email_trigger: seed["templates"]["63321"], sms_trigger: seed["templates"]["63322"]},
    )
    answer = call(sandbox, "POST", SEND, json=seed)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["result"]["sendAnswers"]) == 1


# --- (b) the sandbox's own checks -------------------------------------------------------------------


BAD_SENDS = [
    ("no task id", lambda a: {"contacts": [{"contact": {"phone": "79103398080"}}]}, "task.id.required"),
    ("an unknown task", lambda a: send_body(a, [{"contact": {"phone": "79103398080"}}], taskId=1), "task.not.found"),
    ("no contacts", lambda a: send_body(a, []), "contacts.required"),
    ("contacts that are not an array", lambda a: send_body(a, {"phone": "79103398080"}), "contacts.required"),
    (
        "a template for a trigger of another task",
        lambda a: {**send_body(a, [{"contact": {"phone": "79103398080"}}]), "templates": {"9": {"smsTemplate": {}}}},
        "template.trigger.not.found",
    ),
    ("a validity beyond 3 days", lambda a: _with_sms(a, validity=259201), "template.validity.range"),
    ("a negative validity", lambda a: _with_sms(a, validity=-1), "template.validity.range"),
    ("a sender of 12 letters", lambda a: _with_sms(a, **{"from": "HeraldNotify"}), "template.from.invalid"),
    ("a text beyond 34,170 Latin characters", lambda a: _with_sms(a, text="x" * 34171), "template.text.size"),
    ("a text beyond 17,085 Cyrillic characters", lambda a: _with_sms(a, text="я" * 17086), "template.text.size"),
    ("an empty text", lambda a: _with_sms(a, text=""), "template.text.size"),
    (
        "a callback URL beyond 1000 characters",
        lambda a: send_body(a, [{"contact": {"phone": "79103398080"}}], callbackUrl="https://h.example/" + "x" * 990),
        "invalid.callback.url",
    ),
]


def _with_sms(account: Account, **sms) -> dict:
    body = send_body(account, [{"contact": {"phone": "79103398080"}}])
    body["templates"][account.options["trigger_id"]]["smsTemplate"].update(sms)
    return body


@pytest.mark.parametrize("label, build, key", BAD_SENDS, ids=[row[0] for row in BAD_SENDS])
def test_a_bad_send_is_refused_with_devinos_error(sandbox, account, label, build, key):
    answer = call(sandbox, "POST", SEND, json=build(account))
    assert answer.status_code == 400, answer.text
    assert answer.json()["reasons"][0]["key"] == key
    assert answer.json()["description"].startswith(f"#{key}; ")
    assert_same_shape(answer.json(), fixture_json("devino/error_task_not_found.json"))
    assert not sandbox.state.accepted


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": "Key "}, {"Authorization": KEY}],
    ids=["none", "bearer", "empty key", "no scheme"],
)
def test_a_request_without_a_key_gets_401(sandbox, headers):
    answer = requests.post(sandbox.base_url("devino") + SEND, json={"taskId": 1}, headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["reasons"][0]["key"] == "auth.invalid.key"
    assert_same_shape(answer.json(), fixture_json("devino/error_unauthorized.json"))


def test_only_the_configured_keys_are_valid(sandbox, account, backend):
    requests.post(sandbox.url + "/_sandbox/devino/keys", json={"api_keys": ["another-key"]}, timeout=5)
    assert call(sandbox, "GET", TASKS).status_code == 401
    assert call(sandbox, "GET", TASKS, key="another-key").status_code == 200
    assert not backend.check(account).ok


def test_a_task_belongs_to_the_key_that_created_it(sandbox, account):
    other = call(
        sandbox, "POST", SEND, key="someone-else", json=send_body(account, [{"contact": {"phone": "79103398080"}}])
    )
    assert (other.status_code, other.json()["reasons"][0]["key"]) == (400, "task.not.found")
    assert call(sandbox, "GET", f"{TASKS}/{account.options['task_id']}", key="someone-else").status_code == 404


def test_a_simple_task_or_a_stopped_task_cannot_send(sandbox, account):
    created = call(sandbox, "POST", TASKS, json=fixture_json("devino/task_create_simple_seed.json"))
    contacts = [{"contact": {"phone": "79103398080"}}]
    answer = call(sandbox, "POST", SEND, json=send_body(account, contacts, taskId=created.json()["result"]["result"]))
    assert answer.json()["reasons"][0]["key"] == "task.type.invalid"
    requests.post(
        sandbox.url + "/_sandbox/devino/task_state",
        json={"task_id": account.options["task_id"], "state": "STOPPED"},
        timeout=5,
    )
    answer = call(sandbox, "POST", SEND, json=send_body(account, [{"contact": {"phone": "79103398080"}}]))
    assert (answer.status_code, answer.json()["reasons"][0]["key"]) == (400, "task.state.invalid")


@pytest.mark.parametrize(
    "body, key",
    [
        ({"taskName": "x", "type": "API", "channel": "SMS"}, "task.triggers.required"),
        (
            {
                "taskName": "x",
                "type": "API",
                "channel": "SMS",
                "triggers": [{"index": 0, "type": "ADDRESS_BOOK_SOURCE", "channel": "SMS"}],
            },
            "task.type.invalid",
        ),
        ({"taskName": "x", "type": "ONCE", "channel": "SMS", "triggers": [{}]}, "task.type.invalid"),
        ({"taskName": "", "type": "API", "channel": "SMS", "triggers": [{}]}, "task.name.invalid"),
        (
            {
                "taskName": "x",
                "type": "SIMPLE",
                "channel": "SMS",
                "triggers": [{"index": 1, "parentIndex": 7, "type": "EVENT_SOURCE", "channel": "SMS"}],
            },
            "trigger.parent.not.found",
        ),
        (
            {
                "taskName": "x",
                "type": "SIMPLE",
                "channel": "SMS",
                "triggers": [{"index": 0, "type": "ADDRESS_BOOK_SOURCE", "channel": "FAX"}],
            },
            "trigger.channel.invalid",
        ),
    ],
    ids=[
        "no triggers",
        "API without TRAN_API_SOURCE",
        "unknown type",
        "empty name",
        "unknown parent",
        "unknown channel",
    ],
)
def test_a_bad_task_is_refused(sandbox, body, key):
    answer = call(sandbox, "POST", TASKS, json=body)
    assert (answer.status_code, answer.json()["reasons"][0]["key"]) == (400, key)


def test_bad_contacts_become_error_answers_while_the_rest_is_sent(sandbox, account):
    contacts = [
        {"contact": {"phone": "79103398080"}, "callbackData": {"ref": "ok-1"}},
        {"contact": {"phone": "0"}, "callbackData": {"ref": "short"}},
        {"contact": {"phone": "7910339808x"}, "callbackData": {"ref": "letters"}},
        {"contact": {"email": "ann@example.org"}, "callbackData": {"ref": "no-phone"}},
        {"contact": {"phone": "79103398081"}, "callbackUrl": "ftp://hooks.example/", "callbackData": {"ref": "ftp"}},
        {"contact": {"phone": "+79103398082"}, "callbackData": {"ref": "ok-2"}},
    ]
    answer = call(sandbox, "POST", SEND, json=send_body(account, contacts, contactIds=[42])).json()["result"]
    keys = [e["description"].rsplit(" #", 1)[1].split(";")[0] for e in answer["errorAnswers"]]
    assert keys == [
        "invalid.phone.size",
        "invalid.phone.format",
        "contact.phone.required",
        "invalid.callback.url",
        "contact.not.found",
    ]
    assert json.loads(answer["errorAnswers"][0]["description"].rsplit(" #", 1)[0])["phone"] == "0"
    assert len(answer["sendAnswers"]) == len(answer["contactIds"]) == 2
    assert dict(sandbox.state.accepted) == {("devino", "ok-1"): 1, ("devino", "ok-2"): 1}


def test_what_real_clients_send_is_accepted(sandbox, account):
    """Explicit nulls (a pydantic client), trailing slashes, a numeric string task id, '+' before the phone."""
    body = {
        "taskId": str(account.options["task_id"]),
        "contactIds": None,
        "templates": None,
        "callbackUrl": None,
        "contacts": [
            {
                "contact": {"email": None, "phone": "+79103398080", "pushInfo": None, "fields": None},
                "callbackUrl": None,
                "callbackData": {"ref": "nulls"},
            }
        ],
    }
    answer = call(sandbox, "POST", SEND + "/", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["result"]["sendAnswers"]) == 1
    assert call(sandbox, "GET", TASKS + "/").status_code == 200
    assert call(sandbox, "GET", f"{TASKS}/{account.options['task_id']}/").status_code == 200


@pytest.mark.parametrize("state", ["STOPPED", "DRAFT"])
def test_a_task_stopped_for_good_is_replaced_by_the_setup_herald_asks_for(sandbox, account, backend, state):
    """A send through a task someone stopped (or left a draft) is refused, and Herald says to run the account's
    setup again; but setup kept the stopped task, so the next send was refused the same way, for ever."""
    requests.post(
        sandbox.url + "/_sandbox/devino/task_state", json={"task_id": account.options["task_id"], "state": state},
        timeout=5,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="run the account's setup again") as refused:
        backend.send(account, frame([PHONES[0]]))
    assert refused.value.code == "task.state.invalid" and state in refused.value.message

    options = backend.setup(account)

    assert options["task_id"] != account.options["task_id"], "setup kept the stopped task"
    result = backend.send(replace(account, options=options), frame([PHONES[0]]))
    assert [r.accepted for r in result.results] == [True]
    assert "run the account's setup again" in backend.check(account).message, "(the old task's check says so too)"


@pytest.mark.parametrize(
    "state, advice",
    [("STOPPED_BALANCE_BLOCKED", "top the balance up"), ("STOPPED_NOT_WORKING_TIME", "working hours")],
)
def test_a_task_devino_holds_says_what_to_wait_for_and_is_kept(sandbox, account, backend, state, advice):
    requests.post(
        sandbox.url + "/_sandbox/devino/task_state", json={"task_id": account.options["task_id"], "state": state},
        timeout=5,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=advice) as refused:
        backend.send(account, frame([PHONES[0]]))
    assert "setup" not in refused.value.message
    assert advice in backend.check(account).message
    assert backend.setup(account) == account.options, "a new task would be held alike"


def test_a_task_whose_trigger_indexes_are_numeric_strings_is_created_as_devino_would(sandbox):
    """Devino reads "index": "0" as 0, as its JSON reader does for every number; clients that write ids as
    strings got 400 "Trigger index '0' is not unique" (and "parentIndex '0' names no trigger"), although the
    sandbox says numeric strings pass as numbers."""
    sms = {"smsTemplate": {"text": "Hello", "from": "Herald", "validity": 600}}
    triggers = [
        {"index": "0", "type": "TRAN_API_SOURCE", "channel": "SMS", "template": sms},
        {
            "index": "1", "parentIndex": "0", "type": "NO_EVENT_SOURCE", "channel": "SMS", "template": sms,
            "eventSources": [{"channel": "SMS", "eventType": "STATE", "eventValue": "delivered"}],
            "noEventSourceSettings": {"stateWaitMaxTimeSec": 60},
        },
    ]  # fmt: skip
    created = call(
        sandbox, "POST", TASKS, json={"taskName": "x", "type": "API", "channel": "SMS", "triggers": triggers}
    )
    assert created.status_code == 200, created.text
    task = call(sandbox, "GET", f"{TASKS}/{created.json()['result']['result']}").json()["result"]
    parent, child = task["triggersInfo"]
    assert child["parentTriggerId"] == parent["triggerId"]
    for bad in ("first", "1.5", True):
        body = {"taskName": "x", "type": "API", "channel": "SMS", "triggers": [{**triggers[0], "index": bad}]}
        refused = call(sandbox, "POST", TASKS, json=body)
        assert (refused.status_code, refused.json()["reasons"][0]["key"]) == (400, "trigger.index.invalid"), bad


def test_a_connection_close_request_gets_connection_close(sandbox, account):
    answer = call(sandbox, "GET", TASKS, headers={"Connection": "close"})
    assert answer.headers.get("Connection") == "close"


def test_unknown_paths_and_methods(sandbox):
    assert call(sandbox, "GET", "/omni-task-api/tasks/404").status_code == 404
    assert call(sandbox, "GET", "/sms/messages").status_code == 404
    assert call(sandbox, "DELETE", TASKS).status_code == 405
    assert (
        call(sandbox, "POST", SEND, data=b"not json", headers={"Content-Type": "application/json"}).status_code == 400
    )


# --- (c) no idempotency key: each ref once per request, lost responses settled by callbacks -----------


def test_one_frame_records_each_ref_exactly_once(sandbox, account, backend):
    result = backend.send(account, frame(PHONES))
    assert [r.status for r in result.results] == [Status.SUBMITTED] * 4
    assert {ref: n for (_, ref), n in sandbox.state.accepted.items()} == {f"ref-{i}": 1 for i in range(1, 5)}
    assert sandbox.state.duplicates("devino") == {}


def test_devino_has_no_idempotency_key_so_a_resent_frame_is_sent_twice(sandbox, account, backend):
    """Why recovery is "callbacks" and the backend never resends: Devino would deliver twice."""
    backend.send(account, frame(PHONES[:2]))
    backend.send(account, frame(PHONES[:2]))
    assert sandbox.state.duplicates("devino") == {"ref-1": 2, "ref-2": 2}


def test_a_lost_response_is_settled_by_the_callbacks_that_carry_our_refs(sandbox, hooked, backend, callback_receiver):
    sandbox.configure(rate_drop=1.0, fault_after_accept=1.0, dlr_mix={"delivered": 1})
    with pytest.raises(ConnectionFailed):
        backend.send(hooked, frame(PHONES))
    assert backend.recover(hooked, frame(PHONES)) is None
    assert {ref: n for (_, ref), n in sandbox.state.accepted.items()} == {f"ref-{i}": 1 for i in range(1, 5)}
    updates = reports(callback_receiver, backend, hooked, 4)
    assert sorted(u.external_ref for u in updates) == ["ref-1", "ref-2", "ref-3", "ref-4"]
    assert {u.status for u in updates} == {Status.DELIVERED}


# --- (d) end to end: send, then push reports and the task counters ----------------------------------


def test_a_frame_is_sent_and_reported_by_callback(sandbox, hooked, backend, callback_receiver):
    sandbox.configure(dlr_mix={"delivered": 1})
    result = backend.send(hooked, frame([*PHONES, "+7910"], text="Ваш заказ отправлен"))
    *accepted, refused = result.results
    assert [r.accepted for r in accepted] == [True] * 4 and refused.code == "invalid.phone.size"
    updates = reports(callback_receiver, backend, hooked, 4)
    by_ref = {u.external_ref: u for u in updates}
    for sent in accepted:
        report = by_ref[sent.external_ref]
        assert (report.kind, report.status, report.raw_status) == (UpdateKind.STATUS, Status.DELIVERED, "delivered")
        assert (report.provider_message_id, report.address) == (sent.provider_message_id, sent.address)
        assert report.occurred_at is not None
    assert all(isinstance(json.loads(cb.body), list) for cb in callback_receiver.received)


def test_the_task_counters_move_when_reports_fall_due(sandbox, hooked, backend, callback_receiver):
    sandbox.configure(dlr_delay=0.6, dlr_jitter=0, dlr_mix={"delivered": 0.5, "undelivered": 0.5}, seed=7)
    backend.send(hooked, frame(PHONES))
    before = backend.task_counters(hooked)
    assert (before["total"], before["success"], before["error"]) == (4, 0, 0)
    updates = reports(callback_receiver, backend, hooked, 4)
    after = backend.task_counters(hooked)
    delivered = sum(u.status == Status.DELIVERED for u in updates)
    assert (after["total"], after["success"], after["error"]) == (4, delivered, 4 - delivered)
    assert backend.check(hooked).message.startswith(f"Connected; task {hooked.options['task_id']} is STARTED: 4 sent")


def test_personalised_texts_go_as_one_request_per_text(sandbox, account, backend):
    texts = ["Hi Ann", "Hi Bob", "Hi Ann"]
    recipients = [
        Recipient(f"ref-{i}", phone, text=text)
        for i, (phone, text) in enumerate(zip(PHONES[:3], texts, strict=True), 1)
    ]
    personal = replace(frame(PHONES[:3]), recipients=recipients)
    result = backend.send(account, personal)
    assert [r.external_ref for r in result.results] == ["ref-1", "ref-2", "ref-3"]
    assert result.summary["requests"] == 2
    assert sandbox.state.request_counts["devino"] == 2 + 2  # setup made two (create, read back)


def test_an_optout_comes_back_as_unsubscribed_and_stops_later_sends(sandbox, hooked, backend, callback_receiver):
    sandbox.configure(callbacks=False)
    backend.send(hooked, frame(PHONES[:1]))
    sandbox.configure(callbacks=True)
    answer = requests.post(sandbox.url + "/_sandbox/devino/optout", json={"address": PHONES[0]}, timeout=5).json()
    assert answer["scheduled"] is True
    (update,) = reports(callback_receiver, backend, hooked, 1)
    assert (update.kind, update.raw_status) == (UpdateKind.OPT_OUT, "unsubscribed")
    assert (update.address, update.external_ref) == (PHONES[0], "ref-1")
    assert (update.optout_scope, update.optout_value) == ("channel", "sms")
    (again,) = backend.send(hooked, frame(PHONES[:1], key="frame-2")).results
    assert (again.status, again.code) == (Status.REJECTED, "contact.in.stop.list")


def test_only_a_500_is_retried(sandbox, hooked, backend, callback_receiver):
    sandbox.configure(dlr_mix={"delivered": 1})
    callback_receiver.status = 500
    backend.send(hooked, frame(PHONES[:1]))
    callback_receiver.wait_for(2)  # the first try, then the first retry a (scaled) minute later
    callback_receiver.status = 404
    assert sandbox.state.callbacks.wait_idle(10)
    tries = len(callback_receiver.received)
    assert 2 <= tries <= 6 and sandbox.state.callbacks.lost["devino"] == 1


# --- (e) knobs -----------------------------------------------------------------------------------------


def test_rate_429_throttles_with_retry_after(sandbox, account, backend):
    sandbox.configure(rate_429=1.0, retry_after=3)
    with pytest.raises(Throttled) as raised:
        backend.send(account, frame(PHONES[:1]))
    assert raised.value.retry_after == 3.0
    assert not sandbox.state.accepted


def test_rate_5xx_is_a_retryable_connection_failure(sandbox, account, backend):
    sandbox.configure(rate_5xx=1.0)
    with pytest.raises(ConnectionFailed):
        backend.send(account, frame(PHONES[:1]))
    assert not sandbox.state.accepted


@pytest.mark.parametrize(
    "outcome, canonical, raw, code, words",
    [
        ("undelivered", Status.UNDELIVERED, "undeliverable", "13", "Unable to deliver the message"),
        ("expired", Status.EXPIRED, "expired", "", "The lifetime of the message has expired"),
        ("rejected", Status.REJECTED, "rejected", "5", "The message has been rejected by the operator or Devino"),
    ],
)
def test_dlr_mix_decides_the_reports_and_their_words(
    sandbox, hooked, backend, callback_receiver, outcome, canonical, raw, code, words
):
    sandbox.configure(dlr_mix={outcome: 1})
    backend.send(hooked, frame(PHONES))
    updates = reports(callback_receiver, backend, hooked, 4)
    assert {(u.status, u.raw_status, u.code, u.text) for u in updates} == {(canonical, raw, code, words)}


def test_a_refused_setup_surfaces_devinos_words(sandbox, backend):
    bare = Account(
        kind="devino",
        base_url=sandbox.base_url("devino"),
        credentials={"api_key": KEY},
        options={"sender": "A sender far too long"},
    )
    with pytest.raises(Rejected, match="from must be up to 11 Latin characters"):
        backend.setup(bare)
