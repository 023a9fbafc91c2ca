"""Helpers for the e2e tests: free ports, processes seen through /proc, the running local stack."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from jobpoll.processes import alive, children_of

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
SPEED = 100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port and a server could bind it again (SO_REUSEADDR, as servers do:
    connections the stopped server closed may linger in TIME_WAIT)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def jobpoll_command() -> list[str]:
    """The installed `jobpoll` entry point of this environment."""
    script = Path(sys.executable).with_name("jobpoll")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobpoll.cli"]


def cli_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return env


@dataclass
class LocalStack:
    process: subprocess.Popen[bytes]
    api_port: int
    aws_port: int
    state_file: Path
    log: Path
    state: dict[str, Any] = field(default_factory=dict)
    descendants: set[int] = field(default_factory=set)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> int:
        """SIGTERM the `jobpoll local up` process (as a service manager would); its exit code."""
        if self.process.poll() is None:
            self.descendants |= children_of(self.process.pid)
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT)


def _written_by(state_file: Path, pid: int) -> bool:
    try:
        return bool(json.loads(state_file.read_text())["pid"] == pid)
    except (OSError, ValueError, KeyError):
        return False


@contextlib.contextmanager
def running_local_up(
    argv: list[str], cwd: Path, env: dict[str, str], state_file: Path, log: Path, api_port: int, aws_port: int
) -> Iterator[LocalStack]:
    """`argv` (a `jobpoll local up`) in its own session, until its state file appears; stopped (SIGTERM,
    then SIGKILL) and reaped with every descendant afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack = LocalStack(process, api_port, aws_port, state_file, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _written_by(state_file, process.pid):  # not a file a crashed run left
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"jobpoll local up did not start:\n{log.read_text()}")
            time.sleep(0.1)
        stack.state = json.loads(state_file.read_text())
        stack.descendants = children_of(process.pid)
        yield stack
    finally:
        if process.poll() is None:
            stack.descendants |= children_of(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in stack.descendants:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
