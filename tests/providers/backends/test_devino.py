"""Golden cases for the Devino OMNI backend (seed 000; PROVIDERS.md § Devino OMNI).

Rows are data: the frame, the canned Devino answers, the exact requests Herald must make and the results it
must return. Long payloads live in fixtures/devino/, named for the event; the seed's own examples are there
byte for byte (send_seed_response, task_seed, task_list_seed, callback_seed_example).
"""

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from providers.backends.base import (
    AuthenticationFailed,
    CheckResult,
    ConfigError,
    ConnectionFailed,
    NotSent,
    Recipient,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
)
from providers.backends.devino import ERROR_CODES, STATUS_MAP, DevinoBackend
from tests.providers.backends.harness import (
    CallbackCase,
    CallCase,
    SendCase,
    dropped_reply,
    fixture_json,
    frame,
    opt_out,
    rejected,
    reply,
    req,
    submitted,
    timeout_reply,
    update,
)

KEY = "QWxhZGRpbjpvcGVuIHNlc2=="  # the seed's example key [seed 000:98]
SECRETS = {"api_key": KEY}
AUTH = {"Authorization": f"Key {KEY}", "Accept": "application/json"}
HOOK = "https://herald.example/hooks/devino/0b3f/?secret=whsec-0123456789"
ACCOUNT = {"options": {"task_id": 7004, "trigger_id": "63322", "validity": 600}, "webhook_url": HOOK}
TASK_7003 = {"options": {"task_id": 7003, "trigger_id": "511"}}

SEND = "POST /omni-scheduler/api/messages"
CREATE_TASK = "POST /omni-task-api/tasks"
GET_TASK = "GET /omni-task-api/tasks/7003"
LIST_TASKS = "GET /omni-task-api/tasks"
PHONE, MESSAGE_ID = "+79103398080", "3606044956953218300"
TS, WHEN = 1717171717000, datetime(2024, 5, 31, 16, 8, 37, tzinfo=UTC)


def body(
    addresses: list[str],
    text: str = "Hello",
    *,
    sender: str = "Herald",
    refs: list[str] | None = None,
    hook: str = HOOK,
    validity: int = 600,
) -> dict:
    """The exact send body Herald owes Devino for these recipients (seed 000:428-460, plus our callbacks)."""
    refs = refs or [f"ref-{i + 1}" for i in range(len(addresses))]
    contacts = [
        {
            "contact": {"phone": a.lstrip("+")},
            **({"callbackUrl": hook} if hook else {}),
            "callbackData": {"ref": r, "address": a},
        }
        for r, a in zip(refs, addresses, strict=True)
    ]
    return {
        "contacts": contacts,
        "taskId": 7004,
        "templates": {"63322": {"smsTemplate": {"text": text, "from": sender, "validity": validity}}},
        **({"callbackUrl": hook} if hook else {}),
        "callbackData": {"frame": "frame-1"},
    }


def answer(*message_ids: str, refused: tuple[tuple[str, str], ...] = ()) -> dict:
    """A send answer: accepted message ids in order, refused (phone, "#key; text") as errorAnswers."""
    contact_ids = [f"3111e47182ca9c11-{0x3111E4711103C800 + i:016x}" for i in range(len(message_ids))]
    return {
        "result": {
            "contactIds": contact_ids,
            "sendAnswers": [
                {"code": "OK", "mergeKey": c, "result": m} for c, m in zip(contact_ids, message_ids, strict=True)
            ],
            "errorAnswers": [
                {
                    "code": "REJECTED",
                    "result": None,
                    "description": f'{{"email":null,"fields":null,"phone":"{phone}","pushInfo":null}} {reason}',
                }
                for phone, reason in refused
            ],
        }
    }


def pace_failing_after(granted: int):
    """An `Account.pace` that grants `granted` requests, then fails as an unreachable Redis would."""
    calls = []

    def pace() -> None:
        calls.append(1)
        if len(calls) > granted:
            raise ConnectionError("Error 111 connecting to localhost:6379. Connection refused.")

    return pace


def personalised(texts: list[str]):
    """A frame whose recipients carry their own rendered texts."""
    base = frame([f"+7910339808{i}" for i in range(len(texts))])
    return replace(base, recipients=[replace(r, text=t) for r, t in zip(base.recipients, texts, strict=True)])


