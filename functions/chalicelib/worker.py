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

from . import rules
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
from .job import Job, JobError
from .metrics import Metrics
from .providers import Providers, WorkerProvider, get_provider
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
        lease = self.settings.lease_seconds
        self.store.update(
            self.job_id, lambda job: rules.lease_renewed(job, self.worker_id, now, lease, tail, progress)
        )
        self.writes += 1


def run_job(
    job_id: str,
    *,
    worker_id: str,
    store: JobStore,
    providers: Providers,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None = None,
    time_left: Callable[[], float] | None = None,
    metrics: Metrics | None = None,
) -> str:
    """Run one delivery of a queued job; returns what happened (for the log).

    `on_finished` gets the job when this worker's write finished it (callbacks, metrics); `metrics` counts
    the job started when this is its first try. `time_left`: the seconds
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
    try:
        job = store.update(
            job_id,
            lambda current: rules.lease_taken(current, worker_id, now, settings.lease_seconds),
            current=job,
        )
    except IllegalTransition:
        return "finished-already"
    if metrics is not None and job.try_count == 1:  # the first lease: one write alone makes this try
        metrics.job_started(job)

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
    # A large result goes to the result store when the job is written (see store.ConditionalStore).
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
    try:
        done = store.update(
            job_id, lambda job: rules.lease_finished(job, worker_id, clock.now(), result=result, error=error)
        )
    except JobCanceled:
        return "canceled"
    except LeaseLost:
        return "lease-lost"
    if on_finished is not None:
        on_finished(done)
    return "failed" if error else "complete"


def dead_lettered(
    job_id: str,
    receive_count: int,
    *,
    store: JobStore,
    clock: Clock,
    on_finished: Callable[[Job], Any] | None = None,
) -> str:
    """A job's message went to the dead-letter queue: mark the job FAILED, unless a worker still runs it."""
    now = clock.now()
    try:
        failed = store.update(job_id, lambda job: rules.dead_lettered(job, receive_count, now))
    except (IllegalTransition, JobNotFound):
        return "finished-already"
    except LeaseHeld:
        return "still-running"
    if on_finished is not None:
        on_finished(failed)
    return "failed"
