"""The job: its statuses, the legal transitions between them, and the record itself.

Statuses follow the engine-polling documents (Queued, Pending, Running, Complete, Failed, Canceled).
They are spelled in upper case everywhere (store, state machine, API); this is the one place they are named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .clock import from_iso, to_iso
from .errors import IllegalTransition


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED})

# Which status may follow which. A status may always "follow" itself (a poll that changes only progress),
# except a terminal one: a finished job never changes again.
_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELED}),
    JobStatus.PENDING: frozenset(
        {JobStatus.RUNNING, JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED}
    ),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.CANCELED}),
    JobStatus.COMPLETE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    if current.is_terminal:
        return False
    return target == current or target in _TRANSITIONS[current]


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a short machine-readable code and a human message."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobError:
        return cls(code=str(data["code"]), message=str(data["message"]))


@dataclass(frozen=True)
class PollSettings:
    """How a job is polled: seconds between polls and how many polls at most."""

    wait_seconds: int
    max_tries: int

    def to_dict(self) -> dict[str, int]:
        return {"wait_seconds": self.wait_seconds, "max_tries": self.max_tries}


@dataclass(frozen=True)
class CallbackRecord:
    """What happened to a job's callback: attempts made, the last answer, when it was delivered."""

    attempts: int = 0
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "delivered_at": to_iso(self.delivered_at) if self.delivered_at else None,
            "last_status": self.last_status,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallbackRecord:
        delivered = data.get("delivered_at")
        return cls(
            attempts=int(data.get("attempts", 0)),
            delivered_at=from_iso(delivered) if delivered else None,
            last_status=data.get("last_status"),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True)
class Job:
    job_id: str
    provider: str
    request: dict[str, Any]
    poll: PollSettings
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    owner: str = "local"
    work_id: str | None = None
    try_count: int = 0
    progress: float = 0.0
    result: Any = None
    error: JobError | None = None
    next_poll_at: datetime | None = None
    execution_arn: str | None = None
    version: int = 0
    # Set by the API: where to POST the finished job, and what the deliveries did.
    callback_url: str | None = None
    callback: CallbackRecord | None = None
    # A hash of the request body sent with an Idempotency-Key (a replay must match it).
    request_hash: str | None = None
    # When the owner deleted the finished job's result.
    result_deleted_at: datetime | None = None

    def transition(self, target: JobStatus, now: datetime, **changes: Any) -> Job:
        """A copy of the job in status `target`; raises IllegalTransition where the model forbids it."""
        if not can_transition(self.status, target):
            raise IllegalTransition(
                f"job {self.job_id} is {self.status.value} and cannot become {target.value}"
            )
        return dataclasses.replace(self, status=target, updated_at=now, **changes)

    def amend(self, now: datetime, **changes: Any) -> Job:
        """A copy with bookkeeping `changes` that leave the status alone (allowed on a finished job too)."""
        if "status" in changes:
            raise IllegalTransition("amend() never changes the status: use transition()")
        return dataclasses.replace(self, updated_at=now, **changes)

    def is_expired(self, now: datetime) -> bool:
        """Past its expiry time: gone for clients even before DynamoDB's TTL deletes the item."""
        return self.expires_at <= now
