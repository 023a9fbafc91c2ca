"""Queue mode: the API enqueues a job, a worker takes it under a lease, runs it, and reports as it goes.

At-least-once delivery is safe: a delivery for a finished job does nothing; one for a job another worker
runs under a live lease does no work and is retried later (`LeaseHeld`); when a worker dies mid-job its
lease lapses (each report renews it) and the next delivery takes the job over. Partial output reaches the
job at most once per `report_interval_seconds`, by conditional writes, keeping only the newest
`partial_output_max_chars`; the full result is stored at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock
from .errors import (
    IllegalTransition,
    InvalidJobInput,
    JobCanceled,
    JobNotFound,
    LeaseHeld,
    LeaseLost,
    ProviderError,
    QueueJobTimedOut,
)
from .job import Job, JobError, JobStatus
from .providers import AnyProvider, WorkerProvider, get_provider
from .settings import Settings
from .store import JobStore


def work_message(job_id: str) -> str:
    """The body of a queue message asking a worker to run `job_id`."""
    return json.dumps({"job_id": job_id})


def job_id_of(body: str) -> str:
    """The job a queue message names; raises InvalidJobInput for anything else."""
    try:
        message = json.loads(body)
    except ValueError:
        raise InvalidJobInput("a work message must be JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("job_id"), str):
        raise InvalidJobInput("a work message must be {'job_id': ...}")
    return message["job_id"]


def _lease_is_live(job: Job, now: datetime) -> bool:
    return job.lease_expires_at is not None and job.lease_expires_at > now


@dataclass
class Reporter:
    """`report(output, progress)` for one worker's run: throttled, conditional, size-bounded writes."""

    store: JobStore
    job_id: str
    worker_id: str
    clock: Clock
    settings: Settings
    # Seconds this worker's invocation has left (Lambda's context counts them).
    time_left: Callable[[], float]
    last_write: datetime | None = None
    writes: int = 0

    def __call__(self, output: str, progress: float) -> None:
        spare = self.settings.worker_timeout_seconds - self.settings.queue_job_max_seconds
        if self.time_left() < spare:
            raise QueueJobTimedOut(
                f"job {self.job_id} ran longer than the longest queue-mode job "
                f"({self.settings.queue_job_max_seconds} s)"
            )
        now = self.clock.now()
        interval = timedelta(seconds=self.settings.report_interval_seconds)
        if self.last_write is not None and now - self.last_write < interval:
            return
        self.last_write = now
        tail = output[-self.settings.partial_output_max_chars :]
        self.store.update(self.job_id, lambda job: self._reported(job, tail, progress, now))
        self.writes += 1

    def _reported(self, job: Job, tail: str, progress: float, now: datetime) -> Job:
        if job.status is JobStatus.CANCELED:
            raise JobCanceled(f"job {job.job_id} was canceled")
        if job.status.is_terminal or job.lease_owner != self.worker_id:
            raise LeaseLost(f"job {job.job_id} is no longer this worker's")
        return job.transition(
            JobStatus.RUNNING,
            now,
            partial_output=tail,
            progress=max(0.0, min(1.0, progress)),
            lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
        )


def run_job(
    job_id: str,
    *,
    worker_id: str,
    store: JobStore,
    providers: dict[str, AnyProvider] | Any,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None = None,
    time_left: Callable[[], float] | None = None,
) -> str:
    """Run one delivery of a queued job; returns what happened (for the log).

    `on_finished` gets the job when this worker's write finished it (callbacks). `time_left`: the seconds
    the worker's invocation has left (default: its timeout from now on `clock`); the job is stopped with
    QueueJobTimedOut once it has run `queue_job_max_seconds` of them.

    Raises LeaseHeld when another worker runs the job under a live lease (the delivery is retried later).
    """
    try:
        job = store.get(job_id)
    except JobNotFound:
        return "no-such-job"
    if job.status.is_terminal:
        return "finished-already"
    provider = get_provider(providers, job.provider)
    if not isinstance(provider, WorkerProvider):
        raise InvalidJobInput(f"provider {job.provider!r} is not run by queue workers")
    now = clock.now()

    def take(current: Job) -> Job:
        if (
            current.status is JobStatus.RUNNING
            and current.lease_owner != worker_id
            and _lease_is_live(current, now)
        ):
            raise LeaseHeld(f"job {job_id} is running under {current.lease_owner}'s lease")
        return current.transition(
            JobStatus.RUNNING,
            now,
            try_count=current.try_count + 1,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
        )

    try:
        job = store.update(job_id, take, current=job)
    except IllegalTransition:
        return "finished-already"

    if time_left is None:

        def time_left() -> float:
            return settings.worker_timeout_seconds - (clock.now() - now).total_seconds()

    reporter = Reporter(store, job_id, worker_id, clock, settings, time_left)
    try:
        result = provider.run(job.request, reporter)
    except JobCanceled:
        return "canceled"
    except LeaseLost:
        return "lease-lost"
    except (ProviderError, QueueJobTimedOut) as exc:
        return _finish(
            store, job_id, worker_id, clock, error=JobError(exc.code, str(exc)), on_finished=on_finished
        )

    if len(json.dumps(result)) > settings.max_result_chars:
        error = JobError("ResultTooLarge", f"the result is over {settings.max_result_chars} characters")
        return _finish(store, job_id, worker_id, clock, error=error, on_finished=on_finished)
    return _finish(store, job_id, worker_id, clock, result=result, on_finished=on_finished)


def _finish(
    store: JobStore,
    job_id: str,
    worker_id: str,
    clock: Clock,
    result: Any = None,
    error: JobError | None = None,
    on_finished: Callable[[Job], Any] | None = None,
) -> str:
    def finished(job: Job) -> Job:
        if job.status is JobStatus.CANCELED:
            raise JobCanceled(f"job {job_id} was canceled")
        if job.status.is_terminal or job.lease_owner != worker_id:
            raise LeaseLost(f"job {job_id} is no longer this worker's")
        common = {"lease_owner": None, "lease_expires_at": None, "next_poll_at": None}
        if error is not None:
            return job.transition(JobStatus.FAILED, clock.now(), error=error, **common)
        return job.transition(
            JobStatus.COMPLETE, clock.now(), result=result, progress=1.0, partial_output=None, **common
        )

    try:
        done = store.update(job_id, finished)
    except JobCanceled:
        return "canceled"
    except LeaseLost:
        return "lease-lost"
    if on_finished is not None:
        on_finished(done)
    return "failed" if error else "complete"


def dead_lettered(job_id: str, receive_count: int, *, store: JobStore, clock: Clock) -> str:
    """A job's message went to the dead-letter queue: mark the job FAILED, unless a worker still runs it."""
    now = clock.now()

    def failed(job: Job) -> Job:
        if job.status is JobStatus.RUNNING and _lease_is_live(job, now):
            raise LeaseHeld(f"job {job_id} is still running under a live lease")
        return job.transition(
            JobStatus.FAILED,
            now,
            lease_owner=None,
            lease_expires_at=None,
            error=JobError(
                "DeliveryFailed",
                f"the job's message was received {receive_count} times without the job finishing; "
                "it is in the dead-letter queue",
            ),
        )

    try:
        store.update(job_id, failed)
    except (IllegalTransition, JobNotFound):
        return "finished-already"
    except LeaseHeld:
        return "still-running"
    return "failed"
