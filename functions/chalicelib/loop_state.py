"""The state the poll loop carries between the states of statemachine/poller.asl.json.

It is small (the job record holds the rest) and is what the ASL's Choice reads: `status`, `try_count` and
`poll.max_tries`, `execution_polls` and `poll.continue_after`, `await_notification`, `next_poll_time`; the
Waits read `wait_seconds` or `next_poll_time`; a failed job's `error` and `cause` become the execution's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .clock import to_iso
from .errors import ASL_ERROR_NAMES
from .job import Job, JobError, JobStatus
from .job_request import JOB_ID_PATTERN


def execution_polls_of(state: Mapping[str, Any]) -> int:
    """This execution's poll counter as the state carries it (0 where missing or malformed)."""
    polls = state.get("execution_polls", 0)
    return polls if isinstance(polls, int) else 0


def job_id_for(state: Mapping[str, Any], execution_name: str) -> str:
    """The job an execution works on: the state's `job_id` where valid, else the execution's name."""
    job_id = state.get("job_id") if isinstance(state, Mapping) else None
    if isinstance(job_id, str) and JOB_ID_PATTERN.match(job_id):
        return job_id
    return execution_name


def failure_name(error: JobError | None) -> str:
    """The execution's error for a failed job: one of the names the ASL sees, else ProviderJobFailed."""
    if error is not None and error.code in ASL_ERROR_NAMES:
        return error.code
    return "ProviderJobFailed"


def loop_state(
    job: Job,
    now: datetime,
    *,
    execution_polls: int = 0,
    task_payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The state the poll loop carries between states (small: the job record holds the rest).

    A job waiting for a provider poll carries `wait_seconds` (a Wait with SecondsPath); one waiting for an
    engine's schedule carries `next_poll_time` and the engine's `task_payload` (a Wait with TimestampPath).
    """
    state: dict[str, Any] = {
        "job_id": job.job_id,
        "status": job.status.value,
        "poll": job.poll.to_dict(),
        "try_count": job.try_count,
        "progress": job.progress,
        "execution_polls": execution_polls,
        "generation": job.generation,
    }
    if job.status is JobStatus.FAILED:
        state["error"] = failure_name(job.error)
        reason = job.error or JobError("ProviderJobFailed", "the provider reported a failure")
        state["cause"] = (
            reason.message if state["error"] == reason.code else f"{reason.code}: {reason.message}"
        )
        return state
    if job.status is JobStatus.CANCELED:
        state["error"] = "JobCanceled"
        state["cause"] = f"job {job.job_id} was canceled"
        return state
    if job.poll.notify and job.notify_token is None:
        # WaitForNotification: Step Functions wants a heartbeat below the timeout; "none" is just under it.
        timeout = job.poll.notify_timeout_seconds
        state["await_notification"] = True
        state["notify_timeout_seconds"] = timeout
        state["heartbeat_seconds"] = job.poll.heartbeat_seconds or max(1, timeout - 1)
    if task_payload is not None:
        state["task_payload"] = task_payload
        state["next_poll_time"] = to_iso(job.next_poll_at or now)
    elif not job.status.is_terminal:
        left = ((job.next_poll_at or now) - now).total_seconds()
        state["wait_seconds"] = max(0, math.ceil(left))
    return state


def cause_message(cause: Any) -> str:
    """A Lambda error's cause is JSON with `errorMessage`; anything else is used as it is."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            return str(parsed["errorMessage"])
        return cause
    return json.dumps(cause)
