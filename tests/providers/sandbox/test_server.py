"""The sandbox server's own controls, over real HTTP: held answers wait for their release."""

import threading

import requests

from config.processes import wait_until

OCTOPUSH_SEND = "/octopush/v1/public/sms-campaign/send"


def _post_in_background(url: str) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(requests.post(url, json={}, timeout=20).status_code))
    thread.start()
    return thread, statuses


def test_a_held_answer_waits_for_its_release_while_the_controls_still_answer(sandbox):
    sandbox.hold_answers()
    thread, statuses = _post_in_background(sandbox.url + OCTOPUSH_SEND)
    thread.join(1.0)
    assert thread.is_alive() and statuses == [], "no answer while held"
    assert requests.get(sandbox.url + "/_sandbox/stats", timeout=5).status_code == 200

    sandbox.release_answers()
    thread.join(10)
    assert statuses == [401], "answered once released (no credentials: Octopush's 401)"


def test_the_send_requests_held_are_counted_until_released(sandbox):
    """Tests wait for a held send to know a frame is on the wire (a claimed frame may not be sent yet)."""
    assert sandbox.sends_held() == 0
    sandbox.hold_answers()
    thread, statuses = _post_in_background(sandbox.url + OCTOPUSH_SEND)
    wait_until(sandbox.sends_held, timeout=10, what="the send held")
    assert sandbox.sends_held() == 1 and statuses == []
    sandbox.release_answers()
    thread.join(10)
    assert (statuses, sandbox.sends_held()) == ([401], 0)


def test_a_reset_releases_held_answers(sandbox):
    sandbox.hold_answers()
    thread, statuses = _post_in_background(sandbox.url + OCTOPUSH_SEND)
    thread.join(0.5)
    assert statuses == []

    assert requests.post(sandbox.url + "/_sandbox/reset", timeout=5).json() == {"reset": True}
    thread.join(10)
    assert statuses == [401]
    assert requests.post(sandbox.url + OCTOPUSH_SEND, json={}, timeout=5).status_code == 401, "not held any more"
