"""Polling efficiency: polls, state transitions, dollars and detection lag per poll strategy.

    python benchmarks/polling_efficiency.py [--jobs N] [--seed S] [--sample K] [--json]

A fixed-seed mix of job lengths (log-uniform, 10 s to 2 h) is polled, on a virtual clock, under each
strategy: fixed 10 s, fixed 60 s, adaptive (backoff from 10 s, capped at 300 s), adaptive following the
provider's ETA hint, and a callback (task token) that needs no poll. The MODEL replays each job's poll
schedule with the project's own policy (`chalicelib.policy.poll_time`, the code GetJobStatus runs), and
counts state transitions from the poller ASL's paths. A SAMPLE of jobs then runs for real on the
in-process emulation (moto executing statemachine/poller.asl.json with the real handlers, virtual clock);
the polls, detection lag and `*StateEntered` events it shows must equal the model's, or the benchmark
exits non-zero. The callback row is modelled from its path (CALLBACK_PATH) and confirmed the same way: each
sampled job waits in WaitForNotification and is completed through NotifyJob.

Prices (us-east-1, list prices, no free tier):
- Step Functions Standard: $0.025 per 1,000 state transitions. AWS's pricing page
  (https://aws.amazon.com/step-functions/pricing/): "Step Functions counts a state transition each time a
  step of your workflow is executed ... including retries", and each retry is charged as an additional
  transition. So every state entered is one transition (a Wait, a Choice and a Succeed included); the
  history's `*StateEntered` events are what we count. Retries would add to this; the model assumes none.
- Lambda requests: $0.20 per 1 million requests (AWS whitepaper "How AWS Pricing Works", Lambda,
  https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html). Duration (GB-s) is
  not priced here: it depends on memory and handler time, which this benchmark does not measure.

The alternative a user would pick instead: Lambda durable functions (Dec 2025). The same poll schedule as
`wait_for_condition` (one STEP operation; each check is checkpointed as a retry of it, and the function is
invoked again for each check) or, for the callback row, `wait_for_callback`. Priced per durable operation:
$8.00 per million (AWS Lambda pricing page, https://aws.amazon.com/lambda/pricing/, "Durable Functions
operations", us-east-1, read 2026-09-20) — a parameter (`--durable-operation-price`, USD per million), since
it is the one price here that is new and may move. Data written and retained by checkpoints (priced per GB)
is tiny for a poll loop and not priced; neither is Lambda duration (the same check runs either way).
One durable execution holds at most 3,000 operations: a job polled more often than that must continue in a
new execution, as the Step Functions loop does after `continue_after` polls.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobpoll.emulation import isolate_from_aws
from jobpoll.paths import POLLER_ASL, ensure_functions_importable

ensure_functions_importable()

from chalicelib.job import Job, JobStatus, PollSettings  # noqa: E402
from chalicelib.policy import poll_settings_from, poll_time  # noqa: E402
from chalicelib.providers import PollResult, WorkState  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402

TRANSITION_PRICE_USD = 0.025 / 1000  # Step Functions Standard, per state transition
LAMBDA_REQUEST_PRICE_USD = 0.20 / 1_000_000  # per Lambda request (duration not priced)
DURABLE_OPERATION_PRICE_USD = 8.00 / 1_000_000  # Lambda durable functions, per durable operation
# A durable poll loop: the submit step and the wait_for_condition step are one operation each; every check
# after the first is one more (a retry checkpoint of that step) and one more invocation of the function.
DURABLE_SETUP_OPERATIONS = 2
DURABLE_OPERATIONS_PER_EXECUTION = 3000
# wait_for_callback: the submit step and the callback operation; invoked to start and once to resume.
DURABLE_CALLBACK_OPERATIONS = 2
DURABLE_CALLBACK_INVOCATIONS = 2
MIN_LENGTH_SECONDS = 10.0
MAX_LENGTH_SECONDS = 2 * 3600.0
START = datetime(2026, 1, 1, tzinfo=UTC)
# The sample runs jobs up to 30 min: a 2 h job polled every 10 s costs ~20 s on the emulation, and what the
# sample confirms (polls, transitions per poll, lag) does not depend on length; adaptive waits reach their
# 300 s cap after 6 polls (~10 min), well inside the sample.
SAMPLE_MAX_LENGTH_SECONDS = 1800.0

# The poller's paths, as state names (checked against the ASL by `check_paths`). A provider job that
# completes enters START_PATH once, POLL_LOOP once per poll, SUCCESS_END once, and CONTINUATION each time
# the loop hands over to a new execution (the old one's two states, then the new one's START_PATH).
START_PATH = ("StartJob", "Init", "CheckJobComplete")
POLL_LOOP = ("Wait", "GetJobStatus", "CheckJobComplete")
SUCCESS_END = ("JobSucceeded",)
CONTINUATION = ("ContinueAsNewExecution", "ContinuedInNewExecution", *START_PATH)

# The callback strategy: the job completes through a notification (task token), polling only as a fallback
# that never fires here (`check_path` holds the path to the ASL, `measure_callback` to an execution).
CALLBACK_STATE = "WaitForNotification"
CALLBACK_PATH = ("StartJob", "Init", "CheckJobComplete", CALLBACK_STATE, "CheckJobComplete", "JobSucceeded")
CALLBACK_POLLS = 0
CALLBACK_LAG_SECONDS = 0.0
# StartJob, AwaitNotification (records the task token) and NotifyJob (the provider's completion event,
# which calls SendTaskSuccess). `measure_callback` confirms all of it on the emulation.
CALLBACK_LAMBDA_INVOCATIONS = 3


class ModelMismatch(Exception):
    """The state machine did not do what the model says it does."""


# ---------------------------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Strategy:
    """A poll strategy: the request's poll fields, and whether the provider hints the time left."""

    name: str
    poll_fields: Mapping[str, Any]
    report_eta: bool = False

    @property
    def poll(self) -> PollSettings:
        # Parsed by the project's own code, so defaults (deadline, continue_after) are what ships.
        return poll_settings_from(self.poll_fields, Settings())

    def execution_input(self, length_seconds: float) -> dict[str, Any]:
        provider_input: dict[str, Any] = {"delay": length_seconds}
        if self.report_eta:
            provider_input["report_eta"] = True
        return {"provider": "simulated", "input": provider_input, **self.poll_fields}


