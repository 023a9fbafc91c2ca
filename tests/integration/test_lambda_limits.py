"""Lambda's limits, emulated: each function's Timeout (from the packaged template) ends its invocation, and
the queue worker's limits let a job of minutes finish and stop one that runs too long.

Everything runs on the emulation's virtual clock: minutes of work take milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_queue_mode import eventually, finished, submit

from chalicelib.job import JobStatus
from chalicelib.providers.base import PollResult
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.providers.streaming import SimulatedStreamingProvider
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


def errors_of(emulation: Emulation, function: str) -> list[str]:
    return [i.error["errorType"] for i in emulation.invocations if i.function.endswith(function) and i.error]


@pytest.fixture
def workers(virtual_clock: VirtualClock) -> Iterator[Emulation]:
    """The emulation with queue delivery and the packaged settings (queue jobs of up to 600 s)."""
    with Emulation(clock=virtual_clock, queue_delivery=True) as emulation:
        yield emulation


def test_a_queue_job_of_ninety_seconds_completes_on_one_worker(workers: Emulation) -> None:
    job_id = submit(workers, "ninety", tokens=45, tokens_per_second=0.5)

    eventually(lambda: finished(workers, job_id), "the worker finishes the job")

    job = workers.runtime.store.get(job_id)
    assert job.status is JobStatus.COMPLETE, job.error
    assert job.result["tokens"] == 45
    assert job.try_count == 1  # one delivery: never timed out, never redelivered
    assert (job.updated_at - job.created_at).total_seconds() >= 90
    assert errors_of(workers, "RunQueuedJob") == []


def test_a_queue_job_past_the_longest_fails_with_a_named_error_without_redelivery(
    virtual_clock: VirtualClock,
) -> None:
    with Emulation(clock=virtual_clock, queue_delivery=True, queue_job_max_seconds=60) as emulation:
        job_id = submit(emulation, "too-long", tokens=45, tokens_per_second=0.5)  # 90 s
        eventually(lambda: finished(emulation, job_id), "the worker stops the job")

        job = emulation.runtime.store.get(job_id)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and job.error.code == "QueueJobTimedOut"
        assert "longest queue-mode job (60 s)" in job.error.message
        assert job.try_count == 1
        assert errors_of(emulation, "RunQueuedJob") == []  # the worker stopped itself before Lambda would


class SilentStream:
    """A worker-side provider that works for `seconds` without reporting (so the worker cannot stop it)."""

    name = "silent-stream"

    def __init__(self, clock: Any, seconds: float) -> None:
        self.clock, self.seconds, self.runs = clock, seconds, 0
        self.inner = SimulatedStreamingProvider(clock)

    def validate(self, request: Any) -> dict:
        return self.inner.validate(request)

    def run(self, request: dict, report: Callable[[str, float], None]) -> Any:
        self.runs += 1
        self.clock.sleep(self.seconds)
        return {"text": "done"}


def test_a_worker_past_its_lambda_timeout_is_stopped_and_its_message_returns_to_the_queue(
    virtual_clock: VirtualClock,
) -> None:
    with Emulation(clock=virtual_clock, queue_delivery=True, queue_job_max_seconds=5) as emulation:
        provider = SilentStream(emulation.runtime.clock, seconds=30)  # the worker's timeout is 7 s
        emulation.add_provider(provider)
        job_id = submit(emulation, "silent", provider="silent-stream", tokens=1)

        eventually(lambda: provider.runs >= 2, "the message is delivered again after its visibility timeout")

        assert set(errors_of(emulation, "RunQueuedJob")) == {"Sandbox.Timedout"}
        (invocation, *_) = [i for i in emulation.invocations if i.error]
        assert invocation.error is not None
        assert invocation.error["errorMessage"].endswith("Task timed out after 7.00 seconds")
        job = emulation.runtime.store.get(job_id)
        assert job.result is None  # the stopped worker wrote nothing after its end


class SlowPoll(SimulatedProvider):
    """The simulated provider, with a poll that takes `poll_seconds` (on the clock it is given)."""

    name = "slow-poll"

    def __init__(self, clock: Any, poll_seconds: float, wait: Callable[[float], None]) -> None:
        super().__init__(clock)
        self.poll_seconds, self.wait = poll_seconds, wait

    def poll(self, work_id: str) -> PollResult:
        self.wait(self.poll_seconds)
        return super().poll(work_id)


def test_a_poll_past_the_functions_timeout_fails_the_execution_with_sandbox_timedout(
    emulation: Emulation,
) -> None:
    clock = emulation.runtime.clock  # GetJobStatus has the template's 60 s
    emulation.add_provider(SlowPoll(clock, poll_seconds=61, wait=clock.sleep))

    execution = emulation.run(
        {"provider": "slow-poll", "input": {"delay": 5}, "wait_seconds": 1}, name="slow-poll-job"
    )

    assert execution["status"] == "FAILED"
    assert execution["error"] == "Sandbox.Timedout"
    assert "Task timed out after 60.00 seconds" in execution["cause"]
    job = emulation.runtime.store.get("slow-poll-job")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "Sandbox.Timedout"
    assert errors_of(emulation, "GetJobStatus") == ["Sandbox.Timedout"]


def test_a_quick_poll_is_well_within_its_timeout(emulation: Emulation) -> None:
    emulation.add_provider(
        SlowPoll(emulation.runtime.clock, poll_seconds=59, wait=emulation.runtime.clock.sleep)
    )
    execution = emulation.run({"provider": "slow-poll", "input": {"delay": 1}, "wait_seconds": 1})
    assert execution["status"] == "SUCCEEDED"
