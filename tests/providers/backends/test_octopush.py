"""Golden cases for the Octopush backend: rows of data, checked by the shared harness (STYLE.md §5)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote_plus

import pytest

from providers.backends.base import (
    AuthenticationFailed,
    CheckResult,
    ConfigError,
    ConnectionFailed,
    Recipient,
    Rejected,
    ResponseStatusError,
    ResponseUnparseable,
    Status,
    StatusUpdate,
    Throttled,
    UpdateKind,
)
from providers.backends.octopush import ERROR_CODES, STATUS_MAP, OctopushBackend
from tests.providers.backends.harness import (
    CallbackCase,
    CallCase,
    SendCase,
    dropped_reply,
    fixture_json,
    frame,
    opt_out,
    reply,
    req,
    submitted,
    timeout_reply,
    update,
)

SECRETS = {"login": "herald@example.com", "api_key": "KEY-0123456789"}
ODD_KEY = 'K3y/0123"456\\é789'  # a key that JSON and URLs write escaped
AUTH = {"api-login": "herald@example.com", "api-key": "KEY-0123456789"}
BASE = "/v1/public"
SEND = "POST /v1/public/multi-channel/send"
SEND_PERSONALISED = "POST /v1/public/sms-campaign/send"
BALANCE = "GET /v1/public/wallet/check-balance"
TICKET = "sms_5f3fbce61266e"
A, B = "+33601020304", "+33605060708"
LONG_TEXT = "Votre rendez-vous est confirmé. " * 12  # 384 GSM-7 characters: three parts
PERSONAL_TEXT = "Bonjour {{first_name}}, votre code est {{code}}. STOP au XXXXX"


def _personalised_frame():
    recipients = [
        Recipient("ref-1", A, "Bonjour Ana, votre code est 12. STOP au XXXXX", {"first_name": "Ana", "code": "12"}),
        Recipient("ref-2", B, "Bonjour Léo, votre code est 34. STOP au XXXXX", {"first_name": "Léo", "code": "34"}),
    ]
    return replace(frame([A, B], PERSONAL_TEXT, purpose="promotional"), recipients=recipients)


def _sent(*addresses, ticket=TICKET, parts=1, cost=0.065):
    return [submitted(a, ticket, ref=f"ref-{i + 1}", parts=parts, cost=cost) for i, a in enumerate(addresses)]


def _already_accepted(*addresses):
    return [submitted(a, "", ref=f"ref-{i + 1}") for i, a in enumerate(addresses)]


FULL_FRAME = [f"+336{i:08d}" for i in range(500)]

SEND_CASES = [
    SendCase(
        label="the seed's example, field for field",
        frame=frame(
            ["+33111222333", "+33111222334"],
            "Hello, this is a test message.",
            sender="SenderName",
            send_at=datetime(2024, 12, 19, 10, 0, tzinfo=timezone(timedelta(hours=-7))),
            campaign_name="sms_list",
        ),
        account={"options": {"with_replies": True}},
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[req(SEND, headers=AUTH, json=fixture_json("octopush/request_seed_example.json"))],
        expected_results=_sent("+33111222333", "+33111222334"),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="plain text to two recipients, one sms_ticket for both",
        frame=frame([A, B]),
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[
            req(
                SEND,
                headers=AUTH,
                json={
                    "channel": "sms",
                    "text": "Hello",
                    "recipients": [{"phone_number": A}, {"phone_number": B}],
                    "sender": "Herald",
                    "purpose": "alert",
                    "simulation_mode": False,
                    "metadata": {"type": "sms_premium", "with_replies": False, "request_id": "frame-1"},
                },
            )
        ],
        expected_results=_sent(A, B),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="unicode text goes as it is",
        frame=frame([A, B], "Votre code : 4821 — à bientôt ✓"),
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[req(SEND, json_subset={"text": "Votre code : 4821 — à bientôt ✓"})],
        expected_results=_sent(A, B),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="a multi-part text costs three parts each",
        frame=frame([A, B], LONG_TEXT),
        responses={SEND: [reply(201, "octopush/send_ok_multipart.json")]},
        expected_requests=[req(SEND, json_subset={"text": LONG_TEXT})],
        expected_results=_sent(A, B, parts=3, cost=0.195),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="a full frame of 500 recipients in one request",
        frame=frame(FULL_FRAME),
        responses={SEND: [reply(201, "octopush/send_ok_full_frame.json")]},
        expected_requests=[req(SEND, json_subset={"recipients": [{"phone_number": a} for a in FULL_FRAME]})],
        expected_results=_sent(*FULL_FRAME),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="promotional, scheduled, named: wholesale with send_at and list_name",
        frame=frame(
            [A],
            "Soldes -20% STOP au XXXXX",
            purpose="promotional",
            campaign_name="spring-sale",
            send_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        ),
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[
            req(
                SEND,
                json_subset={
                    "purpose": "wholesale",
                    "send_at": "2025-03-01T09:30:00+00:00",
                    "list_name": "spring-sale",
                },
            )
        ],
        expected_results=_sent(A),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="personalised texts go to sms-campaign/send with param1 and param2",
        frame=_personalised_frame(),
        responses={SEND_PERSONALISED: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[
            req(
                SEND_PERSONALISED,
                headers=AUTH,
                json={
                    "text": "Bonjour {param1}, votre code est {param2}. STOP au XXXXX",
                    "recipients": [
                        {"phone_number": A, "param1": "Ana", "param2": "12"},
                        {"phone_number": B, "param1": "Léo", "param2": "34"},
                    ],
                    "sender": "Herald",
                    "purpose": "wholesale",
                    "simulation_mode": False,
                    "type": "sms_premium",
                    "with_replies": False,
                    "request_id": "frame-1",
                },
            )
        ],
        expected_results=_sent(A, B),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="the same request_id again: 120 settles the frame as accepted",
        frame=frame([A, B]),
        responses={SEND: [reply(400, "octopush/error_duplicate_request_id.json")]},
        expected_requests=[req(SEND, json_subset={"metadata": {"request_id": "frame-1"}})],
        expected_results=_already_accepted(A, B),
        expected_already_accepted=True,
    ),
    SendCase(
        label="STOP mention missing: rejected with code 121",
        frame=frame([A], "Soldes -20%", purpose="promotional"),
        responses={SEND: [reply(400, "octopush/error_stop_missing.json")]},
        expected_requests=[req(SEND, json_subset={"purpose": "wholesale"})],
        expected_error=Rejected,
        expected_error_code="121",
        expected_error_contains="Mention STOP is missing.",
    ),
    SendCase(
        label="a refusal in a 200 body is still a refusal",
        frame=frame([A], "Soldes -20%", purpose="promotional"),
        responses={SEND: [reply(200, "octopush/error_stop_missing.json")]},
        expected_requests=[req(SEND)],
        expected_error=Rejected,
        expected_error_code="121",
        expected_error_contains="Mention STOP is missing.",
    ),
    SendCase(
        label="out of credit (104): the account to fix, not the text",
        frame=frame([A]),
        responses={SEND: [reply(400, "octopush/error_no_credit.json")]},
        expected_requests=[req(SEND)],
        expected_error=ConfigError,
        expected_error_code="104",
        expected_error_contains="You have run out of credit.",
    ),
    SendCase(
        label="bad sender: rejected with code 106",
        frame=frame([A], sender="Hé!"),
        responses={SEND: [reply(400, "octopush/error_bad_sender.json")]},
        expected_requests=[req(SEND, json_subset={"sender": "Hé!"})],
        expected_error=Rejected,
        expected_error_code="106",
        expected_error_contains="You have entered the Sender incorrectly",
    ),
    SendCase(
        label="payload validation error names the field",
        frame=frame([A], "x" * 1300),
        responses={SEND: [reply(400, "octopush/error_validation.json")]},
        expected_requests=[req(SEND)],
        expected_error=Rejected,
        expected_error_code="400",
        expected_error_contains="Payload validation error. text: Your text exceeds 1224 characters. (code 102)",
    ),
    SendCase(
        label="route congested: throttled, try later",
        frame=frame([A]),
        responses={SEND: [reply(400, {"code": 153, "message": "The route is congested."})]},
        expected_requests=[req(SEND)],
        expected_error=Throttled,
        expected_error_code="153",
    ),
    SendCase(
        label="401 wrong credentials: the vendor's message, not retried; the account's credentials to fix",
        frame=frame([A]),
        responses={SEND: [reply(401, "octopush/error_login.json")]},
        expected_requests=[req(SEND)],
        expected_error=ConfigError,
        expected_error_code="101",
        expected_error_contains="Incorrect login details.",
    ),
    SendCase(
        label="401 without a body",
        frame=frame([A]),
        responses={SEND: [reply(401, "")]},
        expected_requests=[req(SEND)],
        expected_error=ResponseStatusError,
    ),
    SendCase(
        label="429 is throttled with the Retry-After delay",
        frame=frame([A]),
        responses={SEND: [reply(429, {"code": 429, "message": "Too Many Requests"}, headers={"Retry-After": "7"})]},
        expected_requests=[req(SEND)],
        expected_error=Throttled,
        expected_error_code="429",
        expected_retry_after=7.0,
    ),
    SendCase(
        label="503 is a retryable connection failure",
        frame=frame([A]),
        responses={SEND: [reply(503, {"code": 503, "message": "Service temporarily unavailable"})]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
        expected_error_code="503",
    ),
    SendCase(
        label="a timeout is a retryable connection failure",
        frame=frame([A]),
        responses={SEND: [timeout_reply(1.5)]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a dropped connection is a retryable connection failure",
        frame=frame([A]),
        responses={SEND: [dropped_reply()]},
        expected_requests=[req(SEND)],
        expected_error=ConnectionFailed,
    ),
    SendCase(
        label="a 2xx body that is not JSON is unparseable",
        frame=frame([A]),
        responses={SEND: [reply(201, "<html>maintenance</html>", content_type="text/html")]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="a 2xx body without sms_ticket is unparseable",
        frame=frame([A]),
        responses={SEND: [reply(201, {"number_of_contacts": 1})]},
        expected_requests=[req(SEND)],
        expected_error=ResponseUnparseable,
    ),
    SendCase(
        label="more than five variables cannot be personalised",
        frame=replace(
            _personalised_frame(),
            text="{{a}}{{b}}{{c}}{{d}}{{e}}{{f}}",
            recipients=[Recipient("ref-1", A, "123456"), Recipient("ref-2", B, "654321")],
        ),
        expected_error=ConfigError,
    ),
    SendCase(
        label="different texts without variables cannot be personalised",
        frame=replace(frame([A, B]), recipients=[Recipient("ref-1", A, "one"), Recipient("ref-2", B, "two")]),
        expected_error=ConfigError,
    ),
    SendCase(
        label="an account without its API key",
        frame=frame([A]),
        account={"credentials": {"login": "herald@example.com"}},
        expected_error=ConfigError,
    ),
]

# Account variant: low-cost SMS with replies, in simulation mode.
LOW_COST = {"options": {"sms_type": "sms_low_cost", "with_replies": "true", "simulation_mode": True}}
LOW_COST_CASES = [
    SendCase(
        label="low cost: type, with_replies and simulation_mode as JSON booleans",
        frame=frame([A]),
        account=LOW_COST,
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[
            req(SEND, json_subset={"simulation_mode": True, "metadata": {"type": "sms_low_cost", "with_replies": True}})
        ],
        expected_results=_sent(A),
        expected_ticket=TICKET,
    ),
    SendCase(
        label="low cost marketing without no PUB=STOP: rejected with code 122",
        frame=frame([A], "Soldes -20%", purpose="promotional"),
        account=LOW_COST,
        responses={SEND: [reply(400, "octopush/error_no_pub_stop_missing.json")]},
        expected_requests=[req(SEND)],
        expected_error=Rejected,
        expected_error_code="122",
        expected_error_contains="Mention no PUB=STOP is missing.",
    ),
    SendCase(
        label="an unknown sms_type is the account's mistake",
        frame=frame([A]),
        account={"options": {"sms_type": "sms_world"}},
        expected_error=ConfigError,
    ),
]


def _dlr(status: Status | None, raw: str, code: str = "", address: str = A, text: str = "") -> StatusUpdate:
    return update(
        status,
        raw=raw,
        provider_message_id=TICKET,
        ticket=TICKET,
        address=address,
        code=code,
        text=text,
        occurred_at=datetime(2025, 1, 22, 10, 46, 6, tzinfo=UTC),  # 11:46:06 in Paris (UTC+1 in January)
    )


STOP = opt_out(
    address=A,
    raw_status="STOP",
    provider_message_id=TICKET,
    ticket=TICKET,
    text="STOP",
    occurred_at=datetime(2025, 7, 14, 18, 5, tzinfo=UTC),  # 20:05 in Paris (UTC+2 in July)
)

# Every delivery status → its canonical status, the code kept (a failure's status word; the choices are
# explained in STATUS_MAP's comments) and a failure's words for the message's page.
STATUS_TABLE = [
    ("ACK", Status.SENT, "", ""),
    ("DELIVERED", Status.DELIVERED, "", ""),
    (
        "NOT_DELIVERED",
        Status.UNDELIVERED,
        "NOT_DELIVERED",
        "Not delivered: the operator tried and could not deliver it",
    ),
    ("NOT_ALLOWED", Status.REJECTED, "NOT_ALLOWED", "Not allowed: the route or the operator refused this traffic"),
    (
        "UNKNOWN_DELIVERY",
        Status.EXPIRED,
        "UNKNOWN_DELIVERY",
        "No delivery receipt came back within the message's validity period",
    ),
    (
        "BAD_DESTINATION",
        Status.REJECTED,
        "BAD_DESTINATION",
        "Bad destination: not a valid mobile number, never attempted",
    ),
    (
        "BLACKLISTED_NUMBER",
        Status.REJECTED,
        "BLACKLISTED_NUMBER",
        "The number is on the account's Octopush blacklist (an earlier STOP)",
    ),
    ("UNDEFINED", Status.FAILED, "UNDEFINED", "Octopush cannot tell the outcome"),
]

CALLBACK_CASES = [
    *[
        CallbackCase(
            label=f"DLR {raw} is {status}",
            body=f"octopush/dlr_{raw.lower()}.json",
            expected_updates=[_dlr(status, raw, code, text=words)],
            expected_response_body="",
        )
        for raw, status, code, words in STATUS_TABLE
    ],
    CallbackCase(
        label="the raw payload is kept",
        body="octopush/dlr_delivered.json",
        expected_updates=[
            replace(_dlr(Status.DELIVERED, "DELIVERED"), payload=fixture_json("octopush/dlr_delivered.json"))
        ],
        compare_payload=True,
    ),
    CallbackCase(
        label="a number without + becomes E.164",
        body={**fixture_json("octopush/dlr_delivered.json"), "number": "33601020304"},
        expected_updates=[_dlr(Status.DELIVERED, "DELIVERED")],
    ),
    CallbackCase(
        label="several reports in one array",
        body=[fixture_json("octopush/dlr_ack.json"), {**fixture_json("octopush/dlr_delivered.json"), "number": B}],
        expected_updates=[_dlr(Status.SENT, "ACK"), _dlr(Status.DELIVERED, "DELIVERED", address=B)],
    ),
    CallbackCase(label="a STOP is an opt-out from everything", body="octopush/stop.json", expected_updates=[STOP]),
    CallbackCase(
        label="a STOP from a French national number is read as French",
        body={**fixture_json("octopush/stop.json"), "number": "06 01 02 03 04"},
        expected_updates=[STOP],
    ),
    CallbackCase(
        label="an unknown status is kept raw",
        body={**fixture_json("octopush/dlr_delivered.json"), "status": "OPENED"},
        expected_updates=[replace(_dlr(None, "OPENED", "OPENED"), kind=UpdateKind.UNKNOWN)],
    ),
    CallbackCase(
        label="a reply is kept raw",
        body="octopush/reply.json",
        expected_updates=[StatusUpdate(kind=UpdateKind.UNKNOWN, provider_message_id=TICKET, ticket=TICKET, address=A)],
    ),
    CallbackCase(
        label="a JSON scalar is kept raw", body=b'"ping"', expected_updates=[StatusUpdate(UpdateKind.UNKNOWN)]
    ),
    CallbackCase(label="malformed body", body=b'{"status": "DELIVERED",', expected_error=ResponseUnparseable),
    CallbackCase(label="empty body", body=b"", expected_error=ResponseUnparseable),
    CallbackCase(
        label="wrong secret",
        body="octopush/dlr_delivered.json",
        sign=False,
        query={"secret": "whsec-forged"},
        expected_error=AuthenticationFailed,
    ),
    CallbackCase(
        label="no secret", body="octopush/dlr_delivered.json", sign=False, expected_error=AuthenticationFailed
    ),
    CallbackCase(
        label="an account without a webhook secret accepts nothing",
        body="octopush/dlr_delivered.json",
        account={"webhook_secret": ""},
        sign=False,
        query={"secret": ""},
        expected_error=AuthenticationFailed,
    ),
]

CALL_CASES = [
    CallCase(
        label="check shows the balance in euros",
        call=lambda backend, account: backend.check(account),
        responses={BALANCE: [reply(200, "octopush/balance_ok.json")]},
        expected_requests=[req(BALANCE, headers=AUTH, content_type=None)],
        expected_result=CheckResult(True, "Balance 12.54 EUR", 12.54, "EUR"),
    ),
    CallCase(
        label="check with wrong credentials says why",
        call=lambda backend, account: backend.check(account),
        responses={BALANCE: [reply(401, "octopush/error_login.json")]},
        expected_requests=[req(BALANCE, content_type=None)],
        expected_result=CheckResult(False, "octopush answered HTTP 401: Incorrect login details."),
    ),
    CallCase(
        label="recover a frame Octopush had: 120",
        call=lambda backend, account: backend.recover(account, frame([A, B])),
        responses={SEND: [reply(400, "octopush/error_duplicate_request_id.json")]},
        expected_requests=[req(SEND, json_subset={"metadata": {"request_id": "frame-1"}})],
        expected_result=_already_accepted(A, B),
    ),
    CallCase(
        label="recover a frame Octopush never got: sent now",
        call=lambda backend, account: backend.recover(account, frame([A, B])),
        responses={SEND: [reply(201, "octopush/send_ok.json")]},
        expected_requests=[req(SEND, json_subset={"metadata": {"request_id": "frame-1"}})],
        expected_result=_sent(A, B),
    ),
    CallCase(label="setup needs nothing", call=lambda backend, account: backend.setup(account), expected_result={}),
    CallCase(
        label="check answered by a page that echoes the key: the error names the page, never the key",
        call=lambda backend, account: backend.check(account),
        responses={BALANCE: [reply(200, "<p>api-key KEY-0123456789 unknown</p>", content_type="text/html")]},
        expected_requests=[req(BALANCE, content_type=None)],
        expected_result=CheckResult(
            False, "octopush answered HTTP 200 with a body that is not JSON: '<p>api-key •••• unknown</p>'"
        ),
    ),
    CallCase(
        label='check answered by a gateway that echoes a key with / and " JSON-escaped: the error shows no key',
        call=lambda backend, account: backend.check(account),
        account={"credentials": {"login": "herald@example.com", "api_key": ODD_KEY}},
        responses={BALANCE: [reply(502, {"error": "upstream refused", "request": {"api-key": ODD_KEY}})]},
        expected_requests=[req(BALANCE, content_type=None)],
        expected_result=CheckResult(
            False, 'octopush answered HTTP 502: {"error": "upstream refused", "request": {"api-key": "••••"}}'
        ),
    ),
    CallCase(
        label="check answered by a page that echoes the key percent-encoded in a link: the error shows no key",
        call=lambda backend, account: backend.check(account),
        account={"credentials": {"login": "herald@example.com", "api_key": ODD_KEY}},
        responses={
            BALANCE: [reply(200, f'<a href="/retry?api-key={quote_plus(ODD_KEY)}">retry</a>', content_type="text/html")]
        },
        expected_requests=[req(BALANCE, content_type=None)],
        expected_result=CheckResult(
            False,
            "octopush answered HTTP 200 with a body that is not JSON: '<a href=\"/retry?api-key=••••\">retry</a>'",
        ),
    ),
]

# Every Octopush code → the canonical status the frame's recipients get, and how the backend says it.
ERROR_TABLE = [
    ("120", Status.SUBMITTED, None),
    *[(code, Status.FAILED, ConfigError) for code in ("101", "104", "105", "108", "113", "114", "125")],
    *[
        (code, Status.REJECTED, Rejected)
        for code in ("102", "103", "106", "107", "117", "121", "122", "150", "151", "152", "208", "400")
    ],
    ("153", Status.QUEUED, Throttled),
]


def _sign(account, method, headers, query, body):
    return headers, {**query, "secret": account.webhook_secret}


@pytest.mark.parametrize("case", SEND_CASES + LOW_COST_CASES, ids=lambda c: c.label)
def test_send(case, harness):
    harness.run_send_case(OctopushBackend, case, base_path=BASE, secrets=SECRETS)


@pytest.mark.parametrize("case", CALLBACK_CASES, ids=lambda c: c.label)
def test_callback(case, harness):
    harness.run_callback_case(OctopushBackend, case, signer=_sign, secrets=SECRETS)


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda c: c.label)
def test_call(case, harness):
    harness.run_call_case(OctopushBackend, case, base_path=BASE, secrets=SECRETS)


@pytest.mark.parametrize("raw, expected, code, words", STATUS_TABLE, ids=lambda v: str(v))
def test_status_map(raw, expected, code, words):
    assert STATUS_MAP[raw] is expected


def test_status_table_is_the_whole_map():
    assert {raw: status for raw, status, _, _ in STATUS_TABLE} == STATUS_MAP


@pytest.mark.parametrize("code, expected, error", ERROR_TABLE, ids=lambda v: str(v))
def test_error_code(code, expected, error, harness):
    assert ERROR_CODES[code] is expected
    case = SendCase(
        label=f"code {code}",
        frame=frame([A]),
        responses={SEND: [reply(400, {"code": int(code), "message": f"Octopush says {code}."})]},
        expected_requests=[req(SEND)],
        expected_results=_already_accepted(A),
        expected_already_accepted=error is None,
        expected_error=error,
        expected_error_code=code if error else "",
        expected_error_contains=f"Octopush says {code}." if error else "",
    )
    harness.run_send_case(OctopushBackend, case, base_path=BASE, secrets=SECRETS)


@pytest.mark.parametrize(
    "code, field", [("101", "credentials"), ("108", "credentials"), ("104", ""), ("113", ""), ("114", "")]
)
def test_an_account_level_refusal_names_what_to_fix_whatever_its_http_status(code, field, harness):
    """Octopush answers most errors with HTTP 400: "account not validated" (113) then raised a plain permanent
    error, and the engine failed frame after frame of messages instead of pausing the campaign."""
    harness.vendor.load({SEND: [reply(400, {"code": int(code), "message": f"Octopush says {code}."})]})
    with pytest.raises(ConfigError) as error:
        OctopushBackend().send(harness.account(BASE, SECRETS, kind="octopush"), frame([A]))
    assert (error.value.code, error.value.field, error.value.status_code) == (code, field, 400)
    assert f"Octopush says {code}." in error.value.message


def test_error_table_is_the_whole_map():
    assert {code: status for code, status, _ in ERROR_TABLE} == ERROR_CODES


def test_octopush_has_no_pull_api():
    backend = OctopushBackend()
    assert not backend.supports_polling
    with pytest.raises(NotImplementedError):
        backend.poll(None, None)
