"""The service layer: what the Lambda handlers (and later the API) call.

Each function takes what it needs (store, providers, clock, settings) as arguments and returns plain data
for the state machine. Errors propagate as the named exceptions in `errors`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .callbacks import parse_callback_url
from .clock import Clock
from .errors import IllegalTransition, InvalidJobInput, ProviderError
from .job import Job, JobError, JobStatus, PollSettings
from .policy import next_wait_seconds, poll_settings_from
from .providers import PollResult, Provider, WorkState, get_provider
from .settings import Settings
from .store import JobStore

# Step Functions execution names: 1-80 characters of this set; a job id is an execution name.
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
DEFAULT_PROVIDER = "simulated"
# Keys of a start request that are not the provider's input (the shorthand form puts the input beside them).
_REQUEST_KEYS = frozenset({"job_id", "provider", "input", "wait_seconds", "max_tries", "callback_url"})


@dataclass(frozen=True)
class JobRequest:
    """A validated request to start a job."""

    provider: str
    provider_input: dict[str, Any]
    poll: PollSettings
    job_id: str | None = None
    callback_url: str | None = None

    def execution_input(self, job_id: str) -> dict[str, Any]:
        """What the poller's execution starts from (StartJob parses it again)."""
        return {
            "job_id": job_id,
            "provider": self.provider,
            "input": self.provider_input,
            "wait_seconds": self.poll.wait_seconds,
            "max_tries": self.poll.max_tries,
        }


def parse_job_request(event: Any, providers: Mapping[str, Provider], settings: Settings) -> JobRequest:
    """Validate a start request; raises InvalidJobInput and writes nothing.

    Full form: `{"provider": "simulated", "input": {...}, "wait_seconds": 10, "max_tries": 3,
    "callback_url": "https://..."}` (all but `input` optional).
    Shorthand (the seed's): `{"delay": 20}` is the simulated provider's input with default poll settings.
    """
    if not isinstance(event, dict):
        raise InvalidJobInput(f"the job request must be a JSON object, got {type(event).__name__}")
    job_id = event.get("job_id")
    if job_id is not None and (not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id)):
        raise InvalidJobInput("'job_id' must be 1-80 characters of letters, digits, '-' and '_'")
    provider_name = event.get("provider", DEFAULT_PROVIDER)
    if not isinstance(provider_name, str):
        raise InvalidJobInput(f"'provider' must be a string, got {json.dumps(provider_name)}")
    provider = get_provider(providers, provider_name)
    if "input" in event:
        unknown = sorted(set(event) - _REQUEST_KEYS)
        if unknown:
            raise InvalidJobInput(f"unknown field(s) beside 'input': {', '.join(unknown)}")
        raw_input = event["input"]
    else:
        raw_input = {k: v for k, v in event.items() if k not in _REQUEST_KEYS}
    return JobRequest(
        provider=provider_name,
        provider_input=provider.validate(raw_input),
        poll=poll_settings_from(event, settings),
        job_id=job_id,
        callback_url=parse_callback_url(event["callback_url"])
        if event.get("callback_url") is not None
        else None,
    )


def job_id_for(state: Mapping[str, Any], execution_name: str) -> str:
    """The job an execution works on: the state's `job_id` where valid, else the execution's name."""
    job_id = state.get("job_id") if isinstance(state, Mapping) else None
    if isinstance(job_id, str) and JOB_ID_PATTERN.match(job_id):
        return job_id
    return execution_name


def loop_state(job: Job) -> dict[str, Any]:
    """The state the poll loop carries between states (small: the job record holds the rest)."""
    state: dict[str, Any] = {
        "job_id": job.job_id,
        "status": job.status.value,
        "poll": job.poll.to_dict(),
        "try_count": job.try_count,
        "progress": job.progress,
    }
    if job.status is JobStatus.FAILED:
        error = job.error or JobError("ProviderJobFailed", "the provider reported a failure")
        state["error"] = "ProviderJobFailed"
        state["cause"] = f"{error.code}: {error.message}"
    elif job.status is JobStatus.CANCELED:
        state["error"] = "JobCanceled"
        state["cause"] = f"job {job.job_id} was canceled"
    return state


def new_job(
    job_id: str,
    request: JobRequest,
    clock: Clock,
    settings: Settings,
    owner: str = "local",
    request_hash: str | None = None,
) -> Job:
    now = clock.now()
    return Job(
        job_id=job_id,
        provider=request.provider,
        request=request.provider_input,
        poll=request.poll,
        status=JobStatus.QUEUED,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=settings.job_ttl_seconds),
        owner=owner,
        callback_url=request.callback_url,
        request_hash=request_hash,
    )