FULL = [f"+7910{i:07d}" for i in range(100)]
FULL[9], FULL[56] = "+7910009", "+7910056"  # too short: Devino refuses them, listed out of order
LONG_TEXT = "Your order 4821 has shipped and will reach you on Friday between 9:00 and 13:00. " * 6
UNICODE_TEXT = "Привет! Ваш код 4821 ✓ — спасибо, что вы с нами"

SEND_CASES = [
    SendCase(
        label="plain text to one recipient",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, headers=AUTH, json=body([PHONE]))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
    SendCase(
        label="the seed's example: one accepted, one refused for its phone size",
        frame=frame([PHONE, "+0"], text="We have new new shop!", sender="TESTADR"),
        responses={SEND: [reply(200, "devino/send_seed_response.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=fixture_json("devino/send_seed_request.json"))],
        expected_results=[
            submitted(PHONE, MESSAGE_ID, ref="ref-1"),
            rejected("+0", "invalid.phone.size", "Invalid phone size", ref="ref-2"),
        ],
        expected_ticket="7004",
    ),
    SendCase(
        label="unicode text goes as it is",
        frame=frame([PHONE], text=UNICODE_TEXT),
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, headers=AUTH, json=body([PHONE], UNICODE_TEXT))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
    SendCase(
        label="a multi-part text goes whole (Devino splits it)",
        frame=frame([PHONE], text=LONG_TEXT),
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, json_subset={"templates": {"63322": {"smsTemplate": {"text": LONG_TEXT}}}})],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
    SendCase(
        label="a full frame of 100, refusals matched by phone whatever their order",
        frame=frame(FULL),
        responses={SEND: [reply(200, "devino/send_full_frame_response.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=body(FULL))],
        expected_results=[
            rejected(a, "invalid.phone.size", "Invalid phone size", ref=f"ref-{i + 1}")
            if i in (9, 56)
            else submitted(a, str(3606044956953218400 + i), ref=f"ref-{i + 1}")
            for i, a in enumerate(FULL)
        ],
        expected_ticket="7004",
    ),
    SendCase(
        label="refusals listed before the accepted ones still find their recipients",
        frame=frame(["+79103398080", "+79103398081", "+7910"]),
        responses={
            SEND: [
                reply(
                    200,
                    answer(
                        "m-2",
                        refused=(
                            ("7910", "#invalid.phone.size; Invalid phone size"),
                            ("79103398080", "#contact.in.stop.list; Contact is in the stop list"),
                        ),
                    ),
                )
            ]
        },
        expected_requests=[req(SEND, json=body(["+79103398080", "+79103398081", "+7910"]))],
        expected_results=[
            rejected("+79103398080", "contact.in.stop.list", "Contact is in the stop list", ref="ref-1"),
            submitted("+79103398081", "m-2", ref="ref-2"),
            rejected("+7910", "invalid.phone.size", "Invalid phone size", ref="ref-3"),
        ],
        expected_ticket="7004",
    ),
    SendCase(
        label="personalised texts go as one request per distinct text, results in frame order",
        frame=personalised(["Hi Ann", "Hi Bob", "Hi Ann"]),
        responses={SEND: [reply(200, answer("m-1", "m-3")), reply(200, answer("m-2"))]},
        expected_requests=[
            req(SEND, json=body(["+79103398080", "+79103398082"], "Hi Ann", refs=["ref-1", "ref-3"])),
            req(SEND, json=body(["+79103398081"], "Hi Bob", refs=["ref-2"])),
        ],
        expected_results=[
            submitted("+79103398080", "m-1", ref="ref-1"),
            submitted("+79103398081", "m-2", ref="ref-2"),
            submitted("+79103398082", "m-3", ref="ref-3"),
        ],
        expected_ticket="7004",
    ),
    SendCase(
        label="a later text throttled after an earlier one was accepted: not raised, the rest left to retry",
        frame=personalised(["Hi Ann", "Hi Bob", "Hi Cy"]),
        responses={SEND: [reply(200, answer("m-1")), reply(429, "", headers={"Retry-After": "7"})]},
        expected_requests=[req(SEND, json_subset={"taskId": 7004}), req(SEND, json_subset={"taskId": 7004})],
        expected_results=[submitted("+79103398080", "m-1", ref="ref-1")],
        expected_ticket="7004",
        expected_unsent_error=Throttled,
    ),
    SendCase(
        label="a later text the rate limit could not clear (Redis down): never sent, the rest left to retry",
        frame=personalised(["Hi Ann", "Hi Bob", "Hi Cy"]),
        responses={SEND: [reply(200, answer("m-1"))]},
        expected_requests=[req(SEND, json_subset={"taskId": 7004})],
        expected_results=[submitted("+79103398080", "m-1", ref="ref-1")],
        expected_ticket="7004",
        expected_unsent_error=NotSent,
        account={"pace": pace_failing_after(1)},
    ),
    SendCase(
        label="a later text refused after an earlier one was accepted: its recipients rejected, the others go on",
        frame=personalised(["Hi Ann", "Hi Bob", "Hi Cy"]),
        responses={
            SEND: [
                reply(200, answer("m-1")),
                reply(400, "devino/error_sender_invalid.json"),
                reply(200, answer("m-3")),
            ]
        },
        expected_requests=[req(SEND, json_subset={"taskId": 7004})] * 3,
        expected_results=[
            submitted("+79103398080", "m-1", ref="ref-1"),
            rejected(
                "+79103398081",
                "template.from.invalid",
                "not sent: devino answered HTTP 400: from must be up to 11 Latin characters or 15 digits",
                ref="ref-2",
            ),
            submitted("+79103398082", "m-3", ref="ref-3"),
        ],
        expected_ticket="7004",
    ),
    SendCase(
        label="a recipient text equal to the frame's text needs no request of its own",
        frame=replace(
            frame([PHONE, "+79103398081"]),
            recipients=[Recipient("ref-1", PHONE, text="Hello"), Recipient("ref-2", "+79103398081")],
        ),
        responses={SEND: [reply(200, answer("m-1", "m-2"))]},
        expected_requests=[req(SEND, json=body([PHONE, "+79103398081"]))],
        expected_results=[submitted(PHONE, "m-1", ref="ref-1"), submitted("+79103398081", "m-2", ref="ref-2")],
        expected_ticket="7004",
    ),
    SendCase(
        label="Devino refuses the request's content with its key (HTTP 400)",
        frame=frame([PHONE], sender="Herald Notifications"),
        responses={SEND: [reply(400, "devino/error_sender_invalid.json")]},
        expected_requests=[req(SEND, json=body([PHONE], sender="Herald Notifications"))],
        expected_error=Rejected,
        expected_error_code="template.from.invalid",
        expected_error_contains="from must be up to 11 Latin characters or 15 digits",
    ),
    SendCase(
        label="Devino refuses the request in a 200 body",
        frame=frame([PHONE]),
        responses={
            SEND: [
                reply(
                    200,
                    {
                        "result": None,
                        "code": "REJECTED",
                        "description": "#template.text.size; text must be 1 to 34170 characters",
                    },
                )
            ]
        },
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=Rejected,
        expected_error_code="template.text.size",
        expected_error_contains="text must be 1 to 34170 characters",
    ),
    SendCase(
        label="an unknown task means the account needs setup again",
        frame=frame([PHONE]),
        responses={SEND: [reply(400, "devino/error_task_not_found.json")]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ConfigError,
        expected_error_code="task.not.found",
        expected_error_contains="Task 7004 not found",
    ),
    SendCase(
        label="no task yet: nothing is sent",
        frame=frame([PHONE]),
        account={"options": {}},
        expected_error=ConfigError,
    ),
    SendCase(
        label="401 with Devino's key",
        frame=frame([PHONE]),
        responses={SEND: [reply(401, "devino/error_unauthorized.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=body([PHONE]))],
        expected_error=ResponseStatusError,
        expected_error_code="auth.invalid.key",
        expected_error_contains="Invalid or missing API key",
    ),
    SendCase(
        label="429 is retryable after Retry-After",
        frame=frame([PHONE]),
        responses={SEND: [reply(429, "", headers={"Retry-After": "7"})]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=Throttled,
        expected_retry_after=7.0,
    ),
    SendCase(
        label="503 is retryable",
        frame=frame([PHONE]),
        responses={SEND: [reply(503, {"status": 503, "code": 503, "message": "Service temporarily unavailable"})]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ConnectionFailed,
        expected_error_code="503",
        expected_error_contains="Service temporarily unavailable",
    ),
    SendCase(
        label="a timeout is retryable",
        frame=frame([PHONE]),
        responses={SEND: [timeout_reply(3.0)]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a lost response is retryable; the callbacks carrying our refs settle it",
        frame=frame([PHONE]),
        responses={SEND: [dropped_reply()]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a body that is not JSON",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, "<html>Bad gateway</html>", content_type="text/html")]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="JSON without a result object",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, {"status": "ok"})]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="answers that do not add up to the contacts sent",
        frame=frame([PHONE, "+79103398081"]),
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, json=body([PHONE, "+79103398081"]))],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="a refusal for a phone that was not sent",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, answer(refused=(("79990000000", "#invalid.phone.size; Invalid phone size"),)))]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_error=ResponseUnparseable,
    ),
]

# Account variants (courier's customSendURLCases): the same frame under other account settings.
ACCOUNT_VARIANT_CASES = [
    SendCase(
        label="an account without a webhook URL asks for no callbacks",
        frame=frame([PHONE]),
        account={"webhook_url": ""},
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, json=body([PHONE], hook=""))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
    SendCase(
        label="the account's validity option",
        frame=frame([PHONE]),
        account={"options": {**ACCOUNT["options"], "validity": 3600}},
        responses={SEND: [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req(SEND, json=body([PHONE], validity=3600))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
]

# A custom base URL (a proxy in front of Devino, or the sandbox): every path goes below it.
CUSTOM_BASE_URL_CASES = [
    SendCase(
        label="a base URL with a path prefix",
        frame=frame([PHONE]),
        responses={"POST /proxy/devino/omni-scheduler/api/messages": [reply(200, answer(MESSAGE_ID))]},
        expected_requests=[req("POST /proxy/devino/omni-scheduler/api/messages", json=body([PHONE]))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
        expected_ticket="7004",
    ),
]


def dlr(status: str, **extra) -> list[dict]:
    """One status callback as Devino posts it [seed 000:504-526] for our first message."""
    return [
        {
            "messageId": MESSAGE_ID,
            "ts": TS,
            "status": status,
            "callbackData": {"ref": "ref-1", "address": PHONE},
            "contactId": "3111e47182ca9c11-3111e4711103c800",
            "taskId": 7004,
            "triggerId": 63322,
            **extra,
        }
    ]


MINE = {"provider_message_id": MESSAGE_ID, "external_ref": "ref-1", "occurred_at": WHEN}


def status(canonical: Status, raw: str, **kwargs) -> StatusUpdate:
    """The update our first message's callback must become."""
    return update(canonical, raw=raw, **{**MINE, "address": PHONE, **kwargs})


CALLBACK_CASES = [
    CallbackCase(
        label="delivered",
        body=dlr("delivered"),
        expected_updates=[status(Status.DELIVERED, "delivered")],
        expected_response_body="",
    ),
    CallbackCase(
        label="expired, in Devino's words",
        body=dlr("expired"),
        expected_updates=[status(Status.EXPIRED, "expired", text="The lifetime of the message has expired")],
    ),
    CallbackCase(
        label="undeliverable, with its error code",
        body=dlr("undeliverable", errorCode=13),
        expected_updates=[status(Status.UNDELIVERED, "undeliverable", code="13", text="Unable to deliver the message")],
    ),
    CallbackCase(
        label="bounced (e-mail)",
        body=dlr("bounced", errorCode=550, email="ann@example.org"),
        expected_updates=[
            status(
                Status.UNDELIVERED,
                "bounced",
                code="550",
                address="ann@example.org",
                text="Email message cannot be delivered",
            )
        ],
    ),
    CallbackCase(
        label="opened",
        body=dlr("opened", ip="203.0.113.7", browser="Firefox", os="Android"),
        expected_updates=[status(Status.READ, "opened")],
    ),
    CallbackCase(
        label="clicked",
        body=dlr("clicked", url="https://shop.example/new"),
        expected_updates=[status(Status.CLICKED, "clicked")],
    ),
    CallbackCase(
        label="rejected, with its error code",
        body=dlr("rejected", errorCode=5),
        expected_updates=[
            status(
                Status.REJECTED, "rejected", code="5", text="The message has been rejected by the operator or Devino"
            )
        ],
    ),
    CallbackCase(
        label="deleted from the queue",
        body=dlr("deleted"),
        expected_updates=[
            status(Status.FAILED, "deleted", text="The message has been deleted from the queue for sending")
        ],
    ),
    CallbackCase(
        label="canceled (push)",
        body=dlr("canceled"),
        expected_updates=[status(Status.FAILED, "canceled", text="The push-message has been canceled")],
    ),
    CallbackCase(
        label="unknown error",
        body=dlr("unknown"),
        expected_updates=[status(Status.FAILED, "unknown", text="An unknown error has occurred")],
    ),
    CallbackCase(
        label="unsubscribed is an opt-out from the channel",
        body=dlr("unsubscribed"),
        expected_updates=[
            opt_out(
                address=PHONE,
                scope="channel",
                value="sms",
                raw_status="unsubscribed",
                text="Unsubscription via message",
                **MINE,
            )
        ],
    ),
    CallbackCase(
        label="unsubscribed from an e-mail",
        body=dlr("unsubscribed", email="ann@example.org"),
        expected_updates=[
            opt_out(
                address="ann@example.org",
                scope="channel",
                value="email",
                raw_status="unsubscribed",
                text="Unsubscription via message",
                **MINE,
            )
        ],
    ),
    CallbackCase(
        label="complained is an opt-out from everything",
        body=dlr("complained"),
        expected_updates=[
            opt_out(address=PHONE, scope="all", raw_status="complained", text="Complaint via message", **MINE)
        ],
    ),
    CallbackCase(
        label="subscribed is recorded, not applied",
        body=dlr("subscribed"),
        expected_updates=[StatusUpdate(kind=UpdateKind.UNKNOWN, raw_status="subscribed", address=PHONE, **MINE)],
    ),
    CallbackCase(
        label="the seed's own example (status 'string') is kept as unknown",
        body="devino/callback_seed_example.json",
        compare_payload=True,
        expected_updates=[
            StatusUpdate(
                kind=UpdateKind.UNKNOWN,
                raw_status="string",
                provider_message_id="string",
                address="string",
                code="0",
                payload=fixture_json("devino/callback_seed_example.json")[0],
            )
        ],
    ),
    CallbackCase(
        label="a batch of reports in one array",
        body="devino/callback_batch.json",
        expected_updates=[
            status(Status.DELIVERED, "delivered"),
            update(
                Status.UNDELIVERED,
                raw="undeliverable",
                provider_message_id="3606044956953218301",
                code="13",
                text="Unable to deliver the message",
                external_ref="ref-2",
                address="+79103398081",
                occurred_at=datetime(2024, 5, 31, 16, 8, 38, tzinfo=UTC),
            ),
            update(
                Status.CLICKED,
                raw="clicked",
                provider_message_id="3606044956953218302",
                external_ref="ref-3",
                address="+79103398082",
                occurred_at=datetime(2024, 5, 31, 16, 8, 39, tzinfo=UTC),
            ),
        ],
    ),
    CallbackCase(
        label="an upper-case status", body=dlr("DELIVERED"), expected_updates=[status(Status.DELIVERED, "DELIVERED")]
    ),
    CallbackCase(
        label="ts in seconds",
        body=dlr("delivered", ts=1717171717),
        expected_updates=[status(Status.DELIVERED, "delivered")],
    ),
    CallbackCase(
        label="a ts no clock can hold",
        body=dlr("delivered", ts=1e30),
        expected_updates=[status(Status.DELIVERED, "delivered", occurred_at=None)],
    ),
    CallbackCase(
        label="no ts",
        body=dlr("delivered", ts=None),
        expected_updates=[status(Status.DELIVERED, "delivered", occurred_at=None)],
    ),
    CallbackCase(
        label="a single object instead of an array",
        body=dlr("delivered")[0],
        expected_updates=[status(Status.DELIVERED, "delivered")],
    ),
    CallbackCase(
        label="an item without a status is kept as unknown",
        body=dlr(""),
        expected_updates=[StatusUpdate(kind=UpdateKind.UNKNOWN, address=PHONE, **MINE)],
    ),
    CallbackCase(
        label="an item that is not an object is kept as unknown",
        body=["delivered"],
        compare_payload=True,
        expected_updates=[StatusUpdate(kind=UpdateKind.UNKNOWN, payload={"item": "delivered"})],
    ),
    CallbackCase(label="an empty array", body=[], expected_updates=[]),
    CallbackCase(
        label="a wrong secret",
        body=dlr("delivered"),
        sign=False,
        query={"secret": "whsec-forged"},
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(label="no secret", body=dlr("delivered"), sign=False, expected_error=AuthenticationFailed),
    CallbackCase(
        label="an account without a webhook secret accepts nothing",
        body=dlr("delivered"),
        account={"webhook_secret": ""},
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="a body that is not JSON", body=b"status=delivered&messageId=1", expected_error=ResponseUnparseable
    ),
    CallbackCase(
        label="JSON that is neither an array nor an object", body=b'"delivered"', expected_error=ResponseUnparseable
    ),
]


def sign(account, method, headers, query, body):
    """Devino does not sign: Herald's webhook URL carries ?secret=."""
    return headers, {**query, "secret": account.webhook_secret}


STOPPED_TASK = {"result": {**fixture_json("devino/task_api.json")["result"], "state": "STOPPED"}}
SETUP_BODY = {
    "taskName": "Herald 00000000",
    "type": "API",
    "channel": "SMS",
    "triggers": [
        {
            "index": 0,
            "type": "TRAN_API_SOURCE",
            "channel": "SMS",
            "template": {"smsTemplate": {"text": "Herald", "from": "Herald", "validity": 600}},
        }
    ],
}
CREATED = {"task_id": 7003, "trigger_id": "511"}
LIST_QUERY = {"ascending": "false", "count": "10", "offset": "0", "orderBy": "ID", "types": "API"}

CALL_CASES = [
    CallCase(
        label="check reads the task and its counters",
        call=lambda backend, account: backend.check(account),
        account=TASK_7003,
        responses={GET_TASK: [reply(200, "devino/task_api.json")]},
        expected_requests=[req(GET_TASK, headers=AUTH, content_type=None)],
        expected_result=CheckResult(True, "Connected; task 7003 is STARTED: 12 sent, 9 delivered, 2 failed"),
    ),
    CallCase(
        label="check flags a stopped task",
        call=lambda backend, account: backend.check(account),
        account=TASK_7003,
        responses={GET_TASK: [reply(200, STOPPED_TASK)]},
        expected_requests=[req(GET_TASK, content_type=None)],
        expected_result=CheckResult(
            False,
            "Connected; task 7003 is STOPPED: 12 sent, 9 delivered, 2 failed; "
            "run the account's setup again: it creates a new task",
        ),
    ),
    CallCase(
        label="check before setup lists the API tasks",
        call=lambda backend, account: backend.check(account),
        responses={LIST_TASKS: [reply(200, "devino/task_list_seed.json")]},
        expected_requests=[req(LIST_TASKS, headers=AUTH, content_type=None, query=LIST_QUERY)],
        expected_result=CheckResult(True, "Connected; 1 API task(s), none set up for Herald yet: run setup"),
    ),
    CallCase(
        label="check with a wrong key",
        call=lambda backend, account: backend.check(account),
        responses={LIST_TASKS: [reply(401, "devino/error_unauthorized.json")]},
        expected_requests=[req(LIST_TASKS, content_type=None)],
        expected_result=CheckResult(
            False, "devino answered HTTP 401: Invalid or missing API key: send 'Authorization: Key <api key>'"
        ),
    ),
    CallCase(
        label="check with a task Devino no longer knows",
        call=lambda backend, account: backend.check(account),
        account=TASK_7003,
        responses={GET_TASK: [reply(404, "devino/error_task_not_found.json")]},
        expected_requests=[req(GET_TASK, content_type=None)],
        expected_result=CheckResult(False, "Devino does not know task 7003: run setup again."),
    ),
    CallCase(
        label="setup creates the API task and reads its trigger back",
        call=lambda backend, account: backend.setup(account),
        responses={
            CREATE_TASK: [reply(200, "devino/task_created.json")],
            GET_TASK: [reply(200, "devino/task_api.json")],
        },
        expected_requests=[req(CREATE_TASK, headers=AUTH, json=SETUP_BODY), req(GET_TASK, content_type=None)],
        expected_result=CREATED,
    ),
    CallCase(
        label="setup keeps a live task Devino knows",
        call=lambda backend, account: backend.setup(account),
        account=TASK_7003,
        responses={GET_TASK: [reply(200, "devino/task_api.json")]},
        expected_requests=[req(GET_TASK, content_type=None)],
        expected_result=CREATED,
    ),
    CallCase(
        label="setup replaces a task Devino no longer knows",
        call=lambda backend, account: backend.setup(account),
        account={"options": {"task_id": 6001, "trigger_id": "400", "sender": "SHOP", "validity": 900}},
        responses={
            "GET /omni-task-api/tasks/6001": [reply(404, "devino/error_task_not_found.json")],
            CREATE_TASK: [reply(200, "devino/task_created.json")],
            GET_TASK: [reply(200, "devino/task_api.json")],
        },
        expected_requests=[
            req("GET /omni-task-api/tasks/6001", content_type=None),
            req(
                CREATE_TASK,
                json_subset={"triggers": [{"template": {"smsTemplate": {"from": "SHOP", "validity": 900}}}]},
            ),
            req(GET_TASK, content_type=None),
        ],
        expected_result=CREATED,
    ),
    CallCase(
        label="setup replaces a finished task",
        call=lambda backend, account: backend.setup(account),
        account=TASK_7003,
        responses={
            GET_TASK: [
                reply(200, {"result": {**STOPPED_TASK["result"], "state": "DELETED_FINISHED"}}),
                reply(200, {"result": {**STOPPED_TASK["result"], "id": "7004", "state": "STARTED"}}),
            ],
            CREATE_TASK: [reply(200, "devino/task_created.json")],
        },
        expected_requests=[
            req(GET_TASK, content_type=None),
            req(CREATE_TASK, json=SETUP_BODY),
            req(GET_TASK, content_type=None),
        ],
        expected_result=CREATED,
    ),
    CallCase(
        label="setup replaces a task that has no SMS API trigger",
        call=lambda backend, account: backend.setup(account),
        account=TASK_7003,
        responses={
            GET_TASK: [reply(200, "devino/task_seed.json"), reply(200, "devino/task_api.json")],
            CREATE_TASK: [reply(200, "devino/task_created.json")],
        },
        expected_requests=[
            req(GET_TASK, content_type=None),
            req(CREATE_TASK, json=SETUP_BODY),
            req(GET_TASK, content_type=None),
        ],
        expected_result=CREATED,
    ),
    CallCase(
        label="setup refused by Devino",
        call=lambda backend, account: backend.setup(account),
        responses={CREATE_TASK: [reply(400, "devino/error_sender_invalid.json")]},
        expected_requests=[req(CREATE_TASK, json=SETUP_BODY)],
        expected_error=Rejected,
        expected_error_code="template.from.invalid",
    ),
    CallCase(
        label="setup answered without a task id",
        call=lambda backend, account: backend.setup(account),
        responses={CREATE_TASK: [reply(200, {"result": {"code": "OK", "result": None}})]},
        expected_requests=[req(CREATE_TASK, json=SETUP_BODY)],
        expected_error=ResponseUnparseable,
    ),
    CallCase(
        label="task counters for the admin",
        call=lambda backend, account: backend.task_counters(account),
        account=TASK_7003,
        responses={GET_TASK: [reply(200, "devino/task_api.json")]},
        expected_requests=[req(GET_TASK, content_type=None)],
        expected_result={
            "task_id": 7003,
            "state": "STARTED",
            "total": 12,
            "success": 9,
            "error": 2,
            "triggers": {"511": {"total": 12, "success": 9, "error": 2}},
        },
    ),
    CallCase(
        label="recovery cannot ask Devino: the callbacks settle the frame",
        call=lambda backend, account: backend.recover(account, frame([PHONE])),
        account=TASK_7003,
        expected_result=None,
    ),
]

# Every vendor word → canonical meaning, written out (not derived from the module) so a change shows here.
STATUS_TABLE = {
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "undeliverable": Status.UNDELIVERED,
    "bounced": Status.UNDELIVERED,
    "opened": Status.READ,
    "clicked": Status.CLICKED,
    "rejected": Status.REJECTED,
    "deleted": Status.FAILED,
    "canceled": Status.FAILED,
    "unknown": Status.FAILED,
}
OTHER_STATUSES = {
    "unsubscribed": UpdateKind.OPT_OUT,
    "complained": UpdateKind.OPT_OUT,
    "subscribed": UpdateKind.UNKNOWN,
}
ERROR_TABLE = {
    "invalid.phone.size": Status.REJECTED,
    "invalid.phone.format": Status.REJECTED,
    "contact.phone.required": Status.REJECTED,
    "contact.in.stop.list": Status.REJECTED,
    "contact.not.found": Status.REJECTED,
    "invalid.callback.url": Status.FAILED,
}


@pytest.mark.parametrize("case", SEND_CASES + ACCOUNT_VARIANT_CASES, ids=lambda c: c.label)
def test_send(case, harness):
    harness.run_send_case(DevinoBackend, replace(case, account={**ACCOUNT, **case.account}), secrets=SECRETS)


@pytest.mark.parametrize("case", CUSTOM_BASE_URL_CASES, ids=lambda c: c.label)
def test_send_below_a_custom_base_url(case, harness):
    account = {**ACCOUNT, **case.account}
    harness.run_send_case(DevinoBackend, replace(case, account=account), base_path="/proxy/devino", secrets=SECRETS)


@pytest.mark.parametrize("case", CALLBACK_CASES, ids=lambda c: c.label)
def test_callback(case, harness):
    harness.run_callback_case(DevinoBackend, case, signer=sign, secrets=SECRETS)


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.label)
def test_call(case, harness):
    harness.run_call_case(DevinoBackend, case, secrets=SECRETS)


def test_the_tables_cover_every_status_the_seed_lists():
    assert STATUS_MAP == STATUS_TABLE
    assert ERROR_TABLE == ERROR_CODES
    seed_statuses = {
        "delivered",
        "expired",
        "undeliverable",
        "bounced",
        "opened",
        "clicked",
        "rejected",
        "deleted",
        "subscribed",
        "unsubscribed",
        "complained",
        "unknown",
        "canceled",
    }  # seed 000:569-584
    assert seed_statuses == set(STATUS_TABLE) | set(OTHER_STATUSES)


@pytest.mark.parametrize("raw, expected", list(STATUS_TABLE.items()) + list(OTHER_STATUSES.items()))
def test_every_callback_status_maps(raw, expected, harness):
    account = harness.account(kind="devino")
    parsed = DevinoBackend().parse_callback(
        account, method="POST", headers={}, query={"secret": account.webhook_secret}, body=json.dumps(dlr(raw)).encode()
    )
    (got,) = parsed.updates
    assert (got.status if isinstance(expected, Status) else got.kind) == expected
    assert (got.raw_status, got.external_ref, got.provider_message_id) == (raw, "ref-1", MESSAGE_ID)


@pytest.mark.parametrize("key, expected", [*ERROR_TABLE.items(), ("a.key.not.listed", Status.REJECTED)])
def test_every_refusal_key_maps(key, expected, harness):
    case = SendCase(
        label=key,
        frame=frame([PHONE]),
        responses={SEND: [reply(200, answer(refused=((PHONE.lstrip("+"), f"#{key}; Devino's words"),)))]},
        expected_requests=[req(SEND, json=body([PHONE]))],
        expected_results=[rejected(PHONE, key, "Devino's words", ref="ref-1", status=expected)],
        expected_ticket="7004",
        account=ACCOUNT,
    )
    harness.run_send_case(DevinoBackend, case, secrets=SECRETS)


def test_declared_capabilities():
    backend = DevinoBackend()
    assert (backend.kind, backend.max_recipients, backend.default_frame_size, backend.recovery) == (
        "devino",
        100,
        100,
        "callbacks",
    )
    assert (backend.supports_callbacks, backend.supports_polling, backend.secret_in_url) == (True, False, True)
    assert [f.name for f in backend.credential_fields] == ["api_key"]
    assert backend.frame_size(500) == 100
