"""jobpoll.testing: the conformance kit for providers, a pytest plugin (entry point `pytest11`).

Fixtures run a job for any provider through the real state machine and handlers (or, for a worker, the
real queue and worker) on the emulation's virtual clock, and return the outcome:

    def test_my_job_ends(run_provider_job):
        outcome = run_provider_job(AcmeProvider, {"seconds": 30})
        assert outcome.status == "COMPLETE" and outcome.polls == 3

The contract any provider is checked against is a base class per kind; subclass it and name the class:

    class TestAcme(PollProviderContract):
        provider_class = AcmeProvider

It checks: the declaration (kind, can_notify, input schema with examples that fit it); bad input refused with
`InvalidJobInput` naming the field (inputs derived from the schema); the examples accepted; a submitted job
moving forward and ending; progress within 0..1; results that are JSON (any size: a large one is kept in the
results bucket); for a poll provider, `cancel` idempotent and a transient failure (`ProviderUnavailable`)
retried by the state machine; for an engine, every message parsing and a transient failure retried; for a
worker, reports that grow and stop on cancel. Each check is also a plain function (`check_*`).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from .paths import ensure_functions_importable

if TYPE_CHECKING:  # the emulation (moto, boto3) loads when a fixture first needs it, not with the plugin
    from .emulation import Emulation

ensure_functions_importable()

# Enough for an example to end (polls every 10 s for up to 10 minutes), few enough that one which never
# ends fails fast: waits are virtual, but each poll costs real time.
DEFAULT_REQUEST_FIELDS: dict[str, Any] = {"wait_seconds": 10, "max_tries": 60, "deadline_seconds": 600}
MAX_DIRECT_STEPS = 10_000
_WRONG_VALUES: tuple[tuple[str, Any], ...] = (
    ("object", {"wrong": True}),
    ("array", ["wrong"]),
    ("string", "wrong"),
    ("boolean", True),
)


def _checked_spec(provider_class: type) -> Any:
    from chalicelib.providers.registry import spec_for

    return spec_for(getattr(provider_class, "name", "?"), provider_class)


def build_provider(provider_class: type, emulation: Emulation, clock: Any = None) -> Any:
    """The provider as the registry builds it, from the emulation's parts (`clock` to drive it directly)."""
    from chalicelib.bootstrap import http_profiles_loader
    from chalicelib.providers.registry import build

    (provider,) = build(
        (_checked_spec(provider_class),),
        clock=clock or emulation.clock,
        settings=emulation.settings,
        clients=emulation.client,
        resolve=emulation.runtime.resolve,
        profiles=http_profiles_loader(emulation.settings),
        allow_loopback=emulation.settings.local_mode,
    ).values()
    return provider


@dataclass(frozen=True)
class Outcome:
    """How a job ended: its record, its status, the execution's error (or the job's), and the polls."""

    job: Any  # chalicelib.job.Job
    execution: dict[str, Any] | None  # the last execution's description (None for a worker's job)
    polls: int  # GetJobStatus polls across the job's executions

    @property
    def status(self) -> str:
        return str(self.job.status.value)

    @property
    def error(self) -> str | None:
        if self.execution is not None:
            return self.execution.get("error")
        return self.job.error.code if self.job.error else None

    @property
    def cause(self) -> str | None:
        if self.execution is not None:
            return self.execution.get("cause")
        return self.job.error.message if self.job.error else None


