"""The real poller ASL, executed by moto with the real handlers in-process, on a virtual clock."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest

from chalicelib.job import JobStatus
from jobpoll import clocks
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


def states_entered(emulation: Emulation, execution_arn: str) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in emulation.history(execution_arn)
        if "stateEnteredEventDetails" in event
    ]


def test_the_seed_job_succeeds_after_two_polls(emulation: Emulation) -> None:
    execution = emulation.run({"delay": 20}, name="seed")

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("seed")
    assert job.status is JobStatus.COMPLETE
    assert job.try_count == 2  # polls at +10 s (running) and +20 s (done)
    assert job.progress == 1.0
    assert job.result["output"] == {"message": "simulated work done", "delay": 20}
    assert json.loads(execution["output"])["try_count"] == 2
    assert states_entered(emulation, execution["executionArn"]) == [
        "StartJob", "Init", "CheckJobComplete",
        "Wait", "GetJobStatus", "CheckJobComplete",
        "Wait", "GetJobStatus", "CheckJobComplete", "JobSucceeded",
    ]  # fmt: skip


def test_each_poll_comes_after_the_wait_seconds_of_the_job(emulation: Emulation) -> None:
    emulation.run({"delay": 45, "wait_seconds": 15, "max_tries": 5}, name="fifteen")
    job = emulation.runtime.store.get("fifteen")
    assert job.try_count == 3
    assert (job.updated_at - job.created_at).total_seconds() == 45


def test_a_job_still_running_after_max_tries_fails_with_max_tries_exceeded(
    emulation: Emulation,
) -> None:
    execution = emulation.run({"delay": 60, "max_tries": 3}, name="too-long")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "MaxTriesExceeded"
    assert "3 of 3 polls" in execution["cause"]
    job = emulation.runtime.store.get("too-long")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "MaxTriesExceeded"
    assert job.try_count == 3


def test_a_provider_failure_fails_the_execution_and_the_job(emulation: Emulation) -> None:
    execution = emulation.run({"delay": 5, "fail": True}, name="told-to-fail")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ProviderJobFailed"
    assert "SimulatedFailure" in execution["cause"]
    job = emulation.runtime.store.get("told-to-fail")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "SimulatedFailure"


@pytest.mark.parametrize("code", ["ServiceException", "TooManyRequestsException"])
def test_a_transient_lambda_error_is_retried_and_the_job_still_succeeds(
    emulation: Emulation, virtual_clock: VirtualClock, code: str
) -> None:
    emulation.faults.service_error("jobpoll-dev-GetJobStatus", code=code, times=2)

    execution = emulation.run({"delay": 10}, name="flaky")

    assert execution["status"] == "SUCCEEDED"
    failures = [
        e["taskFailedEventDetails"]["error"]
        for e in emulation.history(execution["executionArn"])
        if e["type"] == "TaskFailed"
    ]
    assert failures == [f"Lambda.{code}"] * 2
    assert emulation.runtime.store.get("flaky").status is JobStatus.COMPLETE
    # The retries' backoff ran on the virtual clock: 10 s of waiting plus at most 2 + 4 s of jitter.
    assert 10 <= virtual_clock.waited_seconds <= 16


def test_any_other_handler_exception_is_caught_and_recorded_on_the_job(
    emulation: Emulation,
) -> None:
    emulation.faults.handler_error("jobpoll-dev-GetJobStatus", RuntimeError("disk on fire"))

    execution = emulation.run({"delay": 10}, name="broken")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "RuntimeError"
    assert execution["cause"] == "disk on fire"
    job = emulation.runtime.store.get("broken")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and (job.error.code, job.error.message) == ("RuntimeError", "disk on fire")


def test_an_hour_of_polling_is_60_polls_on_the_virtual_clock_and_never_sleeps_for_real(
    emulation: Emulation, virtual_clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How long it takes in wall time is a figure: benchmarks/hour_of_polling.py.
    test_thread = threading.current_thread()
    real_sleeps: list[float] = []
    sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        if threading.current_thread() is not test_thread:  # the test itself polls for the execution's end
            real_sleeps.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", recording_sleep)
    monkeypatch.setattr(clocks, "_real_wait", lambda seconds, *_: real_sleeps.append(seconds or 0.0))

    execution = emulation.run({"delay": 3600, "wait_seconds": 60, "max_tries": 100}, name="hour")

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("hour")
    assert job.try_count == 60
    assert (job.updated_at - job.created_at).total_seconds() == 3600
    assert virtual_clock.waited_seconds == 3600
    assert real_sleeps == []


@pytest.mark.parametrize(
    ("execution_input", "reason"),
    [
        ({"delay": 20, "colour": "red"}, "unknown simulated input field(s): colour"),
        ({"delay": -5}, "between 0 and"),
        ({"delay": "twenty"}, "must be a number"),
        ({"delay": [20]}, "must be a number"),
        ({"provider": "simulated", "input": "delay=20"}, "must be a JSON object"),
        ({"delay": 20, "wait_seconds": "10"}, "'wait_seconds' must be a whole number"),
        ({"delay": 20, "provider": "carrier-pigeon"}, "unknown provider"),
    ],
)
def test_bad_input_fails_the_execution_with_a_named_error_and_stores_nothing(
    emulation: Emulation, execution_input: dict, reason: str
) -> None:
    execution = emulation.run(execution_input, name="bad-input")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidJobInput"
    assert reason in execution["cause"]
    items = emulation.client("dynamodb").scan(TableName=emulation.deployment.table_name)["Items"]
    assert items == []


def test_a_job_without_a_delay_takes_the_seeds_60_seconds(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    started = virtual_clock.now()

    execution = emulation.run({"max_tries": 10}, name="no-delay")

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("no-delay")
    assert job.try_count == 6  # polls every 10 s; done at +60 s
    assert job.result["output"] == {"message": "simulated work done", "delay": 60}
    assert virtual_clock.now() - started == timedelta(seconds=60)


def test_stopping_an_execution_interrupts_its_wait() -> None:
    clock = VirtualClock(auto_advance=False)
    with Emulation(clock=clock) as emulation:
        arn = emulation.start({"delay": 600, "wait_seconds": 300}, name="stop-me")
        deadline = time.monotonic() + 60  # generous: a loaded machine
        while "Wait" not in states_entered(emulation, arn):
            assert time.monotonic() < deadline, "the execution never reached its Wait state"
            time.sleep(0.01)

        before = clock.now()
        emulation.sfn.stop_execution(executionArn=arn, cause="changed my mind")
        stopped = emulation.wait(arn, timeout=60)

        assert stopped["status"] == "ABORTED"
        assert clock.now() == before  # the wait ended without its 300 s passing
        assert emulation.runtime.store.get("stop-me").try_count == 0