_ENOUGH_TRIES = 10_000  # a 2 h job polled every 10 s takes 721 polls; no strategy runs out of tries here
STRATEGIES = (
    Strategy("fixed 10 s", {"wait_seconds": 10, "max_tries": _ENOUGH_TRIES}),
    Strategy("fixed 60 s", {"wait_seconds": 60, "max_tries": _ENOUGH_TRIES}),
    Strategy(
        "adaptive",
        {"poll_mode": "adaptive", "wait_seconds": 10, "max_wait_seconds": 300, "max_tries": _ENOUGH_TRIES},
    ),
    Strategy(
        "adaptive + ETA",
        {"poll_mode": "adaptive", "wait_seconds": 10, "max_wait_seconds": 300, "max_tries": _ENOUGH_TRIES},
        report_eta=True,
    ),
)
# Checks the continuation term of the model (no strategy above polls long enough to continue).
CONTINUATION_CHECK = Strategy(
    "fixed 10 s, continue_after 3", {"wait_seconds": 10, "max_tries": _ENOUGH_TRIES, "continue_after": 3}
)


# ------------------------------------------------------------------------------------------------ the ASL


def load_definition() -> dict[str, Any]:
    return dict(json.loads(POLLER_ASL.read_text()))


def _successors(state: Mapping[str, Any]) -> set[str]:
    found = {state["Next"]} if "Next" in state else set()
    found.update(choice["Next"] for choice in state.get("Choices", ()))
    if "Default" in state:
        found.add(state["Default"])
    return found


def check_path(definition: Mapping[str, Any], path: Sequence[str]) -> None:
    """Raise ModelMismatch unless each state of `path` exists and may be followed by the next."""
    states = definition["States"]
    for name in path:
        if name not in states:
            raise ModelMismatch(f"the ASL has no state {name!r}")
    for here, there in itertools.pairwise(path):
        if there not in _successors(states[here]):
            raise ModelMismatch(f"the ASL does not go from {here!r} to {there!r}")


