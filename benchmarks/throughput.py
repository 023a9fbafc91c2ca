"""Throughput of the local stack: N jobs POSTed through the API and driven to COMPLETE, end to end.

    python benchmarks/throughput.py [--jobs N] [--speed S] [--concurrency C] [--provider P] [--profile]
    python benchmarks/throughput.py --state-file .jobpoll/local.json ...   # a running `jobpoll local up`

Starts `jobpoll local up --speed S` on free ports (or uses the running stack the state file names), takes a
token of the stack's own issuer for a subject of this run alone, POSTs N jobs from a bounded pool of
threads (loopback only), then waits until every job is finished by listing the run's jobs (`GET /jobs`, 100
a page, every 2 s: a look costs the stack a query per page, not a request per job). Prints submit/s,
end-to-end jobs/s, state transitions/s (the `*StateEntered` events of the jobs' executions), p50/p95 latency
(POST to the job's last update, in real seconds) and the wall and CPU time of the run (the stack's processes
and this one). With `--profile` the stack runs under `jobpoll local up --profile` and its processes' top
functions are printed (CPU time, every thread).
Exits non-zero when a job did not complete. A benchmark prints figures; the tests assert behaviour.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jobpoll.demo import local_stack
from jobpoll.issuer import TENANT_SCOPES, LocalIssuer
from jobpoll.jobs_client import TERMINAL, JobsClient, bearer
from jobpoll.profiling import top_functions
from jobpoll.target import LocalState

DEFAULT_INPUT = {"delay": 10, "wait_seconds": 5}  # two polls: running, then complete
PAGE = 100
_LOOK_INTERVAL = 2.0  # each look lists every job of the run: not too often


@dataclass
class Figures:
    jobs: int
    submit_seconds: float
    wall_seconds: float
    statuses: Counter[str]
    latencies: list[float]
    transitions: int | None
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return self.statuses.get("COMPLETE", 0)

    def rows(self) -> list[tuple[str, str]]:
        """The printed table: (figure, value)."""
        wall = self.wall_seconds
        p50, p95 = _percentile(self.latencies, 50), _percentile(self.latencies, 95)
        rows = [
            ("jobs", f"{self.jobs}"),
            ("completed", f"{self.completed}"),
            (
                "not completed",
                ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()) if s != "COMPLETE") or "0",
            ),
            ("wall", f"{wall:.1f} s"),
            ("submit", f"{self.submit_seconds:.1f} s, {self.jobs / self.submit_seconds:.1f} POST/s"),
            ("end-to-end", f"{self.completed / wall:.1f} jobs/s"),
            (
                "state transitions",
                "n/a (no AWS endpoint)"
                if self.transitions is None
                else f"{self.transitions}, {self.transitions / wall:.0f}/s",
            ),
            ("latency p50 / p95", f"{p50:.2f} s / {p95:.2f} s"),
        ]
        rows += [(f"cpu {name}", f"{seconds:.1f} s") for name, seconds in self.cpu_seconds.items()]
        return rows


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def run_token(state: LocalState, state_file: Path, subject: str) -> str:
    """A bearer token of the stack's own issuer (its key kept beside the state file) for `subject`."""
    issuer = LocalIssuer.load_or_create(state_file.parent / "issuer-key.pem", state.issuer_url)
    return issuer.token(subject, TENANT_SCOPES)


