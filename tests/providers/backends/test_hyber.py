"""Golden cases for the Hyber / GMS backend (seed 003, PROVIDERS.md § Hyber)."""

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from providers.backends.base import (
    Account,
    AuthenticationFailed,
    CheckResult,
    ConfigError,
    ConnectionFailed,
    MessageRef,
    NotReadyYet,
    PollQuery,
    Recipient,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
    is_account_problem,
)
from providers.backends.hyber import ERROR_CODES, STATUS_MAP, HyberBackend, LoginRefused, dr_base_url
from tests.providers.backends.harness import (
    CallbackCase,
    CallCase,
    PollCase,
    SendCase,
    fixture_json,
    frame,
    rejected,
    reply,
    req,
    submitted,
    timeout_reply,
    update,
)

SECRETS = {"login": "gms-login-7", "api_key": "gms-password-123"}
OPTIONS = {"client_id": "2157"}
AUTH = {"Authorization": "Basic " + base64.b64encode(b"gms-login-7:gms-password-123").decode()}
WEBHOOK = "https://herald.example/hooks/test/0b3f…/"  # the harness account's webhook_url
SEND = "POST /2157"
MESSAGE_ID = "9f60ac8f-e721-5027-b838-e6fcb95fcd7a"
PHONE = "+380961111111"
AT = datetime(2016, 10, 25, 17, 41, 34, 667000, tzinfo=UTC)  # 1477417294667 ms, the docs' example time


def dr(path: str) -> str:
    return f"GET /dr/2157/api/dr/{path}/simple"


def sms_body(text: str, *, extra_id: str = "ref-1", alpha_name: str = "Herald", ttl: int = 300) -> dict:
    """The body Herald sends for a plain SMS frame from the harness account."""
    return {
        "phone_number": 380961111111,
        "extra_id": extra_id,
        "callback_url": WEBHOOK,
        "channels": ["sms"],
        "channel_options": {"sms": {"text": text, "alpha_name": alpha_name, "ttl": ttl}},
    }


LONG_TEXT = "Your parcel is on its way. " * 15  # 405 GSM characters: three parts, still one request
UNICODE_TEXT = "Привіт! Ваше замовлення №42 вже в дорозі 🚚"
SEED_FRAME = frame(
    [PHONE],
    "Text for SMS",
    refs=["AD-6640-7006"],
    sender="GMSU",
    campaign_name="Campaign name",
    send_at=datetime(2020, 12, 12, 10, 10, 10, tzinfo=timezone(timedelta(hours=3))),
)
SEED_ACCOUNT = {"webhook_url": "https://send-dr-here.com"}

