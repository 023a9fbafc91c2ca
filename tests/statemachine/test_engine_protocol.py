"""The engine polling protocol through the real state machine: schedule_poll_task, TimestampPath waits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import engine
from chalicelib.clock import from_epoch_ms, to_epoch_ms
from chalicelib.job import JobStatus
from chalicelib.providers.simulated_engine import SimulatedEngine
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


class RecordingEngine:
    """Wraps an engine and records every task and answer."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name
        self.calls: list[tuple[dict, dict]] = []

    def validate(self, request: Any) -> dict:
        return dict(self.inner.validate(request))

    def handle(self, task: dict) -> dict:
        answer = self.inner.handle(task)
        self.calls.append((task, answer))
        return dict(answer)


class ScriptedEngine:
    """An engine whose answers a test writes: `script(task, clock)` for each task in turn."""

    def __init__(self, name: str, clock: VirtualClock, *script: Callable[[dict, VirtualClock], Any]) -> None:
        self.name, self.clock, self.script = name, clock, list(script)
        self.tasks: list[dict] = []

    def validate(self, request: Any) -> dict:
        return dict(request)

    def handle(self, task: dict) -> Any:
        self.tasks.append(task)
        return self.script[min(len(self.tasks), len(self.script)) - 1](task, self.clock)


@pytest.fixture
def recorder(emulation: Emulation, virtual_clock: VirtualClock) -> RecordingEngine:
    """The simulated engine, recording every task and answer, registered as `recorded-engine`."""
    recording = RecordingEngine(SimulatedEngine(virtual_clock), "recorded-engine")
    emulation.add_provider(recording)
    return recording


def poll_again_in(seconds: float) -> Callable[[dict, VirtualClock], dict]:
    def answer(task: dict, clock: VirtualClock) -> dict:
        payload = task["taskPayload"]
        if not payload.get("isPollTask"):
            payload = {"isPollTask": True, "origTaskId": task["taskId"], "n": 0}
        now = clock.now()
        return engine.schedule_poll_task(task, now + timedelta(seconds=seconds), payload, now)

    return answer


def done(task: dict, clock: VirtualClock) -> dict:
    return engine.task_result(task, task["taskPayload"]["origTaskId"], clock.now(), output={"ok": True})


def test_the_engine_round_trip_passes_the_payload_whole_and_keeps_the_original_task(
    emulation: Emulation, recorder: RecordingEngine
) -> None:

    execution = emulation.run(
        {"provider": "recorded-engine", "input": {"delay": 25, "poll_seconds": 10}, "max_tries": 10},
        name="engine-job",
    )

    assert execution["status"] == "SUCCEEDED"
    tasks = [task for task, _ in recorder.calls]
    answers = [answer for _, answer in recorder.calls]
    assert tasks[0]["taskPayload"]["isPollTask"] is False
    assert len({task["taskId"] for task in tasks}) == len(tasks) == 4  # submit + 3 polls, each a new task
    for answer, next_task in zip(answers, tasks[1:], strict=False):
        assert answer["type"] == "schedule_poll_task"
        assert next_task["taskPayload"] == answer["taskPayload"]  # whole and unchanged
    final = answers[-1]
    assert final["type"] == "task_result"
    assert final["origTaskId"] == tasks[0]["taskId"]
    job = emulation.runtime.store.get("engine-job")
    assert job.status is JobStatus.COMPLETE
    assert job.task_id == tasks[0]["taskId"]
    assert job.result["origTaskId"] == tasks[0]["taskId"]
    assert job.result["output"]["output"] == {"message": "simulated work done", "delay": 25}


