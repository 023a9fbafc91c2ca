"""`jobpoll local up` in a subprocess on free ports: one shared by the e2e tests of the session (the root
conftest puts them on one xdist worker), and ones of its own for a test that kills and restarts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from e2e_support import SPEED, LocalStack, cli_environment, jobpoll_command, running_local_up

from jobpoll.demo import free_ports
from jobpoll.issuer import TENANT_SCOPES
from jobpoll.local import local_issuer
from jobpoll.paths import ROOT
from lro_server import LroServer

# The shared stack's cleanup, run after the last test that uses it (see pytest_runtest_teardown).
_SHARED_STACK_CLEANUP: list[ExitStack] = []
# The scripted LRO service on loopback that the shared stack's http profile `lro` names.
_SHARED_LRO_SERVICE: list[LroServer] = []


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The session's running `jobpoll local up --speed 100`; tests keep apart by execution and job names.
    Its http profile `lro` is a scripted long-running-operation service on 127.0.0.1 (`lro_service`)."""
    with ExitStack() as cleanup:
        service = cleanup.enter_context(LroServer())
        _SHARED_LRO_SERVICE[:] = [service]
        stack = cleanup.enter_context(
            running_local_stack(tmp_path_factory.mktemp("local"), {"lro": {"base_url": service.url}})
        )
        _SHARED_STACK_CLEANUP.append(cleanup)
        yield stack


@pytest.fixture
def lro_service(local_stack: LocalStack) -> LroServer:
    """The shared stack's loopback LRO service (http profile `lro`): script its routes with unique paths."""
    return _SHARED_LRO_SERVICE[0]


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


@contextmanager
def running_local_stack(
    directory: Path, more_profiles: dict[str, dict[str, str]] | None = None
) -> Iterator[LocalStack]:
    """`jobpoll local up --speed 100` on free ports in `directory`; stopped (and reaped) afterwards.

    Its http profile `self` is the stack's own API, with a token of the stack's issuer (its key made here,
    where the stack keeps it): an `http` job in style `jobpoll` drives another job on the same stack."""
    api_port, aws_port, issuer_port = free_ports(3)
    state_file = directory / "local.json"
    token = local_issuer(state_file, issuer_port).token("e2e", TENANT_SCOPES)
    profiles = directory / "http-profiles.json"
    self_profile = {
        "base_url": f"http://127.0.0.1:{api_port}",
        "headers": {"Authorization": f"Bearer {token}"},
    }
    profiles.write_text(json.dumps({"self": self_profile, **(more_profiles or {})}))
    log = directory / "local-up.log"
    command = [
        *jobpoll_command(),
        "local",
        "up",
        "--api-port",
        str(api_port),
        "--aws-port",
        str(aws_port),
        "--issuer-port",
        str(issuer_port),
        "--console-port",
        "0",
        "--speed",
        str(SPEED),
        "--state-file",
        str(state_file),
        "--http-profiles",
        str(profiles),
    ]
    env = cli_environment()
    with running_local_up(command, ROOT, env, state_file, log, api_port, aws_port) as stack:
        yield stack
