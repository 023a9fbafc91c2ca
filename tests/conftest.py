"""Shared fixtures. Every AWS call goes to moto, in-process; no test touches real AWS."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation, isolate_from_aws

# pytest-xdist runs each group of tests on one worker: a test module is a group (as `--dist loadfile`), except
# that the tests on the session's local stack are one group, so that one `jobpoll local up` serves them all.
# (`xdist_group` marks would say so, but pytest-xdist 3.8 cannot rename pytest 9's node ids: the workers,
# which know each test's fixtures, write each test's group to a file the controller's scheduler reads.)
# Groups are handed out slowest kind first (subprocesses, then the state machine executing, ...): the short
# unit modules fill in at the end, and no long module runs alone last.
SHARED_STACK_GROUP = "local-stack"
SLOWEST_FIRST = (SHARED_STACK_GROUP, "tests/e2e/", "tests/statemachine/", "tests/integration/", "tests/unit/")
_GROUPS_DIRECTORY = "jobpoll_groups"


def _group(item: pytest.Item) -> str:
    return SHARED_STACK_GROUP if "local_stack" in item.fixturenames else item.nodeid.split("::")[0]


def _rank(group: str) -> int:
    return next((i for i, kind in enumerate(SLOWEST_FIRST) if group.startswith(kind)), len(SLOWEST_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _rank(_group(item)))  # stable: file order within a kind
    workerinput = getattr(config, "workerinput", {})
    if _GROUPS_DIRECTORY in workerinput:
        groups = {item.nodeid: _group(item) for item in items}
        target = Path(workerinput[_GROUPS_DIRECTORY]) / f"{workerinput['workerid']}.json"
        target.write_text(json.dumps(groups))


class _GroupScheduling(LoadFileScheduling):
    """`--dist loadfile`, with the groups the workers wrote (every worker collects the same tests)."""

    def __init__(self, config: pytest.Config, log: Any, directory: Path) -> None:
        super().__init__(config, log)
        self._directory = directory
        self._groups: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        if not self._groups:
            for written in self._directory.glob("*.json"):
                self._groups.update(json.loads(written.read_text()))
        return self._groups.get(nodeid) or super()._split_scope(nodeid)


_groups_key = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.getvalue("dist") == "loadfile":  # the xdist controller
        directory = Path(tempfile.mkdtemp(prefix="jobpoll-xdist-groups-"))
        config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
        config.stash[_groups_key] = directory


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_GROUPS_DIRECTORY] = str(node.config.stash[_groups_key])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> _GroupScheduling | None:
    directory = config.stash.get(_groups_key, None)
    return None if directory is None else _GroupScheduling(config, log, directory)


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