def test_timestamp_waits_run_on_the_virtual_clock_until_next_poll_time(
    emulation: Emulation, virtual_clock: VirtualClock, recorder: RecordingEngine
) -> None:
    started = virtual_clock.now()

    execution = emulation.run(
        {"provider": "recorded-engine", "input": {"delay": 3600, "poll_seconds": 900}, "max_tries": 10},
        name="slow-engine",
    )

    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in emulation.history(execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered.count("WaitUntilNextPoll") == 4 and "Wait" not in entered
    scheduled = [from_epoch_ms(a["nextPollTimeUTC"]) for _, a in recorder.calls if "nextPollTimeUTC" in a]
    polled = [from_epoch_ms(t["callTimeUTC"]) for t, _ in recorder.calls[1:]]
    assert polled == scheduled  # each poll came exactly when the engine asked
    assert virtual_clock.now() - started == timedelta(hours=1)


def test_a_next_poll_time_in_the_past_polls_at_once(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    emulation.add_provider(ScriptedEngine("past", virtual_clock, poll_again_in(-3600), done))
    started = virtual_clock.now()

    execution = emulation.run({"provider": "past", "input": {}}, name="past-job")

    assert execution["status"] == "SUCCEEDED"
    assert virtual_clock.now() == started  # no waiting at all


def test_a_schedule_past_the_deadline_is_clamped_recorded_and_ends_in_deadline_exceeded(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    emulation.add_provider(ScriptedEngine("sleepy", virtual_clock, poll_again_in(7200)))
    started = virtual_clock.now()

    execution = emulation.run(
        {"provider": "sleepy", "input": {}, "deadline_seconds": 600, "max_tries": 10}, name="sleepy-job"
    )

    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeadlineExceeded"
    job = emulation.runtime.store.get("sleepy-job")
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.code == "DeadlineExceeded"
    assert virtual_clock.now() - started == timedelta(seconds=600)  # polled at the deadline, not later
    assert any("past the deadline" in note for note in job.notes)


def test_a_malformed_engine_answer_fails_the_job_with_a_clear_error(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    def garbage(task: dict, clock: VirtualClock) -> dict:
        return {
            "type": "schedule_poll_task",
            "taskId": task["taskId"],
            "timestampUTC": to_epoch_ms(clock.now()),
            "nextPollTimeUTC": "soon",
        }

    emulation.add_provider(ScriptedEngine("garbled", virtual_clock, poll_again_in(10), garbage))

    execution = emulation.run({"provider": "garbled", "input": {}}, name="garbled-job", timeout=10)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "MalformedEngineMessage"
    assert "'nextPollTimeUTC' must be epoch milliseconds" in execution["cause"]
    job = emulation.runtime.store.get("garbled-job")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "MalformedEngineMessage"


def test_an_engine_that_fails_the_work_fails_the_job_with_its_error(
    emulation: Emulation,
) -> None:
    execution = emulation.run(
        {"provider": "simulated-engine", "input": {"delay": 5, "fail": True}}, name="engine-fail"
    )

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ProviderJobFailed"
    job = emulation.runtime.store.get("engine-fail")
    assert job.error is not None and job.error.code == "SimulatedFailure"


def test_an_engine_with_a_payload_of_its_own_runs_to_its_result(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    """No isPollTask, no origTaskId: jobpoll keeps the original task and the chain itself."""

    def submit(task: dict, clock: VirtualClock) -> dict:
        now = clock.now()
        return engine.schedule_poll_task(task, now + timedelta(seconds=30), {"ticket": 7}, now)

    def finish(task: dict, clock: VirtualClock) -> dict:
        assert task["taskPayload"] == {"ticket": 7}
        return {
            "type": "task_result",
            "timestampUTC": to_epoch_ms(clock.now()),
            "taskId": task["taskId"],
            "status": "complete",
            "output": {"ticket": 7},
        }

    scripted = ScriptedEngine("own-payload", virtual_clock, submit, finish)
    emulation.add_provider(scripted)

    execution = emulation.run({"provider": "own-payload", "input": {}}, name="own-payload-job")

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("own-payload-job")
    assert job.status is JobStatus.COMPLETE
    assert job.result == {
        "output": {"ticket": 7},
        "taskId": scripted.tasks[1]["taskId"],
        "origTaskId": scripted.tasks[0]["taskId"],
    }


def test_the_jobs_engine_config_and_tdo_id_reach_the_engines_first_task(
    emulation: Emulation, recorder: RecordingEngine
) -> None:
    request = {"delay": 5, "poll_seconds": 5, "engineConfig": {"language": "en"}, "origTdoId": "tdo-42"}

    execution = emulation.run({"provider": "recorded-engine", "input": request}, name="tdo-job")

    assert execution["status"] == "SUCCEEDED"
    first_payload = recorder.calls[0][0]["taskPayload"]
    assert first_payload["engineConfig"] == {"language": "en"}
    assert first_payload["origTdoId"] == "tdo-42"
    assert first_payload["input"] == {"delay": 5, "fail": False, "poll_seconds": 5}
    assert recorder.calls[1][0]["taskPayload"]["origTdoId"] == "tdo-42"  # the engine passes it on


def test_an_engine_job_polls_until_the_engine_answers_not_three_times(
    emulation: Emulation, recorder: RecordingEngine
) -> None:

    execution = emulation.run(
        {"provider": "recorded-engine", "input": {"delay": 100, "poll_seconds": 10}}, name="patient-engine"
    )

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("patient-engine")
    assert job.try_count == 10  # the seed-style 3-poll default would have failed it at the third
