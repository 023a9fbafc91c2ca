"""Adaptive polling, deadlines, and long polls continuing in new executions."""

from __future__ import annotations

import json

from chalicelib.job import JobStatus
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


def test_adaptive_polling_follows_the_providers_eta(emulation: Emulation) -> None:
    execution = emulation.run(
        {"delay": 250, "report_eta": True, "poll_mode": "adaptive", "wait_seconds": 10, "max_tries": 5},
        name="eta",
    )
    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get("eta")
    assert job.try_count == 2  # at +10 s the service says 240 s left; the next poll finds it done
    assert (job.updated_at - job.created_at).total_seconds() == 250


def test_adaptive_polling_without_hints_backs_off_and_polls_less_than_fixed(
    emulation: Emulation,
) -> None:
    common = {"delay": 600, "wait_seconds": 10, "max_tries": 100}
    emulation.run({**common, "poll_mode": "adaptive", "max_wait_seconds": 300}, name="adaptive")
    emulation.run(common, name="fixed")

    adaptive = emulation.runtime.store.get("adaptive")
    fixed = emulation.runtime.store.get("fixed")
    assert adaptive.status is fixed.status is JobStatus.COMPLETE
    assert fixed.try_count == 60
    assert adaptive.try_count < 10
    # Detection lag stays bounded by the cap: done no later than 300 s after the work finished.
    assert (adaptive.updated_at - adaptive.created_at).total_seconds() <= 600 + 300


def test_adaptive_polling_still_enforces_max_tries(emulation: Emulation) -> None:
    execution = emulation.run(
        {"delay": 10_000, "poll_mode": "adaptive", "wait_seconds": 5, "max_tries": 4}, name="few"
    )
    assert execution["error"] == "MaxTriesExceeded"
    assert emulation.runtime.store.get("few").try_count == 4


def test_a_job_running_past_its_deadline_fails_at_the_deadline(
    emulation: Emulation, virtual_clock: VirtualClock
) -> None:
    started = virtual_clock.now()
    execution = emulation.run(
        {"delay": 10_000, "wait_seconds": 40, "max_tries": 1000, "deadline_seconds": 100}, name="late"
    )
    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeadlineExceeded"
    job = emulation.runtime.store.get("late")
    assert job.error is not None and job.error.code == "DeadlineExceeded"
    assert job.try_count == 3  # +40, +80, then +100 (clamped to the deadline), not +120
    assert (virtual_clock.now() - started).total_seconds() == 100


def test_a_long_poll_continues_in_new_executions_and_keeps_the_job(emulation: Emulation) -> None:
    first = emulation.start(
        {"delay": 100, "wait_seconds": 10, "max_tries": 50, "continue_after": 3}, name="marathon"
    )

    chain = emulation.wait_for_chain(first)

    assert [e["name"] for e in chain] == ["marathon", "marathon-1", "marathon-2", "marathon-3"]
    assert [e["status"] for e in chain] == ["SUCCEEDED"] * 4
    job = emulation.runtime.store.get("marathon")
    assert job.status is JobStatus.COMPLETE
    assert job.try_count == 10  # the try count runs across executions
    assert job.generation == 3
    assert job.execution_arn == chain[-1]["executionArn"]
    assert json.loads(chain[0]["output"])["continued_in"]["execution_arn"] == chain[1]["executionArn"]
    assert job.result["output"] == {"message": "simulated work done", "delay": 100}


def test_a_continued_engine_poll_keeps_its_task_payload(emulation: Emulation) -> None:
    first = emulation.start(
        {
            "provider": "simulated-engine",
            "input": {"delay": 60, "poll_seconds": 10},
            "max_tries": 20,
            "continue_after": 2,
        },
        name="engine-marathon",
    )
    chain = emulation.wait_for_chain(first)
    assert len(chain) == 3
    job = emulation.runtime.store.get("engine-marathon")
    assert job.status is JobStatus.COMPLETE
    assert job.result["origTaskId"] == job.task_id
