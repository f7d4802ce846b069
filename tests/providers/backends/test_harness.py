"""The golden-case harness itself: it must fail when a backend departs from a case."""

import pytest

from providers.backends.base import Backend, SendResult, Throttled, json_body, request
from tests.providers.backends.harness import SendCase, frame, reply, req, submitted

SEND = "POST /v1/send"


class EchoBackend(Backend):
    """A minimal vendor client written for these tests: one JSON POST, one result per recipient."""

    kind = "echo"

    def send(self, account, frame):
        response = request(
            account,
            "POST",
            f"{account.base_url}/send",
            json={"to": [r.address for r in frame.recipients], "key": frame.key},
        )
        data = json_body(response, self.kind)
        return SendResult(
            [submitted(r.address, data["id"], ref=r.external_ref) for r in frame.recipients], ticket=data["id"]
        )


OK = SendCase(
    label="accepted",
    frame=frame(["+33601020304"]),
    responses={SEND: [reply(200, {"id": "t-1"})]},
    expected_requests=[req(SEND, json={"to": ["+33601020304"], "key": "frame-1"})],
    expected_results=[submitted("+33601020304", "t-1", ref="ref-1")],
    expected_ticket="t-1",
)


def test_a_matching_case_passes(harness):
    harness.run_send_case(EchoBackend, OK, base_path="/v1")


@pytest.mark.parametrize(
    "changes",
    [
        {"expected_requests": [req(SEND, json={"to": ["+33601020304"], "key": "other"})]},
        {"expected_results": [submitted("+33601020304", "t-2", ref="ref-1")]},
        {"expected_requests": [req(SEND, json={"to": ["+33601020304"], "key": "frame-1"}, content_type="text/plain")]},
        {"responses": {SEND: [reply(200, {"id": "t-1"}), reply(200, {"id": "t-9"})]}},
        {"expected_error": Throttled},
    ],
    ids=["body", "results", "content type", "unconsumed reply", "missing error"],
)
def test_a_departing_case_fails(harness, changes):
    from dataclasses import replace

    with pytest.raises(AssertionError):
        harness.run_send_case(EchoBackend, replace(OK, **changes), base_path="/v1")


def test_a_429_is_throttled_with_retry_after(harness):
    case = SendCase(
        label="throttled",
        frame=frame(["+33601020304"]),
        responses={SEND: [reply(429, "", headers={"Retry-After": "7"})]},
        expected_requests=[req(SEND, json={"to": ["+33601020304"], "key": "frame-1"})],
        expected_error=Throttled,
        expected_retry_after=7.0,
    )
    harness.run_send_case(EchoBackend, case, base_path="/v1")


def test_a_leaked_secret_fails(harness):
    class Leaky(EchoBackend):
        def send(self, account, frame):
            result = super().send(account, frame)
            import logging

            logging.getLogger("x").info("sent with key %s", account.credentials["api_key"])
            return result

    with pytest.raises(AssertionError, match="secret leaked"):
        harness.run_send_case(Leaky, OK, base_path="/v1", secrets={"api_key": "SECRET-KEY-123"})


def test_a_secret_leaked_url_encoded_fails(harness):
    class Leaky(EchoBackend):
        def send(self, account, frame):
            from urllib.parse import quote_plus

            result = super().send(account, frame)
            import logging

            logging.getLogger("x").info("sent to /send?key=%s", quote_plus(account.credentials["api_key"]))
            return result

    with pytest.raises(AssertionError, match="secret leaked"):
        harness.run_send_case(Leaky, OK, base_path="/v1", secrets={"api_key": "SECRET/KEY 123"})