def submit_all(client: JobsClient, body: dict[str, Any], jobs: int, concurrency: int) -> list[str]:
    """POST `jobs` jobs from `concurrency` threads; their ids."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="submit") as pool:
        return [job["id"] for job in pool.map(lambda _: client.submit(body), range(jobs))]


def wait_finished(
    client: JobsClient, job_ids: Sequence[str], timeout: float, look: Callable[[float], None] = time.sleep
) -> dict[str, dict[str, Any]]:
    """Every job's last view once all are finished (or the timeout passed), from the caller's job list."""
    wanted = set(job_ids)
    deadline = time.monotonic() + timeout
    while True:
        views = {job["id"]: job for job in client.list(limit=None) if job["id"] in wanted}
        if all(views.get(job_id, {}).get("status") in TERMINAL for job_id in wanted):
            return views
        if time.monotonic() > deadline:
            return views
        look(_LOOK_INTERVAL)


def latencies(views: dict[str, dict[str, Any]], speed: float) -> list[float]:
    """Real seconds from each finished job's creation to its last update (the stack's clock runs `speed`x)."""
    seconds = []
    for view in views.values():
        if view.get("status") in TERMINAL:
            created = datetime.fromisoformat(view["created_at"])
            updated = datetime.fromisoformat(view["updated_at"])
            seconds.append((updated - created).total_seconds() / speed)
    return seconds


def transitions(state: LocalState, job_ids: Sequence[str], concurrency: int) -> int:
    """States entered by the jobs' executions (each job's execution is named by its id)."""
    sfn = state.target().client("stepfunctions")
    machine = state.outputs["StateMachineArn"]
    execution_prefix = machine.replace(":stateMachine:", ":execution:", 1)

    def entered(job_id: str) -> int:
        arn = f"{execution_prefix}:{job_id}"
        count, token = 0, None
        while True:
            page = sfn.get_execution_history(
                executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            count += sum(1 for event in page["events"] if event["type"].endswith("StateEntered"))
            token = page.get("nextToken")
            if not token:
                return count

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return sum(pool.map(entered, job_ids))


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process `pid` and its children it waited for (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def stack_cpu(state: LocalState) -> dict[str, float]:
    """CPU seconds so far of the stack's processes: `local up` (the AWS emulation and the handlers) and
    its API server (`chalice local`)."""
    cpu = {}
    for name, pid in (("emulation", state.pid), ("api", state.api_pid)):
        with contextlib.suppress(OSError, ValueError):
            cpu[name] = cpu_seconds(pid)
    return cpu


def measure(state_file: Path, jobs: int, body: dict[str, Any], concurrency: int, timeout: float) -> Figures:
    """Submit `jobs` jobs to the stack of `state_file`, wait for them all, and count."""
    state = LocalState.read(state_file)
    subject = f"throughput-{secrets.token_hex(4)}"  # the run's jobs are this caller's only
    # A generous timeout per request: a stack under a profiler answers slowly.
    client = JobsClient(state.api_url, bearer(run_token(state, state_file, subject)), timeout=120)
    cpu_before = (time.process_time(), stack_cpu(state))
    started = time.monotonic()
    job_ids = submit_all(client, body, jobs, concurrency)
    submitted = time.monotonic()
    views = wait_finished(client, job_ids, timeout)
    finished = time.monotonic()
    cpu_after = stack_cpu(state)
    cpu = {f"{name} (stack)": cpu_after[name] - cpu_before[1].get(name, 0.0) for name in cpu_after}
    cpu["benchmark"] = time.process_time() - cpu_before[0]
    statuses = Counter(views.get(job_id, {}).get("status", "unseen") for job_id in job_ids)
    return Figures(
        jobs=jobs,
        submit_seconds=submitted - started,
        wall_seconds=finished - started,
        statuses=statuses,
        latencies=latencies(views, state.clock_speed),
        transitions=transitions(state, job_ids, concurrency) if state.aws_endpoint_url else None,
        cpu_seconds=cpu,
    )


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[Path]:
    """The state file of the stack to measure: the one named, or a new one for the run."""
    if args.state_file is not None:
        yield args.state_file
        return
    with tempfile.TemporaryDirectory(prefix="jobpoll-throughput-") as directory:
        profiles = Path(directory) / "profile"
        options = ["--profile", str(profiles)] if args.profile else []
        # Profiled, the stack takes a while to write its stats when it stops.
        with local_stack(
            args.speed, Path(directory), options, stop_timeout=300 if args.profile else 15
        ) as state_file:
            yield state_file
        for process in ("local-up", "api") if args.profile else ():
            path = profiles / f"{process}.pstats"
            print(f"\nwhere `{process}` spent its time (every thread, own time first):")
            print(top_functions(path) if path.exists() else f"  (no profile: {path} was not written)")


def print_table(figures: Figures, title: str) -> None:
    print(title)
    width = max(len(name) for name, _ in figures.rows())
    for name, value in figures.rows():
        print(f"  {name:<{width}}  {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs to submit (default 1000)")
    parser.add_argument("--speed", type=float, default=10, help="the new stack's clock speed (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads submitting (default 16)")
    parser.add_argument("--provider", default="simulated", help="the jobs' provider (default simulated)")
    parser.add_argument(
        "--input", type=json.loads, default=DEFAULT_INPUT, help=f"the jobs' input (default {DEFAULT_INPUT})"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs")
    parser.add_argument("--state-file", type=Path, help="a running `jobpoll local up` (default: start one)")
    parser.add_argument("--profile", action="store_true", help="profile the new stack; print top functions")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be at least 1")
    if args.profile and args.state_file is not None:
        parser.error("--profile profiles a stack the benchmark starts: leave out --state-file")
    body = {"provider": args.provider, **args.input}
    began = time.monotonic()
    with stack(args) as state_file:
        print(f"stack up in {time.monotonic() - began:.1f} s; submitting {args.jobs} jobs", flush=True)
        figures = measure(state_file, args.jobs, body, args.concurrency, args.timeout)
        speed = LocalState.read(state_file).clock_speed
        print_table(
            figures,
            f"throughput: {args.jobs} jobs {json.dumps(body)}, speed {speed:g}, "
            f"{args.concurrency} submitting, {os.cpu_count()} cores",
        )
    return 0 if figures.completed == figures.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
