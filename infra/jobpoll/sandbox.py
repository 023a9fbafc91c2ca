"""The in-process Lambda sandbox the emulation runs handlers in: the context object, the function's
Timeout enforced as Lambda does it, and the clock handlers get (`HandlerClock`). No moto here:
moto_patches' invoke calls into it.

An invocation's run time is the emulation time it waits (on `HandlerClock`) plus the real time it computes
(unscaled: `--speed` shortens waits, it does not make the CPU faster). A handler is stopped at its first clock
call past its end; one that computes past it without looking at the clock is reported timed out when it
returns (Python cannot stop a thread).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .clocks import EmulationClock


class SandboxTimedOut(BaseException):
    """Lambda ended the invocation at its Timeout. A BaseException: no handler's `except Exception` survives
    Lambda's stop either."""


class SandboxKilled(BaseException):
    """The invocation's process died mid-run (an injected fault, `faults.KillMidRun`): nothing after it runs,
    as when a worker's host is lost."""


class RunTime:
    """How long an invocation has run, as Lambda would count it: the emulation time it waited (on a virtual
    clock a wait is instant, under `--speed` it is shorter) plus the real time it computed (never scaled:
    `--speed` makes waits shorter, not the CPU faster)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # The run time at which the invocation dies (faults.KillMidRun); None: it lives to its end.
        self.killed_at: float | None = None
        self.waited = 0.0  # emulation seconds
        self._started = time.monotonic()
        self._waiting = 0.0  # real seconds spent in those waits

    def used(self) -> float:
        return self.waited + (time.monotonic() - self._started - self._waiting)

    def left(self) -> float:
        return self.timeout - self.used()

    def until_killed(self) -> float | None:
        return None if self.killed_at is None else self.killed_at - self.used()

    def wait(self, clock: EmulationClock, seconds: float) -> None:
        began = time.monotonic()
        clock.sleep(seconds)
        self.waited += seconds
        self._waiting += time.monotonic() - began


# The run time of the invocation the current thread runs, if any.
_invocation = threading.local()


def _current() -> RunTime | None:
    return getattr(_invocation, "run_time", None)


class HandlerClock:
    """The clock the in-process handlers get: the emulation clock, which stops a handler's invocation at the
    end of its function's Timeout (as Lambda does) when the handler looks at the time or waits."""

    def __init__(self, clock: EmulationClock) -> None:
        self.clock = clock

    def now(self) -> Any:
        run_time = _current()
        if run_time is not None:
            if (until_killed := run_time.until_killed()) is not None and until_killed <= 0:
                raise SandboxKilled()
            if run_time.left() < 0:
                raise SandboxTimedOut()
        return self.clock.now()

    def to_real(self, moment: Any) -> Any:
        return self.clock.to_real(moment)

    def sleep(self, seconds: float) -> None:
        run_time = _current()
        if run_time is None:
            self.clock.sleep(seconds)
            return
        until_killed = run_time.until_killed()
        if until_killed is not None and seconds >= until_killed:
            run_time.wait(self.clock, max(0.0, until_killed))
            raise SandboxKilled()
        left = run_time.left()
        if seconds > left:
            run_time.wait(self.clock, max(0.0, left))
            raise SandboxTimedOut()
        run_time.wait(self.clock, seconds)


class LambdaContext:
    """The parts of the Lambda context object handlers may read."""

    def __init__(self, function_name: str, run_time: RunTime) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128
        self.run_time = run_time

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.run_time.left() * 1000))


def run_in_sandbox(handler: Callable[[Any, Any], Any], event: Any, context: LambdaContext) -> Any:
    """Run `handler` within its function's timeout, as Lambda would; raises SandboxTimedOut."""
    outer = _current()  # a handler may invoke another function synchronously
    _invocation.run_time = context.run_time
    try:
        result = handler(event, context)
        if context.run_time.left() < 0:  # computed past its end without looking at the clock
            raise SandboxTimedOut()
        return result
    finally:
        _invocation.run_time = outer


def killed_error(request_id: str) -> dict[str, str]:
    """What Lambda answers for an invocation whose runtime exited mid-run."""
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }


def timed_out_error(request_id: str, timeout: float) -> dict[str, str]:
    """What Lambda answers for an invocation that ran out of time."""
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
    }
