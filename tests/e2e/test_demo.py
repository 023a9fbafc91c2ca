"""The README's demo command, run as a user runs it (in a subprocess)."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_runs_the_seed_to_success_and_the_long_job_to_max_tries() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "jobpoll.demo", "--speed", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    assert "=> execution SUCCEEDED, job COMPLETE after 2 polls" in out
    assert "=> execution FAILED, job FAILED after 3 polls (MaxTriesExceeded" in out
    assert out.count("GetJobStatus") == 5
    assert "Traceback" not in finished.stderr


def test_the_demo_refuses_a_bad_speed_in_one_line() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "jobpoll.demo", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "--speed must be positive" in finished.stderr
    assert "Traceback" not in finished.stderr
