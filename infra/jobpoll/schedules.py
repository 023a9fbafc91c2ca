"""EventBridge schedules as EventBridge runs them, for the local emulation.

moto stores a rule's `ScheduleExpression` but never fires it (and cannot deliver to a Lambda target). The
template's scheduled rules (the reconciler's) are read back from moto's EventBridge, as deployed, and
`ScheduleRunner` invokes each target every period on the emulation clock, on a thread of its own (the way
`queues.QueueDelivery` runs the event source mappings).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clocks import EmulationClock
from .errors import ToolingError

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """`rate(5 minutes)` -> 300. Only rate expressions: a cron schedule is not emulated."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise ToolingError(f"the emulation runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class Schedule:
    """One scheduled rule and the function it invokes."""

    rule: str
    function_arn: str
    period_seconds: int


def deployed_schedules(events_client: Any) -> list[Schedule]:
    """The scheduled rules deployed on moto's default bus, with their Lambda targets."""
    schedules = []
    for page in events_client.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            expression = rule.get("ScheduleExpression")
            if not expression or rule.get("State", "ENABLED") != "ENABLED":
                continue
            targets = events_client.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            schedules += [
                Schedule(rule["Name"], target["Arn"], rate_seconds(expression))
                for target in targets
                if ":lambda:" in target["Arn"]
            ]
    return schedules


def scheduled_event(schedule: Schedule, region: str, time: str) -> dict[str, Any]:
    """The event EventBridge hands a function for a scheduled rule."""
    return {
        "version": "0",
        "id": f"{schedule.rule}-{time}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": time,
        "region": region,
        "resources": [schedule.rule],
        "detail": {},
    }


class ScheduleRunner:
    """Invokes each schedule's function every period of emulation time, until stopped."""

    def __init__(
        self,
        client: Callable[[str], Any],
        schedules: list[Schedule],
        clock: EmulationClock,
        region: str,
        on_error: Callable[[Schedule, BaseException], None] | None = None,
    ) -> None:
        self._lambda = client("lambda")
        self.schedules = schedules
        self.clock = clock
        self.region = region
        self.on_error = on_error
        self.runs = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[Any]:
        """Invoke every schedule's function once now; returns what each returned."""
        outcomes = []
        for schedule in self.schedules:
            moment = self.clock.now()
            event = scheduled_event(schedule, self.region, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
            try:
                response = self._lambda.invoke(
                    FunctionName=schedule.function_arn, Payload=json.dumps(event).encode()
                )
                outcomes.append(json.loads(response["Payload"].read() or b"null"))
            except Exception as exc:  # a failed run is EventBridge's problem to retry: the next period
                outcomes.append(None)
                if self.on_error is not None:
                    self.on_error(schedule, exc)
        self.runs += 1
        return outcomes

    def _run(self) -> None:
        period = min((s.period_seconds for s in self.schedules), default=60)
        while not self._stopped.is_set():
            self.clock.wait(period, self._stopped, lambda: not self._stopped.is_set())
            if not self._stopped.is_set():
                self.run_once()

    def start(self) -> ScheduleRunner:
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
