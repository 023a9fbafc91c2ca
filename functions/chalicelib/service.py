"""The service layer: what the Lambda handlers (and later the API) call.

Each function takes what it needs (store, providers, clock, settings) as arguments and returns plain data
for the state machine. Errors propagate as the named exceptions in `errors`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from . import engine, errors
from .callbacks import parse_callback_url
from .clock import Clock, to_iso
from .errors import (
    IllegalTransition,
    InvalidJobInput,
    JobAlreadyFinished,
    JobPollError,
    ProviderError,
)
from .job import Job, JobError, JobStatus, PollSettings
from .policy import POLL_FIELDS, clamp_to_deadline, poll_settings_from, poll_time
from .providers import (
    AnyProvider,
    Engine,
    NotifiesByEvent,
    PollResult,
    WorkerProvider,
    WorkState,
    get_provider,
)
from .settings import Settings
from .store import JobStore

# Step Functions execution names are 1-80 characters of this set. A job id is an execution name, and a
# continued poll loop runs as `<job id>-<n>`, so job ids stop at 64.
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_PROVIDER = "simulated"
# Keys of a start request that are not the provider's input (the shorthand form puts the input beside them).
_REQUEST_KEYS = frozenset({"job_id", "provider", "input", "callback_url"} | POLL_FIELDS)

Providers = Mapping[str, AnyProvider]


@dataclass(frozen=True)
class JobRequest:
    """A validated request to start a job."""

    provider: str
    provider_input: dict[str, Any]
    poll: PollSettings
    job_id: str | None = None
    callback_url: str | None = None
    # The poll settings as the request gave them (StartJob derives the same defaults again).
    poll_fields: Mapping[str, Any] = field(default_factory=dict)

    def execution_input(self, job_id: str) -> dict[str, Any]:
        """What the poller's execution starts from (StartJob parses it again)."""
        return {"job_id": job_id, "provider": self.provider, "input": self.provider_input, **self.poll_fields}


def parse_job_request(event: Any, providers: Providers, settings: Settings) -> JobRequest:
    """Validate a start request; raises InvalidJobInput and writes nothing.

    Full form: `{"provider": "simulated", "input": {...}, "wait_seconds": 10, "max_tries": 3,
    "callback_url": "https://..."}` (all but `input` optional).
    Shorthand (the seed's): `{"delay": 20}` is the simulated provider's input with default poll settings.
    """
    if not isinstance(event, dict):
        raise InvalidJobInput(f"the job request must be a JSON object, got {type(event).__name__}")
    job_id = event.get("job_id")
    if job_id is not None and (not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id)):
        raise InvalidJobInput("'job_id' must be 1-64 characters of letters, digits, '-' and '_'")
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
    is_engine = isinstance(provider, Engine)
    poll = poll_settings_from(event, settings, engine=is_engine)
    if poll.notify and not getattr(provider, "can_notify", False):
        raise InvalidJobInput(f"provider {provider_name!r} cannot notify: leave out 'notify'")
    return JobRequest(
        provider=provider_name,
        provider_input=engine.validate_input(provider.validate, raw_input)
        if is_engine
        else provider.validate(raw_input),
        poll=poll,
        job_id=job_id,
        callback_url=parse_callback_url(event["callback_url"])
        if event.get("callback_url") is not None
        else None,
        poll_fields={name: event[name] for name in sorted(POLL_FIELDS) if name in event},
    )


def job_id_for(state: Mapping[str, Any], execution_name: str) -> str:
    """The job an execution works on: the state's `job_id` where valid, else the execution's name."""
    job_id = state.get("job_id") if isinstance(state, Mapping) else None
    if isinstance(job_id, str) and JOB_ID_PATTERN.match(job_id):
        return job_id
    return execution_name


