"""The provider interface: submit work, poll it, cancel it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidJobInput
from ..job import JobError


def json_object(
    value: Any, known: Collection[str], what: str, error: type[Exception] = InvalidJobInput
) -> dict[str, Any]:
    """`value` if it is a JSON object with only `known` fields; else `error` saying what is wrong."""
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise error(f"unknown {what} field(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return value


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
    # The service's own word for the state (e.g. Transcribe's IN_PROGRESS), shown beside jobpoll's status.
    provider_status: str | None = None


def integral(value: Any) -> Any:
    """A JSON number with a zero fraction (30.0) as the whole number it is (JSON Schema's "integer")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


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
class NotifiesByEvent(Protocol):
    """A polled provider whose service also announces state changes as events (EventBridge)."""

    name: str
    event_source: str
    event_detail_type: str

    def work_id_of_event(self, event: dict[str, Any]) -> str | None:
        """The work id the event is about; None when it is not work this provider started."""
        ...

    def poll(self, work_id: str) -> PollResult: ...


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
