"""benchmarks/throughput.py, small, against the session's local stack: every job completes and the figures
are printed (the benchmark measures; this proves it runs and counts right)."""

from __future__ import annotations

import pytest
from e2e_support import LocalStack

import throughput


def test_the_throughput_benchmark_drives_every_job_to_complete_and_prints_its_figures(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code = throughput.main(
        ["--jobs", "20", "--concurrency", "4", "--state-file", str(local_stack.state_file)]
    )

    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = dict(line.strip().split("  ", 1) for line in printed.splitlines() if line.startswith("  "))
    assert rows["jobs"].strip() == "20"
    assert rows["completed"].strip() == "20"
    assert rows["not completed"].strip() == "0"
    for figure in ("wall", "submit", "end-to-end", "state transitions", "latency p50 / p95"):
        assert figure in rows, printed
    # Each job's execution entered at least StartJob, Init, CheckJobComplete, a poll and JobSucceeded.
    assert int(rows["state transitions"].split(",")[0]) >= 20 * 5
