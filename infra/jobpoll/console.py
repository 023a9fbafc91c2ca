"""Where the console's commands act: the stack `jobpoll local up` runs (`--local`), or a deployed stack
(`--stack NAME`), found from its outputs; no ARN or URL to paste."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .clocks import SpeedClock
from .errors import StackNotRunning, ToolingError
from .executions import Executions
from .jobs_client import JobsClient, bearer, sigv4_signer
from .paths import LOCAL_STATE
from .target import LocalState, Target

START_LOCAL = "start it with: jobpoll local up"


@dataclass(frozen=True)
class Console:
    """A stack's executions and its jobs API."""

    target: Target
    stack_name: str
    outputs: dict[str, str] = field(default_factory=dict)
    api_url: str | None = None
    api_token: str | None = None  # the local stack's bearer token; None: sign with SigV4
    clock: SpeedClock | None = None  # the local stack's `--speed` clock; None: real time

    @property
    def is_local(self) -> bool:
        return self.api_token is not None

    def executions(self) -> Executions:
        arn = self.outputs.get("StateMachineArn")
        if not arn:
            raise ToolingError(f"stack {self.stack_name} has no StateMachineArn output")
        return Executions(self.target.client("stepfunctions"), arn, clock=self.clock)

    def jobs(self) -> JobsClient:
        if not self.api_url:
            raise ToolingError(f"stack {self.stack_name} has no API (no EndpointURL output)")
        if self.api_token is not None:
            return JobsClient(
                self.api_url, bearer(self.api_token), f" (is the local stack running? {START_LOCAL})"
            )
        return JobsClient(self.api_url, sigv4_signer(self.target.session(), self.target.region_name))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_console(state_file: Path = LOCAL_STATE) -> Console:
    """The running local stack; ToolingError saying how to start one when none runs."""
    try:
        state = LocalState.read(state_file)
    except ToolingError:
        raise StackNotRunning(f"no local stack running: {START_LOCAL}") from None
    except (ValueError, TypeError):  # not JSON, or not what `local up` writes
        raise StackNotRunning(f"{state_file} is not a local stack's state file: {START_LOCAL}") from None
    if not _running(state.pid):
        raise StackNotRunning(f"no local stack running (stale {state_file}): {START_LOCAL}")
    clock = (
        SpeedClock(state.clock_speed, datetime.fromisoformat(state.clock_origin))
        if state.clock_speed != 1
        else None
    )
    return Console(state.target(), state.stack_name, state.outputs, state.api_url, state.api_token, clock)


def stack_console(stack_name: str, target: Target) -> Console:
    """A deployed stack, from its CloudFormation outputs."""
    from .deploy import describe_stack

    deployed = describe_stack(target, stack_name)
    return Console(target, stack_name, deployed.outputs, deployed.api_url)


def connect(stack_name: str | None, target: Target, state_file: Path = LOCAL_STATE) -> Console:
    """`--stack NAME` (with the target's region, profile, endpoint) or else the local stack."""
    if stack_name:
        return stack_console(stack_name, target)
    aws_only = [
        option
        for option, value in (
            ("--region", target.region),
            ("--profile", target.profile),
            ("--endpoint-url", target.endpoint_url),
        )
        if value
    ]
    if aws_only:
        verb = "applies" if len(aws_only) == 1 else "apply"
        raise ToolingError(
            f"{' and '.join(aws_only)} only {verb} with --stack NAME; the local stack needs none"
        )
    return local_console(state_file)
