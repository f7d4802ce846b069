"""Golden cases for the MOBtexting backend (seed 001; PROVIDERS.md § MOBtexting)."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from providers.backends.base import (
    Account,
    AuthenticationFailed,
    CheckResult,
    ConfigError,
    ConnectionFailed,
    MessageRef,
    OutboundFrame,
    PollQuery,
    Recipient,
    RecipientResult,
    Rejected,
    RemoteSender,
    RemoteTemplate,
    RemoteUnsubscriber,
    ResponseStatusError,
    ResponseUnparseable,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
)
from providers.backends.mobtexting import ERROR_CODES, STATUS_MAP, MobtextingBackend, classify, verification_token
from providers.backends.mobtexting.client import IST
from tests.providers.backends.harness import (
    CallbackCase,
    CallCase,
    PollCase,
    SendCase,
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

BASE = "/api/v2"
KEY = "KEY-0123456789abcdef"
SECRETS = {"api_key": KEY}
AUTH = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
SEND = f"POST {BASE}/sms/send/json"
STATUS = f"GET {BASE}/sms/status"
WEBHOOK_ID = "0798d163-7ca2-4eb6-8c16-c62866a1b2c3"
GROUP = "1a772ff9-26ff-4e2c-9921-93ba453ef967"
A1, A2 = "+919019120001", "+918867135002"
DLT = {"sender": "DEMOTX", "dlt_entity_id": "12345678", "dlt_template_id": "98456363", "service": "T"}


def mt(name: str) -> str:
    return f"mobtexting/{name}"


def accepted_reply(addresses: list[str], group: str = GROUP, units: int = 1, length: int = 5) -> dict:
    """A send answer accepting every address, rows in order (for frames too long to keep as a fixture)."""
    rows = [
        {
            "id": f"{group}:{i}",
            "mobile": a.lstrip("+"),
            "status": "AWAITING-DLR",
            "units": units,
            "length": length,
            "charges": units,
            "customid": f"ref-{i}",
            "customid1": "",
            "iso_code": "IN",
            "submitted_at": "2024-03-10 14:06:10",
        }
        for i, a in enumerate(addresses, start=1)
    ]
    return {"status": 200, "message": f"{len(rows)} numbers accepted for delivery.", "group_id": group, "data": rows}


def ok(addresses: list[str], group: str = GROUP, **kwargs) -> list[RecipientResult]:
    return [
        submitted(a, f"{group}:{i}", ref=f"ref-{i}", parts=kwargs.get("units", 1), cost=float(kwargs.get("units", 1)))
        for i, a in enumerate(addresses, start=1)
    ]


FULL = [f"+9198{i:08d}" for i in range(500)]
LONG_TEXT = "Your parcel is out for delivery today. " * 5  # 195 GSM characters: two parts
HINDI = "आपका OTP 123456 है"

SEND_CASES = [
    SendCase(
        label="the seed's example as root and nodes, full body compared",
        frame=frame(
            [A1, A2],
            text="Your OTP is 123456",
            campaign_name="Order updates",
            send_at=datetime(2024, 3, 10, 8, 36, 10, tzinfo=UTC),
            **DLT,
        ),
        account={"options": {"webhook_id": WEBHOOK_ID}},
        responses={SEND: [reply(200, mt("send_accepted.json"))]},
        expected_requests=[req(SEND, headers=AUTH, json=fixture_json(mt("send_request.json")))],
        expected_results=ok([A1, A2]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="plain text without DLT ids, service from the purpose",
        frame=frame([A1], text="Hello", sender="HERALD", key="frame-9", purpose="promotional"),
        responses={SEND: [reply(200, accepted_reply([A1]))]},
        expected_requests=[
            req(
                SEND,
                headers=AUTH,
                json={
                    "root": {"name": "frame-9", "sender": "HERALD", "service": "P", "type": "A", "message": "Hello"},
                    "nodes": [{"to": "919019120001", "custom": "ref-1"}],
                },
            )
        ],
        expected_results=ok([A1]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="the account's default service when the frame has none",
        frame=frame([A1], text="Hello", purpose="promotional"),
        account={"options": {"service": "S"}},
        responses={SEND: [reply(200, accepted_reply([A1]))]},
        expected_requests=[req(SEND, json_subset={"root": {"service": "S"}})],
        expected_results=ok([A1]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="unicode text travels as is, type A lets the vendor choose UCS-2",
        frame=frame([A1], text=HINDI, **DLT),
        responses={SEND: [reply(200, accepted_reply([A1], length=17))]},
        expected_requests=[req(SEND, json_subset={"root": {"message": HINDI, "type": "A"}})],
        expected_results=ok([A1]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="multi-part text: parts and cost from units and charges",
        frame=frame([A1], text=LONG_TEXT, **DLT),
        responses={SEND: [reply(200, accepted_reply([A1], units=2, length=195))]},
        expected_requests=[req(SEND, json_subset={"root": {"message": LONG_TEXT}})],
        expected_results=ok([A1], units=2),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="personalised texts go in each node, none in root",
        frame=OutboundFrame(
            key="frame-1",
            channel="sms",
            text="Hi {{name}}",
            sender="DEMOTX",
            service="T",
            recipients=[Recipient("ref-1", A1, text="Hi Asha"), Recipient("ref-2", A2, text="Hi Ravi")],
        ),
        responses={SEND: [reply(200, accepted_reply([A1, A2]))]},
        expected_requests=[
            req(
                SEND,
                json={
                    "root": {"name": "frame-1", "sender": "DEMOTX", "service": "T", "type": "A"},
                    "nodes": [
                        {"to": "919019120001", "custom": "ref-1", "message": "Hi Asha"},
                        {"to": "918867135002", "custom": "ref-2", "message": "Hi Ravi"},
                    ],
                },
            )
        ],
        expected_results=ok([A1, A2]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="a full frame of 500 nodes in one request",
        frame=frame(FULL, text="Hello", **DLT),
        responses={SEND: [reply(200, accepted_reply(FULL))]},
        expected_requests=[
            req(SEND, json_subset={"nodes": [{"to": a[1:], "custom": f"ref-{i}"} for i, a in enumerate(FULL, start=1)]})
        ],
        expected_results=ok(FULL),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="rows matched by customid even when the vendor reorders them",
        frame=frame([A1, A2], text="Hello", **DLT),
        responses={SEND: [reply(200, {**accepted_reply([A1, A2]), "data": accepted_reply([A1, A2])["data"][::-1]})]},
        expected_requests=[req(SEND)],
        expected_results=ok([A1, A2]),
        expected_ticket=GROUP,
    ),
    SendCase(
        label="a number refused with the vendor's code, another left out of the answer",
        frame=frame([A1, A2, "+12"], text="Hello", **DLT),
        responses={SEND: [reply(200, mt("send_partly_refused.json"))]},
        expected_requests=[req(SEND)],
        expected_results=[
            submitted(A1, "7c0291e6-0941-440b-b83c-3c0337abd733:1", ref="ref-1", parts=1, cost=1.0),
            rejected(A2, "408", "Number registered in the DND database.", ref="ref-2"),
            rejected("+12", "", "MOBtexting did not accept this number (it is missing from the answer).", ref="ref-3"),
        ],
        expected_ticket="7c0291e6-0941-440b-b83c-3c0337abd733",
    ),
    SendCase(
        label="credit exhausted part-way (401 NO-CREDITS rows): the others are answered, those wait for the account",
        frame=frame([A1, A2, "+918867135003"], text="Hello", **DLT),
        responses={SEND: [reply(200, mt("send_credit_exhausted.json"))]},
        expected_requests=[req(SEND)],
        expected_results=[
            submitted(A1, "7c0291e6-0941-440b-b83c-3c0337abd733:1", ref="ref-1", parts=1, cost=1.0),
            rejected(A2, "408", "Number registered in the DND database.", ref="ref-2"),
        ],
        expected_ticket="7c0291e6-0941-440b-b83c-3c0337abd733",
        expected_unsent_error=ConfigError,
    ),
    SendCase(
        label="the sending limit reached part-way (463 THROTTLED rows): the others are answered, those sent later",
        frame=frame([A1, A2, "+918867135003"], text="Hello", **DLT),
        responses={SEND: [reply(200, mt("send_limit_reached.json"))]},
        expected_requests=[req(SEND)],
        expected_results=[
            submitted(A1, "7c0291e6-0941-440b-b83c-3c0337abd733:1", ref="ref-1", parts=1, cost=1.0),
            rejected(A2, "408", "Number registered in the DND database.", ref="ref-2"),
        ],
        expected_ticket="7c0291e6-0941-440b-b83c-3c0337abd733",
        expected_unsent_error=Throttled,
    ),
    SendCase(
        label="validation error 422: Rejected with the vendor's words and fields",
        frame=frame([A1], text="Hello", sender="DEMOTX", service="T"),
        responses={SEND: [reply(422, mt("error_validation.json"))]},
        expected_requests=[req(SEND)],
        expected_error=Rejected,
        expected_error_code="422",
        expected_error_contains="entity_id: The entity id field is required for Indian (DLT) routes.",
    ),
    SendCase(
        label="a refusal in a 2xx envelope is Rejected with its code",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(200, {"status": "FAILED", "code": 422, "message": "The sender is not approved."})]},
        expected_requests=[req(SEND)],
        expected_error=Rejected,
        expected_error_code="422",
        expected_error_contains="The sender is not approved.",
    ),
    *[
        SendCase(
            label=f"a 2xx envelope with code {code} is read as HTTP {code} would be",
            frame=frame([A1], text="Hello", **DLT),
            responses={SEND: [reply(200, {"status": "FAILED", "code": code, "message": words})]},
            expected_requests=[req(SEND)],
            expected_error=error,
            expected_error_code=str(code),
            expected_error_contains=words,
        )
        for code, error, words in [
            (401, ResponseStatusError, "Unauthenticated."),
            (403, ResponseStatusError, "This action is unauthorized."),
            (429, Throttled, "Too Many Attempts."),
            (503, ConnectionFailed, "Service temporarily unavailable"),
        ]
    ],
    SendCase(
        label="insufficient balance in a 2xx envelope: the account to fix (the campaign pauses)",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(200, mt("refused_no_credits.json"))]},
        expected_requests=[req(SEND)],
        expected_error=ConfigError,
        expected_error_code="402",
        expected_error_contains="Insufficient balance for service T.",
    ),
    SendCase(
        label="insufficient balance as HTTP 402: the account to fix (the campaign pauses)",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(402, mt("refused_no_credits.json"))]},
        expected_requests=[req(SEND)],
        expected_error=ConfigError,
        expected_error_code="402",
        expected_error_contains="Insufficient balance for service T.",
    ),
    SendCase(
        label="401 with a wrong token",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(401, mt("error_unauthenticated.json"))]},
        expected_requests=[req(SEND, headers=AUTH)],
        expected_error=ResponseStatusError,
        expected_error_code="401",
        expected_error_contains="Unauthenticated.",
    ),
    SendCase(
        label="429 is retryable after Retry-After",
        frame=frame([A1], text="Hello", **DLT),
        responses={
            SEND: [
                reply(429, {"status": 429, "code": 429, "message": "Too Many Requests"}, headers={"Retry-After": "7"})
            ]
        },
        expected_requests=[req(SEND)],
        expected_error=Throttled,
        expected_error_code="429",
        expected_retry_after=7.0,
    ),
    SendCase(
        label="5xx is a retryable connection failure",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(503, {"status": 503, "code": 503, "message": "Service temporarily unavailable"})]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
        expected_error_code="503",
    ),
    SendCase(
        label="timeout is a retryable connection failure",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [timeout_reply(3.0)]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a 2xx body that is not JSON",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(200, "<html>Bad gateway</html>", content_type="text/html")]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="a 2xx JSON answer without rows",
        frame=frame([A1], text="Hello", **DLT),
        responses={SEND: [reply(200, {"status": 200, "message": "1 numbers accepted for delivery."})]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="no api_key on the account",
        frame=frame([A1], text="Hello", **DLT),
        account={"credentials": {}},
        expected_error=ConfigError,
    ),
]


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda c: c.label)
def test_send(case, harness):
    harness.run_send_case(MobtextingBackend, case, base_path=BASE, secrets=SECRETS)


def test_a_resent_frame_carries_the_same_refs(harness):
    """MOBtexting does not de-duplicate: a retry must carry the same `custom` per node, so that a lookup finds it."""
    case = SEND_CASES[0]
    first = harness.run_send_case(MobtextingBackend, case, base_path=BASE, secrets=SECRETS)
    again = harness.run_send_case(MobtextingBackend, case, base_path=BASE, secrets=SECRETS)
    assert first == again


# --- Callbacks --------------------------------------------------------------------------------------


def bearer(account, method, headers, query, body):
    return {**headers, "authorization": f"Bearer {account.webhook_secret}"}, query


def signed(account, method, headers, query, body):
    key = account.options["webhook_id"].encode()
    return {**headers, "signature": hmac.new(key, body, hashlib.sha256).hexdigest()}, query


def dlr(status: str, **fields) -> dict:
    return {"id": "b34e35ad:1", "mobile": "919019120001", "status": status, "custom": "ref-1", **fields}


def dlr_update(status: Status | None, raw: str, code: str = "", text: str = "", **kwargs) -> StatusUpdate:
    fields = {"provider_message_id": "b34e35ad:1", "external_ref": "ref-1", "address": A1, "code": code, "text": text}
    return update(status, raw=raw, **{**fields, **kwargs})


def word_case(word: str, status: Status) -> CallbackCase:
    code, text = classify(word)[1:]
    return CallbackCase(label=f"DLR {word}", body=dlr(word), expected_updates=[dlr_update(status, word, code, text)])


SEEN_AT = datetime(2021, 4, 9, 16, 27, 51, tzinfo=IST)
UNDELIVERABLE = (
    "Message is undeliverable. The message has encountered a delivery error and is deemed permanently undeliverable."
)
# The harness account's webhook secret is "whsec-0123456789".
HANDSHAKE_TOKEN = verification_token(Account("mobtexting", "", {}, webhook_secret="whsec-0123456789"))

CALLBACK_CASES = [
    CallbackCase(
        label="the seed's flat DLR",
        body=mt("dlr_delivered.json"),
        headers={"Content-Type": "application/json"},
        expected_updates=[
            update(
                Status.DELIVERED,
                raw="DELIVRD",
                provider_message_id="b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1",
                external_ref="9882XXXX",
                address="+918921269123",
                code="000",
                text="Delivered to SIM.",
                occurred_at=SEEN_AT,
                payload=fixture_json(mt("dlr_delivered.json")),
            )
        ],
        compare_payload=True,
    ),
    CallbackCase(
        label="the sms:message:status envelope",
        body=mt("dlr_envelope.json"),
        expected_updates=[
            update(
                Status.UNDELIVERED,
                raw="UNDELIV",
                provider_message_id="b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:2",
                external_ref="ref-1",
                address=A1,
                text=UNDELIVERABLE,
                occurred_at=datetime(2021, 4, 9, 16, 29, 2, tzinfo=IST),
            )
        ],
    ),
    CallbackCase(
        label="a customised webhook as a GET with query placeholders",
        method="GET",
        query={
            "message_id": "b34e35ad:1",
            "mobile_number": "919019120001",
            "message_status": "EXPIRED",
            "cid": "ref-1",
        },
        expected_updates=[dlr_update(Status.EXPIRED, "EXPIRED", "021", "SMS timeout")],
    ),
    CallbackCase(
        label="a customised webhook as a form POST",
        body=b"id=b34e35ad%3A1&mobile=919019120001&status=DELIVERED&custom=ref-1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        expected_updates=[dlr_update(Status.DELIVERED, "DELIVERED")],
    ),
    CallbackCase(
        label="a customised webhook as a POST with a form-data body [seed 001:1004]",
        body=(
            b'--hook\r\nContent-Disposition: form-data; name="message_id"\r\n\r\nb34e35ad:1\r\n'
            b'--hook\r\nContent-Disposition: form-data; name="mobile_number"\r\n\r\n919019120001\r\n'
            b'--hook\r\nContent-Disposition: form-data; name="message_status"\r\n\r\nUNDELIV\r\n'
            b'--hook\r\nContent-Disposition: form-data; name="custom"\r\n\r\nref-1\r\n--hook--\r\n'
        ),
        headers={"Content-Type": "multipart/form-data; boundary=hook"},
        expected_updates=[dlr_update(Status.UNDELIVERED, "UNDELIV", text=UNDELIVERABLE)],
    ),
    CallbackCase(
        label="a form-data body without a single field",
        body=b"--hook\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=hook"},
        expected_error=ResponseUnparseable,
    ),
    CallbackCase(
        label="a batch of reports in one array",
        body=[dlr("ENROUTE"), dlr("DELIVRD", deliv_time="2021-04-09 16:27:51")],
        expected_updates=[
            dlr_update(Status.SENT, "ENROUTE"),
            dlr_update(Status.DELIVERED, "DELIVRD", "000", "Delivered to SIM.", occurred_at=SEEN_AT),
        ],
    ),
    CallbackCase(
        label="a numeric code is more precise than the word (462 FAILED is a platform failure)",
        body=dlr("FAILED", code="462"),
        expected_updates=[dlr_update(Status.FAILED, "FAILED", "462", "Unknown Error")],
    ),
    CallbackCase(
        label="a word MOBtexting has not documented is kept raw as UNKNOWN",
        body=dlr("PARTIALLY-DONE"),
        expected_updates=[
            StatusUpdate(
                UpdateKind.UNKNOWN,
                raw_status="PARTIALLY-DONE",
                provider_message_id="b34e35ad:1",
                external_ref="ref-1",
                address=A1,
            )
        ],
    ),
    CallbackCase(
        label="an event Herald does not handle is kept as UNKNOWN",
        body={"event": "vmn:message:in", "payload": {"from": "919019120001", "text": "hi"}},
        expected_updates=[StatusUpdate(UpdateKind.UNKNOWN, raw_status="vmn:message:in")],
    ),
    CallbackCase(
        label="an opt-out event by tag",
        body=mt("optout_event.json"),
        expected_updates=[
            opt_out(
                address="+919876543210",
                scope="tag",
                value="promo",
                occurred_at=datetime(2023, 4, 11, 12, 50, 17, tzinfo=UTC),
            )
        ],
    ),
    *[
        CallbackCase(
            label=f"an opt-out of type {kind!r}",
            body={
                "event": "sms:unsubscription",
                "payload": {"id": "u1", "receiver": "919876543210", "type": kind, "value": value, "status": 1},
            },
            expected_updates=[opt_out(address="+919876543210", scope=scope, value=expected)],
        )
        for kind, value, scope, expected in [
            ("all", "", "all", ""),
            ("product", "P", "service", "P"),
            ("service", "T", "service", "T"),
            ("sender", "HERALD", "sender", "HERALD"),
        ]
    ],
    CallbackCase(
        label="a flat opt-out payload",
        body={"id": "u1", "receiver": "919876543210", "type": "all", "value": "", "status": 1},
        expected_updates=[opt_out(address="+919876543210")],
    ),
    *[
        CallbackCase(
            label=f"an opt-out whose receiver is {receiver!r} is for {expected}",
            body={"id": "u1", "receiver": receiver, "type": "all", "value": "", "status": 1, **extra},
            expected_updates=[opt_out(address=expected)],
        )
        for receiver, extra, expected in [
            # national forms, which read as international would be another country's (+98…: Iran)
            ("9876543210", {}, "+919876543210"),
            ("09876543210", {}, "+919876543210"),
            ("98765 43210", {"iso": "IN"}, "+919876543210"),
            ("+91 98765 43210", {}, "+919876543210"),
            # another country's number, with its country code or in the record's ISO country
            ("33612345678", {}, "+33612345678"),
            ("0612345678", {"iso": "FR"}, "+33612345678"),
        ]
    ],
    CallbackCase(
        label="a re-subscription (status 0) is kept as UNKNOWN",
        body={
            "event": "sms:unsubscription",
            "payload": {"id": "u1", "receiver": "919876543210", "type": "all", "status": 0},
        },
        expected_updates=[StatusUpdate(UpdateKind.UNKNOWN, raw_status="sms:unsubscription", address="+919876543210")],
    ),
    CallbackCase(
        label="the webhook verification handshake echoes the challenge",
        body=mt("verification.json"),
        query={"token": HANDSHAKE_TOKEN},
        sign=False,
        expected_updates=[],
        expected_response_body='{"challenge": "a234qwe"}',
    ),
    CallbackCase(
        label="a handshake with a foreign token and no bearer is refused",
        body=mt("verification.json"),
        query={"token": "9012XXXX"},
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="a wrong bearer secret",
        body=dlr("DELIVRD"),
        headers={"Authorization": "Bearer not-the-secret"},
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(label="no authorization at all", body=dlr("DELIVRD"), sign=False, expected_error=AuthenticationFailed),
    CallbackCase(
        label="a malformed body",
        body=b'{"id": "b34e35ad:1", "status": ',
        headers={"Content-Type": "application/json"},
        expected_error=ResponseUnparseable,
    ),
    CallbackCase(
        label="a malformed body without authentication is refused first",
        body=b"not json",
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    *[word_case(word, status) for word, status in STATUS_MAP.items()],
]


@pytest.mark.parametrize("case", CALLBACK_CASES, ids=lambda c: c.label)
def test_callback(case, harness):
    harness.run_callback_case(MobtextingBackend, case, signer=bearer, secrets=SECRETS)


SIGNED = {"options": {"callback_auth": "signature", "webhook_id": WEBHOOK_ID}}
SIGNED_CALLBACK_CASES = [
    CallbackCase(
        label="a DLR signed with the webhook id",
        body=mt("dlr_envelope.json"),
        account=SIGNED,
        expected_updates=[
            update(
                Status.UNDELIVERED,
                raw="UNDELIV",
                provider_message_id="b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:2",
                external_ref="ref-1",
                address=A1,
                text=UNDELIVERABLE,
                occurred_at=datetime(2021, 4, 9, 16, 29, 2, tzinfo=IST),
            )
        ],
    ),
    CallbackCase(
        label="a forged signature",
        body=dlr("DELIVRD"),
        account=SIGNED,
        headers={"Signature": "0" * 64},
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="a bearer alone does not do when signatures are required",
        body=dlr("DELIVRD"),
        account=SIGNED,
        headers={"Authorization": "Bearer whsec-0123456789"},
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="the handshake is authenticated by its token before the webhook id is known",
        body=mt("verification.json"),
        account={"options": {"callback_auth": "signature"}},
        query={"token": HANDSHAKE_TOKEN},
        sign=False,
        expected_response_body='{"challenge": "a234qwe"}',
    ),
    CallbackCase(
        label="no webhook id on the account: nothing can be verified",
        body=dlr("DELIVRD"),
        account={"options": {"callback_auth": "signature"}},
        headers={"Signature": "0" * 64},
        sign=False,
        expected_error=AuthenticationFailed,
    ),
]


@pytest.mark.parametrize("case", SIGNED_CALLBACK_CASES, ids=lambda c: c.label)
def test_signed_callback(case, harness):
    harness.run_callback_case(MobtextingBackend, case, signer=signed, secrets=SECRETS)


# Authentication comes before the body is read: who cannot authenticate is refused whatever the body holds.
UNAUTHENTICATED_CASES = [
    CallbackCase(
        label=f"{what}, with {auth}: refused",
        body=body,
        headers={"Content-Type": "application/json", **headers},
        query=query,
        account=account,
        sign=False,
        expected_error=AuthenticationFailed,
    )
    for what, body in [
        ("a malformed body", b'{"id": "b34e35ad:1", "status": '),
        ("a body that is not UTF-8", b"\xff\xfe{}"),
        ("a report", json.dumps(dlr("DELIVRD")).encode()),
    ]
    for auth, headers, query, account in [
        ("a wrong bearer", {"Authorization": "Bearer guess"}, {}, {}),
        ("a forged Signature", {"Signature": "0" * 64}, {}, SIGNED),
        (
            "an unknown callback_auth option",
            {"Authorization": "Bearer whsec-0123456789"},
            {},
            {"options": {"callback_auth": "hmac"}},
        ),
        ("only the handshake's validation token", {}, {"token": HANDSHAKE_TOKEN}, {}),
    ]
]


@pytest.mark.parametrize("case", UNAUTHENTICATED_CASES, ids=lambda c: c.label)
def test_an_unauthenticated_callback_is_refused_before_its_body_is_read(case, harness):
    """A forged call with a malformed body got 400 ("not JSON") where it should get 403, and an account whose
    callback_auth option was mistyped answered every caller 400 (a configuration error) instead of refusing."""
    harness.run_callback_case(MobtextingBackend, case, secrets=SECRETS)


@pytest.mark.django_db
def test_a_customised_webhook_posting_form_data_is_stored(client):
    """MOBtexting lets a customised webhook send its fields as "raw or form-data" [seed 001:1004]: the form-data
    POST got 400 ("callback body is not JSON"), so every report of such a webhook was lost."""
    from campaigns.models import StatusEvent
    from tests.factories import ProviderAccountFactory

    account = ProviderAccountFactory(kind="mobtexting")
    fields = {"message_id": "b34e35ad:1", "mobile_number": "919019120001", "message_status": "DELIVRD", "cid": "ref-1"}
    response = client.post(  # the test client encodes a dict as multipart/form-data
        f"/hooks/mobtexting/{account.uuid}/", fields, headers={"Authorization": f"Bearer {account.webhook_secret}"}
    )
    assert response.status_code == 200, response.content
    event = StatusEvent.objects.get(account=account)
    assert (event.provider_message_id, event.address, event.raw_status, event.status) == (
        "b34e35ad:1", "+919019120001", "DELIVRD", "delivered",
    )  # fmt: skip


@pytest.mark.django_db
def test_a_body_of_escaped_quotes_is_refused_at_once_not_after_a_minute(client):
    """A body that is not JSON is read again with commas before a closing brace forgiven; that reading started a
    string at each quote and read each to the end of the body when none closed: 60 kB of `\\"` held a web worker
    for most of a minute before its 400 (and the vendor, or whoever has the handshake's token, may send it again)."""
    from tests.factories import ProviderAccountFactory

    account = ProviderAccountFactory(kind="mobtexting")
    started = time.monotonic()
    response = client.post(
        f"/hooks/mobtexting/{account.uuid}/", b'"' + b'\\"' * 30_000, content_type="application/json",
        headers={"Authorization": f"Bearer {account.webhook_secret}"},
    )  # fmt: skip
    assert response.status_code == 400, response.content[:300]
    assert time.monotonic() - started < 3


@pytest.mark.django_db
@pytest.mark.parametrize("callback_auth", ["bearer", "signature", "Signature ", "hmac"])
def test_the_webhook_answers_a_forged_mobtexting_call_403_and_stores_nothing(client, callback_auth):
    from campaigns.models import StatusEvent
    from tests.factories import ProviderAccountFactory

    account = ProviderAccountFactory(kind="mobtexting", options={"callback_auth": callback_auth, "webhook_id": "w-1"})
    for body in (b"{not json", json.dumps(dlr("DELIVRD")).encode()):
        response = client.post(
            f"/hooks/mobtexting/{account.uuid}/", body, content_type="application/json",
            headers={"Authorization": "Bearer guess", "Signature": "0" * 64},
        )  # fmt: skip
        assert response.status_code == 403, (callback_auth, body, response.content)
    assert not StatusEvent.objects.exists()


# --- Polls ------------------------------------------------------------------------------------------


def row_update(row: dict) -> StatusUpdate:
    status, code, text = classify(row["status"])
    when = datetime.strptime(row["delivered_at"] or row["submitted_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    return update(
        status,
        raw=row["status"],
        provider_message_id=row["id"],
        external_ref=row["custom"],
        address=f"+{row['mobile']}",
        code=code,
        text=text,
        occurred_at=when,
        payload=row,
    )


PAGE1, PAGE2 = fixture_json(mt("status_page1.json")), fixture_json(mt("status_page2.json"))
NESTED = fixture_json(mt("status_nested_paginator.json"))
BY_CID = fixture_json(mt("status_by_cid.json"))
TODAY = datetime.now(IST).date().isoformat()

POLL_CASES = [
    PollCase(
        label="a group's reports, page after page, keeping the filter",
        query=PollQuery(tickets=["6bb5da1a-b53e-4fbd-b0ae-6926cad4540b"]),
        responses={STATUS: [reply(200, PAGE1), reply(200, PAGE2)]},
        expected_requests=[
            req(STATUS, headers=AUTH, content_type=None, query={"group_id": "6bb5da1a-b53e-4fbd-b0ae-6926cad4540b"}),
            req(STATUS, content_type=None, query={"group_id": "6bb5da1a-b53e-4fbd-b0ae-6926cad4540b", "page": "2"}),
        ],
        expected_updates=[row_update(r) for r in PAGE1["data"] + PAGE2["data"]],
        compare_payload=True,
    ),
    PollCase(
        label="the older paginator nested in data",
        query=PollQuery(tickets=["469ea920-ccd1-4a39-b728-c0b6f15f6aa6"]),
        responses={STATUS: [reply(200, NESTED)]},
        expected_requests=[req(STATUS, content_type=None, query={"group_id": "469ea920-ccd1-4a39-b728-c0b6f15f6aa6"})],
        expected_updates=[row_update(r) for r in NESTED["data"]["data"]],
    ),
    PollCase(
        label="messages by our ref (cid), one request each; an unknown ref answers 404",
        query=PollQuery(messages=[MessageRef("ref-1", A1), MessageRef("ref-9", A2)]),
        responses={STATUS: [reply(200, BY_CID), reply(404, {"status": 404, "code": 404, "message": "Not Found"})]},
        expected_requests=[
            req(STATUS, content_type=None, query={"cid": "ref-1"}),
            req(STATUS, content_type=None, query={"cid": "ref-9"}),
        ],
        expected_updates=[row_update(r) for r in BY_CID["data"]],
    ),
    PollCase(
        label="everything since today, by date",
        query=PollQuery(since=datetime.now(UTC)),
        responses={STATUS: [reply(200, mt("status_empty.json"))]},
        expected_requests=[req(STATUS, content_type=None, query={"date": TODAY})],
        expected_updates=[],
    ),
    PollCase(
        label="a throttled pull (1000 GETs a minute)",
        query=PollQuery(tickets=["g"]),
        responses={
            STATUS: [
                reply(429, {"status": 429, "code": 429, "message": "Too Many Attempts."}, headers={"Retry-After": "30"})
            ]
        },
        expected_requests=[req(STATUS, content_type=None)],
        expected_error=Throttled,
        expected_error_code="429",
    ),
    PollCase(
        label="a pull answer that is not JSON",
        query=PollQuery(tickets=["g"]),
        responses={STATUS: [reply(200, "oops", content_type="text/plain")]},
        expected_requests=[req(STATUS, content_type=None)],
        expected_error=ResponseUnparseable,
    ),
]


@pytest.mark.parametrize("case", POLL_CASES, ids=lambda c: c.label)
def test_poll(case, harness):
    harness.run_poll_case(MobtextingBackend, case, base_path=BASE, secrets=SECRETS)


# --- Recovery, check, setup, registries -----------------------------------------------------------------

WEBHOOKS, SUBSCRIPTIONS = f"{BASE}/developer/webhooks", f"{BASE}/developer/subscriptions"
HOOK_URL = "https://herald.example/hooks/test/0b3f…/"


def lost_frame():
    return frame([A1, A2], text="Hello", **DLT)


CALL_CASES = [
    CallCase(
        label="recovery after a lost answer: refs MOBtexting has are submitted, the others left to resend",
        call=lambda backend, account: backend.recover(account, lost_frame()),
        responses={STATUS: [reply(200, BY_CID), reply(200, mt("status_empty.json"))]},
        expected_requests=[
            req(STATUS, headers=AUTH, content_type=None, query={"cid": "ref-1"}),
            req(STATUS, content_type=None, query={"cid": "ref-2"}),
        ],
        expected_result=[submitted(A1, "469ea920-ccd1-4a39-b728-c0b6f15f6aa6:1", ref="ref-1", parts=1, cost=1.0)],
    ),
    CallCase(
        label="recovery when the lookup itself fails is retried later",
        call=lambda backend, account: backend.recover(account, lost_frame()),
        responses={STATUS: [reply(503, {"status": 503, "code": 503, "message": "Down"})]},
        expected_requests=[req(STATUS, content_type=None)],
        expected_error=ConnectionFailed,
        expected_error_code="503",
    ),
    CallCase(
        label="check: who the token belongs to",
        call=lambda backend, account: backend.check(account),
        responses={f"GET {BASE}/auth/me": [reply(200, mt("auth_me.json"))]},
        expected_requests=[req(f"GET {BASE}/auth/me", headers=AUTH, content_type=None)],
        expected_result=CheckResult(True, "Connected to MOBtexting as Sphere Demo Pvt Ltd."),
    ),
    CallCase(
        label="check with a revoked token",
        call=lambda backend, account: backend.check(account),
        responses={f"GET {BASE}/auth/me": [reply(401, mt("error_unauthenticated.json"))]},
        expected_requests=[req(f"GET {BASE}/auth/me", content_type=None)],
        expected_result=CheckResult(False, "mobtexting answered HTTP 401: Unauthenticated."),
    ),
    CallCase(
        label="setup creates the webhook with its verification token and subscribes it twice",
        call=lambda backend, account: backend.setup(account),
        responses={
            f"GET {WEBHOOKS}": [reply(200, mt("webhooks_none.json"))],
            f"POST {WEBHOOKS}": [reply(200, mt("webhook_created.json"))],
            f"GET {SUBSCRIPTIONS}": [reply(200, mt("subscriptions_none.json"))],
            f"POST {SUBSCRIPTIONS}": [reply(200, mt("subscription_created.json"))] * 2,
        },
        expected_requests=[
            req(f"GET {WEBHOOKS}", content_type=None, query={"filter[name]": "Herald"}),
            req(
                f"POST {WEBHOOKS}",
                headers=AUTH,
                json={
                    "name": "Herald",
                    "uri": HOOK_URL,
                    "secret": "whsec-0123456789",
                    "status": 1,
                    "token": HANDSHAKE_TOKEN,
                },
            ),
            req(f"GET {SUBSCRIPTIONS}", content_type=None),
            req(
                f"POST {SUBSCRIPTIONS}",
                json={"event": "sms:message:status", "identity": "all", "webhook_id": WEBHOOK_ID},
            ),
            req(
                f"POST {SUBSCRIPTIONS}",
                json={"event": "sms:unsubscription", "identity": "all", "webhook_id": WEBHOOK_ID},
            ),
        ],
        expected_result={"webhook_id": WEBHOOK_ID, "webhook_verified": True},
    ),
    CallCase(
        label="setup run again updates the webhook and adds only the missing subscription",
        call=lambda backend, account: backend.setup(account),
        responses={
            f"GET {WEBHOOKS}": [reply(200, mt("webhooks_herald.json"))],
            f"PUT {WEBHOOKS}/{WEBHOOK_ID}": [reply(200, mt("webhook_updated.json"))],
            f"GET {SUBSCRIPTIONS}": [reply(200, mt("subscriptions_status_only.json"))],
            f"POST {SUBSCRIPTIONS}": [reply(200, mt("subscription_created.json"))],
        },
        expected_requests=[
            req(f"GET {WEBHOOKS}", content_type=None),
            req(
                f"PUT {WEBHOOKS}/{WEBHOOK_ID}",
                json={"name": "Herald", "uri": HOOK_URL, "secret": "whsec-0123456789", "status": 1},
            ),
            req(f"GET {SUBSCRIPTIONS}", content_type=None),
            req(f"POST {SUBSCRIPTIONS}", json_subset={"event": "sms:unsubscription"}),
        ],
        expected_result={"webhook_id": WEBHOOK_ID, "webhook_verified": True},
    ),
    CallCase(
        label="setup answered without a webhook id: the error shows what came back, but not the webhook secret",
        call=lambda backend, account: backend.setup(account),
        responses={
            f"GET {WEBHOOKS}": [reply(200, mt("webhooks_none.json"))],
            f"POST {WEBHOOKS}": [reply(200, {"data": {"name": "Herald", "secret": "whsec-0123456789"}})],
        },
        expected_requests=[
            req(f"GET {WEBHOOKS}", content_type=None),
            req(f"POST {WEBHOOKS}", json_subset={"secret": "whsec-0123456789"}),
        ],
        expected_error=ResponseUnparseable,
    ),
    CallCase(
        label="setup without a webhook URL",
        call=lambda backend, account: backend.setup(account),
        account={"webhook_url": ""},
        expected_error=ConfigError,
    ),
    CallCase(
        label="senders with their DLT entity and review status",
        call=lambda backend, account: backend.list_senders(account),
        responses={f"GET {BASE}/sms/senders": [reply(200, mt("senders_list.json"))]},
        expected_requests=[req(f"GET {BASE}/sms/senders", content_type=None)],
        expected_result=[
            RemoteSender(
                "b6a266e1-0290-4921-b54a-f4ed1581a2b3",
                "HERALD",
                "approved",
                "T",
                "IN",
                "1101234567890123456",
                "SAMPLE COMPANY",
            ),
            RemoteSender(
                "c7b377f2-1301-4a32-a65f-05fe2692b3c4",
                "HRLDPR",
                "pending",
                "P",
                "IN",
                "1101234567890123456",
                "SAMPLE COMPANY",
            ),
        ],
    ),
    CallCase(
        label="create a sender",
        call=lambda backend, account: backend.create_sender(
            account, RemoteSender("", "HRLDTX", "pending", "T", "IN", "1101234567890123456", "SAMPLE COMPANY")
        ),
        responses={f"POST {BASE}/sms/senders": [reply(200, mt("sender_created.json"))]},
        expected_requests=[
            req(
                f"POST {BASE}/sms/senders",
                json={
                    "name": "HRLDTX",
                    "service": "T",
                    "country_code": "IN",
                    "entity_id": "1101234567890123456",
                    "entity_name": "SAMPLE COMPANY",
                },
            )
        ],
        expected_result=RemoteSender(
            "d8c488a3-2412-4b43-b760-16af37a3c4d5",
            "HRLDTX",
            "pending",
            "T",
            "IN",
            "1101234567890123456",
            "SAMPLE COMPANY",
        ),
    ),
    CallCase(
        label="a sender the vendor refuses",
        call=lambda backend, account: backend.create_sender(account, RemoteSender("", "Herald", "pending", "T", "IN")),
        responses={
            f"POST {BASE}/sms/senders": [
                reply(
                    422,
                    {
                        "status": 422,
                        "code": 422,
                        "message": "The given data was invalid.",
                        "errors": {"name": ["Transactional sender IDs are 6 capital letters or digits (TRAI)."]},
                    },
                )
            ]
        },
        expected_requests=[req(f"POST {BASE}/sms/senders")],
        expected_error=Rejected,
        expected_error_code="422",
    ),
    CallCase(
        label="templates, their type from template_type and their review status",
        call=lambda backend, account: backend.list_templates(account),
        responses={f"GET {BASE}/sms/templates": [reply(200, mt("templates_list.json"))]},
        expected_requests=[req(f"GET {BASE}/sms/templates", content_type=None)],
        expected_result=[
            RemoteTemplate(
                "329d5b16-ab52-4da3-9ba4-a9d99a3a1b2c",
                "otp",
                "1107161234567890123",
                "Your OTP is {{otp}}. Do not share it.",
                "T",
                "HERALD",
                "approved",
                True,
            ),
            RemoteTemplate(
                "a09c5d2c-d9bf-4f22-99c5-4592d0f1e2d3",
                "offer",
                "1107169876543210987",
                "नमस्ते {{name}}, आपके लिए ऑफ़र",
                "SE",
                "HRLDPR",
                "rejected",
                False,
            ),
        ],
    ),
    CallCase(
        label="create a template",
        call=lambda backend, account: backend.create_template(
            account, RemoteTemplate("", "shipped", "1107160000000000001", "Order {{order}} has shipped.", "T", "HERALD")
        ),
        responses={f"POST {BASE}/sms/templates": [reply(200, mt("template_created.json"))]},
        expected_requests=[
            req(
                f"POST {BASE}/sms/templates",
                json={
                    "sender": "HERALD",
                    "name": "shipped",
                    "body": "Order {{order}} has shipped.",
                    "template_id": "1107160000000000001",
                    "type": "T",
                },
            )
        ],
        expected_result=RemoteTemplate(
            "5f1e0c3b-7a2d-4e6f-9b8a-1c2d3e4f5a6b",
            "shipped",
            "1107160000000000001",
            "Order {{order}} has shipped.",
            "T",
            "HERALD",
            "approved",
            True,
        ),
    ),
    CallCase(
        label="unsubscribers with their scope",
        call=lambda backend, account: backend.list_unsubscribers(account),
        responses={f"GET {BASE}/sms/suppressions/unsubscribers": [reply(200, mt("unsubscribers_list.json"))]},
        expected_requests=[req(f"GET {BASE}/sms/suppressions/unsubscribers", content_type=None)],
        expected_result=[
            RemoteUnsubscriber("+919876543210", "all"),
            RemoteUnsubscriber("+919876543211", "service", "P"),
            RemoteUnsubscriber("+919876543212", "tag", "promo"),
        ],
    ),
    CallCase(
        label="unsubscribers written in national form are read in their ISO country",
        call=lambda backend, account: backend.list_unsubscribers(account),
        responses={
            f"GET {BASE}/sms/suppressions/unsubscribers": [
                reply(
                    200,
                    {
                        "code": 200,
                        "status": "OK",
                        "data": [
                            {"id": "u1", "iso": "IN", "receiver": "9876543210", "type": "all", "value": ""},
                            {"id": "u2", "iso": "FR", "receiver": "0612345678", "type": "all", "value": ""},
                        ],
                    },
                )
            ]
        },
        expected_requests=[req(f"GET {BASE}/sms/suppressions/unsubscribers", content_type=None)],
        expected_result=[RemoteUnsubscriber("+919876543210", "all"), RemoteUnsubscriber("+33612345678", "all")],
    ),
    CallCase(
        label="create an unsubscriber",
        call=lambda backend, account: backend.create_unsubscriber(
            account, RemoteUnsubscriber("+919876543210", "sender", "HERALD")
        ),
        responses={f"POST {BASE}/sms/suppressions/unsubscribers": [reply(200, mt("unsubscriber_created.json"))]},
        expected_requests=[
            req(
                f"POST {BASE}/sms/suppressions/unsubscribers",
                json={"receiver": "919876543210", "type": "sender", "value": "HERALD"},
            )
        ],
        expected_result=RemoteUnsubscriber("+919876543210", "sender", "HERALD"),
    ),
]


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.label)
def test_call(case, harness):
    harness.run_call_case(MobtextingBackend, case, base_path=BASE, secrets=SECRETS)


# --- The status mapping, in full ----------------------------------------------------------------------

D, U, E, R, F, SU, SE = (
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.EXPIRED,
    Status.REJECTED,
    Status.FAILED,
    Status.SUBMITTED,
    Status.SENT,
)
EXPECTED_WORDS = {
    "AWAITING-DLR": SU,
    "SCHEDULED": SU,
    "ENROUTE": SE,
    "EN_ROUTE": SE,
    "DELIVRD": D,
    "DELIVERED": D,
    "UNDELIV": U,
    "UNDELIVERABLE": U,
    "EXPIRED": E,
    "DELETED": F,
    "REJECTD": R,
    "INVALID-SUB": U,
    "ABSENT-SUB": U,
    "HANDSET-ERR": U,
    "HANDSET-BUSY": U,
    "BARRED": U,
    "NET-ERR": U,
    "MEMEXEC": U,
    "MOB-OFF": U,
    "SERIES-BLK": U,
    "FAILED": U,
    "REJ-MULTIPART": U,
    "SERIES-BLOCK": R,
    "NO-CREDITS": R,
    "NO-ACCOUNT": R,
    "SERVER-ERR": F,
    "INV-NUMBER": R,
    "SPAM": R,
    "DNDNUMB": R,
    "BLACKLST": R,
    "SNDR-BLOCK": R,
    "TEMPLATE-NOT-FOUND": R,
    "INV-TEMPLATE": R,
    "INV-SENDER": R,
    "NOT-OPTIN": R,
    "OPTOUT-REJ": R,
    "PROMO-TMOUT": R,
    "REJECTED": R,
    "NOTALLOWED": R,
    "DUPLICATE": R,
    "THROTTLED": R,
    "DLT-REJECTED": R,
    "DLT-INV-TMID": R,
    "DLT-INV-ENTITY": R,
    "DLT-INV-TM-ID": R,
    "DLT-TM-VAR-EXECEED": R,
    "DLT-ENTITY-NOT-FOUND": R,
    "DLT-TM-BLACKLST": R,
    "DLT-ENTITY-BLACKLST": R,
    "DLT-HEADER-INACTIVE": R,
    "DLT-TM-INACTIVE": R,
    "DLT-SENDER-NOT-REG-TM": R,
    "INV-PROVISION": R,
    "INV-SERVICE": R,
    "INV-SCHEDULE": R,
    "INV-PEID": R,
    "INV-TMID": R,
    "INV-ENTITY": R,
}
EXPECTED_CODES = {
    "000": D,
    **{
        c: U
        for c in (
            "001",
            "002",
            "003",
            "004",
            "005",
            "006",
            "007",
            "008",
            "009",
            "010",
            "011",
            "012",
            "013",
            "014",
            "015",
            "016",
            "017",
            "018",
            "019",
            "020",
            "034",
            "045",
            "099",
        )
    },
    "021": E,
    "400": R,
    "401": R,
    "402": R,
    "403": F,
    "404": R,
    "405": F,
    "406": F,
    "407": R,
    "408": R,
    "430": F,
    "431": F,
    "432": F,
    "433": F,
    "450": R,
    "451": R,
    "452": R,
    "453": R,
    "454": R,
    "455": R,
    "456": R,
    "457": R,
    "458": R,
    "459": R,
    "460": R,
    "461": U,
    "462": F,
    "463": R,
    "777": R,
    "778": U,
    "780": R,
    "781": R,
    "782": R,
    "783": R,
    "784": R,
    "785": R,
    "786": R,
    "787": R,
    "788": R,
    "789": R,
    "790": R,
    "791": R,
    "792": R,
}


def test_every_status_word_and_code_is_in_the_table():
    assert set(STATUS_MAP) == set(EXPECTED_WORDS)
    assert set(ERROR_CODES) == set(EXPECTED_CODES)
    assert {word for word, _status, _text in ERROR_CODES.values()} <= set(STATUS_MAP)


@pytest.mark.parametrize(("word", "expected"), EXPECTED_WORDS.items())
def test_status_word_maps(word, expected):
    assert classify(word)[0] is expected
    assert classify(word.lower())[0] is expected


@pytest.mark.parametrize(("code", "expected"), EXPECTED_CODES.items())
def test_error_code_maps(code, expected):
    status, kept_code, text = classify(ERROR_CODES[code][0], code)
    assert (status, kept_code, text) == (expected, code, ERROR_CODES[code][2])


# A failure word without a code of its own → the words a person reads for it (the seed's lifecycle descriptions,
# or what the codes that share the word say).
WORD_TEXT_TABLE = [
    ("UNDELIV", UNDELIVERABLE),
    ("UNDELIVERABLE", UNDELIVERABLE),
    ("DELETED", "Message has been deleted. The message has been cancelled or deleted from the MC."),
    ("HANDSET-ERR", "Illegal equipment / MS does not support SMS / MS is receiving an error"),
    ("INVALID-SUB", "Unidentified subscriber / Illegal subscriber"),
    ("NET-ERR", "Facility not supported / Gateway mobile switching error / Resources cannot be used at the GMSC "
     "level / Submission error or invalid input data"),
    ("SERVER-ERR", "Unknown Error / ESME client error"),
    ("INV-PEID", "DLT rejection: invalid principal entity (PE) id."),
]  # fmt: skip


@pytest.mark.parametrize(("word", "words"), WORD_TEXT_TABLE)
def test_a_failure_word_without_a_code_of_its_own_reads_as_words(word, words):
    assert classify(word) == (STATUS_MAP[word], "", words)
    assert classify(word, "034")[1:] == ("034", "Unknown Error"), "a code, when given, says it more precisely"


def test_every_failure_word_reads_as_words():
    failures = {Status.UNDELIVERED, Status.REJECTED, Status.EXPIRED, Status.FAILED}
    assert [w for w, status in STATUS_MAP.items() if status in failures and not classify(w)[2]] == []


def test_a_code_sent_as_a_number_is_padded():
    assert classify("EXPIRED", "21") == (Status.EXPIRED, "021", "SMS timeout")


def test_the_verification_token_never_shows_the_secret():
    token = json.dumps(HANDSHAKE_TOKEN)
    assert "whsec" not in token and len(HANDSHAKE_TOKEN) == 32
