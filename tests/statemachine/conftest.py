"""Fixtures for state machine tests that act in the middle of a wait: a manual virtual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


@pytest.fixture
def manual_clock() -> VirtualClock:
    """A virtual clock that moves only when the test advances it."""
    return VirtualClock(auto_advance=False)


@pytest.fixture
def paused(manual_clock: VirtualClock) -> Iterator[Emulation]:
    """The emulation on `manual_clock`; executions still waiting at the end are stopped."""
    with Emulation(clock=manual_clock) as emulation:
        yield emulation
        running = emulation.sfn.list_executions(
            stateMachineArn=emulation.deployment.state_machine_arn, statusFilter="RUNNING"
        )["executions"]
        for execution in running:
            emulation.sfn.stop_execution(executionArn=execution["executionArn"])