def check_paths(definition: Mapping[str, Any]) -> None:
    """The model's paths are paths of the poller ASL, in the order the model counts them."""
    states = definition["States"]
    if definition["StartAt"] != START_PATH[0]:
        raise ModelMismatch(f"the ASL starts at {definition['StartAt']!r}, not {START_PATH[0]!r}")
    check_path(definition, (*START_PATH, *POLL_LOOP, *POLL_LOOP, *SUCCESS_END))
    check_path(definition, (*POLL_LOOP, *CONTINUATION[:2]))
    for last in (SUCCESS_END[-1], CONTINUATION[1]):
        if states[last]["Type"] != "Succeed":
            raise ModelMismatch(f"{last!r} is not the end of an execution")


# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Outcome:
    """How one job went under one strategy."""

    length_seconds: float
    polls: int
    lag_seconds: float
    continuations: int
    transitions: int
    lambda_invocations: int

    @property
    def relative_lag(self) -> float:
        return self.lag_seconds / self.length_seconds


def transitions_for(polls: int, continuations: int = 0) -> int:
    """State transitions of a job that completes at poll `polls` after `continuations` hand-overs."""
    return len(START_PATH) + polls * len(POLL_LOOP) + len(SUCCESS_END) + continuations * len(CONTINUATION)


def continuations_for(polls: int, continue_after: int) -> int:
    # The loop hands over after every `continue_after` polls of one execution, unless that poll found
    # the job done (CheckJobComplete tests completion first).
    return (polls - 1) // continue_after


def poll_schedule(job_id: str, length_seconds: float, strategy: Strategy) -> list[float]:
    """Seconds after the start at which GetJobStatus runs, up to the first poll that finds the job done.

    The first poll comes `wait_seconds` after StartJob (rules.submitted); each later one where the
    policy puts it (`poll_time`, as GetJobStatus computes it), waited in whole seconds rounded up (the
    Wait's SecondsPath, loop_state.loop_state).
    """
    poll = strategy.poll
    job = Job(
        job_id=job_id,
        provider="simulated",
        request={},
        poll=poll,
        status=JobStatus.PENDING,
        created_at=START,
        updated_at=START,
        expires_at=START + timedelta(days=7),
    )
    done_at = START + timedelta(seconds=length_seconds)
    now = START + timedelta(seconds=poll.wait_seconds)
    times = []
    while True:
        times.append((now - START).total_seconds())
        if now >= done_at:
            return times
        if len(times) >= poll.max_tries or now >= job.deadline:
            raise ModelMismatch(f"{job_id} ({length_seconds} s) would not complete under {strategy.name}")
        job = dataclasses.replace(job, try_count=len(times), status=JobStatus.RUNNING)
        hint = (done_at - now).total_seconds() if strategy.report_eta else None
        when, _ = poll_time(job, now, PollResult(state=WorkState.RUNNING, retry_after_seconds=hint))
        now += timedelta(seconds=math.ceil((when - now).total_seconds()))


def model_outcome(job_id: str, length_seconds: float, strategy: Strategy) -> Outcome:
    times = poll_schedule(job_id, length_seconds, strategy)
    polls = len(times)
    continuations = continuations_for(polls, strategy.poll.continue_after)
    return Outcome(
        length_seconds=length_seconds,
        polls=polls,
        lag_seconds=times[-1] - length_seconds,
        continuations=continuations,
        transitions=transitions_for(polls, continuations),
        # StartJob once per execution, GetJobStatus once per poll.
        lambda_invocations=1 + continuations + polls,
    )


def callback_outcome(length_seconds: float) -> Outcome:
    return Outcome(
        length_seconds=length_seconds,
        polls=CALLBACK_POLLS,
        lag_seconds=CALLBACK_LAG_SECONDS,
        continuations=0,
        transitions=len(CALLBACK_PATH),
        lambda_invocations=CALLBACK_LAMBDA_INVOCATIONS,
    )


@dataclass(frozen=True)
class DurableCost:
    """The same job as a Lambda durable function: operations and invocations."""

    operations: int
    invocations: int


def durable_cost(outcome: Outcome, *, callback: bool = False) -> DurableCost:
    """What `outcome`'s poll schedule costs as a durable function (wait_for_condition / wait_for_callback).

    Each check runs in a fresh invocation (the function suspends between checks); a job whose operations
    pass the per-execution limit continues in a new execution, which repeats the setup operations.
    """
    if callback:
        return DurableCost(DURABLE_CALLBACK_OPERATIONS, DURABLE_CALLBACK_INVOCATIONS)
    checks = outcome.polls
    per_execution = DURABLE_OPERATIONS_PER_EXECUTION - DURABLE_SETUP_OPERATIONS
    executions = max(1, math.ceil(checks / per_execution))
    return DurableCost(
        operations=executions * DURABLE_SETUP_OPERATIONS + max(0, checks - executions),
        invocations=executions + checks,
    )