def start_job(
    event: Any,
    execution_name: str,
    *,
    store: JobStore,
    providers: Mapping[str, Provider],
    clock: Clock,
    settings: Settings,
    execution_arn: str | None = None,
) -> dict[str, Any]:
    """Create the job if it is not stored yet, submit it to its provider, mark it PENDING.

    Safe to run again for the same job (a retried Lambda): work already submitted is not submitted twice.
    """
    request = parse_job_request(event, providers, settings)
    job_id = request.job_id or execution_name
    job = store.find(job_id) or store.create(new_job(job_id, request, clock, settings))
    if job.work_id is not None:
        if job.status.is_terminal:
            raise IllegalTransition(f"job {job_id} is {job.status.value} already")
        return loop_state(job)
    if job.status is not JobStatus.QUEUED:
        raise IllegalTransition(f"job {job_id} is {job.status.value}, not QUEUED")
    work_id = get_provider(providers, job.provider).submit(job.request)

    def submitted(current: Job) -> Job:
        now = clock.now()
        return current.transition(
            JobStatus.PENDING,
            now,
            work_id=work_id,
            execution_arn=execution_arn or current.execution_arn,
            next_poll_at=now + timedelta(seconds=current.poll.wait_seconds),
        )

    return loop_state(store.update(job_id, submitted, current=job))


def _after_poll(job: Job, result: PollResult, clock: Clock) -> Job:
    now = clock.now()
    tries = job.try_count + 1
    progress = job.progress if result.progress is None else max(0.0, min(1.0, result.progress))
    if result.state is WorkState.SUCCEEDED:
        return job.transition(
            JobStatus.COMPLETE,
            now,
            try_count=tries,
            progress=1.0,
            result=result.result,
            next_poll_at=None,
        )
    if result.state is WorkState.FAILED:
        error = result.error or JobError("ProviderJobFailed", "the provider reported a failure")
        return job.transition(
            JobStatus.FAILED,
            now,
            try_count=tries,
            progress=progress,
            error=error,
            next_poll_at=None,
        )
    still = (
        JobStatus.PENDING
        if result.state is WorkState.PENDING and job.status is not JobStatus.RUNNING
        else JobStatus.RUNNING
    )
    wait = next_wait_seconds(job.poll, result)
    return job.transition(
        still,
        now,
        try_count=tries,
        progress=progress,
        next_poll_at=now + timedelta(seconds=wait),
    )


def poll_job(
    state: Mapping[str, Any],
    *,
    store: JobStore,
    providers: Mapping[str, Provider],
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> dict[str, Any]:
    """Poll the provider once, count the try, store what it said; returns the next loop state.

    When this poll finishes the job (this write won), `on_finished` gets the finished job (callbacks).
    """
    job_id = state.get("job_id")
    if not isinstance(job_id, str):
        raise InvalidJobInput("the poll state has no 'job_id'")
    job = store.get(job_id)
    if job.status.is_terminal:
        return loop_state(job)
    if job.work_id is None:
        raise IllegalTransition(f"job {job_id} was never submitted")
    result = get_provider(providers, job.provider).poll(job.work_id)
    try:
        job = store.update(job_id, lambda latest: _after_poll(latest, result, clock), current=job)
    except IllegalTransition:
        job = store.get(job_id)  # finished meanwhile (canceled, say): report the state that won
    else:
        if job.status.is_terminal and on_finished is not None:
            on_finished(job)
    next_state = loop_state(job)
    next_state["wait_seconds"] = next_wait_seconds(job.poll, result)
    return next_state


def _cause_message(cause: Any) -> str:
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


def record_failure(
    state: Mapping[str, Any],
    execution_name: str,
    *,
    store: JobStore,
    providers: Mapping[str, Provider],
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> dict[str, Any]:
    """Mark the job FAILED with the error Step Functions caught (in `state["failure"]`).

    A job that was never stored stays unstored; a finished job keeps its outcome. Work still running at
    the provider is canceled (best effort). Returns the error name and cause for the Fail state.
    """
    failure = state.get("failure") if isinstance(state, Mapping) else None
    failure = failure if isinstance(failure, Mapping) else {}
    error_name = str(failure.get("Error") or "States.Runtime")
    message = _cause_message(failure.get("Cause") or "")
    job_id = job_id_for(state, execution_name)
    outcome = {"job_id": job_id, "status": JobStatus.FAILED.value, "error": error_name}
    job = store.find(job_id)
    if job is None or job.status.is_terminal:
        return {**outcome, "cause": message, "recorded": False}

    def failed(current: Job) -> Job:
        return current.transition(
            JobStatus.FAILED, clock.now(), error=JobError(error_name, message), next_poll_at=None
        )

    try:
        job = store.update(job_id, failed, current=job)
    except IllegalTransition:
        return {**outcome, "cause": message, "recorded": False}
    if job.work_id is not None:
        # The job is failed either way; where the cancel fails, the provider's own expiry cleans up.
        with contextlib.suppress(ProviderError, InvalidJobInput):
            get_provider(providers, job.provider).cancel(job.work_id)
    if on_finished is not None:
        on_finished(job)
    return {**outcome, "cause": message, "recorded": True}