class JobRunner:
    """Runs a job as `POST /jobs` does (the API's service layer), through the state machine or the queue,
    and waits (bounded, real time) until it ends."""

    def __init__(self, emulation: Emulation) -> None:
        self.emulation = emulation

    def __call__(
        self, provider: Any, provider_input: Any, timeout: float = 60.0, **request_fields: Any
    ) -> Outcome:
        """`provider` is a provider instance or class (built from the emulation's parts)."""
        if isinstance(provider, type):
            provider = build_provider(provider, self.emulation)
        self.emulation.add_provider(provider)
        job_id = self.submit({"provider": provider.name, "input": provider_input, **request_fields})
        return self.wait(job_id, timeout)

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> str:
        """What `POST /jobs` does with `body` (poll settings the kit's defaults unless given); the job id."""
        from chalicelib import jobs_api

        runtime = self.emulation.runtime
        fields = {**DEFAULT_REQUEST_FIELDS, **body} if _kind(runtime.providers, body) != "worker" else body
        submitted = jobs_api.submit_job(
            fields,
            owner="jobpoll-testing",
            idempotency_key=idempotency_key,
            store=runtime.store,
            providers=runtime.providers,
            sfn=runtime.sfn,
            clock=runtime.clock,
            settings=runtime.settings,
            resolve=lambda host: [],
            sqs=runtime.sqs,
        )
        return str(submitted.job.job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> Outcome:
        from chalicelib.jobs_api import execution_arn_for

        store = self.emulation.runtime.store
        if _kind(self.emulation.runtime.providers, {"provider": store.get(job_id).provider}) == "worker":
            return Outcome(self._deliver_until_done(job_id, timeout), None, 0)
        arn = execution_arn_for(self.emulation.deployment.state_machine_arn, job_id)
        chain = self.emulation.wait_for_chain(arn, timeout)
        polls = sum(
            1
            for described in chain
            for event in self.emulation.history(described["executionArn"])
            if event.get("stateEnteredEventDetails", {}).get("name") == "GetJobStatus"
        )
        return Outcome(store.get(job_id), chain[-1], polls)

    def _deliver_until_done(self, job_id: str, timeout: float) -> Any:
        """Deliver the queues' messages to their functions, as Lambda's event source mapping does, until the
        job ends; an idle pass lets virtual time pass (visibility timeouts, the dead-letter queue)."""
        from .queues import IDLE_WAIT_SECONDS, QueueDelivery

        emulation = self.emulation
        delivery = QueueDelivery(
            emulation.client, emulation.deployment.mappings, emulation.clock, emulation.region
        )
        deadline = time.monotonic() + timeout
        try:
            while not (job := emulation.runtime.store.get(job_id)).status.is_terminal:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {job.status.value} after {timeout} s")
                if not delivery.deliver_once(wait=True):
                    emulation.clock.sleep(IDLE_WAIT_SECONDS)
            return job
        finally:
            delivery.stop()


def _kind(providers: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    from chalicelib.providers.registry import kind_of

    provider = providers.get(body.get("provider", "simulated"))
    return kind_of(provider) if provider is not None else "poll"


# ---- Fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jobpoll_emulation() -> Iterator[Emulation]:
    """moto executing the poller ASL with the real handlers in-process, on a virtual clock; one per test
    module (keep jobs apart by id)."""
    from .clocks import VirtualClock
    from .emulation import Emulation, isolate_from_aws

    isolate_from_aws()
    with Emulation(clock=VirtualClock()) as running:
        yield running


@pytest.fixture
def run_provider_job(jobpoll_emulation: Emulation) -> JobRunner:
    """`run_provider_job(provider or class, input, **request fields) -> Outcome`, on `jobpoll_emulation`."""
    return JobRunner(jobpoll_emulation)


# ---- The contract, as functions ------------------------------------------------------------------------


def check_declaration(provider_class: type, kind: str | None = None) -> None:
    """The class declares a kind, can_notify, an input schema (valid JSON Schema) and examples that fit it."""
    from .package import schema_problems

    spec = _checked_spec(provider_class)
    if kind is not None:
        assert spec.kind == kind, f"{spec.name} declares kind {spec.kind}, checked as a {kind} provider"
    assert not schema_problems(spec), schema_problems(spec)


def check_examples_accepted(provider: Any) -> None:
    """Each example validates, to JSON, and validating that again gives the same (StartJob re-validates)."""
    for example in type(provider).examples:
        validated = provider.validate(json.loads(json.dumps(example)))
        again = provider.validate(json.loads(json.dumps(validated)))
        assert json.dumps(again, sort_keys=True) == json.dumps(validated, sort_keys=True), example


def bad_inputs(schema: Mapping[str, Any], example: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, input) pairs the schema refuses, each wrong in that one field, made from a valid example."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for field in schema.get("required", []):
        yield field, {key: value for key, value in example.items() if key != field}
    if schema.get("additionalProperties") is False:
        yield "unexpected_field", {**example, "unexpected_field": 1}
    for field, rule in properties.items():
        types = rule.get("type")
        if types is not None:
            allowed = {types} if isinstance(types, str) else set(types)
            if "number" in allowed:
                allowed.add("integer")
            wrong = next(value for name, value in _WRONG_VALUES if name not in allowed)
            yield field, {**example, field: wrong}
        for bound, step in (("minimum", -1), ("maximum", 1)):
            if bound in rule:
                yield field, {**example, field: rule[bound] + step}
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in rule:
                yield field, {**example, field: rule[bound]}
        if "enum" in rule:
            yield field, {**example, field: "".join(map(str, rule["enum"])) + "-not-one-of-them"}


def check_bad_input_refused(provider: Any) -> None:
    """Input that is not an object, or wrong in one field, fails with InvalidJobInput naming the field."""
    from chalicelib.errors import InvalidJobInput

    with pytest.raises(InvalidJobInput):
        provider.validate(["not", "an", "object"])
    schema = provider.input_schema or {}
    for example in type(provider).examples:
        for field, bad in bad_inputs(schema, example):
            with pytest.raises(InvalidJobInput) as refused:
                provider.validate(bad)
            assert field in str(refused.value), f"refusing {bad}, the reason does not name {field!r}"


def check_job_ends(run: JobRunner, provider: Any, provider_input: Any) -> Outcome:
    """A submitted job moves forward and ends: COMPLETE, or FAILED with the provider's own error."""
    outcome = run(provider, provider_input)
    assert outcome.job.status.is_terminal, outcome
    assert outcome.status != "CANCELED", outcome
    if outcome.status == "FAILED":
        jobpoll_errors = {"MaxTriesExceeded", "DeadlineExceeded", "InvalidJobInput", "MalformedEngineMessage"}
        assert outcome.job.error.code not in jobpoll_errors, outcome.job.error
    if outcome.execution is not None and outcome.status == "COMPLETE":
        assert outcome.execution["status"] == "SUCCEEDED", outcome.execution
    assert 0 <= outcome.job.progress <= 1
    return outcome


def check_result(result: Any) -> None:
    """A result is JSON (no NaN). Any size is kept: one over the threshold as an object in the results
    bucket (chalicelib/results.py)."""
    json.dumps(result, allow_nan=False)


def _progress_ok(progress: Any) -> bool:
    return progress is None or (not isinstance(progress, bool) and 0 <= progress <= 1)


def drive_poll(provider: Any, provider_input: Any, clock: Any) -> list[Any]:
    """Submit and poll directly (no state machine) until the work ends; returns every PollResult."""
    return _poll_until_done(provider, provider.submit(provider.validate(provider_input)), clock)


def _poll_until_done(provider: Any, work_id: str, clock: Any) -> list[Any]:
    from chalicelib.providers import WorkState

    results = []
    for _ in range(MAX_DIRECT_STEPS):
        result = provider.poll(work_id)
        results.append(result)
        if result.state in (WorkState.SUCCEEDED, WorkState.FAILED):
            return results
        clock.sleep(min(result.retry_after_seconds or 10, 3600))
    raise AssertionError(f"the work was still running after {MAX_DIRECT_STEPS} polls")


def check_poll_results(provider: Any, provider_input: Any, clock: Any) -> None:
    """Progress stays within 0..1; the work ends with a JSON result or an error naming a code."""
    from chalicelib.providers import WorkState

    results = drive_poll(provider, provider_input, clock)
    assert all(_progress_ok(result.progress) for result in results), [r.progress for r in results]
    last = results[-1]
    if last.state is WorkState.SUCCEEDED:
        check_result(last.result)
    else:
        assert last.error is not None and last.error.code, last


def check_cancel_idempotent(provider: Any, provider_input: Any, clock: Any) -> None:
    """`cancel` may be called twice, on running work and on finished work, without an error."""
    running = provider.submit(provider.validate(provider_input))
    provider.cancel(running)
    provider.cancel(running)
    finished = provider.submit(provider.validate(provider_input))
    _poll_until_done(provider, finished, clock)
    provider.cancel(finished)
    provider.cancel(finished)


def check_engine_messages(provider: Any, provider_input: Any, clock: Any) -> None:
    """Every answer of the engine parses (schedule_poll_task or task_result), progress within 0..1, until a
    result for the original task; a complete result's output is JSON."""
    from chalicelib import engine

    first = engine.first_task("kit-job", provider.validate(provider_input), clock.now())
    task = first
    for _ in range(MAX_DIRECT_STEPS):
        answer = engine.parse_message(provider.handle(task), task, first["taskId"])
        if isinstance(answer, engine.TaskResult):
            if answer.error is None:
                check_result(answer.output)
            return
        assert _progress_ok(answer.progress)
        wait = (answer.next_poll_at - clock.now()).total_seconds()
        clock.sleep(max(0.0, wait))
        task = engine.new_task("kit-job", answer.task_payload, clock.now())
    raise AssertionError(f"the engine had no result after {MAX_DIRECT_STEPS} tasks")


def check_worker_reports(provider: Any, provider_input: Any) -> None:
    """Reports grow (each output extends the last, progress within 0..1 and not falling), the result is JSON
    and a cancel (report raising JobCanceled) stops the work: no report after it."""
    from chalicelib.errors import JobCanceled

    request = provider.validate(provider_input)
    reports: list[tuple[str, float]] = []
    result = provider.run(request, lambda output, progress: reports.append((output, progress)))
    check_result(result)
    assert reports, "the worker never reported"
    for (before, earlier), (after, later) in itertools.pairwise(reports):
        assert after.startswith(before), f"the output shrank or changed: {before!r} -> {after!r}"
        assert earlier <= later, f"progress fell from {earlier} to {later}"
    assert all(0 <= progress <= 1 for _, progress in reports)

    cancel_at = min(2, len(reports))
    calls = []

    def canceling(output: str, progress: float) -> None:
        calls.append(output)
        if len(calls) >= cancel_at:
            raise JobCanceled("canceled by the kit")

    with pytest.raises(JobCanceled):
        provider.run(request, canceling)
    assert len(calls) == cancel_at, "the worker went on reporting after it was canceled"


class _Unavailable:
    """Wraps a provider: its first poll (or an engine's first poll task) fails with ProviderUnavailable, as
    a provider's does when its service is briefly down."""

    def __init__(self, provider: Any, times: int = 1) -> None:
        self._provider = provider
        self.name = provider.name
        self.failures_left = times

    def validate(self, request: Any) -> Any:
        return self._provider.validate(request)

    def _maybe_fail(self) -> None:
        from chalicelib.errors import ProviderUnavailable

        if self.failures_left > 0:
            self.failures_left -= 1
            raise ProviderUnavailable("the service is unavailable (the kit's outage)")


class _UnavailablePoll(_Unavailable):
    def submit(self, request: dict[str, Any]) -> str:
        return str(self._provider.submit(request))

    def poll(self, work_id: str) -> Any:
        self._maybe_fail()
        return self._provider.poll(work_id)

    def cancel(self, work_id: str) -> None:
        self._provider.cancel(work_id)


class _UnavailableEngine(_Unavailable):
    def handle(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["taskPayload"].get("isPollTask"):
            self._maybe_fail()
        return dict(self._provider.handle(task))


_OUTAGES: dict[str, type[_Unavailable]] = {"poll": _UnavailablePoll, "engine": _UnavailableEngine}


def check_transient_failure_retried(run: JobRunner, unavailable: Any, provider_input: Any) -> None:
    """A poll that raises ProviderUnavailable is retried by the state machine, and the job still ends."""
    outcome = run(unavailable, provider_input)
    assert outcome.execution is not None
    failures = [
        event["taskFailedEventDetails"]["error"]
        for event in run.emulation.history(outcome.execution["executionArn"])
        if event["type"] == "TaskFailed"
    ]
    assert "ProviderUnavailable" in failures, failures
    assert outcome.job.status.is_terminal and outcome.error != "ProviderUnavailable", outcome


def check_contract(provider_class: type, emulation: Emulation) -> None:
    """Every check of the contract for the class's kind, on `emulation` (for a test that has no class)."""
    from .clocks import VirtualClock

    kind = getattr(provider_class, "kind", None)
    check_declaration(provider_class, kind)
    clock = VirtualClock()
    direct = build_provider(provider_class, emulation, clock=clock)
    example = _checked_spec(provider_class).examples[0]
    check_examples_accepted(direct)
    check_bad_input_refused(direct)
    run = JobRunner(emulation)
    check_job_ends(run, build_provider(provider_class, emulation), example)
    if kind == "poll":
        check_poll_results(direct, example, clock)
        check_cancel_idempotent(direct, example, clock)
    elif kind == "engine":
        check_engine_messages(direct, example, clock)
    else:
        check_worker_reports(direct, example)
    if kind in _OUTAGES:
        check_transient_failure_retried(
            run, _OUTAGES[kind](build_provider(provider_class, emulation)), example
        )


# ---- The contract, as test classes ---------------------------------------------------------------------


class ProviderContract:
    """The checks every kind shares. Subclass one of the kind's classes below and set `provider_class`;
    `run_input` (default: the first example) is the input of the jobs the contract runs."""

    provider_class: ClassVar[type]
    kind: ClassVar[str]
    run_input: ClassVar[dict[str, Any] | None] = None

    @pytest.fixture
    def direct_clock(self) -> Any:
        """The virtual clock of `direct_provider` (auto-advancing: a sleep moves it)."""
        from .clocks import VirtualClock

        return VirtualClock()

    @pytest.fixture
    def direct_provider(self, jobpoll_emulation: Emulation, direct_clock: Any) -> Any:
        """The provider on its own clock, for calling it directly."""
        return build_provider(self.provider_class, jobpoll_emulation, clock=direct_clock)

    @pytest.fixture
    def provider(self, jobpoll_emulation: Emulation) -> Any:
        """The provider on the emulation's clock, for jobs through the state machine or the queue."""
        return build_provider(self.provider_class, jobpoll_emulation)

    @property
    def job_input(self) -> Any:
        if self.run_input is not None:
            return self.run_input
        return _checked_spec(self.provider_class).examples[0]

    def test_declares_its_kind_an_input_schema_and_examples_that_fit_it(self) -> None:
        check_declaration(self.provider_class, self.kind)

    def test_its_examples_are_accepted(self, direct_provider: Any) -> None:
        check_examples_accepted(direct_provider)

    def test_bad_input_is_refused_naming_the_field(self, direct_provider: Any) -> None:
        check_bad_input_refused(direct_provider)

    def test_a_submitted_job_moves_forward_and_ends(self, run_provider_job: JobRunner, provider: Any) -> None:
        check_job_ends(run_provider_job, provider, self.job_input)


class _PolledContract(ProviderContract):
    """What a provider the state machine polls (a poll provider or an engine) shares."""

    def test_a_transient_failure_is_retried_by_the_state_machine(
        self, run_provider_job: JobRunner, provider: Any
    ) -> None:
        check_transient_failure_retried(run_provider_job, self.unavailable(provider), self.job_input)

    def unavailable(self, provider: Any) -> Any:
        """The provider while its service is briefly down (override to break the real service instead)."""
        return _OUTAGES[self.kind](provider)


class PollProviderContract(_PolledContract):
    kind = "poll"

    def test_progress_stays_within_0_and_1_and_the_result_is_json(
        self, direct_provider: Any, direct_clock: Any
    ) -> None:
        check_poll_results(direct_provider, self.job_input, direct_clock)

    def test_cancel_is_idempotent(self, direct_provider: Any, direct_clock: Any) -> None:
        check_cancel_idempotent(direct_provider, self.job_input, direct_clock)


class EngineContract(_PolledContract):
    kind = "engine"

    def test_every_message_parses_with_progress_within_0_and_1(
        self, direct_provider: Any, direct_clock: Any
    ) -> None:
        check_engine_messages(direct_provider, self.job_input, direct_clock)


class WorkerContract(ProviderContract):
    kind = "worker"

    def test_reports_grow_and_stop_on_cancel(self, direct_provider: Any) -> None:
        check_worker_reports(direct_provider, self.job_input)


CONTRACTS: dict[str, type[ProviderContract]] = {
    "poll": PollProviderContract,
    "engine": EngineContract,
    "worker": WorkerContract,
}
