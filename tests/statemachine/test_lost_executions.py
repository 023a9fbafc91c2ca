"""The reconciler on the emulation: its schedule is deployed from the template, and a job whose execution
was lost continues in a new execution and completes."""

from __future__ import annotations

import time

from chalicelib.job import JobStatus
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation
from jobpoll.executions import Executions


def test_the_templates_schedule_is_deployed_for_the_reconciler(paused: Emulation) -> None:
    (schedule,) = paused.schedules.schedules
    assert schedule.period_seconds == 60
    assert schedule.function_arn.endswith(":function:jobpoll-dev-Reconcile")


def test_a_job_whose_execution_was_lost_resumes_in_a_new_execution_and_completes(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    emulation = paused
    first = emulation.start({"delay": 300, "wait_seconds": 60, "max_tries": 100}, name="lost")
    waiting = time.monotonic() + 30
    while not any(e["type"] == "WaitStateEntered" for e in emulation.history(first)):
        assert time.monotonic() < waiting, "the execution never reached its Wait"
        time.sleep(0.01)
    emulation.sfn.stop_execution(executionArn=first)  # gone, as with an emulator that died
    assert emulation.wait(first)["status"] == "ABORTED"
    assert emulation.runtime.store.get("lost").status is JobStatus.PENDING

    manual_clock.advance(emulation.settings.reconcile_after_seconds + 1)
    (outcome,) = emulation.schedules.run_once()
    assert outcome["resumed"] == ["lost"]
    (again,) = emulation.schedules.run_once()  # the job was just written: nothing to do
    assert again["resumed"] == []

    manual_clock.auto_advance = True
    resumed = first.replace(":lost", ":lost-r1")
    assert emulation.wait(resumed, timeout=120)["status"] == "SUCCEEDED"  # generous: a loaded machine
    job = emulation.runtime.store.get("lost")
    assert (job.status, job.resumes, job.execution_arn) == (JobStatus.COMPLETE, 1, resumed)
    assert any("resumed in lost-r1" in note for note in job.notes)

    lines: list[str] = []
    followed = Executions(emulation.sfn, emulation.deployment.state_machine_arn).follow("lost", lines.append)
    assert [e["name"] for e in followed.executions] == ["lost", "lost-r1"] and followed.succeeded
    assert "  execution lost (ABORTED); resumed in execution lost-r1" in lines
