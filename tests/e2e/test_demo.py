"""The README's demo command (`jobpoll demo`), run as a user runs it: in a subprocess, bounded."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from e2e_support import cli_environment, jobpoll_command

from jobpoll.paths import ROOT

DEMO_TIMEOUT = 180  # a generous bound: the demo takes about 15 s, several times that on a busy machine


def _demo_environment(tmp_path: Path) -> dict[str, str]:
    """The demo's environment, its temporary directory under the test's own (TMPDIR)."""
    return {**cli_environment(), "TMPDIR": str(tmp_path)}


def _local_up_processes(tmp_path: Path) -> list[str]:
    """Command lines of running `jobpoll local up`s the test's demo started: their state file is in the demo's
    temporary directory, under `tmp_path` (other demos may be running on the machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "local up" in cmdline and f"{tmp_path}/jobpoll-demo-" in cmdline:
                found.append(cmdline)
    return found


def test_the_demo_runs_the_seed_to_success_the_long_job_to_max_tries_and_a_stream(tmp_path: Path) -> None:
    finished = subprocess.run(
        # At the default speed (10): a machine stalling for a second must not change the scenarios' outcomes.
        [*jobpoll_command(), "demo"],
        cwd=ROOT,
        env=_demo_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    out = finished.stdout
    assert "$ jobpoll executions start --input '{\"delay\": 20}' --name seed --follow" in out
    assert "=> SUCCEEDED: execution seed, 10 states" in out
    assert "job COMPLETE after 2 tries" in out
    assert "=> FAILED: execution too-long" in out
    assert "job FAILED after 3 tries (MaxTriesExceeded" in out
    assert "job COMPLETE after 0 tries" in out  # notified by the simulated service's event: no poll
    assert "COMPLETE after 1 tries" in out
    assert "the local stack stopped" in out
    assert "Traceback" not in finished.stderr
    assert _local_up_processes(tmp_path) == []


def test_ctrl_c_stops_the_demo_and_its_local_stack(tmp_path: Path) -> None:
    # Interrupted while the stack starts (the cheapest moment; the same cleanup runs at any point).
    demo = subprocess.Popen(
        [*jobpoll_command(), "demo"],
        cwd=ROOT,
        env=_demo_environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while not _local_up_processes(tmp_path) and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _local_up_processes(tmp_path), "the demo should have started a local stack"
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert _local_up_processes(tmp_path) == []
    assert b"Traceback" not in (demo.stderr.read() if demo.stderr else b"")


def test_the_demo_refuses_a_bad_speed_in_one_line() -> None:
    finished = subprocess.run(
        [*jobpoll_command(), "demo", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "must be positive" in finished.stderr
    assert "Traceback" not in finished.stderr
