"""The job: its statuses, the legal transitions between them, and the record itself.

Statuses follow the engine-polling documents (Queued, Pending, Running, Complete, Failed, Canceled).
They are spelled in upper case everywhere (store, state machine, API); this is the one place they are named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .clock import from_iso, to_iso
from .errors import IllegalTransition
from .results import StoredResult


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


class PollMode(StrEnum):
    FIXED = "fixed"  # every wait is `wait_seconds` (the seed's behaviour)
    ADAPTIVE = "adaptive"  # the provider's hint, else capped exponential backoff with full jitter


@dataclass(frozen=True)
class PollSettings:
    """How a job is polled: the wait before each poll, how many polls, and the overall deadline."""

    wait_seconds: int
    max_tries: int
    mode: PollMode = PollMode.FIXED
    max_wait_seconds: int = 300
    deadline_seconds: int = 24 * 3600
    # Polls one execution makes before the loop continues in a new execution (history stays small).
    continue_after: int = 1000
    # Wait for the provider's notification (a task token) first; poll only when none comes in time.
    notify: bool = False
    notify_timeout_seconds: int = 3600
    heartbeat_seconds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wait_seconds": self.wait_seconds,
            "max_tries": self.max_tries,
            "mode": self.mode.value,
            "max_wait_seconds": self.max_wait_seconds,
            "deadline_seconds": self.deadline_seconds,
            "continue_after": self.continue_after,
            "notify": self.notify,
            "notify_timeout_seconds": self.notify_timeout_seconds,
            "heartbeat_seconds": self.heartbeat_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PollSettings:
        return cls(
            wait_seconds=int(data["wait_seconds"]),
            max_tries=int(data["max_tries"]),
            mode=PollMode(data.get("mode", PollMode.FIXED.value)),
            max_wait_seconds=int(data.get("max_wait_seconds", cls.max_wait_seconds)),
            deadline_seconds=int(data.get("deadline_seconds", cls.deadline_seconds)),
            continue_after=int(data.get("continue_after", cls.continue_after)),
            notify=bool(data.get("notify", False)),
            notify_timeout_seconds=int(data.get("notify_timeout_seconds", cls.notify_timeout_seconds)),
            heartbeat_seconds=data.get("heartbeat_seconds"),
        )


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
    # The provider's service's own status of the work, as last seen (e.g. Athena's RUNNING).
    provider_status: str | None = None
    try_count: int = 0
    progress: float = 0.0
    result: Any = None
    error: JobError | None = None
    next_poll_at: datetime | None = None
    execution_arn: str | None = None
    # Engine providers: the original task's id, which the final result message must reference.
    task_id: str | None = None
    # Engine providers: the payload of the next poll task, as the engine left it (so a reconciler can resume
    # a loop whose execution, which carried it, was lost).
    task_payload: dict[str, Any] | None = None
    # The task token of the execution waiting for the provider's notification, once it waits.
    notify_token: str | None = None
    # Queue mode: which worker holds the job, until when (renewed by each report), and its latest output.
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    partial_output: str | None = None
    # How many executions the poll loop has continued into (0: still the first).
    generation: int = 0
    # How often the reconciler resumed the job after its execution (or its worker) was lost.
    resumes: int = 0
    # Things worth telling the job's owner about how it was polled (e.g. a schedule clamped to the deadline).
    notes: tuple[str, ...] = ()
    version: int = 0
    # Set by the API: where to POST the finished job, and what the deliveries did.
    callback_url: str | None = None
    callback: CallbackRecord | None = None
    # A hash of the request body sent with an Idempotency-Key (a replay must match it).
    request_hash: str | None = None
    # When the owner deleted the finished job's result.
    result_deleted_at: datetime | None = None
    # A result over the store's threshold: the object holding it (then `result` is None).
    stored_result: StoredResult | None = None
    # Share links of this job's result that its owner revoked (their ids).
    revoked_shares: tuple[str, ...] = ()

    @property
    def has_result(self) -> bool:
        """COMPLETE with its result still kept (inline or as an object)."""
        return self.status is JobStatus.COMPLETE and self.result_deleted_at is None

    @property
    def deadline(self) -> datetime:
        return self.created_at + timedelta(seconds=self.poll.deadline_seconds)

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

    def with_note(self, note: str, keep: int = 20) -> tuple[str, ...]:
        """The job's notes with `note` added (the newest `keep` only)."""
        return (*self.notes, note)[-keep:]