SEND_CASES = [
    SendCase(
        label="the seed's SMS example, byte for byte in fields, nesting and JSON types",
        frame=SEED_FRAME,
        account=SEED_ACCOUNT,
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=fixture_json("hyber/send_request_sms.json"))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="AD-6640-7006")],
    ),
    SendCase(
        label="plain text, the full frame of one recipient",
        frame=frame([PHONE], "Hello"),
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=sms_body("Hello"))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
    ),
    SendCase(
        label="unicode text",
        frame=frame([PHONE], UNICODE_TEXT),
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, json=sms_body(UNICODE_TEXT))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
    ),
    SendCase(
        label="multi-part text goes whole in one request (Hyber splits it)",
        frame=frame([PHONE], LONG_TEXT),
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, json=sms_body(LONG_TEXT))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
    ),
    SendCase(
        label="a personalised text is sent as that recipient's text",
        frame=replace(frame([PHONE], "Hi {{name}}"), recipients=[Recipient("ref-1", PHONE, text="Hi Olena")]),
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, json=sms_body("Hi Olena"))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
    ),
    SendCase(
        label="a viber frame cascades to sms as the account's channels say, ttl clamped per channel",
        frame=frame(
            [PHONE],
            "Text for Viber",
            refs=["AD-6640-7006"],
            channel="viber",
            sender="GMSU",
            campaign_name="Campaign name",
        ),
        account={**SEED_ACCOUNT, "options": {**OPTIONS, "channels": ["viber", "sms"], "ttl": 60}},
        responses={SEND: [reply(200, "hyber/send_ok.json")]},
        expected_requests=[req(SEND, json=fixture_json("hyber/send_request_viber_sms.json"))],
        expected_results=[submitted(PHONE, MESSAGE_ID, ref="AD-6640-7006")],
    ),
    SendCase(
        label="phone number incorrect (36024) rejects the recipient",
        frame=frame([PHONE]),
        responses={SEND: [reply(400, "hyber/send_phone_incorrect.json")]},
        expected_requests=[req(SEND, json=sms_body("Hello"))],
        expected_results=[rejected(PHONE, "36024", "Phone number incorrect", ref="ref-1")],
    ),
    SendCase(
        label="the same refusal inside a 200 body rejects the recipient too",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, "hyber/send_phone_incorrect.json")]},
        expected_requests=[req(SEND, json=sms_body("Hello"))],
        expected_results=[rejected(PHONE, "36024", "Phone number incorrect", ref="ref-1")],
    ),
    SendCase(
        label="a missing mandatory parameter rejects the request with Hyber's words",
        frame=frame([PHONE], sender=""),
        responses={SEND: [reply(400, "hyber/send_parameter_missing.json")]},
        expected_requests=[req(SEND, json=sms_body("Hello", alpha_name=""))],
        expected_error=Rejected,
        expected_error_code="36004",
        expected_error_contains="Mandatory parameter is missing: channel_options.sms.alpha_name",
    ),
    SendCase(
        label="an address that is not a phone number is rejected without a request",
        frame=frame(["olena@example.com"]),
        expected_results=[
            rejected("olena@example.com", "", "Not a phone number: Hyber sends to phone numbers only.", ref="ref-1")
        ],
    ),
    SendCase(
        label="401: Hyber refused the login/password",
        frame=frame([PHONE]),
        responses={SEND: [reply(401, "hyber/auth_failed.json")]},
        expected_requests=[req(SEND, headers=AUTH)],
        expected_error=ResponseStatusError,
        expected_error_code="36001",
        expected_error_contains="Authorization failed",
    ),
    SendCase(
        label="36001 inside a 200 body is a refused login too",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, "hyber/auth_failed.json")]},
        expected_requests=[req(SEND, headers=AUTH)],
        expected_error=LoginRefused,
        expected_error_code="36001",
        expected_error_contains="Authorization failed",
    ),
    SendCase(
        label="429 is retried after Retry-After",
        frame=frame([PHONE]),
        responses={SEND: [reply(429, "", headers={"Retry-After": "7"})]},
        expected_requests=[req(SEND)],
        expected_error=Throttled,
        expected_retry_after=7.0,
    ),
    SendCase(
        label="5xx is retried",
        frame=frame([PHONE]),
        responses={SEND: [reply(503, "Service Unavailable", content_type="text/plain")]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a timeout is retried (extra_id lets recovery find a message that did arrive)",
        frame=frame([PHONE]),
        responses={SEND: [timeout_reply(3.0)]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a body that is not JSON is unparseable",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, "<html>gateway</html>", content_type="text/html")]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="JSON without message_id or error_code is unparseable",
        frame=frame([PHONE]),
        responses={SEND: [reply(200, {"accepted": True})]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="an account without client_id is a configuration error",
        frame=frame([PHONE]),
        account={"options": {}},
        expected_error=ConfigError,
    ),
    SendCase(
        label="a ttl option that is not a number is a configuration error",
        frame=frame([PHONE]),
        account={"options": {**OPTIONS, "ttl": "five minutes"}},
        expected_error=ConfigError,
    ),
    SendCase(
        label="a channel Hyber does not carry is a configuration error",
        frame=frame([PHONE], channel="email"),
        expected_error=ConfigError,
    ),
    SendCase(
        label="more than one recipient in a frame is refused before any request",
        frame=frame([PHONE, "+380962222222"]),
        expected_error=ConfigError,
    ),
]


def secret_in_url(account, method, headers, query, body):
    """Hyber does not sign: Herald's webhook URL carries the account's secret."""
    return headers, {**query, "secret": account.webhook_secret}


def dlr(status: Status | None, raw: str, code: str, **kwargs) -> StatusUpdate:
    kwargs.setdefault("provider_message_id", MESSAGE_ID)
    kwargs.setdefault("external_ref", "AD-6640-7006")
    kwargs.setdefault("address", PHONE)
    return update(status, raw=raw, code=code, occurred_at=AT, **kwargs)


CALLBACK_CASES = [
    CallbackCase(
        label="2/23 delivered",
        body="hyber/dlr_delivered.json",
        expected_updates=[dlr(Status.DELIVERED, "2/23", "23011")],
        expected_response_body="",
    ),
    CallbackCase(
        label="3/35 not delivered",
        body="hyber/dlr_undelivered.json",
        expected_updates=[dlr(Status.UNDELIVERED, "3/35", "35015", text="Not delivered")],
    ),
    CallbackCase(
        label="3/26 not delivered within the TTL is expired",
        body="hyber/dlr_expired.json",
        expected_updates=[
            dlr(Status.EXPIRED, "3/26", "26011", text="Not delivered within the message's time to live (TTL)")
        ],
    ),
    CallbackCase(
        label="3/36 sending error (phone number incorrect) is rejected",
        body="hyber/dlr_sending_error.json",
        expected_updates=[dlr(Status.REJECTED, "3/36", "36024", text="Phone number incorrect")],
    ),
    CallbackCase(
        label="-1 not sent to any channel is rejected",
        body="hyber/dlr_not_sent.json",
        expected_updates=[dlr(Status.REJECTED, "-1/36", "36050", text="Not sent to any channel")],
    ),
    CallbackCase(
        label="1/11 sending started is sent",
        body="hyber/dlr_sending_started.json",
        expected_updates=[dlr(Status.SENT, "1/11", "11000")],
    ),
    CallbackCase(
        label="1/12 accepted for processing is submitted",
        body="hyber/dlr_accepted.json",
        expected_updates=[dlr(Status.SUBMITTED, "1/12", "12000")],
    ),
    CallbackCase(
        label="a batch of reports as an array, in order",
        body="hyber/dlr_batch.json",
        expected_updates=[
            dlr(Status.DELIVERED, "2/23", "23011"),
            dlr(
                Status.UNDELIVERED,
                "3/35",
                "35015",
                text="Not delivered",
                provider_message_id="0b7c2f4e-51d6-5c3a-9e4f-2a8f6b1d7e90",
                external_ref="AD-6640-7007",
                address="+380962222222",
            ),
        ],
    ),
    CallbackCase(
        label="numbers sent as strings and status_text are read too",
        body="hyber/dlr_delivered_as_strings.json",
        expected_updates=[dlr(Status.DELIVERED, "2/23", "23011", text="SMS delivered")],
    ),
    CallbackCase(
        label="an unknown status is kept as an unknown update with its payload",
        body="hyber/dlr_unknown_status.json",
        expected_updates=[
            replace(
                dlr(None, "7/71", "71001"),
                kind=UpdateKind.UNKNOWN,
                payload=fixture_json("hyber/dlr_unknown_status.json"),
            )
        ],
        compare_payload=True,
    ),
    CallbackCase(
        label="Hyber sends no opt-out events: a subscriber's STOP reply is stored as unknown, not unsubscribed",
        body="hyber/reply_from_subscriber.json",
        expected_updates=[
            StatusUpdate(
                kind=UpdateKind.UNKNOWN,
                provider_message_id=MESSAGE_ID,
                external_ref="AD-6640-7006",
                address=PHONE,
                payload=fixture_json("hyber/reply_from_subscriber.json"),
            )
        ],
        compare_payload=True,
    ),
    CallbackCase(
        label="a wrong URL secret is not authentic",
        body="hyber/dlr_delivered.json",
        sign=False,
        query={"secret": "whsec-forged"},
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="a callback without the URL secret is not authentic",
        body="hyber/dlr_delivered.json",
        sign=False,
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(label="a malformed body is unparseable", body=b'{"status": 2,', expected_error=ResponseUnparseable),
    CallbackCase(label="an empty body is unparseable", body=b"", expected_error=ResponseUnparseable),
]

POLL_CASES = [
    PollCase(
        label="by extra_id: delivered",
        query=PollQuery(messages=[MessageRef("AD-6640-7006", PHONE)]),
        responses={dr("external/AD-6640-7006"): [reply(200, "hyber/dr_simple_delivered.json")]},
        expected_requests=[req(dr("external/AD-6640-7006"), headers=AUTH, content_type=None)],
        expected_updates=[dlr(Status.DELIVERED, "2/23", "23011")],
    ),
    PollCase(
        label="by message id when Herald knows it",
        query=PollQuery(messages=[MessageRef("AD-6640-7006", PHONE, MESSAGE_ID)]),
        responses={dr(MESSAGE_ID): [reply(200, "hyber/dr_simple_in_progress.json")]},
        expected_requests=[req(dr(MESSAGE_ID), content_type=None)],
        expected_updates=[dlr(Status.SUBMITTED, "1/12", "12000")],
    ),
    PollCase(
        label="not found, too early and no final status yet give no update; the others still come",
        query=PollQuery(messages=[MessageRef(ref, PHONE) for ref in ("gone", "early", "pending", "AD-6640-7006")]),
        responses={
            dr("external/gone"): [reply(404, "hyber/dr_not_found.json")],
            dr("external/early"): [reply(425, "hyber/dr_not_ready.json")],
            dr("external/pending"): [reply(200, "hyber/dr_simple_no_final_status.json")],
            dr("external/AD-6640-7006"): [reply(200, "hyber/dr_simple_delivered.json")],
        },
        expected_requests=[
            req(dr(f"external/{ref}"), content_type=None) for ref in ("gone", "early", "pending", "AD-6640-7006")
        ],
        expected_updates=[dlr(Status.DELIVERED, "2/23", "23011")],
    ),
    PollCase(
        label="an extra_id is escaped in the path",
        query=PollQuery(messages=[MessageRef("a/b c", PHONE)]),
        responses={dr("external/a%2Fb%20c"): [reply(404, "")]},
        expected_requests=[req(dr("external/a%2Fb%20c"), content_type=None)],
    ),
    PollCase(
        label="401 on the pull is an error",
        query=PollQuery(messages=[MessageRef("AD-6640-7006", PHONE)]),
        responses={dr("external/AD-6640-7006"): [reply(401, "hyber/auth_failed.json")]},
        expected_requests=[req(dr("external/AD-6640-7006"), content_type=None)],
        expected_error=ResponseStatusError,
        expected_error_code="36001",
    ),
    PollCase(
        label="a report without a status is unparseable",
        query=PollQuery(messages=[MessageRef("AD-6640-7006", PHONE)]),
        responses={dr("external/AD-6640-7006"): [reply(200, {"phone_number": "380961111111"})]},
        expected_requests=[req(dr("external/AD-6640-7006"), content_type=None)],
        expected_error=ResponseUnparseable,
    ),
    PollCase(
        label="a report with NaN, which is not JSON and could not be stored, is unparseable",
        query=PollQuery(messages=[MessageRef("AD-6640-7006", PHONE)]),
        responses={dr("external/AD-6640-7006"): [reply(200, '{"status": 2, "hyber_status": 23011, "price": NaN}')]},
        expected_requests=[req(dr("external/AD-6640-7006"), content_type=None)],
        expected_error=ResponseUnparseable,
    ),
]

LOOKUP = dr("external/ref-1")
CALL_CASES = [
    CallCase(
        label="recover: a report that echoes the login and password is an error that shows neither",
        call=lambda backend, account: backend.recover(account, frame([PHONE])),
        responses={LOOKUP: [reply(200, {"login": "gms-login-7", "password": "gms-password-123"})]},
        expected_requests=[req(LOOKUP, headers=AUTH, content_type=None)],
        expected_error=ResponseUnparseable,
    ),
    CallCase(
        label="recover: a message Hyber has is settled as submitted with its id",
        call=lambda backend, account: backend.recover(account, frame([PHONE])),
        responses={LOOKUP: [reply(200, "hyber/dr_simple_in_progress.json")]},
        expected_requests=[req(LOOKUP, headers=AUTH, content_type=None)],
        expected_result=[submitted(PHONE, MESSAGE_ID, ref="ref-1")],
    ),
    CallCase(
        label="recover: a message Hyber never got is left out, to be resent",
        call=lambda backend, account: backend.recover(account, frame([PHONE])),
        responses={LOOKUP: [reply(404, "hyber/dr_not_found.json")]},
        expected_requests=[req(LOOKUP, content_type=None)],
        expected_result=[],
    ),
    CallCase(
        label="recover: within ~10 s of the send Hyber cannot tell yet, so try again later",
        call=lambda backend, account: backend.recover(account, frame([PHONE])),
        responses={LOOKUP: [reply(425, "hyber/dr_not_ready.json")]},
        expected_requests=[req(LOOKUP, content_type=None)],
        expected_error=NotReadyYet,
        expected_error_code="36101",
    ),
    CallCase(
        label="check: an unknown extra_id answered 404 proves the login",
        call=lambda backend, account: backend.check(account),
        responses={dr("external/herald-connection-check"): [reply(404, "hyber/dr_not_found.json")]},
        expected_requests=[req(dr("external/herald-connection-check"), headers=AUTH, content_type=None)],
        expected_result=CheckResult(True, "Connected: Hyber accepted the login/password (it has no balance API)."),
    ),
    CallCase(
        label="check: 401 means Hyber refused the login/password",
        call=lambda backend, account: backend.check(account),
        responses={dr("external/herald-connection-check"): [reply(401, "hyber/auth_failed.json")]},
        expected_requests=[req(dr("external/herald-connection-check"), content_type=None)],
        expected_result=CheckResult(False, "Hyber refused the login/password"),
    ),
    CallCase(
        label="check: any other refusal shows Hyber's message",
        call=lambda backend, account: backend.check(account),
        responses={
            dr("external/herald-connection-check"): [
                reply(400, {"error_code": 36005, "error_text": "Parameter incorrect: client_id"})
            ]
        },
        expected_requests=[req(dr("external/herald-connection-check"), content_type=None)],
        expected_result=CheckResult(False, "hyber answered HTTP 400: Parameter incorrect: client_id"),
    ),
    CallCase(
        label="setup: nothing to create, every message carries its callback_url",
        call=lambda backend, account: backend.setup(account),
        expected_result={},
    ),
]


def with_options(case):
    """Every row runs on an account with a client_id unless it says otherwise."""
    return replace(case, account={"options": OPTIONS, **case.account})


@pytest.mark.parametrize("case", SEND_CASES, ids=lambda c: c.label)
def test_send(case, harness):
    harness.run_send_case(HyberBackend, with_options(case), secrets=SECRETS)


@pytest.mark.parametrize("case", CALLBACK_CASES, ids=lambda c: c.label)
def test_callback(case, harness):
    harness.run_callback_case(HyberBackend, case, signer=secret_in_url, secrets=SECRETS)


@pytest.mark.parametrize("case", POLL_CASES, ids=lambda c: c.label)
def test_poll(case, harness):
    harness.run_poll_case(HyberBackend, with_options(case), secrets=SECRETS)


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.label)
def test_call(case, harness):
    harness.run_call_case(HyberBackend, with_options(case), secrets=SECRETS)


EXPECTED_STATUSES = {
    "1": Status.SENT,
    "1/11": Status.SENT,
    "1/12": Status.SUBMITTED,
    "2": Status.DELIVERED,
    "2/23": Status.DELIVERED,
    "3": Status.UNDELIVERED,
    "3/35": Status.UNDELIVERED,
    "3/26": Status.EXPIRED,
    "3/36": Status.REJECTED,
    "-1": Status.REJECTED,
}
EXPECTED_ERRORS = {
    "36001": LoginRefused,
    "36002": Rejected,
    "36003": Rejected,
    "36004": Rejected,
    "36005": Rejected,
    "36006": Rejected,
    "36011": Rejected,
    "36012": Rejected,
    "36024": Status.REJECTED,
}


def test_the_status_and_error_tables_are_the_documented_ones():
    assert STATUS_MAP == EXPECTED_STATUSES
    assert ERROR_CODES == EXPECTED_ERRORS


def test_a_refused_login_is_the_accounts_problem_whatever_the_http_status():
    """36001 in a 400 or a 200 body (see the send cases) pauses the campaign, as a 401 does: fix credentials."""
    assert is_account_problem(LoginRefused("Hyber refused the request: 36001 Authorization failed"))
    assert LoginRefused("").field == "credentials"


@pytest.mark.parametrize("raw, expected", EXPECTED_STATUSES.items())
def test_each_vendor_status_maps_to_its_canonical_status(raw, expected):
    status, _, substatus = raw.partition("/")
    report = {"status": int(status), "message_id": MESSAGE_ID} | ({"substatus": int(substatus)} if substatus else {})
    account = Account(kind="hyber", base_url="", credentials={}, webhook_secret="whsec-0123456789")
    parsed = HyberBackend().parse_callback(
        account, method="POST", headers={}, query={"secret": "whsec-0123456789"}, body=json.dumps(report).encode()
    )
    assert [(u.kind, u.raw_status, u.status) for u in parsed.updates] == [(UpdateKind.STATUS, raw, expected)]


# A code Herald does not know (36999) is still a permanent refusal of the request.
@pytest.mark.parametrize("code, outcome", [*EXPECTED_ERRORS.items(), ("36999", Rejected)])
def test_each_send_error_code_has_its_outcome(code, outcome, harness):
    recipient_refused = outcome is Status.REJECTED
    case = SendCase(
        label=code,
        frame=frame([PHONE]),
        responses={SEND: [reply(400, {"error_code": int(code), "error_text": "Hyber's words"})]},
        expected_requests=[req(SEND)],
        expected_results=[rejected(PHONE, code, "Hyber's words", ref="ref-1")] if recipient_refused else [],
        expected_error=None if recipient_refused else outcome,
        expected_error_code="" if recipient_refused else code,
        expected_error_contains="" if recipient_refused else "Hyber's words",
    )
    harness.run_send_case(HyberBackend, with_options(case), secrets=SECRETS)


@pytest.mark.parametrize(
    "base_url, options, expected",
    [
        ("https://api-v2.hyber.im", {}, "https://dr-v2.hyber.im"),
        ("https://api-v2-ua.hyber.im", {}, "https://dr-v2-ua.hyber.im"),
        ("http://127.0.0.1:8025/hyber", {}, "http://127.0.0.1:8025/hyber/dr"),
        ("https://api-v2.hyber.im", {"dr_base_url": "https://reports.example/"}, "https://reports.example"),
    ],
)
def test_the_dr_pull_lives_beside_the_send_api(base_url, options, expected):
    assert dr_base_url(Account(kind="hyber", base_url=base_url, credentials={}, options=options)) == expected