def _failure_name(error: JobError | None) -> str:
    """The execution's error for a failed job: jobpoll's own error names, else ProviderJobFailed."""
    if error is not None:
        named = getattr(errors, error.code, None)
        if isinstance(named, type) and issubclass(named, JobPollError):
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
        state["error"] = _failure_name(job.error)
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
    providers: Providers,
    clock: Clock,
    settings: Settings,
    execution_arn: str | None = None,
) -> dict[str, Any]:
    """Create the job if it is not stored yet, submit it to its provider, mark it PENDING.

    Safe to run again for the same job (a retried Lambda): work already submitted is not submitted twice.
    An event with `continuation` resumes a poll loop that an earlier execution handed over.
    """
    if isinstance(event, dict) and "continuation" in event:
        return resume_job(event["continuation"], store=store, clock=clock, execution_arn=execution_arn)
    request = parse_job_request(event, providers, settings)
    job_id = request.job_id or execution_name
    job = store.find(job_id) or store.create(new_job(job_id, request, clock, settings))
    if job.work_id is not None or job.task_id is not None:
        if job.status.is_terminal:
            raise IllegalTransition(f"job {job_id} is {job.status.value} already")
        return loop_state(job, clock.now())
    if job.status is not JobStatus.QUEUED:
        raise IllegalTransition(f"job {job_id} is {job.status.value}, not QUEUED")
    provider = get_provider(providers, job.provider)
    if isinstance(provider, WorkerProvider):
        raise InvalidJobInput(f"provider {job.provider!r} runs on queue workers: submit it through the API")
    now = clock.now()
    arn = execution_arn or job.execution_arn

    if isinstance(provider, Engine):
        task = engine.first_task(job_id, job.request, now)
        answer = engine.parse_message(provider.handle(task), task, task["taskId"])

        def started_engine(current: Job) -> Job:
            submitted = current.transition(JobStatus.PENDING, now, task_id=task["taskId"], execution_arn=arn)
            return _after_engine_answer(submitted, answer, now, counts_as_try=False)

        job = store.update(job_id, started_engine, current=job)
        payload = answer.task_payload if isinstance(answer, engine.SchedulePoll) else None
        return loop_state(job, now, task_payload=payload)

    work_id = provider.submit(job.request)

    def submitted(current: Job) -> Job:
        return current.transition(
            JobStatus.PENDING,
            now,
            work_id=work_id,
            execution_arn=arn,
            next_poll_at=now + timedelta(seconds=current.poll.wait_seconds),
        )

    return loop_state(store.update(job_id, submitted, current=job), now)


def resume_job(
    state: Any, *, store: JobStore, clock: Clock, execution_arn: str | None = None
) -> dict[str, Any]:
    """Pick up a poll loop handed over by the previous execution of the same job."""
    if not isinstance(state, dict) or not isinstance(state.get("job_id"), str):
        raise InvalidJobInput("'continuation' must be the poll state of a job")
    generation = state.get("generation", 0) + 1 if isinstance(state.get("generation"), int) else 1

    def handed_over(current: Job) -> Job:
        if current.status.is_terminal:
            raise IllegalTransition(f"job {current.job_id} is {current.status.value} already")
        return current.transition(
            current.status, clock.now(), generation=generation, execution_arn=execution_arn
        )

    job = store.update(state["job_id"], handed_over)
    return loop_state(job, clock.now(), task_payload=state.get("task_payload"))


def _still_running(job: Job, result_state: WorkState) -> JobStatus:
    if result_state is WorkState.PENDING and job.status is not JobStatus.RUNNING:
        return JobStatus.PENDING
    return JobStatus.RUNNING


def _past_deadline(job: Job, now: datetime, tries: int) -> Job | None:
    if now < job.deadline:
        return None
    return job.transition(
        JobStatus.FAILED,
        now,
        try_count=tries,
        next_poll_at=None,
        error=JobError(
            "DeadlineExceeded",
            f"the job was still running at its deadline, {job.poll.deadline_seconds} s after it started",
        ),
    )


def _after_poll(job: Job, result: PollResult, now: datetime, counts_as_try: bool = True) -> Job:
    if result.provider_status is not None:
        job = job.amend(now, provider_status=result.provider_status)
    tries = job.try_count + 1 if counts_as_try else job.try_count
    progress = job.progress if result.progress is None else max(0.0, min(1.0, result.progress))
    if result.state is WorkState.SUCCEEDED:
        return job.transition(
            JobStatus.COMPLETE, now, try_count=tries, progress=1.0, result=result.result, next_poll_at=None
        )
    if result.state is WorkState.FAILED:
        error = result.error or JobError("ProviderJobFailed", "the provider reported a failure")
        return job.transition(
            JobStatus.FAILED, now, try_count=tries, progress=progress, error=error, next_poll_at=None
        )
    expired = _past_deadline(job, now, tries)
    if expired is not None:
        return expired
    polled = job.transition(_still_running(job, result.state), now, try_count=tries, progress=progress)
    when, _ = poll_time(polled, now, result)
    return polled.transition(polled.status, now, next_poll_at=when)


