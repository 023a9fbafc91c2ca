"""A provider that notifies completes the job through a task token; without a notification, polling
takes over.

These run on a manual virtual clock: the test decides when time passes and when the provider calls back.
"""

from __future__ import annotations

import json
import time

import pytest
from statemachine_support import advance_until_done, eventually

from chalicelib.job import JobStatus
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


def waiting_for_notification(emulation: Emulation, job_id: str) -> bool:
    job = emulation.runtime.store.find(job_id)
    return job is not None and job.notify_token is not None


def notify(emulation: Emulation, payload: dict) -> dict:
    """What a provider's completion event does: invoke the NotifyJob function."""
    response = emulation.client("lambda").invoke(
        FunctionName="jobpoll-dev-NotifyJob", Payload=json.dumps(payload).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


def entered(emulation: Emulation, arn: str, state: str) -> bool:
    return any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in emulation.history(arn))


def advance_until_entered(
    emulation: Emulation, clock: VirtualClock, arn: str, state: str, step: float = 10
) -> None:
    """Move time on in steps until the execution enters `state` (the waiting thread may start late)."""
    for _ in range(500):
        if entered(emulation, arn, state):
            return
        clock.advance(step)
        time.sleep(0.005)
    raise AssertionError(f"the execution never entered {state}")


def test_a_notification_in_time_completes_the_job_without_a_single_poll(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    arn = paused.start({"delay": 600, "notify": True, "notify_timeout_seconds": 3600}, name="called-back")
    eventually(lambda: waiting_for_notification(paused, "called-back"), "the execution waits")

    manual_clock.advance(600)
    outcome = notify(paused, {"job_id": "called-back", "state": "SUCCEEDED", "result": {"answer": 42}})

    assert outcome == {"job_id": "called-back", "status": "COMPLETE", "delivered": True}
    execution = paused.wait(arn)
    assert execution["status"] == "SUCCEEDED"
    job = paused.runtime.store.get("called-back")
    assert job.status is JobStatus.COMPLETE
    assert job.result == {"answer": 42}
    assert job.try_count == 0
    assert not [i for i in paused.invocations if i.function.endswith("GetJobStatus")]


def test_without_a_notification_polling_takes_over_after_the_timeout(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    arn = paused.start(
        {"delay": 100, "notify": True, "notify_timeout_seconds": 300, "wait_seconds": 10},
        name="silent",
    )
    eventually(lambda: waiting_for_notification(paused, "silent"), "the execution waits")

    execution = advance_until_done(paused, manual_clock, arn)

    assert execution["status"] == "SUCCEEDED"
    states = [
        e["stateEnteredEventDetails"]["name"] for e in paused.history(arn) if "stateEnteredEventDetails" in e
    ]
    assert states.index("WaitForNotification") < states.index("PollInstead") < states.index("GetJobStatus")
    job = paused.runtime.store.get("silent")
    assert job.status is JobStatus.COMPLETE
    assert job.try_count == 1  # one poll after the 300 s wait found the 100 s job done


def test_heartbeats_keep_the_wait_alive_until_they_stop(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    arn = paused.start(
        {"delay": 10_000, "notify": True, "notify_timeout_seconds": 3600, "heartbeat_seconds": 60},
        name="beating",
    )
    eventually(lambda: waiting_for_notification(paused, "beating"), "the execution waits")
    # moto sets up the heartbeat wait just after the task's Lambda returned: the provider retries its
    # first heartbeat until Step Functions takes it (AWS takes it as soon as the token exists).
    eventually(
        lambda: notify(paused, {"job_id": "beating", "state": "RUNNING", "progress": 0.05})["delivered"],
        "the first heartbeat is taken",
    )
    for beat in range(1, 6):
        manual_clock.advance(30)  # half the heartbeat interval: margin for the waiting thread to re-arm
        assert notify(paused, {"job_id": "beating", "state": "RUNNING", "progress": beat / 10})["delivered"]
        assert not entered(paused, arn, "PollInstead")  # still waiting for the notification
    assert paused.runtime.store.get("beating").progress == 0.5

    advance_until_entered(paused, manual_clock, arn, "PollInstead")  # no more heartbeats: polling takes over
    paused.sfn.stop_execution(executionArn=arn)


def test_a_late_notification_still_completes_the_job_through_the_next_poll(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    arn = paused.start(
        {"delay": 10_000, "notify": True, "notify_timeout_seconds": 100, "wait_seconds": 50},
        name="late",
    )
    eventually(lambda: waiting_for_notification(paused, "late"), "the execution waits")
    advance_until_entered(paused, manual_clock, arn, "PollInstead")

    # On AWS the stale token answers TaskTimedOut (moto accepts it); either way the job is updated.
    assert notify(paused, {"job_id": "late", "state": "SUCCEEDED", "result": "ok"})["status"] == "COMPLETE"
    execution = advance_until_done(paused, manual_clock, arn)
    assert execution["status"] == "SUCCEEDED"
    assert paused.runtime.store.get("late").result == "ok"


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"provider": "simulated-engine", "input": {"delay": 1}, "notify": True}, "cannot notify"),
        ({"delay": 1, "notify": "yes"}, "'notify' must be true or false"),
        (
            {"delay": 1, "notify": True, "notify_timeout_seconds": 60, "heartbeat_seconds": 0},
            "'heartbeat_seconds' must be between 1 and",
        ),
    ],
)
def test_bad_notification_settings_are_refused(emulation: Emulation, request_body: dict, reason: str) -> None:
    execution = emulation.run(request_body, name="bad-notify")
    assert execution["error"] == "InvalidJobInput"
    assert reason in execution["cause"]


def test_a_malformed_notification_is_refused_with_a_reason(emulation: Emulation) -> None:
    response = emulation.client("lambda").invoke(
        FunctionName="jobpoll-dev-NotifyJob", Payload=json.dumps({"job_id": "x", "state": "DONE"}).encode()
    )
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "InvalidJobInput"
    assert "'state' must be one of" in error["errorMessage"]
