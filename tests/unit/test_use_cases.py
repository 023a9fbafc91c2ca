"""The use cases (poll loop, queue worker, API) on the in-memory store with fake providers: no AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib import jobs_api, rules, service, worker
from chalicelib.callbacks import system_resolver
from chalicelib.errors import InvalidJobInput, JobAlreadyFinished, LeaseHeld
from chalicelib.job import JobStatus
from chalicelib.memory_store import InMemoryJobStore
from chalicelib.providers import PollResult, Report, WorkState
from chalicelib.settings import Settings
from factories import NOW
from jobpoll.clocks import VirtualClock

SETTINGS = Settings(state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:poller")


@dataclass
class FakeProvider:
    """A provider whose polls answer from a script; it counts submits and cancels."""

    answers: list[PollResult] = field(default_factory=list)
    name: str = "fake"
    submitted: int = 0
    canceled: list[str] = field(default_factory=list)
    on_poll: Callable[[], None] | None = None

    def validate(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise InvalidJobInput("fake input must be an object")
        return request

    def submit(self, request: dict[str, Any]) -> str:
        self.submitted += 1
        return f"w-{self.submitted}"

    def poll(self, work_id: str) -> PollResult:
        if self.on_poll is not None:
            self.on_poll()
        return self.answers.pop(0)

    def cancel(self, work_id: str) -> None:
        self.canceled.append(work_id)


@dataclass
class FakeWorker:
    """A queue-mode provider: reports each step, then returns the text (or runs `during` first)."""

    steps: list[str] = field(default_factory=lambda: ["a", "a b"])
    name: str = "fake-worker"
    during: Callable[[], None] | None = None

    def validate(self, request: Any) -> dict[str, Any]:
        return dict(request)

    def run(self, request: dict[str, Any], report: Report) -> Any:
        if self.during is not None:
            self.during()
        for index, text in enumerate(self.steps):
            report(text, (index + 1) / len(self.steps))
        return self.steps[-1]


@dataclass
class FakeStepFunctions:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {}

        return call


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=NOW, auto_advance=False)


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


def start(store: InMemoryJobStore, provider: FakeProvider, clock: VirtualClock, **request: Any) -> dict:
    return service.start_job(
        {"provider": "fake", "input": {}, "job_id": "j1", **request},
        "j1",
        store=store,
        providers={"fake": provider},
        clock=clock,
        settings=SETTINGS,
        execution_arn="arn:execution:j1",
    )


def poll(store: InMemoryJobStore, provider: FakeProvider, clock: VirtualClock, state: dict) -> dict:
    return service.poll_job(state, store=store, providers={"fake": provider}, clock=clock)


# ---- the poll loop ----


def test_start_stores_the_job_submits_it_once_and_a_retried_start_does_not_submit_again(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeProvider()
    state = start(store, provider, clock, wait_seconds=7)
    again = start(store, provider, clock, wait_seconds=7)
    assert provider.submitted == 1
    assert state == again
    assert (state["status"], state["wait_seconds"], state["try_count"]) == ("PENDING", 7, 0)
    assert store.get("j1").work_id == "w-1"


def test_polls_count_tries_until_the_work_completes(store: InMemoryJobStore, clock: VirtualClock) -> None:
    provider = FakeProvider([PollResult(WorkState.RUNNING, progress=0.5), PollResult(WorkState.SUCCEEDED)])
    state = start(store, provider, clock)
    state = poll(store, provider, clock, state)
    assert (state["status"], state["try_count"], state["execution_polls"]) == ("RUNNING", 1, 1)
    state = poll(store, provider, clock, state)
    assert (state["status"], state["try_count"]) == ("COMPLETE", 2)


def test_a_poll_racing_a_cancel_reports_the_cancel_that_won(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeProvider([PollResult(WorkState.SUCCEEDED, result="done")])
    state = start(store, provider, clock)
    # The owner cancels while the provider is being polled: the poll's write must lose.
    provider.on_poll = lambda: store.update("j1", lambda job: job.transition(JobStatus.CANCELED, NOW))
    state = poll(store, provider, clock, state)
    assert (state["status"], state["error"]) == ("CANCELED", "JobCanceled")
    assert store.get("j1").result is None


def test_a_continued_loop_picks_up_the_handed_over_state(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeProvider([PollResult(WorkState.RUNNING)])
    state = poll(store, provider, clock, start(store, provider, clock))
    resumed = service.start_job(
        {"continuation": {**state, "generation": 0}},
        "j1-1",
        store=store,
        providers={"fake": provider},
        clock=clock,
        settings=SETTINGS,
        execution_arn="arn:execution:j1-1",
    )
    job = store.get("j1")
    assert (job.generation, job.execution_arn, job.try_count) == (1, "arn:execution:j1-1", 1)
    assert resumed["try_count"] == 1 and provider.submitted == 1


def test_a_recorded_failure_fails_the_job_and_cancels_its_work(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeProvider()
    state = start(store, provider, clock)
    failure = {"Error": "MaxTriesExceeded", "Cause": "the job was still running after 3 of 3 polls"}
    outcome = service.record_failure(
        {**state, "failure": failure}, "j1", store=store, providers={"fake": provider}, clock=clock
    )
    assert outcome["recorded"] and outcome["error"] == "MaxTriesExceeded"
    assert store.get("j1").status is JobStatus.FAILED
    assert provider.canceled == ["w-1"]
    again = service.record_failure(
        {**state, "failure": failure}, "j1", store=store, providers={"fake": provider}, clock=clock
    )
    assert not again["recorded"] and provider.canceled == ["w-1"]  # a finished job keeps its outcome


def test_a_notification_wakes_the_waiting_execution_with_the_finished_state(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    start(store, FakeProvider(), clock)
    service.await_notification({"job_id": "j1", "task_token": "token-1"}, store=store, clock=clock)
    sfn = FakeStepFunctions()
    running = service.notify_job("j1", PollResult(WorkState.RUNNING), store=store, sfn=sfn, clock=clock)
    done = service.notify_job("j1", PollResult(WorkState.SUCCEEDED), store=store, sfn=sfn, clock=clock)
    assert running["delivered"] and done["delivered"]
    assert [name for name, _ in sfn.calls] == ["send_task_heartbeat", "send_task_success"]
    assert json.loads(sfn.calls[1][1]["output"])["status"] == "COMPLETE"
    assert store.get("j1").try_count == 0  # notifications are not tries


# ---- the queue worker ----


def queued_job(store: InMemoryJobStore, clock: VirtualClock, provider: FakeWorker, sqs: Any) -> str:
    submitted = jobs_api.submit_job(
        {"provider": "fake-worker", "input": {}},
        owner="alice",
        idempotency_key=None,
        store=store,
        providers={"fake-worker": provider},
        sfn=FakeStepFunctions(),
        clock=clock,
        settings=Settings(work_queue_url="https://sqs.test/work"),
        resolve=system_resolver,
        sqs=sqs,
    )
    return submitted.job.job_id


def run(
    store: InMemoryJobStore, clock: VirtualClock, provider: FakeWorker, job_id: str, worker_id: str
) -> str:
    return worker.run_job(
        job_id,
        worker_id=worker_id,
        store=store,
        providers={"fake-worker": provider},
        clock=clock,
        settings=SETTINGS,
    )


def test_a_queued_job_is_enqueued_then_run_to_completion_by_a_worker(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    sqs = FakeStepFunctions()
    provider = FakeWorker()
    job_id = queued_job(store, clock, provider, sqs)
    assert [name for name, _ in sqs.calls] == ["send_message"]
    assert run(store, clock, provider, job_id, "w1") == "complete"
    job = store.get(job_id)
    assert (job.status, job.result, job.try_count, job.lease_owner) == (JobStatus.COMPLETE, "a b", 1, None)
    assert run(store, clock, provider, job_id, "w2") == "finished-already"


def test_a_second_delivery_under_a_live_lease_does_no_work(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeWorker()
    job_id = queued_job(store, clock, provider, FakeStepFunctions())
    second_delivery: list[str] = []

    def delivered_again() -> None:
        with pytest.raises(LeaseHeld):
            run(store, clock, FakeWorker(), job_id, "w2")
        second_delivery.append("refused")

    provider.during = delivered_again
    assert run(store, clock, provider, job_id, "w1") == "complete"
    assert second_delivery == ["refused"]
    assert store.get(job_id).try_count == 1


def test_a_job_canceled_while_a_worker_runs_it_stops_the_worker(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeWorker()
    job_id = queued_job(store, clock, provider, FakeStepFunctions())
    provider.during = lambda: store.update(job_id, lambda job: job.transition(JobStatus.CANCELED, NOW))
    assert run(store, clock, provider, job_id, "w1") == "canceled"
    assert store.get(job_id).status is JobStatus.CANCELED


def test_a_dead_lettered_job_fails_unless_a_worker_holds_a_live_lease(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeWorker()
    job_id = queued_job(store, clock, provider, FakeStepFunctions())
    store.update(job_id, lambda job: rules.lease_taken(job, "w1", NOW, SETTINGS.lease_seconds))
    assert worker.dead_lettered(job_id, 3, store=store, clock=clock) == "still-running"
    clock.advance(SETTINGS.lease_seconds)
    assert worker.dead_lettered(job_id, 3, store=store, clock=clock) == "failed"
    assert store.get(job_id).error.code == "DeliveryFailed"  # type: ignore[union-attr]


# ---- the API ----


def test_a_submitted_job_is_stored_before_its_execution_starts(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    seen: list[JobStatus] = []

    class Sfn(FakeStepFunctions):
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            seen.append(store.get(kwargs["name"]).status)
            self.calls.append(("start_execution", kwargs))
            return {}

    sfn = Sfn()
    submitted = jobs_api.submit_job(
        {"provider": "fake", "input": {"x": 1}, "max_tries": 5},
        owner="alice",
        idempotency_key="key-1",
        store=store,
        providers={"fake": FakeProvider()},
        sfn=sfn,
        clock=clock,
        settings=SETTINGS,
        resolve=system_resolver,
    )
    assert submitted.created and seen == [JobStatus.QUEUED]
    assert json.loads(sfn.calls[0][1]["input"])["max_tries"] == 5


def test_a_cancel_that_loses_to_completion_reports_the_winner(
    store: InMemoryJobStore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = FakeProvider([PollResult(WorkState.SUCCEEDED, result="done")])
    state = start(store, provider, clock)
    store.update("j1", lambda job: job.amend(NOW, owner="alice"))
    read_before_completion = store.get("j1")

    poll(store, provider, clock, state)  # completes the job
    monkeypatch.setattr(store, "find", lambda job_id: read_before_completion)  # the API read it before
    with pytest.raises(JobAlreadyFinished) as lost:
        jobs_api.cancel_or_delete_result(
            "j1",
            owner="alice",
            store=store,
            providers={"fake": provider},
            sfn=FakeStepFunctions(),
            clock=clock,
            settings=SETTINGS,
        )
    assert lost.value.job.status is JobStatus.COMPLETE


def test_cancel_stops_the_execution_and_the_providers_work(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    provider = FakeProvider()
    start(store, provider, clock)
    store.update("j1", lambda job: job.amend(NOW, owner="alice"))
    sfn = FakeStepFunctions()
    deleted = jobs_api.cancel_or_delete_result(
        "j1",
        owner="alice",
        store=store,
        providers={"fake": provider},
        sfn=sfn,
        clock=clock,
        settings=SETTINGS,
    )
    assert deleted.canceled and deleted.job.status is JobStatus.CANCELED
    assert [name for name, _ in sfn.calls] == ["stop_execution"] and provider.canceled == ["w-1"]