def job_lengths(count: int, seed: int) -> list[float]:
    """`count` job lengths in seconds, log-uniform between 10 s and 2 h, to the millisecond."""
    rng = random.Random(seed)
    low, high = math.log(MIN_LENGTH_SECONDS), math.log(MAX_LENGTH_SECONDS)
    return [round(math.exp(rng.uniform(low, high)), 3) for _ in range(count)]


def job_id(strategy: Strategy, index: int) -> str:
    """The job's id (also its execution name): adaptive jitter is seeded by it, so model and run agree."""
    slug = "".join(c if c.isalnum() else "-" for c in strategy.name).strip("-")
    return f"{slug}-{index:05d}"


def sample_indices(
    lengths: Sequence[float], count: int, longest: float = SAMPLE_MAX_LENGTH_SECONDS
) -> list[int]:
    """`count` jobs spread evenly over the quantiles of the lengths up to `longest` (short to long)."""
    order = sorted((i for i, n in enumerate(lengths) if n <= longest), key=lengths.__getitem__)
    count = max(0, min(count, len(order)))
    return [order[min(len(order) - 1, int((i + 0.5) * len(order) / count))] for i in range(count)]


# ---------------------------------------------------------------------------------------------- summaries


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Row:
    strategy: str
    measured: str  # how the row's figures were confirmed
    polls_per_job: float
    transitions_per_job: float
    usd_per_1000_jobs: float
    lambda_invocations_per_job: float
    lambda_request_usd_per_1000_jobs: float
    lag_median_s: float
    lag_p95_s: float
    lag_median_pct: float
    lag_p95_pct: float
    # The same schedule as a Lambda durable function (operations + Lambda requests), beside Step
    # Functions' total (transitions + Lambda requests).
    durable_operations_per_job: float = 0.0
    durable_usd_per_1000_jobs: float = 0.0
    step_functions_total_usd_per_1000_jobs: float = 0.0


def summarise(
    name: str,
    measured: str,
    outcomes: Sequence[Outcome],
    *,
    callback: bool = False,
    durable_operation_price: float = DURABLE_OPERATION_PRICE_USD,
) -> Row:
    count = len(outcomes)
    transitions = sum(o.transitions for o in outcomes) / count
    invocations = sum(o.lambda_invocations for o in outcomes) / count
    lags = [o.lag_seconds for o in outcomes]
    relative = [100 * o.relative_lag for o in outcomes]
    durable = [durable_cost(o, callback=callback) for o in outcomes]
    durable_operations = sum(d.operations for d in durable) / count
    durable_invocations = sum(d.invocations for d in durable) / count
    return Row(
        strategy=name,
        measured=measured,
        polls_per_job=sum(o.polls for o in outcomes) / count,
        transitions_per_job=transitions,
        usd_per_1000_jobs=1000 * transitions * TRANSITION_PRICE_USD,
        lambda_invocations_per_job=invocations,
        lambda_request_usd_per_1000_jobs=1000 * invocations * LAMBDA_REQUEST_PRICE_USD,
        lag_median_s=percentile(lags, 0.5),
        lag_p95_s=percentile(lags, 0.95),
        lag_median_pct=percentile(relative, 0.5),
        lag_p95_pct=percentile(relative, 0.95),
        durable_operations_per_job=durable_operations,
        durable_usd_per_1000_jobs=1000
        * (durable_operations * durable_operation_price + durable_invocations * LAMBDA_REQUEST_PRICE_USD),
        step_functions_total_usd_per_1000_jobs=1000
        * (transitions * TRANSITION_PRICE_USD + invocations * LAMBDA_REQUEST_PRICE_USD),
    )


# ---------------------------------------------------------------------------------- the real state machine