def _after_engine_answer(
    job: Job, answer: engine.SchedulePoll | engine.TaskResult, now: datetime, counts_as_try: bool = True
) -> Job:
    tries = job.try_count + 1 if counts_as_try else job.try_count
    if isinstance(answer, engine.TaskResult):
        if answer.error is not None:
            return job.transition(
                JobStatus.FAILED, now, try_count=tries, error=answer.error, next_poll_at=None
            )
        result = {"output": answer.output, "taskId": answer.task_id, "origTaskId": answer.orig_task_id}
        return job.transition(
            JobStatus.COMPLETE, now, try_count=tries, progress=1.0, result=result, next_poll_at=None
        )
    expired = _past_deadline(job, now, tries) if counts_as_try else None
    if expired is not None:
        return expired
    when, clamped = clamp_to_deadline(job, answer.next_poll_at, now)
    notes = job.notes
    if clamped:
        notes = job.with_note(
            f"{to_iso(now)}: nextPollTimeUTC {to_iso(answer.next_poll_at)} is past the deadline; "
            f"polling at {to_iso(when)} instead"
        )
    status = JobStatus.RUNNING if counts_as_try else job.status
    progress = job.progress if answer.progress is None else answer.progress
    return job.transition(status, now, try_count=tries, progress=progress, next_poll_at=when, notes=notes)


