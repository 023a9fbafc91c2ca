"""The provider interface: submit work, poll it, cancel it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ..job import JobError


class WorkState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class PollResult:
    """What one poll of the provider found."""

    state: WorkState
    progress: float | None = None
    result: Any = None
    error: JobError | None = None
    # The provider's own idea of when to look again (e.g. a Retry-After), in seconds.
    retry_after_seconds: float | None = None


class Provider(Protocol):
    name: str

    def validate(self, request: Any) -> dict[str, Any]:
        """The request, checked and normalised; raises InvalidJobInput."""
        ...

    def submit(self, request: dict[str, Any]) -> str:
        """Start the work; returns the provider's work id."""
        ...

    def poll(self, work_id: str) -> PollResult:
        """The state of the work; raises ProviderUnavailable on a transient failure."""
        ...

    def cancel(self, work_id: str) -> None:
        """Ask the provider to stop the work (best effort, idempotent)."""
        ...


@runtime_checkable
class Engine(Protocol):
    """A provider written as an engine: one function answers every task (see `engine.py`)."""

    name: str

    def validate(self, request: Any) -> dict[str, Any]:
        """The request, checked and normalised; raises InvalidJobInput."""
        ...

    def handle(self, task: dict[str, Any]) -> dict[str, Any]:
        """A `schedule_poll_task` or a `task_result` message for `task`."""
        ...


Report = Callable[[str, float], None]


@runtime_checkable
class WorkerProvider(Protocol):
    """Work jobpoll runs itself, on a queue worker: `run` produces the output, reporting as it goes."""

    name: str

    def validate(self, request: Any) -> dict[str, Any]:
        """The request, checked and normalised; raises InvalidJobInput."""
        ...

    def run(self, request: dict[str, Any], report: Report) -> Any:
        """Do the work; call `report(output so far, progress 0..1)` as it grows; return the full result.

        `report` raises JobCanceled, LeaseLost or QueueJobTimedOut when the work should stop: let it
        propagate.
        """
        ...
