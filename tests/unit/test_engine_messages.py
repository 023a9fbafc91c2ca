from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import engine
from chalicelib.errors import InvalidJobInput, MalformedEngineMessage
from chalicelib.job import JobError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TASK = engine.new_task("job-1", {"isPollTask": True, "origTaskId": "orig"}, NOW)
PAYLOAD = {"workId": "w", "isPollTask": True, "origTaskId": "orig", "anything": [1, {"x": None}]}


def test_a_schedule_poll_task_round_trips() -> None:
    message = engine.schedule_poll_task(TASK, NOW + timedelta(seconds=180), PAYLOAD, NOW, progress=0.5)
    assert message["type"] == "schedule_poll_task"
    assert message["nextPollTimeUTC"] - message["timestampUTC"] == 180_000
    parsed = engine.parse_message(message, TASK, "orig")
    assert parsed == engine.SchedulePoll(NOW + timedelta(seconds=180), PAYLOAD, 0.5)


def test_results_round_trip_with_output_or_error() -> None:
    done = engine.parse_message(engine.task_result(TASK, "orig", NOW, output={"a": 1}), TASK, "orig")
    assert done == engine.TaskResult(TASK["taskId"], "orig", output={"a": 1})
    error = JobError("Boom", "it broke")
    failed = engine.parse_message(engine.task_result(TASK, "orig", NOW, error=error), TASK, "orig")
    assert failed == engine.TaskResult(TASK["taskId"], "orig", error=error)


def test_every_task_gets_a_new_id() -> None:
    ids = {engine.new_task("job-1", {}, NOW)["taskId"] for _ in range(50)}
    assert len(ids) == 50


def schedule(**changes: object) -> dict:
    message = engine.schedule_poll_task(TASK, NOW, PAYLOAD, NOW)
    message.update(changes)
    return {k: v for k, v in message.items() if v is not None}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not a message", "expected a JSON object"),
        ({}, "'type' must be"),
        (schedule(timestampUTC=None), "'timestampUTC' must be epoch milliseconds"),
        (schedule(timestampUTC="now"), "'timestampUTC' must be epoch milliseconds"),
        ({**engine.task_result(TASK, "orig", NOW), "timestampUTC": 10**20}, "'timestampUTC' is out of range"),
        (schedule(type="something_else"), "'type' must be"),
        (schedule(taskId="another"), "'taskId' must be"),
        (schedule(nextPollTimeUTC="tomorrow"), "'nextPollTimeUTC' must be epoch milliseconds"),
        (schedule(nextPollTimeUTC=True), "'nextPollTimeUTC' must be epoch milliseconds"),
        (schedule(nextPollTimeUTC=10**20), "out of range"),
        (schedule(nextPollTimeUTC=float("nan")), "must be epoch milliseconds"),
        (schedule(taskPayload=[1]), "'taskPayload' must be a JSON object"),
        (schedule(taskPayload={**PAYLOAD, "big": "x" * 40_000}), "larger than"),
        (schedule(progress=2), "'progress' must be a number from 0 to 1"),
        ({**engine.task_result(TASK, "orig", NOW), "origTaskId": "other"}, "must reference the original"),
        ({**engine.task_result(TASK, "orig", NOW), "status": "meh"}, "'status' must be"),
        ({**engine.task_result(TASK, "orig", NOW), "status": "failed"}, "needs 'error'"),
    ],
)
def test_a_malformed_message_is_refused_with_the_reason(message: object, reason: str) -> None:
    with pytest.raises(MalformedEngineMessage, match=reason):
        engine.parse_message(message, TASK, "orig")


@pytest.mark.parametrize(
    "payload", [{}, {"workId": "w"}, {"isPollTask": False, "origTaskId": "someone-else"}]
)
def test_the_task_payload_is_the_engines_own_and_is_not_interpreted(payload: dict) -> None:
    message = engine.schedule_poll_task(TASK, NOW, payload, NOW)
    assert engine.parse_message(message, TASK, "orig") == engine.SchedulePoll(NOW, payload, None)


def test_a_result_may_leave_the_original_task_to_jobpoll() -> None:
    message = engine.task_result(TASK, "orig", NOW, output=1)
    del message["origTaskId"]
    assert engine.parse_message(message, TASK, "orig") == engine.TaskResult(TASK["taskId"], "orig", output=1)


def test_the_first_task_carries_the_jobs_engine_config_and_tdo_id_beside_its_input() -> None:
    request = engine.validate_input(dict, {"delay": 5, "engineConfig": {"lang": "en"}, "origTdoId": "tdo-9"})
    task = engine.first_task("job-1", request, NOW)
    assert task["taskPayload"] == {
        "isPollTask": False,
        "input": {"delay": 5},
        "engineConfig": {"lang": "en"},
        "origTdoId": "tdo-9",
    }
    assert engine.first_task("job-1", {"delay": 5}, NOW)["taskPayload"]["engineConfig"] == {}


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"engineConfig": []}, "'engineConfig' must be a JSON object"),
        ({"origTdoId": 7}, "'origTdoId' must be"),
    ],
)
def test_the_first_tasks_fields_are_checked(request_body: dict, reason: str) -> None:
    with pytest.raises(InvalidJobInput, match=reason):
        engine.validate_input(dict, request_body)