def poll_job(
    state: Mapping[str, Any],
    *,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> dict[str, Any]:
    """Poll the provider (or engine) once, count the try, store what it said; returns the next state.

    When this poll finishes the job (this write won), `on_finished` gets the finished job (callbacks).
    """
    job_id = state.get("job_id")
    if not isinstance(job_id, str):
        raise InvalidJobInput("the poll state has no 'job_id'")
    polls = state.get("execution_polls", 0)
    execution_polls = (polls if isinstance(polls, int) else 0) + 1
    job = store.get(job_id)
    now = clock.now()
    if job.status.is_terminal:
        return loop_state(job, now, execution_polls=execution_polls)
    provider = get_provider(providers, job.provider)
    payload: dict[str, Any] | None = None
    change: Callable[[Job], Job]
    if isinstance(provider, Engine):
        if job.task_id is None or not isinstance(state.get("task_payload"), dict):
            raise IllegalTransition(f"job {job_id} has no engine task to poll")
        task = engine.new_task(job_id, state["task_payload"], now)
        answer = engine.parse_message(provider.handle(task), task, job.task_id)
        payload = answer.task_payload if isinstance(answer, engine.SchedulePoll) else None

        def change(current: Job) -> Job:
            return _after_engine_answer(current, answer, now)

    elif isinstance(provider, WorkerProvider):
        raise IllegalTransition(f"job {job_id} runs on a queue worker, not in a poll loop")
    else:
        if job.work_id is None:
            raise IllegalTransition(f"job {job_id} was never submitted")
        result = provider.poll(job.work_id)

        def change(current: Job) -> Job:
            return _after_poll(current, result, now)

    try:
        job = store.update(job_id, change, current=job)
    except IllegalTransition:
        job = store.get(job_id)  # finished meanwhile (canceled, say): report the state that won
    else:
        if job.status.is_terminal and on_finished is not None:
            on_finished(job)
    return loop_state(job, now, execution_polls=execution_polls, task_payload=payload)


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
    providers: Providers,
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
    # A Fail state may not raise Step Functions' own names (States.*): those fail the execution as
    # JobFailed, with the original name in the cause; the job records the original name.
    raised = "JobFailed" if error_name.startswith("States.") else error_name
    cause = f"{error_name}: {message}" if raised != error_name else message
    outcome = {"job_id": job_id, "status": JobStatus.FAILED.value, "error": raised}
    job = store.find(job_id)
    if job is None or job.status.is_terminal:
        return {**outcome, "cause": cause, "recorded": False}

    def failed(current: Job) -> Job:
        return current.transition(
            JobStatus.FAILED, clock.now(), error=JobError(error_name, message), next_poll_at=None
        )

    try:
        job = store.update(job_id, failed, current=job)
    except IllegalTransition:
        return {**outcome, "cause": cause, "recorded": False}
    provider = providers.get(job.provider)
    if job.work_id is not None and provider is not None and not isinstance(provider, Engine | WorkerProvider):
        # The job is failed either way; where the cancel fails, the provider's own expiry cleans up.
        with contextlib.suppress(ProviderError):
            provider.cancel(job.work_id)
    if on_finished is not None:
        on_finished(job)
    return {**outcome, "cause": cause, "recorded": True}


def await_notification(event: Mapping[str, Any], *, store: JobStore, clock: Clock) -> dict[str, Any]:
    """Record the task token of the execution that now waits for the provider's notification.

    A notification that came before the wait began (a fast service) finished the job already: that raises
    JobAlreadyFinished, and the state machine reads the outcome at once instead of waiting.
    """
    job_id, token = event.get("job_id"), event.get("task_token")
    if not isinstance(job_id, str) or not isinstance(token, str) or not token:
        raise InvalidJobInput("awaiting a notification needs 'job_id' and 'task_token'")

    def waiting(current: Job) -> Job:
        return current.transition(current.status, clock.now(), notify_token=token)

    try:
        job = store.update(job_id, waiting)
    except IllegalTransition:
        status = store.get(job_id).status.value
        raise JobAlreadyFinished(
            f"job {job_id} finished ({status}) before its wait for a notification"
        ) from None
    return {"job_id": job.job_id, "status": job.status.value, "awaiting_notification": True}


_STALE_TOKEN_ERRORS = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


def notify_job(
    job_id: str,
    result: PollResult,
    *,
    store: JobStore,
    sfn: Any,
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> dict[str, Any]:
    """Take the provider's notification: store what it says and wake the execution waiting for it.

    Finished work completes the wait (SendTaskSuccess with the loop state); running work counts as a
    heartbeat. When the wait is over already (timed out: polling took over), the job is still updated and
    the next poll reports it.
    """
    now = clock.now()
    try:
        job = store.update(job_id, lambda current: _after_poll(current, result, now, counts_as_try=False))
    except IllegalTransition:
        job = store.get(job_id)  # finished already: the notification changes nothing
        return {"job_id": job_id, "status": job.status.value, "delivered": False}
    if job.status.is_terminal and on_finished is not None:
        on_finished(job)
    delivered = False
    if job.notify_token is not None:
        try:
            if job.status.is_terminal:
                sfn.send_task_success(taskToken=job.notify_token, output=json.dumps(loop_state(job, now)))
            else:
                sfn.send_task_heartbeat(taskToken=job.notify_token)
            delivered = True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _STALE_TOKEN_ERRORS:
                raise
    return {"job_id": job_id, "status": job.status.value, "delivered": delivered}


def take_notification(
    event: Any,
    *,
    store: JobStore,
    providers: Providers,
    sfn: Any,
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> dict[str, Any]:
    """NotifyJob: a provider's direct notification (`parse_notification`), or its service's state-change
    event from EventBridge (`job_for_event`); stored and delivered by `notify_job`."""
    if isinstance(event, dict) and "source" in event and "detail-type" in event:
        found = job_for_event(event, store=store, providers=providers)
        if isinstance(found, dict):
            return found
        job_id, result = found
    else:
        job_id, result = parse_notification(event)
    return notify_job(job_id, result, store=store, sfn=sfn, clock=clock, on_finished=on_finished)


def job_for_event(
    event: dict[str, Any], *, store: JobStore, providers: Providers
) -> tuple[str, PollResult] | dict[str, Any]:
    """The job a service's state-change event is about (the work id index) and its work's state, read once
    from the service (the event says that something changed; the service has the result).

    Events about work no job has (another stack's, say), and about jobs that poll rather than wait for a
    notification, change nothing: the outcome to report is returned instead.
    """
    source, detail_type = event.get("source"), event.get("detail-type")
    provider = next(
        (
            p
            for p in providers.values()
            if isinstance(p, NotifiesByEvent)
            and (p.event_source, p.event_detail_type) == (source, detail_type)
        ),
        None,
    )
    if provider is None:
        raise InvalidJobInput(f"no provider takes {detail_type!r} events from {source!r}")
    work_id = provider.work_id_of_event(event)
    job = store.find_by_work_id(work_id) if work_id else None
    if work_id is None or job is None or job.provider != provider.name:
        return {"job_id": None, "work_id": work_id, "delivered": False}
    if not job.poll.notify or job.status.is_terminal:
        return {"job_id": job.job_id, "status": job.status.value, "delivered": False}
    return job.job_id, provider.poll(work_id)


def parse_notification(event: Any) -> tuple[str, PollResult]:
    """A provider's notification: `{"job_id", "state": RUNNING|SUCCEEDED|FAILED, "progress"?, ...}`."""
    if not isinstance(event, dict) or not isinstance(event.get("job_id"), str):
        raise InvalidJobInput("a notification needs 'job_id'")
    try:
        state = WorkState(str(event.get("state")))
    except ValueError:
        known = ", ".join(s.value for s in WorkState)
        raise InvalidJobInput(f"a notification's 'state' must be one of {known}") from None
    progress = event.get("progress")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int | float) or not 0 <= progress <= 1
    ):
        raise InvalidJobInput("a notification's 'progress' must be a number from 0 to 1")
    error = None
    if state is WorkState.FAILED:
        raw = event.get("error")
        if not isinstance(raw, dict) or not {"code", "message"} <= set(raw):
            raise InvalidJobInput("a failure notification needs 'error': {'code', 'message'}")
        error = JobError.from_dict(raw)
    return event["job_id"], PollResult(
        state=state, progress=progress, result=event.get("result"), error=error
    )
