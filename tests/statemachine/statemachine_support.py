"""Waiting for what runs on other threads (bounded real time) and moving a manual clock until it happens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


def eventually(condition: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    """Wait (real time, bounded) until `condition()` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)
    return found


def advance_until_done(emulation: Emulation, clock: VirtualClock, arn: str, step: float = 5) -> dict:
    """Move time on in steps until the execution ends; returns describe_execution's answer."""
    for _ in range(2000):
        described: dict = emulation.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        clock.advance(step)
        time.sleep(0.002)
    raise AssertionError("the execution did not finish")
