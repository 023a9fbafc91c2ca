"""A deterministic simulated service: work that completes `delay` seconds after it was submitted.

The request is `{"delay": seconds, "fail": false, "result": any, "report_eta": false}` (`delay` 60 when left
out, as in the seed's GetJobStatus; or `"result_bytes": n` for a text result of n bytes, to try large
results); with `report_eta`
each poll also tells how long the work has left (a hint that adaptive polling follows). The work id carries
the submission time and the request, so the provider keeps no state of its own and any Lambda instance can
poll it, as with a real service. Progress is the fraction of `delay` that has passed. Time comes from the
injected clock.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ..clock import Clock, from_epoch_ms, to_epoch_ms, to_iso
from ..errors import InvalidJobInput, ProviderError
from ..job import JobError
from .base import PollResult, WorkState, integral, json_object

MAX_DELAY_SECONDS = 366 * 24 * 3600
DEFAULT_DELAY_SECONDS = 60  # the seed's GetJobStatus: `delay = 60` unless the input says otherwise
MAX_RESULT_BYTES = 10 * 1024 * 1024
_PREFIX = "sim-"
# What `validate` accepts, as the OpenAPI document shows it.
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "delay": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_DELAY_SECONDS,
            "default": DEFAULT_DELAY_SECONDS,
            "description": "Seconds until the work completes",
        },
        "fail": {"type": "boolean", "default": False, "description": "The work fails with SimulatedFailure"},
        "result": {"description": "What the work returns"},
        "result_bytes": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_RESULT_BYTES,
            "description": "Instead of `result`: a text result of this many bytes (large results)",
        },
        "report_eta": {"type": "boolean", "default": False, "description": "Each poll tells the time left"},
    },
    "not": {"required": ["result", "result_bytes"]},
}
_KNOWN_FIELDS = set(INPUT_SCHEMA["properties"])


class SimulatedProvider:
    """A simulated service: the work completes `delay` seconds after it was submitted, or fails if told to."""

    name = "simulated"
    kind = "poll"
    input_schema = INPUT_SCHEMA
    examples: ClassVar[list[dict[str, Any]]] = [
        {"delay": 20},
        {"delay": 5, "fail": True},
        {"delay": 30, "report_eta": True, "result": "done"},
    ]
    # The simulated service announces finished work as a real one does: an event on the bus, which the
    # template routes to NotifyJob (the local stack's tooling plays the service: infra/jobpoll/).
    can_notify = True
    event_source = "jobpoll.simulated"
    event_detail_type = "Simulated Work State Change"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def validate(self, request: Any) -> dict[str, Any]:
        request = json_object(request, _KNOWN_FIELDS, "simulated input")
        delay = request.get("delay", DEFAULT_DELAY_SECONDS)
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise InvalidJobInput(f"'delay' must be a number of seconds, got {json.dumps(delay)}")
        if not math.isfinite(delay) or delay < 0 or delay > MAX_DELAY_SECONDS:
            raise InvalidJobInput(f"'delay' must be between 0 and {MAX_DELAY_SECONDS} seconds, got {delay}")
        fail = request.get("fail", False)
        if not isinstance(fail, bool):
            raise InvalidJobInput(f"'fail' must be true or false, got {json.dumps(fail)}")
        report_eta = request.get("report_eta", False)
        if not isinstance(report_eta, bool):
            raise InvalidJobInput(f"'report_eta' must be true or false, got {json.dumps(report_eta)}")
        normalised: dict[str, Any] = {"delay": delay, "fail": fail}
        if report_eta:
            normalised["report_eta"] = True
        if "result" in request:
            normalised["result"] = request["result"]
        if "result_bytes" in request:
            size = integral(request["result_bytes"])
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_RESULT_BYTES:
                raise InvalidJobInput(f"'result_bytes' must be a whole number from 0 to {MAX_RESULT_BYTES}")
            if "result" in request:
                raise InvalidJobInput("give 'result' or 'result_bytes', not both")
            normalised["result_bytes"] = size
        return normalised

    def submit(self, request: dict[str, Any]) -> str:
        ticket = {
            "id": uuid.uuid4().hex,
            "submitted_ms": to_epoch_ms(self._clock.now()),
            "request": request,
        }
        encoded = base64.urlsafe_b64encode(json.dumps(ticket, separators=(",", ":")).encode())
        return _PREFIX + encoded.decode().rstrip("=")

    def finishes_at(self, work_id: str) -> datetime:
        """When the work ends (what the simulated service knows of its own work)."""
        ticket = _decode(work_id)
        return from_epoch_ms(ticket["submitted_ms"]) + timedelta(seconds=float(ticket["request"]["delay"]))

    def work_id_of_event(self, event: dict[str, Any]) -> str | None:
        """The work id a `Simulated Work State Change` event is about."""
        work_id = (event.get("detail") or {}).get("work_id")
        return work_id if isinstance(work_id, str) and work_id.startswith(_PREFIX) else None

    def poll(self, work_id: str) -> PollResult:
        ticket = _decode(work_id)
        request = ticket["request"]
        submitted = from_epoch_ms(ticket["submitted_ms"])
        delay = float(request["delay"])
        done_at = self.finishes_at(work_id)
        now = self._clock.now()
        if now < done_at:
            elapsed = (now - submitted).total_seconds()
            return PollResult(
                state=WorkState.RUNNING,
                progress=max(0.0, min(1.0, elapsed / delay)) if delay else 1.0,
                retry_after_seconds=(done_at - now).total_seconds() if request.get("report_eta") else None,
            )
        if request.get("fail"):
            return PollResult(
                state=WorkState.FAILED,
                progress=1.0,
                error=JobError("SimulatedFailure", "the simulated work was told to fail"),
            )
        result = request.get("result", {"message": "simulated work done", "delay": request["delay"]})
        if "result_bytes" in request:
            result = _text_of(int(request["result_bytes"]))
        return PollResult(
            state=WorkState.SUCCEEDED,
            progress=1.0,
            result={"output": result, "completed_at": to_iso(done_at), "work_id": ticket["id"]},
        )

    def cancel(self, work_id: str) -> None:
        _decode(work_id)  # nothing runs anywhere: a valid id is all there is to cancel


def _text_of(size: int) -> str:
    """`size` bytes of text (ASCII, so as many characters)."""
    line = "simulated result line: the quick brown fox jumps over the lazy dog\n"
    return (line * (size // len(line) + 1))[:size]


def _decode(work_id: str) -> dict[str, Any]:
    if not work_id.startswith(_PREFIX):
        raise ProviderError(f"not a simulated work id: {work_id[:40]!r}")
    body = work_id[len(_PREFIX) :]
    try:
        ticket = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        ticket["request"]["delay"]
        int(ticket["submitted_ms"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"malformed simulated work id: {work_id[:40]!r}") from exc
    return dict(ticket)
