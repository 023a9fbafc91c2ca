"""What a crashed `jobpoll local up` leaves: no child (the kernel kills it with its parent), and a state file
the next start clears, after killing the API server it names if that still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jobpoll import processes
from jobpoll.errors import ToolingError
from jobpoll.local import alive, clear_crashed_run
from jobpoll.paths import ROOT
from jobpoll.target import LocalState


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(pid):  # gone, or dead and waiting for a parent to reap it
            return True
        time.sleep(0.02)
    return False


def test_a_child_started_like_chalice_local_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    parent_code = textwrap.dedent(
        """
        import signal, subprocess, sys
        from jobpoll.local import die_with_parent
        child = subprocess.Popen(
            [sys.executable, "-c", "import signal; signal.pause()"],
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        print(child.pid, flush=True)
        signal.pause()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "infra")}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, env=env)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert alive(child_pid, "signal.pause")
    parent.send_signal(signal.SIGKILL)
    parent.wait(30)
    assert _gone(child_pid), "the child outlived its SIGKILLed parent"


def _started(process: subprocess.Popen[bytes], command_part: str) -> subprocess.Popen[bytes]:
    """The process, once its command line shows (a just-forked child still shows its parent's)."""
    deadline = time.monotonic() + 30
    while not alive(process.pid, command_part):
        assert time.monotonic() < deadline, f"{command_part} never started"
        time.sleep(0.01)
    return process


def _state(path: Path, pid: int, api_pid: int) -> None:
    LocalState(
        api_url="http://127.0.0.1:1",
        aws_endpoint_url="http://127.0.0.1:2",
        region="us-east-1",
        stack_name="jobpoll-local",
        outputs={},
        pid=pid,
        api_pid=api_pid,
    ).write(path)


def test_a_start_removes_a_crashed_runs_state_and_kills_its_orphaned_api_server(tmp_path: Path) -> None:
    state_file = tmp_path / "local.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(30)
    # Stands for the orphaned `python -m jobpoll.local_api` (its command line names the module).
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()", "jobpoll.local_api"], start_new_session=True
    )
    _started(orphan, "jobpoll.local_api")
    _state(state_file, dead.pid, orphan.pid)
    said: list[str] = []
    clear_crashed_run(state_file, said.append)
    assert orphan.wait(30) == -signal.SIGKILL
    assert not state_file.exists()
    assert any("crashed run" in line for line in said)


def test_a_start_refuses_while_the_stack_in_the_state_file_still_runs(tmp_path: Path) -> None:
    state_file = tmp_path / "local.json"
    running = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()", "jobpoll"])
    _started(running, "jobpoll")
    try:
        _state(state_file, running.pid, 0)
        with pytest.raises(ToolingError, match="running already"):
            clear_crashed_run(state_file, lambda line: None)
        assert state_file.exists()
    finally:
        running.kill()
        running.wait(30)
