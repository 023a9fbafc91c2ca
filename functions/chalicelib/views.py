"""What clients see of a job: its JSON representation and when to look again. No HTTP here."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .clock import to_iso
from .job import Job, JobStatus

MAX_RETRY_AFTER_SECONDS = 3600


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment is not None else None


def job_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/jobs/{job_id}"


def result_url(base_url: str, job_id: str) -> str:
    return f"{job_url(base_url, job_id)}/result"


def share_url(base_url: str, token: str) -> str:
    return f"{base_url}/shared/{token}"


def job_view(job: Job, now: datetime, base_url: str | None = None) -> dict[str, Any]:
    """The job as the API shows it (and as callbacks send it). Links only where the base URL is known."""
    view: dict[str, Any] = {
        "id": job.job_id,
        "status": job.status.value,
        "provider_status": job.provider_status,
        "provider": job.provider,
        "input": job.request,
        "progress": job.progress,
        "try_count": job.try_count,
        # How often the reconciler resumed the job after its execution (or worker) was lost.
        "resumes": job.resumes,
        "max_tries": job.poll.max_tries,
        "wait_seconds": job.poll.wait_seconds,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "expires_at": _iso(job.expires_at),
        "next_poll_at": _iso(job.next_poll_at) if not job.status.is_terminal else None,
        "error": job.error.to_dict() if job.error is not None else None,
        "result_available": job.has_result,
        "result_deleted_at": _iso(job.result_deleted_at),
        "callback": None,
        # Queue mode: the latest part of the output while the worker runs.
        "partial_output": job.partial_output,
        "notes": list(job.notes),
    }
    if job.callback_url is not None:
        record = job.callback.to_dict() if job.callback is not None else {}
        view["callback"] = {
            "url": job.callback_url,
            "attempts": record.get("attempts", 0),
            "delivered_at": record.get("delivered_at"),
            "last_status": record.get("last_status"),
            "last_error": record.get("last_error"),
        }
    if base_url is not None:
        links = {"self": job_url(base_url, job.job_id)}
        if job.status is JobStatus.COMPLETE:
            links["result"] = result_url(base_url, job.job_id)
        view["links"] = links
    return view


def retry_after_seconds(job: Job, now: datetime, default: int) -> int:
    """Seconds a client should wait before asking again: until the next poll, at least 1."""
    if job.next_poll_at is None:
        return max(1, default)
    seconds = math.ceil((job.next_poll_at - now).total_seconds())
    return max(1, min(MAX_RETRY_AFTER_SECONDS, seconds))