@dataclass(frozen=True)
class Comparison:
    strategy: str
    job_id: str
    length_seconds: float
    model: Outcome
    measured: Outcome

    @property
    def agrees(self) -> bool:
        m, r = self.model, self.measured
        return (m.polls, m.transitions, m.continuations, m.lambda_invocations) == (
            r.polls,
            r.transitions,
            r.continuations,
            r.lambda_invocations,
        ) and math.isclose(m.lag_seconds, r.lag_seconds, abs_tol=0.001)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Keep the handlers' per-poll log lines and moto's ASL evaluation noise off the benchmark's output."""
    # The handlers set their logger's level from the settings on every call: set it there.
    saved_level = os.environ.get("JOBPOLL_LOG_LEVEL")
    os.environ["JOBPOLL_LOG_LEVEL"] = "WARNING"
    moto_logger = logging.getLogger("moto")
    moto_level = moto_logger.level
    moto_logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        moto_logger.setLevel(moto_level)
        if saved_level is None:
            os.environ.pop("JOBPOLL_LOG_LEVEL", None)
        else:
            os.environ["JOBPOLL_LOG_LEVEL"] = saved_level


def measure(emulation: Any, strategy: Strategy, name: str, length_seconds: float) -> Outcome:
    """Run one job through the real state machine; count polls, lag, and StateEntered events."""
    invoked_before = len(emulation.invocations)
    first = emulation.start(strategy.execution_input(length_seconds), name=name)
    chain = emulation.wait_for_chain(first, timeout=120)
    if any(e["status"] != "SUCCEEDED" for e in chain):
        raise ModelMismatch(f"{name}: executions ended {[e['status'] for e in chain]}")
    entered = sum(
        1
        for execution in chain
        for event in emulation.history(execution["executionArn"])
        if event["type"].endswith("StateEntered")
    )
    invocations = len(emulation.invocations) - invoked_before  # jobs run one at a time
    job = emulation.runtime.store.get(name)
    if job.status is not JobStatus.COMPLETE:
        raise ModelMismatch(f"{name}: the job ended {job.status.value}")
    detected = (job.updated_at - job.created_at).total_seconds()
    return Outcome(
        length_seconds=length_seconds,
        polls=job.try_count,
        lag_seconds=detected - length_seconds,
        continuations=len(chain) - 1,
        transitions=entered,
        lambda_invocations=invocations,
    )


def measure_callback(emulation: Any, clock: Any, name: str, length_seconds: float) -> Outcome:
    """Run one job through WaitForNotification on a stopped clock; notify it when its work is done."""
    invoked_before = len(emulation.invocations)
    arn = emulation.start(
        {"delay": length_seconds, "notify": True, "notify_timeout_seconds": 4 * 3600}, name=name
    )
    deadline = time.monotonic() + 30
    while (job := emulation.runtime.store.find(name)) is None or job.notify_token is None:
        if time.monotonic() > deadline:
            raise ModelMismatch(f"{name}: the execution never waited for a notification")
        time.sleep(0.005)
    clock.advance(length_seconds)
    emulation.client("lambda").invoke(
        FunctionName=emulation.deployment.function_arns["NotifyJob"],
        Payload=json.dumps({"job_id": name, "state": "SUCCEEDED", "result": "done"}).encode(),
    )
    execution = emulation.wait(arn, timeout=60)
    if execution["status"] != "SUCCEEDED":
        raise ModelMismatch(f"{name}: the execution ended {execution['status']}")
    job = emulation.runtime.store.get(name)
    return Outcome(
        length_seconds=length_seconds,
        polls=job.try_count,
        lag_seconds=(job.updated_at - job.created_at).total_seconds() - length_seconds,
        continuations=0,
        transitions=sum(1 for e in emulation.history(arn) if e["type"].endswith("StateEntered")),
        lambda_invocations=len(emulation.invocations) - invoked_before,
    )


def compare_callback_on_state_machine(lengths: Sequence[float], indices: Sequence[int]) -> list[Comparison]:
    """The callback row's sample: each job completes through the notification, on a stopped clock."""
    from jobpoll.clocks import VirtualClock
    from jobpoll.emulation import Emulation

    clock = VirtualClock(auto_advance=False)
    with quiet_logs(), Emulation(clock=clock) as emulation:
        return [
            Comparison(
                strategy="callback",
                job_id=f"callback-{index}",
                length_seconds=lengths[index],
                model=callback_outcome(lengths[index]),
                measured=measure_callback(emulation, clock, f"callback-{index}", lengths[index]),
            )
            for index in indices
        ]


