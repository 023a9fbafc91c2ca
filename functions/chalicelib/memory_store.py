"""An in-memory job store with the DynamoDB store's conditional semantics (create-if-absent, version checks).

For tests of the rules and use cases without AWS; tests/integration/test_store_contract.py holds it to the
same cases as `store.DynamoDBJobStore`. Thread-safe: each write checks and stores under one lock, as DynamoDB
applies a conditional write atomically.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime

from .clock import to_iso
from .errors import ConcurrentUpdate, JobAlreadyExists, JobNotFound
from .job import Job, JobStatus
from .results import ResultStore
from .settings import DEFAULT_RESULT_THRESHOLD_BYTES
from .store import ConditionalStore, JobPage


class InMemoryJobStore(ConditionalStore):
    """Jobs in a dict, keyed by `job_id`."""

    def __init__(
        self,
        results: ResultStore | None = None,
        result_threshold_bytes: int = DEFAULT_RESULT_THRESHOLD_BYTES,
    ) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.results = results
        self.result_threshold_bytes = result_threshold_bytes

    def create(self, job: Job) -> Job:
        stored = dataclasses.replace(job, version=1)
        with self._lock:
            if job.job_id in self._jobs:
                raise JobAlreadyExists(f"job {job.job_id} exists already")
            self._jobs[job.job_id] = stored
        return stored

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise JobNotFound(f"no job {job_id}")
            return self._jobs[job_id]

    def find_by_work_id(self, work_id: str) -> Job | None:
        with self._lock:
            return next((job for job in self._jobs.values() if job.work_id == work_id), None)

    def _write(self, job: Job) -> Job:
        stored = dataclasses.replace(job, version=job.version + 1)
        with self._lock:
            current = self._jobs.get(job.job_id)
            if current is None or current.version != job.version:
                raise ConcurrentUpdate(
                    f"job {job.job_id} changed since version {job.version} was read", current
                )
            self._jobs[job.job_id] = stored
        return stored

    def stale_unfinished(self, updated_before: datetime, limit: int) -> list[Job]:
        with self._lock:
            jobs = [
                job
                for job in self._jobs.values()
                if not job.status.is_terminal and job.updated_at < updated_before
            ]
        return sorted(jobs, key=lambda job: (job.updated_at, job.job_id))[:limit]

    def list_by_owner(
        self,
        owner: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        live_at: datetime | None = None,
        after: dict[str, str] | None = None,
        max_queries: int = 10,
    ) -> JobPage:
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.owner == owner]
        jobs.sort(key=lambda job: (to_iso(job.created_at), job.job_id), reverse=True)
        if after is not None:
            start = (after["created_at"], after["job_id"])
            jobs = [job for job in jobs if (to_iso(job.created_at), job.job_id) < start]
        kept = [
            job
            for job in jobs
            if (status is None or job.status is status) and (live_at is None or job.expires_at > live_at)
        ]
        page = kept[:limit]
        if len(kept) <= limit:
            return JobPage(page, None)
        last = page[-1]
        return JobPage(
            page, {"job_id": last.job_id, "owner": last.owner, "created_at": to_iso(last.created_at)}
        )
