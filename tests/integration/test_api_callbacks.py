"""Callbacks end to end: a finished job is POSTed, signed, to a receiver on 127.0.0.1, retried after a 500."""

from __future__ import annotations

import json
import time

from api_harness import Api, Receiver

from chalicelib.callbacks import SIGNATURE_HEADER, verify_signature


def test_a_finished_job_is_posted_signed_and_retried_after_a_500(api: Api, receiver: Receiver) -> None:
    receiver.statuses = [500]
    secret = api.runtime.settings.callback_secret
    job_id = api.post({"input": {"delay": 5}, "callback_url": receiver.url}).json_body["id"]

    api.wait_done(job_id)

    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        now = api.emulation.clock.now().timestamp()
        assert verify_signature(secret, headers[SIGNATURE_HEADER], body, now_epoch=now)
        assert not verify_signature(secret, headers[SIGNATURE_HEADER], body + b" ", now_epoch=now)
        assert headers["Content-Type"] == "application/json"
    delivered = api.get(f"/jobs/{job_id}").json_body
    assert delivered["status"] == "COMPLETE"
    assert delivered["callback"]["attempts"] == 2
    assert delivered["callback"]["last_status"] == 200
    assert delivered["callback"]["delivered_at"] is not None


def test_the_callback_body_is_the_finished_job(api: Api, receiver: Receiver) -> None:
    job_id = api.post({"input": {"delay": 5, "fail": True}, "callback_url": receiver.url}).json_body["id"]
    api.wait_done(job_id)

    [(_, body)] = receiver.received
    sent = json.loads(body)
    assert (sent["id"], sent["status"], sent["error"]["code"]) == (job_id, "FAILED", "SimulatedFailure")


def test_a_receiver_that_keeps_failing_is_recorded_without_failing_the_job(
    api: Api, receiver: Receiver
) -> None:
    receiver.statuses = [503] * 10
    job_id = api.post({"input": {"delay": 1}, "callback_url": receiver.url}).json_body["id"]
    api.wait_done(job_id)

    job = api.get(f"/jobs/{job_id}").json_body
    attempts = api.runtime.settings.callback_max_attempts
    assert len(receiver.received) == attempts
    assert job["status"] == "COMPLETE"
    assert job["callback"] == {
        "url": receiver.url,
        "attempts": attempts,
        "delivered_at": None,
        "last_status": 503,
        "last_error": None,
    }


def test_with_a_delivering_function_the_poll_hands_the_callback_over_and_does_not_wait(
    api: Api, receiver: Receiver
) -> None:
    from api_harness import make_api

    emulation = api.emulation
    api = make_api(emulation, callback_function=emulation.deployment.function_arns["DeliverCallback"])
    receiver.statuses = [500]
    job_id = api.post({"input": {"delay": 5}, "callback_url": receiver.url}).json_body["id"]

    api.wait_done(job_id)
    deadline = time.monotonic() + 10
    while (record := api.get(f"/jobs/{job_id}").json_body["callback"])["delivered_at"] is None:
        assert time.monotonic() < deadline, "the delivering function never delivered the callback"
        time.sleep(0.01)

    assert record["attempts"] == 2 and record["last_status"] == 200
    assert len(receiver.received) == 2
    delivering = [i for i in emulation.invocations if i.function.endswith("DeliverCallback")]
    assert [i.event for i in delivering if i.event.get("job_id") == job_id] == [{"job_id": job_id}]