def compare_on_state_machine(
    lengths: Sequence[float], indices: Sequence[int], strategies: Sequence[Strategy]
) -> list[Comparison]:
    """Run the sampled jobs under each strategy on the emulation; pair each with the model's outcome."""
    from jobpoll.clocks import VirtualClock
    from jobpoll.emulation import Emulation

    comparisons = []
    with quiet_logs(), Emulation(clock=VirtualClock()) as emulation:
        runs = [(s, i) for s in strategies for i in indices]
        runs.append((CONTINUATION_CHECK, -1))
        for strategy, index in runs:
            length = 95.0 if index < 0 else lengths[index]
            name = job_id(strategy, max(index, 0))
            comparisons.append(
                Comparison(
                    strategy=strategy.name,
                    job_id=name,
                    length_seconds=length,
                    model=model_outcome(name, length, strategy),
                    measured=measure(emulation, strategy, name, length),
                )
            )
    return comparisons


# ------------------------------------------------------------------------------------------------- output


def run(
    jobs: int, seed: int, sample: int, durable_operation_price: float = DURABLE_OPERATION_PRICE_USD
) -> dict[str, Any]:
    """The whole benchmark: model rows, the sample's comparison, and what was checked how."""
    definition = load_definition()
    check_paths(definition)
    lengths = job_lengths(jobs, seed)
    indices = sample_indices(lengths, sample)
    started = time.perf_counter()
    comparisons = compare_on_state_machine(lengths, indices, STRATEGIES) if indices else []
    if indices:
        check_path(definition, CALLBACK_PATH)
        comparisons += compare_callback_on_state_machine(lengths, indices)
    measured_seconds = time.perf_counter() - started
    sampled = (
        f"model; confirmed on {len(indices)} jobs of {lengths[indices[0]]:.0f}-{lengths[indices[-1]]:.0f} s"
        if indices
        else "model only (--sample 0)"
    )
    rows = [
        summarise(
            s.name,
            sampled,
            [model_outcome(job_id(s, i), n, s) for i, n in enumerate(lengths)],
            durable_operation_price=durable_operation_price,
        )
        for s in STRATEGIES
    ]
    check_path(definition, CALLBACK_PATH)
    callback_note = (
        f"model; confirmed on {len(indices)} jobs notified through {CALLBACK_STATE}"
        if indices
        else "model only (--sample 0)"
    )
    rows.append(
        summarise(
            "callback",
            callback_note,
            [callback_outcome(n) for n in lengths],
            callback=True,
            durable_operation_price=durable_operation_price,
        )
    )
    return {
        "jobs": jobs,
        "seed": seed,
        "length_seconds": {"min": min(lengths), "median": percentile(lengths, 0.5), "max": max(lengths)},
        "prices_usd": {
            "state_transition": TRANSITION_PRICE_USD,
            "lambda_request": LAMBDA_REQUEST_PRICE_USD,
            "durable_operation": durable_operation_price,
        },
        "rows": [dataclasses.asdict(r) for r in rows],
        "sample": [
            {
                "strategy": c.strategy,
                "job_id": c.job_id,
                "length_seconds": c.length_seconds,
                "model": dataclasses.asdict(c.model),
                "measured": dataclasses.asdict(c.measured),
                "agrees": c.agrees,
            }
            for c in comparisons
        ],
        "sample_seconds": round(measured_seconds, 1),
        "all_agree": all(c.agrees for c in comparisons),
    }


