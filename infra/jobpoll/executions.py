"""State machine executions through the Step Functions API: start, list, describe, history, stop, follow.

The same calls work against an AWS account and the local stack (the client decides where they go). An
execution is named by its name (the job id) or its ARN; a long poll continues in new executions named
`<job id>-<n>`, and `follow` follows that chain to its end, and the executions the reconciler resumed a
lost loop in (`<job id>-r<n>`).
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .clocks import SpeedClock
from .errors import ToolingError, UnknownExecution

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# Between two looks at a running execution (real seconds): a tight loop would starve the emulation and
# cost API calls on AWS.
POLL_INTERVAL = 0.3
_STOP_SETTLE_SECONDS = 10.0
_NOT_FOUND = {"ExecutionDoesNotExist", "ResourceNotFound", "StateMachineDoesNotExist"}
_TASK_STATES = {"StartJob", "GetJobStatus"}
# `follow` looks for at most this many resumes of one job (the reconciler's JOBPOLL_MAX_RESUMES is lower).
MAX_RESUMES_FOLLOWED = 10

Output = Callable[[str], None]


def parse_input(text: str) -> Any:
    """The `--input` JSON; ToolingError saying where it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolingError(
            f"--input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None


def continued_in(described: dict[str, Any]) -> str | None:
    """The execution a finished poll loop continued in (ContinueAsNewExecution), if any."""
    if described.get("status") != "SUCCEEDED" or not described.get("output"):
        return None
    output = json.loads(described["output"])
    follow = output.get("continued_in") if isinstance(output, dict) else None
    return str(follow["execution_arn"]) if isinstance(follow, dict) else None


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def state_detail(state: str, output: Any) -> str:
    """What a poll-loop state's output says: the job's status, its try count, its progress."""
    if not isinstance(output, dict) or "status" not in output:
        return ""
    detail = str(output["status"])
    if "try_count" in output:
        tries = output.get("poll", {}).get("max_tries") if isinstance(output.get("poll"), dict) else None
        detail += f"  try {output['try_count']}" + (f"/{tries}" if tries else "")
    progress = output.get("progress")
    if isinstance(progress, int | float) and state in _TASK_STATES:
        detail += f"  progress {progress:.0%}"
    return detail


@dataclass
class Followed:
    """What following an execution (and the executions it continued in) saw."""

    executions: list[dict[str, Any]] = field(default_factory=list)
    transitions: int = 0
    try_count: int | None = None
    job_status: str | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.executions[-1]

    @property
    def succeeded(self) -> bool:
        return bool(self.executions) and self.final["status"] == "SUCCEEDED"


class Executions:
    """The poller state machine's executions, through a Step Functions client."""

    def __init__(
        self,
        sfn: Any,
        state_machine_arn: str,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = POLL_INTERVAL,
        clock: SpeedClock | None = None,
    ) -> None:
        self._sfn = sfn
        self.state_machine_arn = state_machine_arn
        self._sleep = sleep
        self._poll_interval = poll_interval
        # The local stack's `--speed` clock: `follow` shows its times (Step Functions stamps real ones).
        self._clock = clock

    def _emulated(self, moment: datetime) -> datetime:
        return self._clock.emulated(moment) if self._clock is not None else moment

    def arn(self, execution: str) -> str:
        """An execution's ARN from its ARN or its name (the job id)."""
        if execution.startswith("arn:"):
            return execution
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{execution}"

    def _call(self, what: str, execution: str | None, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._sfn, method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if execution is not None and (code in _NOT_FOUND or code == "InvalidArn"):
                raise self._unknown(execution) from None
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            raise ToolingError(f"{what}: {code}: {message}") from None

    def _unknown(self, execution: str) -> UnknownExecution:
        prefix = self.arn("")
        name = execution[len(prefix) :] if execution.startswith(prefix) else execution
        return UnknownExecution(f"no execution {name!r} of state machine {self.state_machine_arn}")

    def definition(self) -> dict[str, Any]:
        """The state machine's ASL definition, as deployed."""
        described = self._call(
            "could not describe the state machine",
            None,
            "describe_state_machine",
            stateMachineArn=self.state_machine_arn,
        )
        return dict(json.loads(described["definition"]))

    def start(self, execution_input: Any, name: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "stateMachineArn": self.state_machine_arn,
            "input": json.dumps(execution_input),
        }
        # Named here when not given: the name is the job id, and moto leaves an unnamed execution nameless.
        kwargs["name"] = name if name is not None else str(uuid.uuid4())
        started: dict[str, Any] = self._call(
            "could not start the execution", None, "start_execution", **kwargs
        )
        started.pop("ResponseMetadata", None)
        started["name"] = started["executionArn"].rsplit(":", 1)[-1]
        return started

    def list(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Executions, newest first (paginated)."""
        kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn}
        if status is not None:
            kwargs["statusFilter"] = status
        found: list[dict[str, Any]] = []
        try:
            for page in self._sfn.get_paginator("list_executions").paginate(**kwargs):
                for listed in page["executions"]:
                    listed.setdefault("name", listed["executionArn"].rsplit(":", 1)[-1])
                    found.append(listed)
                if limit is not None and len(found) >= limit:
                    break
        except ClientError as exc:
            raise ToolingError(f"could not list executions: {exc}") from None
        found.sort(key=lambda e: e["startDate"], reverse=True)
        return found[:limit] if limit is not None else found

    def describe(self, execution: str) -> dict[str, Any]:
        described: dict[str, Any] = self._call(
            "could not describe the execution",
            execution,
            "describe_execution",
            executionArn=self.arn(execution),
        )
        described.pop("ResponseMetadata", None)
        described.setdefault("name", described["executionArn"].rsplit(":", 1)[-1])
        return described

    def history(self, execution: str, after_event_id: int = 0) -> builtins.list[dict[str, Any]]:
        """The execution's events after `after_event_id`, oldest first (all pages)."""
        arn = self.arn(execution)
        events: builtins.list[dict[str, Any]] = []
        try:
            for page in self._sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                events.extend(e for e in page["events"] if e["id"] > after_event_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND or code == "InvalidArn":
                raise self._unknown(execution) from None
            raise ToolingError(f"could not read the execution's history: {exc}") from None
        return events

    def stop(self, execution: str, cause: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"executionArn": self.arn(execution)}
        if cause:
            kwargs["cause"] = cause
        self.describe(execution)  # one clear line for an unknown execution
        self._call("could not stop the execution", execution, "stop_execution", **kwargs)
        # The stop takes effect a moment later (the emulation ends the execution on its own thread).
        deadline = time.monotonic() + _STOP_SETTLE_SECONDS
        while (described := self.describe(execution))["status"] == "RUNNING" and time.monotonic() < deadline:
            self._sleep(0.1)
        return described

    def _events_until_done(self, arn: str) -> Iterator[dict[str, Any]]:
        """Each event of the execution as it happens, until it has ended and every event was seen."""
        last_id = 0
        while True:
            status = self.describe(arn)["status"]  # before the history: a final status means no more events
            for event in self.history(arn, last_id):
                last_id = event["id"]
                yield event
            if status in TERMINAL:
                return
            self._sleep(self._poll_interval)

    def follow(self, execution: str, out: Output = print) -> Followed:
        """Print each state entered and exited as it happens, across continued executions; what was seen."""
        followed = Followed()
        arn: str | None = self.arn(execution)
        while arn is not None:
            described = self.describe(arn)
            started = self._emulated(described["startDate"])
            speed = f"; times at {self._clock.speed:g}x real time" if self._clock is not None else ""
            out(f"execution {described['name']}  ({described['status']}, started {_clock(started)}{speed})")
            for event in self._events_until_done(arn):
                line = self._event_line(event, self._emulated(event["timestamp"]), started, followed)
                if line:
                    out(line)
            described = self.describe(arn)
            followed.executions.append(described)
            arn = continued_in(described)
            if arn is not None:
                out(f"  continued in execution {arn.rsplit(':', 1)[-1]}")
            elif (arn := self._resumed_in(described, followed)) is not None:
                out(
                    f"  execution lost ({described['status']}); resumed in execution {arn.rsplit(':', 1)[-1]}"
                )
        out(summary(followed, self._clock.speed if self._clock is not None else 1.0))
        return followed

    def _resumed_in(self, described: dict[str, Any], followed: Followed) -> str | None:
        """The execution the reconciler resumed this one's job in (`<job id>-r<n>`), if it started yet."""
        if described["status"] == "SUCCEEDED":
            return None
        given = parse_input(described.get("input") or "{}")
        given = given.get("continuation", given) if isinstance(given, dict) else {}
        job_id = given.get("job_id") if isinstance(given, dict) else None
        job_id = job_id if isinstance(job_id, str) else described["name"]
        seen = {execution["executionArn"] for execution in followed.executions}
        for resume in range(1, MAX_RESUMES_FOLLOWED + 1):
            arn = self.arn(f"{job_id}-r{resume}")
            if arn in seen:
                continue
            try:
                self.describe(arn)
            except ToolingError:
                return None
            return arn
        return None

    @staticmethod
    def _event_line(
        event: dict[str, Any], moment: datetime, started: datetime, followed: Followed
    ) -> str | None:
        kind = event["type"]
        details: dict[str, Any]
        elapsed = (moment - started).total_seconds()
        prefix = f"  {_clock(moment)}  +{elapsed:6.2f}s"
        if kind.endswith("StateEntered"):
            followed.transitions += 1
            return f"{prefix}  > {event['stateEnteredEventDetails']['name']}"
        if kind == "TaskStateExited":  # where the job changed: what the handler said
            details = event["stateExitedEventDetails"]
            output = _json_or_none(details.get("output"))
            if isinstance(output, dict):
                if isinstance(output.get("try_count"), int):
                    followed.try_count = output["try_count"]
                if isinstance(output.get("status"), str):
                    followed.job_status = output["status"]
            detail = state_detail(details["name"], output)
            return f"{prefix}  < {details['name']}" + (f"  {detail}" if detail else "")
        if kind in (
            "TaskFailed",
            "LambdaFunctionFailed",
            "ExecutionFailed",
            "ExecutionAborted",
            "ExecutionTimedOut",
        ):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            error = details.get("error", "")
            cause = details.get("cause", "")
            return f"{prefix}  ! {kind} {error}" + (f": {_cause(cause)}" if cause else "")
        return None


def _cause(cause: str) -> str:
    parsed = _json_or_none(cause)
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


def summary(followed: Followed, speed: float = 1.0) -> str:
    """One line: how the execution (chain) ended, and the job's tries; durations `speed` times real."""
    final = followed.final
    chain = len(followed.executions)
    real = final.get("stopDate", final["startDate"]) - followed.executions[0]["startDate"]
    took = real.total_seconds() * speed
    line = f"=> {final['status']}: execution {final['name']}"
    if chain > 1:
        line += f" ({chain} executions)"
    line += f", {followed.transitions} states in {took:.1f} s"
    output = _json_or_none(final.get("output"))
    if isinstance(output, dict) and isinstance(output.get("status"), str):
        followed.job_status = output["status"]
        followed.try_count = output.get("try_count", followed.try_count)
    if followed.job_status:
        line += f"; job {followed.job_status}"
    if followed.try_count is not None:
        line += f" after {followed.try_count} tries"
    if final.get("error"):
        line += f" ({final['error']}: {_cause(final.get('cause', ''))})"
    return line
