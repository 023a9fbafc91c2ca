"""`jobpoll local up` in a subprocess on free ports: one shared by the e2e tests of the session (the root
conftest puts them on one xdist worker), and one of its own for a test that stops it."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest
from e2e_support import SPEED, LocalStack, cli_environment, free_port, jobpoll_command, running_local_up

from jobpoll.paths import ROOT

# The shared stack's cleanup, run after the last test that uses it (see pytest_runtest_teardown).
_SHARED_STACK_CLEANUP: list[ExitStack] = []


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The session's running `jobpoll local up --speed 100`; tests keep apart by execution and job names."""
    with ExitStack() as cleanup:
        stack = cleanup.enter_context(running_local_stack(tmp_path_factory.mktemp("local")))
        _SHARED_STACK_CLEANUP.append(cleanup)
        yield stack


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared stack once its last test is done, not at the end of the session: idle, it still takes
    CPU the rest of the suite needs. (The root conftest runs the tests that use it together, first.)"""
    last = nextitem is None or "local_stack" not in nextitem.fixturenames
    if "local_stack" in item.fixturenames and last:
        while _SHARED_STACK_CLEANUP:
            _SHARED_STACK_CLEANUP.pop().close()


@pytest.fixture
def own_local_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A `jobpoll local up` of the test's own, for a test that stops it."""
    with running_local_stack(tmp_path) as stack:
        yield stack


@pytest.fixture
def local_stack_in_tmp_path(tmp_path: Path) -> Callable[[], AbstractContextManager[LocalStack]]:
    """Starts `jobpoll local up` in the test's directory, each time on new ports with the same state (for a
    test that kills it and starts it again)."""
    return functools.partial(running_local_stack, tmp_path)


@contextmanager
def running_local_stack(directory: Path) -> Iterator[LocalStack]:
    """`jobpoll local up --speed 100` on free ports in `directory`; stopped (and reaped) afterwards.

    Its http profile `self` is the stack's own API, with the stack's bearer token (made up per run): an
    `http` job in style `jobpoll` drives another job on the same stack."""
    api_port = aws_port = free_port()
    while aws_port == api_port:
        aws_port = free_port()
    token = secrets.token_urlsafe(18)
    profiles = directory / "http-profiles.json"
    self_profile = {
        "base_url": f"http://127.0.0.1:{api_port}",
        "headers": {"Authorization": f"Bearer {token}"},
    }
    profiles.write_text(json.dumps({"self": self_profile}))
    state_file = directory / "local.json"
    log = directory / "local-up.log"
    command = [
        *jobpoll_command(),
        "local",
        "up",
        "--api-port",
        str(api_port),
        "--aws-port",
        str(aws_port),
        "--console-port",
        "0",
        "--speed",
        str(SPEED),
        "--state-file",
        str(state_file),
        "--http-profiles",
        str(profiles),
    ]
    env = {**cli_environment(), "JOBPOLL_LOCAL_TOKENS": f"e2e:{token}"}
    with running_local_up(command, ROOT, env, state_file, log, api_port, aws_port) as stack:
        yield stack