def render(report: Mapping[str, Any]) -> str:
    lines = []
    span = report["length_seconds"]
    lines.append(
        f"{report['jobs']} jobs, seed {report['seed']}: lengths log-uniform 10 s - 2 h "
        f"(min {span['min']:.0f} s, median {span['median']:.0f} s, max {span['max']:.0f} s)"
    )
    lines.append(
        "Step Functions Standard $0.025 per 1,000 transitions; "
        "Lambda $0.20 per 1M requests (duration not priced)"
    )
    lines.append("")
    header = (
        f"{'strategy':<16}{'polls/job':>10}{'transitions/job':>16}{'$/1k jobs':>11}"
        f"{'lambda/job':>11}{'lambda $/1k':>12}{'lag p50':>9}{'lag p95':>9}{'rel p50':>9}{'rel p95':>9}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for row in report["rows"]:
        lines.append(
            f"{row['strategy']:<16}{row['polls_per_job']:>10.1f}{row['transitions_per_job']:>16.1f}"
            f"{row['usd_per_1000_jobs']:>11.3f}{row['lambda_invocations_per_job']:>11.1f}"
            f"{row['lambda_request_usd_per_1000_jobs']:>12.4f}"
            f"{row['lag_median_s']:>8.0f}s{row['lag_p95_s']:>8.0f}s"
            f"{row['lag_median_pct']:>8.1f}%{row['lag_p95_pct']:>8.1f}%"
        )
    lines.append("")
    durable_price = report["prices_usd"]["durable_operation"] * 1_000_000
    lines.append(
        f"Beside the alternative: the same schedules as Lambda durable functions (wait_for_condition; "
        f"wait_for_callback for the callback row), ${durable_price:.2f} per 1M durable operations "
        "+ Lambda requests"
    )
    compare = (
        f"{'strategy':<16}{'Step Functions $/1k':>20}{'durable ops/job':>17}{'durable $/1k':>14}{'ratio':>8}"
    )
    lines.append(compare)
    lines.append("-" * len(compare))
    for row in report["rows"]:
        sfn, durable = row["step_functions_total_usd_per_1000_jobs"], row["durable_usd_per_1000_jobs"]
        lines.append(
            f"{row['strategy']:<16}{sfn:>20.4f}{row['durable_operations_per_job']:>17.1f}{durable:>14.4f}"
            f"{sfn / durable if durable else math.inf:>7.1f}x"
        )
    per_million_polls = len(POLL_LOOP) * report["prices_usd"]["state_transition"] * 1_000_000
    lines.append(
        "  ratio = Step Functions / durable functions; above 1x the durable loop costs less. Per poll, Step "
        f"Functions enters {len(POLL_LOOP)} states (${per_million_polls:.0f} per 1M polls) where a durable "
        f"check is 1 operation (${durable_price:.0f} per 1M): the two cost the same per poll when a durable "
        f"operation costs ${per_million_polls:.0f} per 1M."
    )
    lines.append("")
    for row in report["rows"]:
        lines.append(f"  {row['strategy']}: {row['measured']}")
    sample = report["sample"]
    if sample:
        lines.append("")
        lines.append(
            f"Model vs the real state machine (moto, virtual clock, {report['sample_seconds']} s): "
            "polls / StateEntered transitions / Lambda invocations / lag"
        )
        for c in sample:
            m, r = c["model"], c["measured"]
            verdict = "ok" if c["agrees"] else "MISMATCH"
            lines.append(
                f"  {c['strategy']:<30}{c['length_seconds']:>9.1f} s  "
                f"model {m['polls']:>4}/{m['transitions']:>5}/{m['lambda_invocations']:>4}/"
                f"{m['lag_seconds']:>6.1f}s"
                f"  measured {r['polls']:>4}/{r['transitions']:>5}/{r['lambda_invocations']:>4}/"
                f"{r['lag_seconds']:>6.1f}s  {verdict}"
            )
        lines.append(
            f"Transitions per job = {len(START_PATH)} + {len(POLL_LOOP)} x polls + {len(SUCCESS_END)}"
            f" + {len(CONTINUATION)} x continuations: "
            + ("confirmed." if report["all_agree"] else "NOT CONFIRMED.")
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the mix (default 1000)")
    parser.add_argument("--seed", type=int, default=6, help="seed of the job mix (default 6)")
    parser.add_argument(
        "--sample", type=int, default=8, help="jobs per strategy run on the real state machine (default 8)"
    )
    parser.add_argument(
        "--durable-operation-price",
        type=float,
        default=DURABLE_OPERATION_PRICE_USD * 1_000_000,
        help="USD per 1M Lambda durable operations (default 8.00, AWS Lambda pricing page, us-east-1)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.sample < 0 or args.durable_operation_price < 0:
        parser.error("--jobs must be at least 1, --sample and --durable-operation-price at least 0")
    isolate_from_aws()
    try:
        report = run(args.jobs, args.seed, args.sample, args.durable_operation_price / 1_000_000)
    except ModelMismatch as exc:
        print(f"MODEL MISMATCH: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    if not report["all_agree"]:
        print("MODEL MISMATCH: the real state machine disagrees with the model (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
