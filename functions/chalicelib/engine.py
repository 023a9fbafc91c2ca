"""The engine polling protocol: tasks in, results or `schedule_poll_task` messages out.

An engine is one function that takes a task. The first task submits the work; when the engine answers
`schedule_poll_task`, the state machine waits until `nextPollTimeUTC` and hands `taskPayload`, whole and
unchanged, to the next poll, which is a new task with a new task id. The final answer is a `task_result`
that references the original task (`origTaskId`) and is stored against the original job.

    task:   {"taskId", "jobId", "callTimeUTC", "taskPayload": {...}}
            first task's payload: {"isPollTask": false, "input": {...}, "engineConfig": {...}, "origTdoId"?}
            (`engineConfig` and `origTdoId` come from the job's input)
    answer: {"type": "schedule_poll_task", "timestampUTC", "nextPollTimeUTC", "taskId",
             "taskPayload": anything the engine needs (the seeds' isPollTask, origTaskId, ...), "progress"?}
        or  {"type": "task_result", "timestampUTC", "taskId", "origTaskId", "status": "complete" | "failed",
             "output": any, "error": {"code", "message"}}

Times are epoch milliseconds UTC, as the protocol says; inside jobpoll they are datetimes. jobpoll keeps the
original task id and the chain of tasks itself, so the payload is the engine's own and is never interpreted.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import from_epoch_ms, to_epoch_ms
from .errors import InvalidJobInput, MalformedEngineMessage
from .job import JobError

SCHEDULE_POLL_TASK = "schedule_poll_task"
TASK_RESULT = "task_result"
# A generous bound on a taskPayload: it travels through the state machine (256 KB per state).
MAX_PAYLOAD_BYTES = 32 * 1024


@dataclass(frozen=True)
class SchedulePoll:
    next_poll_at: datetime
    task_payload: dict[str, Any]
    progress: float | None = None


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    orig_task_id: str
    output: Any = None
    error: JobError | None = None


def new_task(job_id: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A task for an engine, with a fresh task id."""
    return {
        "taskId": uuid.uuid4().hex,
        "jobId": job_id,
        "callTimeUTC": to_epoch_ms(now),
        "taskPayload": payload,
    }


# What a job's input may carry for the engine's first task, beside the engine's own input.
FIRST_TASK_FIELDS: dict[str, dict[str, Any]] = {
    "engineConfig": {"type": "object", "description": "Handed to the engine's first task as engineConfig"},
    "origTdoId": {"type": "string", "description": "Handed to the engine's first task as origTdoId"},
}


def validate_input(validate: Callable[[Any], dict[str, Any]], request: Any) -> dict[str, Any]:
    """An engine job's input: the first task's fields checked here, the rest by the engine's `validate`."""
    if not isinstance(request, dict):
        return validate(request)
    config, tdo_id = request.get("engineConfig", {}), request.get("origTdoId")
    if not isinstance(config, dict):
        raise InvalidJobInput(f"'engineConfig' must be a JSON object, got {json.dumps(config)[:40]}")
    if tdo_id is not None and not isinstance(tdo_id, str):
        raise InvalidJobInput(f"'origTdoId' must be a string, got {json.dumps(tdo_id)[:40]}")
    checked = validate({k: v for k, v in request.items() if k not in FIRST_TASK_FIELDS})
    return {**checked, **{k: request[k] for k in FIRST_TASK_FIELDS if k in request}}


def first_task(job_id: str, request: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The engine's first task: the job's input, its `engineConfig` and `origTdoId` beside it."""
    payload = {
        "isPollTask": False,
        "input": {k: v for k, v in request.items() if k not in FIRST_TASK_FIELDS},
        "engineConfig": request.get("engineConfig", {}),
    }
    if "origTdoId" in request:
        payload["origTdoId"] = request["origTdoId"]
    return new_task(job_id, payload, now)


def schedule_poll_task(
    task: dict[str, Any],
    next_poll_at: datetime,
    payload: dict[str, Any],
    now: datetime,
    progress: float | None = None,
) -> dict[str, Any]:
    """The message an engine answers to be polled again at `next_poll_at` with `payload`."""
    message: dict[str, Any] = {
        "type": SCHEDULE_POLL_TASK,
        "timestampUTC": to_epoch_ms(now),
        "nextPollTimeUTC": to_epoch_ms(next_poll_at),
        "taskId": task["taskId"],
        "taskPayload": payload,
    }
    if progress is not None:
        message["progress"] = progress
    return message


def task_result(
    task: dict[str, Any],
    orig_task_id: str,
    now: datetime,
    output: Any = None,
    error: JobError | None = None,
) -> dict[str, Any]:
    """The final message of an engine: the work's output, or its error."""
    message: dict[str, Any] = {
        "type": TASK_RESULT,
        "timestampUTC": to_epoch_ms(now),
        "taskId": task["taskId"],
        "origTaskId": orig_task_id,
        "status": "failed" if error else "complete",
    }
    if error:
        message["error"] = error.to_dict()
    else:
        message["output"] = output
    return message


def _bad(reason: str) -> MalformedEngineMessage:
    return MalformedEngineMessage(f"malformed engine message: {reason}")


def _epoch_ms(message: dict[str, Any], name: str) -> datetime:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"'{name}' must be epoch milliseconds, got {json.dumps(value, default=str)[:80]}")
    try:
        return from_epoch_ms(int(value))
    except (OverflowError, OSError, ValueError):
        raise _bad(f"'{name}' is out of range: {value}") from None


def parse_message(message: Any, task: dict[str, Any], orig_task_id: str) -> SchedulePoll | TaskResult:
    """Check an engine's answer to `task` (of the job whose first task was `orig_task_id`)."""
    if not isinstance(message, dict):
        raise _bad(f"expected a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if kind not in (SCHEDULE_POLL_TASK, TASK_RESULT):
        raise _bad(f"'type' must be {SCHEDULE_POLL_TASK!r} or {TASK_RESULT!r}, got {json.dumps(kind)[:40]}")
    if message.get("taskId") != task["taskId"]:
        raise _bad(f"'taskId' must be the task's own id {task['taskId']!r}")
    _epoch_ms(message, "timestampUTC")
    if kind == SCHEDULE_POLL_TASK:
        next_poll_at = _epoch_ms(message, "nextPollTimeUTC")
        payload = message.get("taskPayload")
        if not isinstance(payload, dict):
            raise _bad("'taskPayload' must be a JSON object")
        if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
            raise _bad(f"'taskPayload' is larger than {MAX_PAYLOAD_BYTES} bytes")
        progress = message.get("progress")
        if progress is not None and (
            isinstance(progress, bool) or not isinstance(progress, int | float) or not 0 <= progress <= 1
        ):
            raise _bad("'progress' must be a number from 0 to 1")
        return SchedulePoll(next_poll_at, payload, None if progress is None else float(progress))
    # jobpoll knows the original task; an engine that names it (as the seeds' do) must name the right one.
    if message.get("origTaskId", orig_task_id) != orig_task_id:
        raise _bad(f"'origTaskId' must reference the original task {orig_task_id!r}")
    status = message.get("status")
    if status == "complete":
        return TaskResult(task["taskId"], orig_task_id, output=message.get("output"))
    if status == "failed":
        error = message.get("error")
        if not isinstance(error, dict) or not {"code", "message"} <= set(error):
            raise _bad("a failed result needs 'error': {'code', 'message'}")
        return TaskResult(task["taskId"], orig_task_id, error=JobError.from_dict(error))
    raise _bad(f"'status' must be 'complete' or 'failed', got {json.dumps(status, default=str)[:40]}")
