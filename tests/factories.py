"""The one Job factory for tests: a QUEUED simulated job created at NOW; any field can be changed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.job import Job, JobStatus, PollSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_job(
    job_id: str = "j1",
    *,
    status: JobStatus = JobStatus.QUEUED,
    poll: PollSettings | None = None,
    created_at: datetime = NOW,
    **changes: Any,
) -> Job:
    """A job as `new_job` would make it (7 days to expiry), with `changes` applied."""
    job = Job(
        job_id=job_id,
        provider="simulated",
        request={"delay": 1},
        poll=poll or PollSettings(wait_seconds=10, max_tries=3),
        status=status,
        created_at=created_at,
        updated_at=created_at,
        expires_at=created_at + timedelta(days=7),
    )
    return dataclasses.replace(job, **changes)
