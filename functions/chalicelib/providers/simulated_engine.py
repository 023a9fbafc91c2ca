"""The simulated provider in engine form: one function that answers every task.

This is also the example of how to write an engine (see the README): the first task submits the work and
answers `schedule_poll_task`; each poll task checks the work and answers either another `schedule_poll_task`
(with the same payload) or the final `task_result` referencing the original task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from ..clock import Clock
from ..engine import FIRST_TASK_FIELDS, schedule_poll_task, task_result
from ..errors import InvalidJobInput
from .base import WorkState, integral
from .simulated import INPUT_SCHEMA, MAX_DELAY_SECONDS, SimulatedProvider

DEFAULT_POLL_SECONDS = 10


class SimulatedEngine:
    """The simulated service as an engine: one function answers every task, polling every `poll_seconds`."""

    name = "simulated-engine"
    kind = "engine"
    can_notify = False
    examples: ClassVar[list[dict[str, Any]]] = [{"delay": 25, "poll_seconds": 10}, {"delay": 5, "fail": True}]
    # The simulated provider's input, how often to poll, and what an engine's first task takes.
    input_schema: dict[str, Any] = {  # noqa: RUF012 (read only)
        **INPUT_SCHEMA,
        "properties": {
            **INPUT_SCHEMA["properties"],
            "poll_seconds": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_DELAY_SECONDS,
                "default": DEFAULT_POLL_SECONDS,
            },
            **FIRST_TASK_FIELDS,
        },
    }

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._work = SimulatedProvider(clock)

    def validate(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return self._work.validate(request)  # refuses it with the simulated provider's words
        poll_seconds = integral(request.get("poll_seconds", DEFAULT_POLL_SECONDS))
        if (
            isinstance(poll_seconds, bool)
            or not isinstance(poll_seconds, int)
            or not 1 <= poll_seconds <= MAX_DELAY_SECONDS
        ):
            raise InvalidJobInput(
                f"'poll_seconds' must be a whole number of seconds, 1 to {MAX_DELAY_SECONDS}"
            )
        work = self._work.validate({k: v for k, v in request.items() if k != "poll_seconds"})
        return {**work, "poll_seconds": poll_seconds}

    def handle(self, task: dict[str, Any]) -> dict[str, Any]:
        payload = task["taskPayload"]
        now = self._clock.now()
        if not payload.get("isPollTask"):
            request = dict(payload["input"])
            poll_seconds = request.pop("poll_seconds", DEFAULT_POLL_SECONDS)
            next_payload = {
                "workId": self._work.submit(request),
                "isPollTask": True,
                "origTaskId": task["taskId"],
                "origJobId": task["jobId"],
                "origCallTimeUTC": task["callTimeUTC"],
                "engineConfig": {**payload.get("engineConfig", {}), "pollSeconds": poll_seconds},
            }
            if "origTdoId" in payload:
                next_payload["origTdoId"] = payload["origTdoId"]
            return schedule_poll_task(task, now + timedelta(seconds=poll_seconds), next_payload, now, 0.0)

        state = self._work.poll(payload["workId"])
        if state.state is WorkState.SUCCEEDED:
            return task_result(task, payload["origTaskId"], now, output=state.result)
        if state.state is WorkState.FAILED:
            return task_result(task, payload["origTaskId"], now, error=state.error)
        wait = payload["engineConfig"]["pollSeconds"]
        if state.retry_after_seconds is not None:
            wait = min(wait, state.retry_after_seconds)
        return schedule_poll_task(task, now + timedelta(seconds=wait), payload, now, state.progress)
