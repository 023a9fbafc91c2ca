"""Shared fixtures. Every AWS call goes to moto, in-process; no test touches real AWS."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

# Before anything imports boto3: fake credentials, a fixed region, UTC, and no endpoint to a real service.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TZ": "UTC",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
time.tzset()

from jobpoll.clocks import VirtualClock  # noqa: E402
from jobpoll.emulation import Emulation  # noqa: E402


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock that jumps forward whenever something waits."""
    return VirtualClock()


@pytest.fixture
def emulation(virtual_clock: VirtualClock) -> Iterator[Emulation]:
    """moto with the poller state machine executing the real handlers in-process on `virtual_clock`."""
    with Emulation(clock=virtual_clock) as running:
        yield running
