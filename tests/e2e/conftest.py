"""`jobpoll local up` in a subprocess on free ports, shared by the e2e tests of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import SPEED, LocalStack, cli_environment, free_port, jobpoll_command, running_local_up

from jobpoll.paths import ROOT


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running `jobpoll local up --speed 100` on free ports; stopped (and reaped) afterwards."""
    directory = tmp_path_factory.mktemp("local")
    api_port = aws_port = free_port()
    while aws_port == api_port:
        aws_port = free_port()
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
        "--speed",
        str(SPEED),
        "--state-file",
        str(state_file),
    ]
    with running_local_up(command, ROOT, cli_environment(), state_file, log, api_port, aws_port) as stack:
        yield stack
