"""Queue mode: the job is enqueued, a worker runs it under a lease, and its partial output grows.

Workers are delivered messages as Lambda's SQS event source mapping delivers them (jobpoll.queues), on the
emulation's virtual clock: visibility timeouts and leases pass without real waiting.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import worker
from chalicelib.errors import LeaseHeld
from chalicelib.job import JobStatus
from chalicelib.providers.streaming import SimulatedStreamingProvider
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import DEAD_LETTER_QUEUE, Emulation
from jobpoll.testing import JobRunner


class Scripted:
    """Wraps the streaming provider: runs a hook before every report and counts runs and reports."""

    def __init__(self, clock: Any, on_report: Callable[[int, int], None] | None = None) -> None:
        self.name = "scripted-stream"
        self.inner = SimulatedStreamingProvider(clock)
        self.on_report = on_report
        self.runs = 0
        self.reports = 0

    def validate(self, request: Any) -> dict:
        return self.inner.validate(request)

    def run(self, request: dict, report: Callable[[str, float], None]) -> Any:
        self.runs += 1
        run = self.runs

        def reporting(output: str, progress: float) -> None:
            self.reports += 1
            if self.on_report is not None:
                self.on_report(run, self.reports)
            report(output, progress)

        return self.inner.run(request, reporting)


def submit(emulation: Emulation, key: str, provider: str = "simulated-stream", **fields: Any) -> str:
    """What POST /jobs does for a queue-mode provider (its Idempotency-Key picks the job id here)."""
    return JobRunner(emulation).submit({"provider": provider, "input": fields}, idempotency_key=key)


def run_worker(emulation: Emulation, job_id: str, worker_id: str = "w1", settings: Any = None) -> str:
    """One delivery of the job to a worker, as RunQueuedJob runs it."""
    runtime = emulation.runtime
    return worker.run_job(
        job_id,
        worker_id=worker_id,
        store=runtime.store,
        providers=runtime.providers,
        clock=runtime.clock,
        settings=settings or runtime.settings,
    )


def eventually(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def finished(emulation: Emulation, job_id: str) -> bool:
    return emulation.runtime.store.get(job_id).status.is_terminal


@pytest.fixture
def queued(virtual_clock: VirtualClock) -> Iterator[Emulation]:
    """The emulation with queue delivery running, queue jobs of up to 5 s (so the worker's timeout and its
    lease are 7 s, the visibility timeout 42 s)."""
    with Emulation(clock=virtual_clock, queue_delivery=True, queue_job_max_seconds=5) as emulation:
        yield emulation


def test_partial_output_grows_across_polls_and_ends_in_the_full_result(emulation: Emulation) -> None:
    seen: list[tuple[str, float]] = []
    store = emulation.runtime.store

    def client_polls(run: int, reports: int) -> None:  # what GET /jobs/{id} would show at that moment
        job = store.get(job_id)
        seen.append((job.partial_output or "", job.progress))

    provider = Scripted(emulation.clock, client_polls)
    emulation.add_provider(provider)
    job_id = submit(emulation, "stream", provider="scripted-stream", tokens=60, tokens_per_second=10)

    outcome = run_worker(emulation, job_id)

    assert outcome == "complete"
    lengths = [len(text) for text, _ in seen]
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0] == 0
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and 0.8 < progress[-1] < 1
    assert len(set(lengths) - {0}) == 6  # 6 s of streaming, written once a second, not 60 times
    job = store.get(job_id)
    assert job.status is JobStatus.COMPLETE
    assert job.result["tokens"] == 60
    assert job.result["text"].startswith(seen[-1][0])
    assert job.partial_output is None and job.lease_owner is None


def test_the_partial_output_kept_while_running_is_the_latest_part(emulation: Emulation) -> None:
    settings = dataclasses.replace(emulation.settings, partial_output_max_chars=40)
    snapshots: list[str] = []
    provider = Scripted(
        emulation.clock,
        lambda run, n: snapshots.append(emulation.runtime.store.get(job_id).partial_output or ""),
    )
    emulation.add_provider(provider)
    job_id = submit(emulation, "tail", provider="scripted-stream", tokens=100, tokens_per_second=10)
    run_worker(emulation, job_id, settings=settings)
    assert max(len(s) for s in snapshots) == 40
    full = emulation.runtime.store.get(job_id).result["text"]
    assert all(s in full for s in snapshots)


def test_the_submit_returns_before_the_work_is_done_and_a_worker_finishes_it(
    queued: Emulation,
) -> None:
    job_id = submit(queued, "async", tokens=80, tokens_per_second=20)
    assert queued.runtime.store.get(job_id).status is JobStatus.QUEUED  # stored before any worker ran

    eventually(lambda: finished(queued, job_id), "the worker finishes the job")
    job = queued.runtime.store.get(job_id)
    assert job.status is JobStatus.COMPLETE, job.error
    assert job.result["tokens"] == 80
    assert job.try_count == 1


def test_a_duplicate_delivery_does_no_duplicate_work(emulation: Emulation) -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold_first_run(run: int, reports: int) -> None:
        if run == 1 and reports == 1:
            inside.set()
            release.wait(10)

    provider = Scripted(emulation.clock, hold_first_run)
    emulation.add_provider(provider)
    job_id = submit(emulation, "dup", provider="scripted-stream", tokens=5, tokens_per_second=5)

    def deliver(worker_id: str) -> str:
        return run_worker(emulation, job_id, worker_id)

    first: list[str] = []
    running = threading.Thread(target=lambda: first.append(deliver("first")))
    running.start()
    assert inside.wait(10)

    with pytest.raises(LeaseHeld):
        deliver("second")  # the same message again, while the first worker holds the lease
    release.set()
    running.join(10)

    assert first == ["complete"]
    assert deliver("third") == "finished-already"
    assert provider.runs == 1


def test_a_worker_that_dies_mid_job_is_taken_over_after_the_lease_expires(queued: Emulation) -> None:
    def die_in_first_run(run: int, reports: int) -> None:
        if run == 1 and reports == 3:
            raise RuntimeError("worker lost its host")

    provider = Scripted(queued.clock, die_in_first_run)
    queued.add_provider(provider)
    job_id = submit(queued, "phoenix", provider="scripted-stream", tokens=20, tokens_per_second=10)

    eventually(lambda: finished(queued, job_id), "another worker finishes the job")

    job = queued.runtime.store.get(job_id)
    assert job.status is JobStatus.COMPLETE, job.error
    assert provider.runs == 2
    assert job.try_count == 2
    assert job.result["tokens"] == 20


def test_a_poison_message_ends_in_the_dead_letter_queue_and_a_failed_job(queued: Emulation) -> None:
    def always_die(run: int, reports: int) -> None:
        raise RuntimeError("this input crashes every worker")

    provider = Scripted(queued.clock, always_die)
    queued.add_provider(provider)
    job_id = submit(queued, "poison", provider="scripted-stream", tokens=5)

    eventually(lambda: finished(queued, job_id), "the job is failed from the dead-letter queue", timeout=30)

    job = queued.runtime.store.get(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "DeliveryFailed"
    assert "received 6 times" in job.error.message and "dead-letter queue" in job.error.message
    assert provider.runs == 5  # the template's maxReceiveCount deliveries, then the dead-letter queue
    sqs = queued.client("sqs")
    dlq = queued.deployment.queue_url(DEAD_LETTER_QUEUE)
    eventually(
        lambda: (
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
            == "0"
        ),
        "the dead-lettered message is consumed",
    )


def test_cancel_stops_the_worker_at_its_next_report(emulation: Emulation) -> None:
    store = emulation.runtime.store

    def cancel_midway(run: int, reports: int) -> None:
        if reports == 25:  # what DELETE /jobs/{id} does while the worker runs
            store.update(job_id, lambda job: job.transition(JobStatus.CANCELED, emulation.clock.now()))

    provider = Scripted(emulation.clock, cancel_midway)
    emulation.add_provider(provider)
    job_id = submit(emulation, "halt", provider="scripted-stream", tokens=100, tokens_per_second=10)

    outcome = run_worker(emulation, job_id)

    assert outcome == "canceled"
    assert provider.reports < 40  # stopped within a report interval, not after all 100 tokens
    job = store.get(job_id)
    assert job.status is JobStatus.CANCELED
    assert job.result is None


def test_a_queue_provider_cannot_run_in_the_poll_loop(emulation: Emulation) -> None:
    execution = emulation.run({"provider": "simulated-stream", "input": {"tokens": 3}}, name="misrouted")
    assert execution["error"] == "InvalidJobInput"
    assert "runs on queue workers" in execution["cause"]
