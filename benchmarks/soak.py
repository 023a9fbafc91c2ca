"""A soak run: many jobs of every kind through a local stack's API, under injected faults; nothing lost.

    python benchmarks/soak.py [--jobs 10000] [--faults] [--speed 100] [--seed 1] [--json]

It starts `jobpoll local up` itself (free ports on 127.0.0.1, a fresh state dir; with `--faults`, a seeded
`--fault-plan`), a loopback long-running-operation service (the `http` provider's profile `lro`, style azure)
and a loopback callback receiver, then submits a seeded mix of jobs through the API: simulated (succeeding and
failing, fixed and adaptive polls), notified, engine, queue-mode streams, http; some with a callback, some
canceled (a few racing their completion), some sent again with the same Idempotency-Key. Every POST carries an
Idempotency-Key, and a POST that fails to connect (the stack is down) or answers 5xx is sent again with it.

With `--faults`: the stack injects Lambda ServiceException / TooManyRequestsException, DynamoDB throttling and
conditional conflicts, duplicate SQS deliveries and workers killed mid-job (counted in its state dir); the
LRO service answers some requests 503 or too late (a provider timeout); the callback receiver goes down and
comes back; halfway through the submissions the whole stack is SIGKILLed (no child may outlive it) and
started again on the same state, so every job in flight must be resumed by the reconciler.

At the end it waits (bounded) for every job to finish, invoking the reconciler meanwhile, and prints a table.
Exit status 1 on any lost, duplicated, stuck or wrongly finished job, an API 5xx, or a child left after the
SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jobpoll.demo import free_ports
from jobpoll.faults import injected_faults
from jobpoll.persistence import JOURNAL, TableJournal
from jobpoll.processes import alive, children_of
from jobpoll.schedules import deployed_schedules
from jobpoll.simulated_service import recorded_submissions
from jobpoll.target import Target

HOST = "127.0.0.1"
TERMINAL = {"COMPLETE", "FAILED", "CANCELED"}
START_TIMEOUT = 90.0
REQUEST_TIMEOUT = 30.0
SUBMITTERS = 8
# The fault plan of `--faults` (rates per operation; faults.FaultRates).
FAULT_RATES = {
    "lambda_service_exception": 0.02,
    "lambda_too_many_requests": 0.02,
    "worker_killed": 0.1,
    "worker_killed_after_seconds": 2.0,
    "dynamodb_throttle": 0.01,
    "dynamodb_conflict": 0.02,
    "duplicate_sqs_delivery": 0.1,
}
PROVIDER_5XX = 0.05
PROVIDER_TIMEOUT = 0.02
PROVIDER_TIMEOUT_SECONDS = 1  # the `lro` profile's request timeout (real seconds); a late answer takes more
# Queue-mode jobs last at most this (emulation seconds): a killed worker's lease lapses after about as long.
QUEUE_JOB_MAX_SECONDS = 120

# Job kinds: the request (with `tag` in what the provider sees, so its submissions can be counted per job)
# and the outcome expected.
KINDS = (
    "simulated",
    "simulated-fails",
    "adaptive",
    "notify",
    "engine",
    "stream",
    "http",
    "cancel",
    "cancel-race",
)
WEIGHTS = (24, 6, 10, 10, 8, 12, 14, 10, 6)


def job_body(kind: str, tag: str, rng: random.Random, callback_url: str | None) -> dict[str, Any]:
    delay = rng.randint(5, 60)
    result = {"soak": tag}
    body: dict[str, Any]
    if kind in ("simulated", "simulated-fails", "cancel", "cancel-race"):
        if kind == "cancel":
            delay = 3600
        elif kind == "cancel-race":
            delay = 20
        simulated: dict[str, Any] = {"delay": delay, "result": result}
        if kind == "simulated-fails":
            simulated["fail"] = True
        body = {"input": simulated, "wait_seconds": rng.choice((5, 10, 20)), "max_tries": 1000}
    elif kind == "adaptive":
        body = {
            "input": {"delay": delay, "result": result, "report_eta": True},
            "poll_mode": "adaptive",
            "wait_seconds": 5,
            "max_wait_seconds": 60,
            "max_tries": 1000,
        }
    elif kind == "notify":
        body = {
            "input": {"delay": delay, "result": result},
            "notify": True,
            "notify_timeout_seconds": 120,
            "wait_seconds": 10,
            "max_tries": 1000,
        }
    elif kind == "engine":
        body = {
            "provider": "simulated-engine",
            "input": {"delay": delay, "result": result, "poll_seconds": 10},
        }
    elif kind == "stream":
        body = {
            "provider": "simulated-stream",
            "input": {"tokens": rng.randint(4, 12), "tokens_per_second": 1},
        }
    elif kind == "http":
        request = {"method": "POST", "path": f"/v1/work/{tag}", "body": {"polls": rng.randint(1, 4)}}
        body = {
            "provider": "http",
            "input": {"profile": "lro", "style": "azure", "request": request},
            "wait_seconds": 5,
            "max_tries": 1000,
        }
    else:
        raise ValueError(kind)
    if callback_url is not None:
        body["callback_url"] = callback_url
    return body


def expected_outcomes(kind: str, cancel_answer: int | None) -> set[str]:
    """The terminal statuses a job of `kind` may end in (a cancel's answer decides a race)."""
    if kind == "simulated-fails":
        return {"FAILED"}
    if kind in ("cancel", "cancel-race"):
        if cancel_answer == 200:
            return {"CANCELED"}
        if cancel_answer == 409:  # it finished first
            return {"COMPLETE"}
        return {"CANCELED", "COMPLETE"}  # the DELETE never got an answer (the stack was down)
    return {"COMPLETE"}


class Faults:
    """Seeded draws for the faults this process injects (the LRO service's), counted by class."""

    def __init__(self, seed: int, enabled: bool) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.enabled = enabled
        self.counts: Counter[str] = Counter()

    def draw(self, rate: float, fault_class: str) -> bool:
        if not self.enabled:
            return False
        with self._lock:
            hit = self._random.random() < rate
            if hit:
                self.counts[fault_class] += 1
        return hit

    def count(self, fault_class: str) -> None:
        with self._lock:
            self.counts[fault_class] += 1


class LroService:
    """An azure-style long-running-operation service on loopback: `POST /v1/work/TAG` with `{"polls": n}`
    starts work (202, `Operation-Location: /ops/TAG`) that is Running for n status reads, then Succeeded with
    `{"soak": TAG}`; `DELETE /ops/TAG` cancels it. It counts submissions per tag, and (with faults) answers
    some requests 503 or only after the client's timeout."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.submissions: Counter[str] = Counter()
        self._reads: Counter[str] = Counter()
        self._polls: dict[str, int] = {}
        self._canceled: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _faulted(self) -> bool:
                if service.faults.draw(PROVIDER_TIMEOUT, "provider_timeout"):
                    service._stopping.wait(PROVIDER_TIMEOUT_SECONDS + 0.5)  # answered too late
                    self.close_connection = True
                    return True
                if service.faults.draw(PROVIDER_5XX, "provider_5xx"):
                    self._send(503, {"title": "Service Unavailable", "status": 503})
                    return True
                return False

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self._faulted():
                    return
                tag = self.path.rsplit("/", 1)[-1]
                with service._lock:
                    service.submissions[tag] += 1
                    service._polls[tag] = int(body.get("polls", 1))
                self._send(202, {"status": "NotStarted"}, {"Operation-Location": f"/ops/{tag}"})

            def do_GET(self) -> None:
                if self._faulted():
                    return
                tag = self.path.rsplit("/", 1)[-1]
                with service._lock:
                    if tag not in service._polls:
                        self._send(404, {"title": "Not Found", "status": 404})
                        return
                    service._reads[tag] += 1
                    done = service._reads[tag] > service._polls[tag]
                    canceled = tag in service._canceled
                if canceled:
                    self._send(200, {"status": "Canceled"})
                elif done:
                    self._send(200, {"status": "Succeeded", "result": {"soak": tag}})
                else:
                    self._send(200, {"status": "Running", "percentComplete": 50})

            def do_DELETE(self) -> None:
                tag = self.path.rsplit("/", 1)[-1]
                with service._lock:
                    service._canceled.add(tag)
                self._send(204)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> LroService:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a late answer resets the connection: expected here


class CallbackReceiver:
    """Receives the signed callbacks on a fixed loopback port; `down()` closes the port, `up()` reopens it."""

    def __init__(self) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://{HOST}:{self.port}/callbacks"
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with contextlib.suppress(ValueError, AttributeError):
                    job_id = json.loads(body).get("id")
                    with receiver._lock:
                        receiver.received[str(job_id)] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class Stack:
    """A `jobpoll local up` subprocess on fixed ports and one state dir."""

    directory: Path
    speed: float
    fault_plan: Path | None
    ports: list[int] = field(default_factory=lambda: free_ports(3))
    process: subprocess.Popen[bytes] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    starts: int = 0

    @property
    def state_file(self) -> Path:
        return self.directory / "local.json"

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def log(self) -> Path:
        return self.directory / "local-up.log"

    def start(self, profiles: Path) -> None:
        api, aws, issuer = self.ports
        command = [
            *_jobpoll(),
            "local",
            "up",
            "--api-port",
            str(api),
            "--aws-port",
            str(aws),
            "--issuer-port",
            str(issuer),
            "--console-port",
            "0",
            "--speed",
            str(self.speed),
            "--state-file",
            str(self.state_file),
            "--http-profiles",
            str(profiles),
        ]
        if self.starts == 0:
            command.append("--fresh")
        if self.fault_plan is not None:
            command += ["--fault-plan", str(self.fault_plan)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            TZ="UTC",
            JOBPOLL_QUEUE_JOB_MAX_SECONDS=str(QUEUE_JOB_MAX_SECONDS),
        )
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while not self._started():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jobpoll local up did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        self.state = json.loads(self.state_file.read_text())

    def _started(self) -> bool:
        try:
            return bool(json.loads(self.state_file.read_text())["pid"] == self.process.pid)  # type: ignore[union-attr]
        except (OSError, ValueError, KeyError):
            return False

    def kill(self) -> list[int]:
        """SIGKILL `local up` (no cleanup of its own runs); returns the pids of the children that outlived it
        (after a generous bound)."""
        assert self.process is not None
        descendants = children_of(self.process.pid)
        self.process.kill()
        self.process.wait(30)
        deadline = time.monotonic() + 15
        while (left := [pid for pid in descendants if alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        descendants = children_of(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in descendants:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def client(self, service: str) -> Any:
        return Target(region=self.state["region"], endpoint_url=self.state["aws_endpoint_url"]).client(
            service
        )


def _jobpoll() -> list[str]:
    script = Path(sys.executable).with_name("jobpoll")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobpoll.cli"]


@dataclass
class Job:
    index: int
    kind: str
    tag: str
    body: dict[str, Any]
    replay: bool
    callback: bool
    job_id: str | None = None
    posted_at: float = 0.0
    cancel_answer: int | None = None


@dataclass
class SoakOptions:
    jobs: int = 10000
    faults: bool = False
    speed: float = 100.0
    seed: int = 1
    directory: Path | None = None
    # Wait at most this long (real seconds) after the last submission for every job to finish.
    settle_timeout: float = 600.0


@dataclass
class SoakReport:
    rows: dict[str, Any]
    failures: list[str]
    details: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        width = max(len(name) for name in self.rows)
        lines = [f"{name:<{width}}  {value}" for name, value in self.rows.items()]
        lines.append(
            "result".ljust(width) + "  " + ("OK" if self.ok else "FAILED: " + "; ".join(self.failures))
        )
        return "\n".join(lines)


class Api:
    """The stack's REST API, counting 5xx answers; a request that cannot connect is retried (bounded)."""

    def __init__(self, stack: Stack, available: threading.Event) -> None:
        self.stack = stack
        self.available = available
        self.stopping = threading.Event()
        self.server_errors = 0
        self.server_error_answers: list[str] = []  # "DELETE /jobs/{id} 503 concurrent-update: detail"
        self.retried = 0
        self._lock = threading.Lock()

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        deadline = time.monotonic() + START_TIMEOUT * 2
        while True:
            if self.stopping.is_set():
                raise RuntimeError("the soak run stopped")
            if not self.available.wait(START_TIMEOUT):
                raise RuntimeError("the stack did not come back")
            state = self.stack.state
            request = urllib.request.Request(
                f"{state['api_url']}{path}",
                data=json.dumps(body).encode() if body is not None else None,
                method=method,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {state['api_token']}",
                    **(headers or {}),
                },
            )
            try:
                with urllib.request.build_opener(_NoRedirect).open(
                    request, timeout=REQUEST_TIMEOUT
                ) as answer:
                    status, answer_headers, raw = answer.status, dict(answer.headers), answer.read()
            except urllib.error.HTTPError as error:
                status, answer_headers, raw = error.code, dict(error.headers), error.read()
            except (OSError, urllib.error.URLError):  # the stack is down (killed): try again once it is up
                status, answer_headers, raw = 0, {}, b""
            if 0 < status < 500:
                return status, answer_headers, json.loads(raw or b"null")
            with self._lock:
                self.retried += 1
                if status >= 500:
                    self.server_errors += 1
                    self.server_error_answers.append(f"{method} {path} {status} {_problem_of(raw)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: no answer (last status {status})")
            time.sleep(0.2)


