"""Shared fixtures. Every AWS call goes to moto, in-process; no test touches real AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation, isolate_from_aws

# pytest-xdist runs each group on one worker (`--dist loadgroup`): a test module is a group, as with
# `--dist loadfile`, except that the tests on the session's local stack are one group, so that one
# `jobpoll local up` serves them all. Groups are handed out slowest kind first (subprocesses, then the state
# machine executing, ...): the short unit modules fill in at the end, and no long module runs alone last.
SHARED_STACK_GROUP = "local-stack"
SLOWEST_FIRST = (SHARED_STACK_GROUP, "tests/e2e/", "tests/statemachine/", "tests/integration/", "tests/unit/")


def _group(item: pytest.Item) -> str:
    return SHARED_STACK_GROUP if "local_stack" in item.fixturenames else item.nodeid.split("::")[0]


def _rank(group: str) -> int:
    return next((i for i, kind in enumerate(SLOWEST_FIRST) if group.startswith(kind)), len(SLOWEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    items.sort(key=lambda item: _rank(_group(item)))  # stable: file order within a kind


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
