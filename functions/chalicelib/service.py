"""The poll loop's use cases: what the state machine's Lambda handlers call.

Each reads the job, applies one of the pure `rules`, writes it conditionally through the store port, and
returns the state the ASL carries (`loop_state`). Everything it needs (store, providers, clock, settings, the
Step Functions client) is an argument. Errors propagate as the named exceptions in `errors`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from . import engine, rules
from .clock import Clock
from .errors import IllegalTransition, InvalidJobInput, JobAlreadyFinished, ProviderError
from .job import Job, JobError, JobStatus
from .job_request import new_job, parse_job_request
from .loop_state import cause_message, execution_polls_of, job_id_for, loop_state
from .metrics import Metrics
from .providers import (
    Engine,
    NotifiesByEvent,
    PollResult,
    Providers,
    WorkerProvider,
    WorkState,
    get_provider,
)
from .settings import Settings
from .store import JobStore


def start_job(
    event: Any,
    execution_name: str,
    *,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    settings: Settings,
    execution_arn: str | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Create the job if it is not stored yet, submit it to its provider, mark it PENDING.

    Safe to run again for the same job (a retried Lambda): work already submitted is not submitted twice.
    An event with `continuation` resumes a poll loop that an earlier execution handed over.
    """
    if isinstance(event, dict) and "continuation" in event:
        return resume_job(
            event["continuation"],
            store=store,
            providers=providers,
            clock=clock,
            execution_arn=execution_arn,
            metrics=metrics,
        )
    request = parse_job_request(event, providers, settings)
    job_id = request.job_id or execution_name
    job = store.find(job_id) or store.create(new_job(job_id, request, clock, settings))
    if job.work_id is not None or job.task_id is not None:
        if job.status.is_terminal:
            raise IllegalTransition(f"job {job_id} is {job.status.value} already")
        return loop_state(job, clock.now())
    return _submit(
        job, store=store, providers=providers, clock=clock, execution_arn=execution_arn, metrics=metrics
    )


def _submit(
    job: Job,
    *,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    execution_arn: str | None,
    metrics: Metrics | None,
) -> dict[str, Any]:
    """Submit a stored, never submitted job to its provider (or engine): PENDING (started)."""
    job_id = job.job_id
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
        job = store.update(
            job_id,
            lambda current: rules.engine_started(current, answer, task["taskId"], now, arn),
            current=job,
        )
        if metrics is not None:
            metrics.job_started(job)
        payload = answer.task_payload if isinstance(answer, engine.SchedulePoll) else None
        return loop_state(job, now, task_payload=payload)

    work_id = provider.submit(job.request)
    job = store.update(job_id, lambda current: rules.submitted(current, now, work_id, arn), current=job)
    if metrics is not None:
        metrics.job_started(job)
    return loop_state(job, now)


def resume_job(
    state: Any,
    *,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    execution_arn: str | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Pick up a poll loop handed over by the previous execution of the same job, or resumed by the
    reconciler from the job record (a job never submitted is submitted now)."""
    if not isinstance(state, dict) or not isinstance(state.get("job_id"), str):
        raise InvalidJobInput("'continuation' must be the poll state of a job")
    job = store.get(state["job_id"])
    if job.work_id is None and job.task_id is None and not job.status.is_terminal:
        return _submit(
            job, store=store, providers=providers, clock=clock, execution_arn=execution_arn, metrics=metrics
        )
    generation = state.get("generation", 0) + 1 if isinstance(state.get("generation"), int) else 1
    job = store.update(
        job.job_id,
        lambda current: rules.handed_over(current, clock.now(), generation, execution_arn),
        current=job,
    )
    return loop_state(job, clock.now(), task_payload=state.get("task_payload"))


def poll_job(
    state: Mapping[str, Any],
    *,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Poll the provider (or engine) once, count the try, store what it said; returns the next state.

    When this poll finishes the job (this write won), `on_finished` gets the finished job (callbacks,
    metrics); `metrics` counts the poll.
    """
    job_id = state.get("job_id")
    if not isinstance(job_id, str):
        raise InvalidJobInput("the poll state has no 'job_id'")
    execution_polls = execution_polls_of(state) + 1
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
            return rules.after_engine_answer(current, answer, now)

    elif isinstance(provider, WorkerProvider):
        raise IllegalTransition(f"job {job_id} runs on a queue worker, not in a poll loop")
    else:
        if job.work_id is None:
            raise IllegalTransition(f"job {job_id} was never submitted")
        result = provider.poll(job.work_id)

        def change(current: Job) -> Job:
            return rules.after_poll(current, result, now)

    try:
        job = store.update(job_id, change, current=job)
    except IllegalTransition:
        job = store.get(job_id)  # finished meanwhile (canceled, say): report the state that won
    else:
        if job.status.is_terminal and on_finished is not None:
            on_finished(job)
    if metrics is not None:
        metrics.job_polled(job)
    return loop_state(job, now, execution_polls=execution_polls, task_payload=payload)


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
    message = cause_message(failure.get("Cause") or "")
    job_id = job_id_for(state, execution_name)
    # A Fail state may not raise Step Functions' own names (States.*): those fail the execution as
    # JobFailed, with the original name in the cause; the job records the original name.
    raised = "JobFailed" if error_name.startswith("States.") else error_name
    cause = f"{error_name}: {message}" if raised != error_name else message
    outcome = {"job_id": job_id, "status": JobStatus.FAILED.value, "error": raised}
    job = store.find(job_id)
    if job is None or job.status.is_terminal:
        return {**outcome, "cause": cause, "recorded": False}

    error = JobError(error_name, message)
    try:
        job = store.update(job_id, lambda current: rules.failed(current, clock.now(), error), current=job)
    except IllegalTransition:
        return {**outcome, "cause": cause, "recorded": False}
    cancel_work(job, providers)
    if on_finished is not None:
        on_finished(job)
    return {**outcome, "cause": cause, "recorded": True}


def cancel_work(job: Job, providers: Providers) -> None:
    """Cancel the job's work at its provider, best effort: the job is finished either way, and where the
    cancel fails the provider's own expiry cleans up. Engines and queue workers have nothing to cancel."""
    provider = providers.get(job.provider)
    if job.work_id is not None and provider is not None and not isinstance(provider, Engine | WorkerProvider):
        with contextlib.suppress(ProviderError):
            provider.cancel(job.work_id)


def await_notification(event: Mapping[str, Any], *, store: JobStore, clock: Clock) -> dict[str, Any]:
    """Record the task token of the execution that now waits for the provider's notification.

    A notification that came before the wait began (a fast service) finished the job already: that raises
    JobAlreadyFinished, and the state machine reads the outcome at once instead of waiting.
    """
    job_id, token = event.get("job_id"), event.get("task_token")
    if not isinstance(job_id, str) or not isinstance(token, str) or not token:
        raise InvalidJobInput("awaiting a notification needs 'job_id' and 'task_token'")

    try:
        job = store.update(job_id, lambda current: rules.awaiting_notification(current, clock.now(), token))
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
        job = store.update(
            job_id, lambda current: rules.after_poll(current, result, now, counts_as_try=False)
        )
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
