"""Shared fixtures. Every AWS call goes to moto, in-process; no test touches real AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation, isolate_from_aws

# Before any boto3 client exists: fake credentials, a fixed region, UTC, no endpoint to a real service.
isolate_from_aws()


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock that jumps forward whenever something waits."""
    return VirtualClock()


@pytest.fixture
def emulation(virtual_clock: VirtualClock) -> Iterator[Emulation]:
    """moto with the poller state machine executing the real handlers in-process on `virtual_clock`."""
    with Emulation(clock=virtual_clock) as running:
        yield running
