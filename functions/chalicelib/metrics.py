"""Metrics in CloudWatch's embedded metric format (EMF): one JSON document per event, on one line.

CloudWatch Logs turns each line of a function's log that is an EMF document into metric data points, so no
API call (and no permission) is needed to publish them. A document names its metrics and dimensions in `_aws`
and carries their values beside them, with the event's other facts (the job id among them) as properties:
searchable in the log, never a dimension (one metric per job would cost one custom metric per job).

Every metric has the dimension `Provider`, and is also published without dimensions (the empty dimension
set): the stack-wide total that the template's alarms watch. The timestamp comes from the clock.

Hand-written rather than Powertools' Metrics: the issue allows Powertools only while the Lambda bundle stays
under 1 MB, and the bundle is ~5 MB already (README, "Operating it").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock, to_epoch_ms
from .job import Job, JobStatus

PROVIDER = "Provider"

# The metrics, their units, and the job status each finished job counts towards.
JOBS_STARTED = "JobsStarted"
JOBS_COMPLETED = "JobsCompleted"
JOBS_FAILED = "JobsFailed"
JOBS_CANCELED = "JobsCanceled"
POLLS = "Polls"
JOBS_RESUMED = "JobsResumed"
CALLBACKS_DELIVERED = "CallbacksDelivered"
CALLBACKS_FAILED = "CallbacksFailed"
END_TO_END_LATENCY = "EndToEndLatency"
COUNT = "Count"
MILLISECONDS = "Milliseconds"
_FINISHED = {
    JobStatus.COMPLETE: JOBS_COMPLETED,
    JobStatus.FAILED: JOBS_FAILED,
    JobStatus.CANCELED: JOBS_CANCELED,
}


def stdout_line(line: str) -> None:
    """Write one line to standard output, where Lambda takes it into the function's log as it is (an EMF
    document must be the whole log event: Chalice's log format would prefix it)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Metrics:
    """Writes EMF documents in `namespace` through `write` (one line each), timestamped by `clock`."""

    write: Callable[[str], None]
    clock: Clock
    namespace: str

    def emit(
        self, event: str, provider: str, values: Mapping[str, tuple[float, str]], **properties: Any
    ) -> None:
        """One document: `values` maps metric name -> (value, unit); `properties` are logged beside."""
        document = {
            "_aws": {
                "Timestamp": to_epoch_ms(self.clock.now()),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[PROVIDER], []],
                        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                    }
                ],
            },
            PROVIDER: provider,
            "event": event,
            "level": "INFO",
            **properties,
            **{name: value for name, (value, _) in values.items()},
        }
        self.write(json.dumps(document, default=str, separators=(",", ":")))

    def job_started(self, job: Job) -> None:
        """The job left QUEUED: its provider (or a worker) has it."""
        values = {JOBS_STARTED: (1, COUNT)}
        self.emit("job_started", job.provider, values, job_id=job.job_id, status=job.status.value)

    def job_polled(self, job: Job) -> None:
        """One poll of the job's provider (or engine): what a poll loop pays for."""
        self.emit(
            "job_polled",
            job.provider,
            {POLLS: (1, COUNT)},
            job_id=job.job_id,
            status=job.status.value,
            try_count=job.try_count,
            progress=job.progress,
        )

    def job_finished(self, job: Job) -> None:
        """The job reached its final status; a completed one's end-to-end latency (created to finished)."""
        values: dict[str, tuple[float, str]] = {_FINISHED[job.status]: (1, COUNT)}
        if job.status is JobStatus.COMPLETE:
            latency = (job.updated_at - job.created_at).total_seconds() * 1000
            values[END_TO_END_LATENCY] = (round(latency), MILLISECONDS)
        properties: dict[str, Any] = {"job_id": job.job_id, "status": job.status.value}
        if job.error is not None:
            properties["error"] = job.error.code
        self.emit("job_finished", job.provider, values, **properties)

    def job_resumed(self, job: Job) -> None:
        """The reconciler resumed the job after its execution (or worker) was lost."""
        values = {JOBS_RESUMED: (1, COUNT)}
        self.emit("job_resumed", job.provider, values, job_id=job.job_id, resumes=job.resumes + 1)

    def callback_sent(self, job: Job) -> None:
        """A finished job's callback was delivered, or its delivery gave up (`job.callback` says how)."""
        record = job.callback
        delivered = record is not None and record.delivered_at is not None
        metric = CALLBACKS_DELIVERED if delivered else CALLBACKS_FAILED
        self.emit(
            "callback_delivered" if delivered else "callback_failed",
            job.provider,
            {metric: (1, COUNT)},
            job_id=job.job_id,
            attempts=record.attempts if record else 0,
            last_status=record.last_status if record else None,
            last_error=record.last_error if record else None,
        )