def _problem_of(raw: bytes) -> str:
    """A problem answer's type and detail, short (what a 5xx was)."""
    try:
        problem = json.loads(raw or b"null")
    except ValueError:
        return raw[:80].decode(errors="replace")
    if not isinstance(problem, dict):
        return ""
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    return f"{kind}: {str(problem.get('detail', ''))[:120]}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _plan(options: SoakOptions, lro_url: str, callback_url: str) -> list[Job]:
    rng = random.Random(options.seed)
    jobs = []
    for index in range(options.jobs):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        tag = f"soak-{options.seed}-{index}"
        callback = rng.random() < 0.2
        body = job_body(kind, tag, rng, callback_url if callback else None)
        jobs.append(Job(index, kind, tag, body, replay=rng.random() < 0.05, callback=callback))
    return jobs


def _scan(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every job in the stack's table, by id (status, resumes, created and updated)."""
    dynamodb = stack.client("dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.state["outputs"]["JobsTableName"], ConsistentRead=True
    ):
        for item in page["Items"]:
            items[item["job_id"]["S"]] = {
                "status": item["status"]["S"],
                "resumes": int(item.get("resumes", {}).get("N", 0)),
                "created_at": item["created_at"]["S"],
                "updated_at": item["updated_at"]["S"],
                "error": json.loads(item["error"]["S"]).get("code") if "error" in item else None,
                "callback": json.loads(item["callback"]["S"]) if "callback" in item else None,
            }
    return items


def _reconcile(stack: Stack) -> dict[str, Any]:
    """Invoke the stack's scheduled functions (the reconciler) once, as their schedule does; what the
    reconciler did."""
    outcomes: dict[str, Any] = {}
    for schedule in deployed_schedules(stack.client("events")):
        try:
            answer = stack.client("lambda").invoke(FunctionName=schedule.function_arn, Payload=b"{}")
        except (BotoCoreError, ClientError):  # a long run on a loaded machine: its schedule runs it too
            continue
        outcome = json.loads(answer["Payload"].read() or b"null")
        if isinstance(outcome, dict):
            outcomes.update(outcome)
    return outcomes


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def _directory(options: SoakOptions) -> Iterator[Path]:
    if options.directory is not None:
        options.directory.mkdir(parents=True, exist_ok=True)
        yield options.directory
        return
    with tempfile.TemporaryDirectory(prefix="jobpoll-soak-") as name:
        yield Path(name)


def run(options: SoakOptions, progress: Any = print) -> SoakReport:
    """The soak run; its report (the table, and what failed)."""
    faults = Faults(options.seed, options.faults)
    with (
        _directory(options) as directory,
        LroService(faults) as lro,
        contextlib.ExitStack() as cleanup,
    ):
        receiver = CallbackReceiver()
        receiver.up()
        cleanup.callback(receiver.down)
        plan_file = None
        if options.faults:
            plan_file = directory / "fault-plan.json"
            plan_file.write_text(json.dumps({"seed": options.seed, **FAULT_RATES}))
        profiles = directory / "http-profiles.json"
        profiles.write_text(
            json.dumps({"lro": {"base_url": lro.url, "timeout_seconds": PROVIDER_TIMEOUT_SECONDS}})
        )
        stack = Stack(directory, options.speed, plan_file)
        cleanup.callback(stack.stop)
        stack.start(profiles)
        progress(f"stack up on {stack.state['api_url']} (speed {options.speed:g}, state in {directory})")
        available = threading.Event()
        available.set()
        api = Api(stack, available)
        jobs = _plan(options, lro.url, receiver.url)
        details: dict[str, Any] = {"kill": None}
        started = time.monotonic()
        submitted = Counter[str]()
        replays_wrong: list[str] = []
        lock = threading.Lock()

        def submit(job: Job) -> None:
            headers = {"Idempotency-Key": job.tag}
            status, _, answer = api.call("POST", "/jobs", job.body, headers)
            if status not in (200, 201, 202):
                raise RuntimeError(f"POST {job.kind} answered {status}: {answer}")
            job.job_id = answer["id"]
            job.posted_at = time.monotonic()
            if job.replay:
                again, replay_headers, replayed = api.call("POST", "/jobs", job.body, headers)
                same = again in (200, 201, 202) and replayed["id"] == job.job_id
                if not same or replay_headers.get("Idempotent-Replayed") != "true":
                    with lock:
                        replays_wrong.append(job.tag)
            if job.kind in ("cancel", "cancel-race"):
                pause = 0.5 if job.kind == "cancel" else 20 / options.speed
                time.sleep(pause)  # the job runs (or, racing, finishes) meanwhile
                job.cancel_answer, _, _ = api.call("DELETE", f"/jobs/{job.job_id}")
            with lock:
                submitted[job.kind] += 1

        def kill_and_restart() -> None:
            available.clear()
            if options.faults:
                receiver.down()
                faults.count("callback_receiver_down")
            left = stack.kill()
            faults.count("stack_sigkill")
            journal = TableJournal(stack.state_dir, key="job_id")
            unfinished = {
                item["job_id"]["S"] for item in journal.items() if item["status"]["S"] not in TERMINAL
            }
            # Work submitted just before the kill, whose record of it the kill lost: submitted again after the
            # restart (at least once: no provider here takes an idempotency key).
            unsubmitted = {
                item["job_id"]["S"]
                for item in journal.items()
                if item["status"]["S"] == "QUEUED" and "work_id" not in item and "task_id" not in item
            }
            submissions_at_kill = len(recorded_submissions(stack.state_dir))
            lro_at_kill = Counter(lro.submissions)
            stored = len(journal.items())
            stale_state_file = stack.state_file.exists()
            stack.start(profiles)
            details["kill"] = {
                "children_left": left,
                "state_file_left": stale_state_file,
                "in_flight": sorted(unfinished),
                "unsubmitted": unsubmitted,
                "submissions_at_kill": submissions_at_kill,
                "lro_at_kill": lro_at_kill,
                "journal": str(stack.state_dir / JOURNAL),
                "restored": f"Restored {stored} jobs" in stack.log.read_text(),
            }
            available.set()
            if options.faults:
                time.sleep(1.0)  # callbacks due meanwhile find the receiver down
                receiver.up()

        kill_after = options.jobs // 2 if options.faults else None
        pool = ThreadPoolExecutor(SUBMITTERS)
        try:
            futures = [pool.submit(submit, job) for job in jobs]
            if kill_after is not None:
                while sum(submitted.values()) < kill_after and not all(f.done() for f in futures):
                    time.sleep(0.05)
                progress(f"SIGKILL of the stack after {sum(submitted.values())} submissions")
                kill_and_restart()
            for future in futures:
                future.result()
        finally:  # stopped (Ctrl-C, SIGTERM) or failed: no submitter outlives the run
            api.stopping.set()
            pool.shutdown(wait=True, cancel_futures=True)
        submitted_at = time.monotonic()
        progress(f"{len(jobs)} jobs submitted in {submitted_at - started:.1f} s; waiting for them to finish")

        deadline = time.monotonic() + options.settle_timeout
        reconciler_runs = 0
        while True:
            records = _scan(stack)
            open_jobs = [j for j in jobs if records.get(j.job_id or "", {}).get("status") not in TERMINAL]
            if not open_jobs or time.monotonic() > deadline:
                break
            _reconcile(stack)
            reconciler_runs += 1
            time.sleep(max(0.5, 30 / options.speed))
        finished_at = time.monotonic()
        # The reconciler until quiet: nothing left to resume (bounded).
        for _ in range(5):
            if not _reconcile(stack).get("resumed"):
                break
            reconciler_runs += 1
        time.sleep(min(5.0, 600 / options.speed))  # callbacks still in flight arrive
        records = _scan(stack)

        # Duplicated work: a provider saw more than one submission (or finished run) for one job. One
        # exception, counted apart: work submitted once before the SIGKILL, whose record the kill lost (the
        # journal at the kill has the job unsubmitted), and once again after the restart.
        kill = details["kill"] or {}
        by_id = {j.job_id: j for j in jobs}
        unsubmitted_at_kill = {by_id[i].tag for i in kill.get("unsubmitted", ()) if i in by_id}
        before_kill: Counter[str] = Counter(kill.get("lro_at_kill", {}))
        after_kill: Counter[str] = lro.submissions - before_kill
        stream_runs: Counter[str] = Counter()
        for number, entry in enumerate(recorded_submissions(stack.state_dir)):
            if entry["event"] == "submit":
                tag = json.loads(entry["key"]).get("result", {}).get("soak", "?")
                pre_kill = number < kill.get("submissions_at_kill", -1)
                (before_kill if pre_kill else after_kill)[tag] += 1
            elif entry["event"] == "run-end" and entry["key"] in by_id:
                stream_runs[by_id[entry["key"]].tag] += 1
        resubmitted = sorted(
            tag for tag in unsubmitted_at_kill if before_kill[tag] == 1 and after_kill[tag] == 1
        )
        submissions = before_kill + after_kill
        duplicated = sorted(
            ({tag for tag, count in submissions.items() if count > 1} - set(resubmitted))
            | {tag for tag, count in stream_runs.items() if count > 1}
            | set(replays_wrong)
        )
        lost = [j.tag for j in jobs if j.job_id is None or j.job_id not in records]
        stuck = [j.tag for j in jobs if j.job_id in records and records[j.job_id]["status"] not in TERMINAL]
        wrong = [
            f"{j.tag} ({j.kind}): {records[j.job_id]['status']} {records[j.job_id]['error'] or ''}".strip()
            for j in jobs
            if j.job_id in records
            and records[j.job_id]["status"] in TERMINAL
            and records[j.job_id]["status"] not in expected_outcomes(j.kind, j.cancel_answer)
        ]
        statuses = Counter(records[j.job_id]["status"] for j in jobs if j.job_id in records)
        latencies = [
            _seconds(records[j.job_id]["created_at"], records[j.job_id]["updated_at"])
            for j in jobs
            if j.job_id in records and records[j.job_id]["status"] in TERMINAL
        ]
        with_callback = [j for j in jobs if j.callback and j.job_id in records]
        delivered = [j for j in with_callback if receiver.received[j.job_id or ""] > 0]
        injected = Counter(injected_faults(stack.state_dir)) + faults.counts
        failures = []
        in_flight_not_resumed: list[str] = []
        if kill:
            # Every job the kill caught running must be resumed by the reconciler (one still unsubmitted may
            # be started again by its client's replayed POST instead).
            in_flight_not_resumed = [
                job_id
                for job_id in sorted(set(kill["in_flight"]) - kill["unsubmitted"])
                if job_id in records
                and records[job_id]["status"] != "CANCELED"
                and records[job_id]["resumes"] < 1
            ]
            if not kill["restored"]:
                failures.append("the restarted stack did not restore every job the journal held")
            if kill["children_left"]:
                failures.append(f"children outlived the SIGKILLed stack: {kill['children_left']}")
            if in_flight_not_resumed:
                failures.append(f"{len(in_flight_not_resumed)} jobs in flight at the kill were never resumed")
        for name, found in (
            ("lost", lost),
            ("duplicated", duplicated),
            ("stuck", stuck),
            ("wrong outcome", wrong),
        ):
            if found:
                failures.append(f"{len(found)} {name}: {', '.join(found[:5])}")
        if api.server_errors:
            failures.append(f"{api.server_errors} API 5xx answers: {'; '.join(api.server_error_answers[:5])}")
        wall = finished_at - started
        rows: dict[str, Any] = {
            "jobs": f"{len(jobs)} ({', '.join(f'{k} {submitted[k]}' for k in KINDS if submitted[k])})",
            "speed": f"{options.speed:g}x (emulated seconds per real second)",
            "faults injected": ", ".join(f"{k} {v}" for k, v in sorted(injected.items())) or "none",
            "terminal states": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "stuck": len(stuck),
            "wrong outcome": len(wrong),
            "API 5xx": api.server_errors,
            "resubmitted after the SIGKILL": (
                f"{len(resubmitted)} (submitted just before it, the record of it lost with the stack)"
            ),
            "idempotent replays": f"{sum(j.replay for j in jobs)} (a second job: {len(replays_wrong)})",
            "callbacks delivered": f"{len(delivered)} of {len(with_callback)}",
            "in flight at SIGKILL": (
                f"{len(kill['in_flight'])} (resumed after the restart: "
                f"{len(kill['in_flight']) - len(in_flight_not_resumed)}; "
                f"children left: {len(kill['children_left'])})"
                if kill
                else "no kill"
            ),
            "latency p50 / p95": (
                f"{_percentile(latencies, 0.5):.0f} / {_percentile(latencies, 0.95):.0f} emulated s "
                f"({_percentile(latencies, 0.5) / options.speed:.2f} / "
                f"{_percentile(latencies, 0.95) / options.speed:.2f} s real)"
            ),
            "throughput": (
                f"{len(jobs) / wall:.1f} jobs/s end to end ({wall:.0f} s); "
                f"submit {len(jobs) / max(submitted_at - started, 1e-9):.1f}/s"
            ),
            "reconciler runs": reconciler_runs,
        }
        details.update(
            lost=lost,
            duplicated=duplicated,
            stuck=stuck,
            wrong=wrong,
            statuses=dict(statuses),
            injected=dict(injected),
            in_flight_not_resumed=in_flight_not_resumed,
            restarts=stack.starts - 1,
            resubmitted=resubmitted,
            log=stack.log.read_text()[-5000:] if failures else "",
        )
        return SoakReport(rows, failures, details)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10000, help="how many jobs (default 10000)")
    parser.add_argument("--faults", action="store_true", help="inject faults, SIGKILL and restart the stack")
    parser.add_argument("--speed", type=float, default=100.0, help="the stack's --speed (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the job mix and the faults (default 1)")
    parser.add_argument("--dir", type=Path, help="keep the stack's state and log here (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    # SIGTERM (a `timeout`, say) unwinds like Ctrl-C, so the stack this started is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    options = SoakOptions(
        jobs=args.jobs, faults=args.faults, speed=args.speed, seed=args.seed, directory=args.dir
    )
    report = run(options, progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"rows": report.rows, "failures": report.failures}, indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
