"""The poll loop's rules one by one: pure functions of a job, what happened and the time (no AWS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib import engine, rules
from chalicelib.errors import IllegalTransition, JobCanceled, LeaseHeld, LeaseLost
from chalicelib.job import Job, JobError, JobStatus, PollSettings
from chalicelib.providers import PollResult, WorkState
from factories import NOW, make_job

LATER = NOW + timedelta(seconds=30)
POLL = PollSettings(wait_seconds=10, max_tries=3, deadline_seconds=3600)


def pending(status: JobStatus = JobStatus.PENDING, **changes: Any) -> Job:
    return make_job(status=status, poll=POLL, work_id="w-1", **changes)


# ---- poll outcome, for each provider state ----


def test_a_poll_that_finds_the_work_done_completes_the_job_with_its_result() -> None:
    job = rules.after_poll(pending(), PollResult(WorkState.SUCCEEDED, result={"text": "hi"}), LATER)
    assert (job.status, job.result, job.progress, job.try_count) == (
        JobStatus.COMPLETE,
        {"text": "hi"},
        1.0,
        1,
    )
    assert job.next_poll_at is None


def test_a_poll_that_finds_the_work_failed_fails_the_job_with_the_providers_error() -> None:
    error = JobError("SimulatedFailure", "told to")
    job = rules.after_poll(pending(), PollResult(WorkState.FAILED, progress=0.4, error=error), LATER)
    assert (job.status, job.error, job.progress, job.try_count) == (JobStatus.FAILED, error, 0.4, 1)


def test_a_failure_without_an_error_is_named_provider_job_failed() -> None:
    job = rules.after_poll(pending(), PollResult(WorkState.FAILED), LATER)
    assert job.error is not None and job.error.code == "ProviderJobFailed"


def test_a_poll_that_finds_the_work_running_counts_the_try_and_schedules_the_next() -> None:
    job = rules.after_poll(pending(), PollResult(WorkState.RUNNING, progress=0.25), LATER)
    assert (job.status, job.try_count, job.progress) == (JobStatus.RUNNING, 1, 0.25)
    assert job.next_poll_at == LATER + timedelta(seconds=10)


def test_a_poll_that_finds_the_work_queued_keeps_a_pending_job_pending_but_never_goes_back() -> None:
    assert rules.after_poll(pending(), PollResult(WorkState.PENDING), LATER).status is JobStatus.PENDING
    running = pending(status=JobStatus.RUNNING)
    assert rules.after_poll(running, PollResult(WorkState.PENDING), LATER).status is JobStatus.RUNNING


def test_progress_is_kept_between_0_and_1_and_kept_when_the_provider_says_none() -> None:
    assert rules.after_poll(pending(), PollResult(WorkState.RUNNING, progress=7), LATER).progress == 1.0
    assert rules.after_poll(pending(progress=0.3), PollResult(WorkState.RUNNING), LATER).progress == 0.3


def test_a_notification_updates_the_job_without_counting_a_try() -> None:
    job = rules.after_poll(pending(try_count=2), PollResult(WorkState.RUNNING), LATER, counts_as_try=False)
    assert job.try_count == 2


def test_a_finished_job_is_not_changed_by_a_late_poll() -> None:
    canceled = pending(status=JobStatus.CANCELED)
    with pytest.raises(IllegalTransition):
        rules.after_poll(canceled, PollResult(WorkState.SUCCEEDED), LATER)


# ---- max tries ----


@pytest.mark.parametrize(("try_count", "exhausted"), [(0, False), (2, False), (3, True), (4, True)])
def test_tries_are_exhausted_once_the_job_had_max_tries_polls(try_count: int, exhausted: bool) -> None:
    assert rules.tries_exhausted(pending(try_count=try_count)) is exhausted


def test_the_last_allowed_poll_still_running_exhausts_the_tries() -> None:
    job = rules.after_poll(pending(try_count=2), PollResult(WorkState.RUNNING), LATER)
    assert job.status is JobStatus.RUNNING and rules.tries_exhausted(job)


# ---- deadline ----


def test_a_job_still_running_at_its_deadline_fails_with_deadline_exceeded() -> None:
    at_deadline = NOW + timedelta(seconds=POLL.deadline_seconds)
    assert rules.past_deadline(pending(), at_deadline)
    assert not rules.past_deadline(pending(), at_deadline - timedelta(seconds=1))
    job = rules.after_poll(pending(), PollResult(WorkState.RUNNING), at_deadline)
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.code == "DeadlineExceeded" and job.try_count == 1


def test_work_that_finishes_at_the_deadline_still_completes() -> None:
    at_deadline = NOW + timedelta(seconds=POLL.deadline_seconds)
    assert (
        rules.after_poll(pending(), PollResult(WorkState.SUCCEEDED), at_deadline).status is JobStatus.COMPLETE
    )


def test_no_poll_is_scheduled_past_the_deadline() -> None:
    near = NOW + timedelta(seconds=POLL.deadline_seconds - 3)
    job = rules.after_poll(pending(), PollResult(WorkState.RUNNING), near)
    assert job.next_poll_at == job.deadline


def test_an_engine_schedule_past_the_deadline_is_clamped_to_it_and_noted() -> None:
    job = make_job(status=JobStatus.RUNNING, poll=POLL, task_id="t-1")
    answer = engine.SchedulePoll(
        next_poll_at=job.deadline + timedelta(hours=1), task_payload={}, progress=0.5
    )
    scheduled = rules.after_engine_answer(job, answer, LATER)
    assert scheduled.next_poll_at == job.deadline
    assert "past the deadline" in scheduled.notes[-1]
    assert (scheduled.try_count, scheduled.progress) == (1, 0.5)


# ---- start, continuation, failure ----


def test_submitted_work_is_pending_with_the_first_poll_a_wait_away() -> None:
    job = rules.submitted(make_job(poll=POLL), NOW, "w-9", "arn:execution")
    assert (job.status, job.work_id, job.execution_arn) == (JobStatus.PENDING, "w-9", "arn:execution")
    assert job.next_poll_at == NOW + timedelta(seconds=10)


def test_a_continued_loop_records_its_new_execution_and_generation() -> None:
    job = rules.handed_over(pending(status=JobStatus.RUNNING), LATER, 2, "arn:execution:j1-2")
    assert (job.status, job.generation, job.execution_arn) == (JobStatus.RUNNING, 2, "arn:execution:j1-2")


def test_a_finished_job_is_not_continued() -> None:
    with pytest.raises(IllegalTransition):
        rules.handed_over(pending(status=JobStatus.COMPLETE), LATER, 2, None)


def test_a_caught_error_fails_the_job_with_that_error() -> None:
    error = JobError("MaxTriesExceeded", "the job was still running after 3 of 3 polls")
    job = rules.failed(pending(next_poll_at=LATER), LATER, error)
    assert (job.status, job.error, job.next_poll_at) == (JobStatus.FAILED, error, None)


# ---- cancel ----


def test_cancel_makes_a_running_job_canceled() -> None:
    job = rules.canceled(pending(status=JobStatus.RUNNING), LATER)
    assert job.status is JobStatus.CANCELED and job.error == JobError("JobCanceled", "canceled by its owner")


def test_cancel_racing_completion_loses_to_a_job_that_completed_first() -> None:
    completed = rules.after_poll(pending(), PollResult(WorkState.SUCCEEDED), LATER)
    with pytest.raises(IllegalTransition):
        rules.canceled(completed, LATER)


def test_completion_racing_cancel_loses_to_a_job_canceled_first() -> None:
    canceled = rules.canceled(pending(), LATER)
    with pytest.raises(IllegalTransition):
        rules.after_poll(canceled, PollResult(WorkState.SUCCEEDED), LATER)


def test_deleting_a_finished_jobs_output_twice_changes_nothing_the_second_time() -> None:
    done = pending(status=JobStatus.COMPLETE, result={"x": 1})
    deleted = rules.output_deleted(done, LATER)
    assert (deleted.result, deleted.result_deleted_at, deleted.status) == (None, LATER, JobStatus.COMPLETE)
    assert rules.output_deleted(deleted, LATER + timedelta(seconds=5)) is deleted


# ---- queue mode: leases ----

LEASE = 60


def queued() -> Job:
    return make_job(provider="simulated-stream", poll=POLL)


def test_a_worker_takes_a_queued_job_under_a_lease_and_counts_the_try() -> None:
    job = rules.lease_taken(queued(), "w1", NOW, LEASE)
    assert (job.status, job.lease_owner, job.try_count) == (JobStatus.RUNNING, "w1", 1)
    assert job.lease_expires_at == NOW + timedelta(seconds=LEASE)


def test_a_live_lease_keeps_other_workers_out() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    with pytest.raises(LeaseHeld):
        rules.lease_taken(held, "w2", NOW + timedelta(seconds=LEASE - 1), LEASE)


def test_an_expired_lease_is_taken_over_by_the_next_worker() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    taken = rules.lease_taken(held, "w2", NOW + timedelta(seconds=LEASE), LEASE)
    assert (taken.lease_owner, taken.try_count) == ("w2", 2)


def test_a_report_renews_the_lease_and_stores_the_output_so_far() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    renewed = rules.lease_renewed(held, "w1", LATER, LEASE, "partial", 0.5)
    assert renewed.lease_expires_at == LATER + timedelta(seconds=LEASE)
    assert (renewed.partial_output, renewed.progress) == ("partial", 0.5)


def test_a_worker_whose_lease_was_taken_over_loses_it() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    taken = rules.lease_taken(held, "w2", NOW + timedelta(seconds=LEASE), LEASE)
    with pytest.raises(LeaseLost):
        rules.lease_renewed(taken, "w1", LATER, LEASE, "late", 0.9)
    with pytest.raises(LeaseLost):
        rules.lease_finished(taken, "w1", LATER, result="late")


def test_a_canceled_job_stops_its_worker() -> None:
    canceled = rules.canceled(rules.lease_taken(queued(), "w1", NOW, LEASE), LATER)
    with pytest.raises(JobCanceled):
        rules.lease_renewed(canceled, "w1", LATER, LEASE, "more", 0.6)


def test_a_finished_run_completes_the_job_and_releases_the_lease() -> None:
    held = rules.lease_renewed(rules.lease_taken(queued(), "w1", NOW, LEASE), "w1", NOW, LEASE, "par", 0.5)
    done = rules.lease_finished(held, "w1", LATER, result="full")
    assert (done.status, done.result, done.partial_output) == (JobStatus.COMPLETE, "full", None)
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    error = JobError("SimulatedFailure", "the run failed")
    failed = rules.lease_finished(held, "w1", LATER, error=error)
    assert (failed.status, failed.error, failed.lease_owner) == (JobStatus.FAILED, error, None)


def test_a_dead_lettered_job_without_a_live_lease_fails_with_delivery_failed() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    failed = rules.dead_lettered(held, 5, NOW + timedelta(seconds=LEASE))
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error.code == "DeliveryFailed" and "5 times" in failed.error.message
    assert rules.dead_lettered(queued(), 5, NOW).status is JobStatus.FAILED


def test_a_dead_lettered_job_under_a_live_lease_keeps_running() -> None:
    held = rules.lease_taken(queued(), "w1", NOW, LEASE)
    with pytest.raises(LeaseHeld):
        rules.dead_lettered(held, 5, NOW + timedelta(seconds=LEASE - 1))
