"""The poll loop's rules: pure functions of a job, what happened and the time, returning the changed job.

They raise the named errors (IllegalTransition, LeaseHeld, LeaseLost, JobCanceled) where a change is not
allowed; the use cases (`service`, `worker`, `jobs_api`) read, apply one of these, and write conditionally.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from . import engine
from .clock import to_iso
from .errors import IllegalTransition, JobCanceled, LeaseHeld, LeaseLost
from .job import Job, JobError, JobStatus
from .policy import clamp_to_deadline, poll_time
from .providers import PollResult, WorkState


def _still_running(job: Job, result_state: WorkState) -> JobStatus:
    if result_state is WorkState.PENDING and job.status is not JobStatus.RUNNING:
        return JobStatus.PENDING
    return JobStatus.RUNNING


def past_deadline(job: Job, now: datetime) -> bool:
    """The job's overall deadline has come: it may not be polled again."""
    return now >= job.deadline


def tries_exhausted(job: Job) -> bool:
    """The job has had its last allowed poll (the ASL's CheckJobComplete mirrors this: MaxTriesExceeded)."""
    return job.try_count >= job.poll.max_tries


def _failed_at_deadline(job: Job, now: datetime, tries: int) -> Job | None:
    if not past_deadline(job, now):
        return None
    return job.transition(
        JobStatus.FAILED,
        now,
        try_count=tries,
        next_poll_at=None,
        error=JobError(
            "DeadlineExceeded",
            f"the job was still running at its deadline, {job.poll.deadline_seconds} s after it started",
        ),
    )


def after_poll(job: Job, result: PollResult, now: datetime, counts_as_try: bool = True) -> Job:
    """What a provider's answer does to the job: finished, failed, past its deadline, or polled again when
    the poll policy says (a notification does not count as a try)."""
    if result.provider_status is not None:
        job = job.amend(now, provider_status=result.provider_status)
    tries = job.try_count + 1 if counts_as_try else job.try_count
    progress = job.progress if result.progress is None else max(0.0, min(1.0, result.progress))
    if result.state is WorkState.SUCCEEDED:
        return job.transition(
            JobStatus.COMPLETE, now, try_count=tries, progress=1.0, result=result.result, next_poll_at=None
        )
    if result.state is WorkState.FAILED:
        error = result.error or JobError("ProviderJobFailed", "the provider reported a failure")
        return job.transition(
            JobStatus.FAILED, now, try_count=tries, progress=progress, error=error, next_poll_at=None
        )
    expired = _failed_at_deadline(job, now, tries)
    if expired is not None:
        return expired
    polled = job.transition(_still_running(job, result.state), now, try_count=tries, progress=progress)
    when, _ = poll_time(polled, now, result)
    return polled.transition(polled.status, now, next_poll_at=when)


def after_engine_answer(
    job: Job, answer: engine.SchedulePoll | engine.TaskResult, now: datetime, counts_as_try: bool = True
) -> Job:
    """What an engine's answer does to the job: a result finishes it; a schedule sets its next poll
    (clamped to the deadline, with a note). The first answer (to the submitting task) is not a try."""
    tries = job.try_count + 1 if counts_as_try else job.try_count
    if isinstance(answer, engine.TaskResult):
        if answer.error is not None:
            return job.transition(
                JobStatus.FAILED, now, try_count=tries, error=answer.error, next_poll_at=None
            )
        result = {"output": answer.output, "taskId": answer.task_id, "origTaskId": answer.orig_task_id}
        return job.transition(
            JobStatus.COMPLETE, now, try_count=tries, progress=1.0, result=result, next_poll_at=None
        )
    expired = _failed_at_deadline(job, now, tries) if counts_as_try else None
    if expired is not None:
        return expired
    when, clamped = clamp_to_deadline(job, answer.next_poll_at, now)
    notes = job.notes
    if clamped:
        notes = job.with_note(
            f"{to_iso(now)}: nextPollTimeUTC {to_iso(answer.next_poll_at)} is past the deadline; "
            f"polling at {to_iso(when)} instead"
        )
    status = JobStatus.RUNNING if counts_as_try else job.status
    progress = job.progress if answer.progress is None else answer.progress
    return job.transition(
        status,
        now,
        try_count=tries,
        progress=progress,
        next_poll_at=when,
        notes=notes,
        task_payload=answer.task_payload,
    )


def submitted(job: Job, now: datetime, work_id: str, execution_arn: str | None) -> Job:
    """The provider took the work: PENDING, first poll after `wait_seconds`."""
    return job.transition(
        JobStatus.PENDING,
        now,
        work_id=work_id,
        execution_arn=execution_arn,
        next_poll_at=now + timedelta(seconds=job.poll.wait_seconds),
    )


def engine_started(
    job: Job,
    answer: engine.SchedulePoll | engine.TaskResult,
    task_id: str,
    now: datetime,
    execution_arn: str | None,
) -> Job:
    """An engine took its first task: PENDING under the task's id, then what its first answer says."""
    started = job.transition(JobStatus.PENDING, now, task_id=task_id, execution_arn=execution_arn)
    return after_engine_answer(started, answer, now, counts_as_try=False)


def handed_over(job: Job, now: datetime, generation: int, execution_arn: str | None) -> Job:
    """A poll loop continued in a new execution: the job records which one, and how many there were."""
    if job.status.is_terminal:
        raise IllegalTransition(f"job {job.job_id} is {job.status.value} already")
    return job.transition(job.status, now, generation=generation, execution_arn=execution_arn)


def awaiting_notification(job: Job, now: datetime, task_token: str) -> Job:
    """The execution waits for the provider's notification under `task_token`."""
    return job.transition(job.status, now, notify_token=task_token)


def failed(job: Job, now: datetime, error: JobError) -> Job:
    """The job failed for `error` (what the state machine caught, a start that failed)."""
    return job.transition(JobStatus.FAILED, now, error=error, next_poll_at=None)


def canceled(job: Job, now: datetime, reason: str = "canceled by its owner") -> Job:
    """Its owner (or an operator, `reason` says) canceled the job; IllegalTransition when it finished first
    (exactly one write wins)."""
    return job.transition(JobStatus.CANCELED, now, error=JobError("JobCanceled", reason), next_poll_at=None)


def output_deleted(job: Job, now: datetime) -> Job:
    """A finished job without its result (deleting twice changes nothing)."""
    if job.result_deleted_at is not None:
        return job
    return job.amend(now, result=None, stored_result=None, result_deleted_at=now)


def share_revoked(job: Job, share_id: str, now: datetime) -> Job:
    """The owner revoked a share link of the job's result: its id is marked on the job for good."""
    if share_id in job.revoked_shares:
        return job
    return job.amend(now, revoked_shares=(*job.revoked_shares, share_id))


# ---- Queue mode: leases --------------------------------------------------------------------------------


def lease_is_live(job: Job, now: datetime) -> bool:
    return job.lease_expires_at is not None and job.lease_expires_at > now


def lease_taken(job: Job, worker_id: str, now: datetime, lease_seconds: int) -> Job:
    """A worker takes the job (a try): RUNNING under its lease. LeaseHeld while another worker's is live;
    an expired lease is taken over."""
    if job.status is JobStatus.RUNNING and job.lease_owner != worker_id and lease_is_live(job, now):
        raise LeaseHeld(f"job {job.job_id} is running under {job.lease_owner}'s lease")
    return job.transition(
        JobStatus.RUNNING,
        now,
        try_count=job.try_count + 1,
        lease_owner=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )


def _still_leased_to(job: Job, worker_id: str) -> None:
    if job.status is JobStatus.CANCELED:
        raise JobCanceled(f"job {job.job_id} was canceled")
    if job.status.is_terminal or job.lease_owner != worker_id:
        raise LeaseLost(f"job {job.job_id} is no longer this worker's")


def lease_renewed(
    job: Job, worker_id: str, now: datetime, lease_seconds: int, output: str, progress: float
) -> Job:
    """A worker's report: the latest output and progress, and its lease renewed. JobCanceled or LeaseLost
    when the job is no longer this worker's to run."""
    _still_leased_to(job, worker_id)
    return job.transition(
        JobStatus.RUNNING,
        now,
        partial_output=output,
        progress=max(0.0, min(1.0, progress)),
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )


def lease_finished(
    job: Job, worker_id: str, now: datetime, result: Any = None, error: JobError | None = None
) -> Job:
    """The worker's run ended: COMPLETE with `result`, or FAILED with `error`; the lease is released."""
    _still_leased_to(job, worker_id)
    released: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "next_poll_at": None}
    if error is not None:
        return job.transition(JobStatus.FAILED, now, error=error, **released)
    return job.transition(
        JobStatus.COMPLETE, now, result=result, progress=1.0, partial_output=None, **released
    )


def dead_lettered(job: Job, receive_count: int, now: datetime) -> Job:
    """The job's message went to the dead-letter queue: FAILED with DeliveryFailed, unless a worker still
    holds a live lease on it (LeaseHeld)."""
    if job.status is JobStatus.RUNNING and lease_is_live(job, now):
        raise LeaseHeld(f"job {job.job_id} is still running under a live lease")
    return job.transition(
        JobStatus.FAILED,
        now,
        lease_owner=None,
        lease_expires_at=None,
        error=JobError(
            "DeliveryFailed",
            f"the job's message was received {receive_count} times without the job finishing; "
            "it is in the dead-letter queue",
        ),
    )


# ---- The reconciler: jobs whose execution or worker was lost ----------------------------------------


class Reconcile(StrEnum):
    """What the reconciler does with an unfinished job."""

    LEAVE = "leave"  # its loop (or worker) is alive, or it finished meanwhile
    RESUME = "resume"  # a new execution picks up its poll loop from the record
    REQUEUE = "requeue"  # queue mode: its message goes on the work queue again
    GIVE_UP = "give-up"  # resumed too often, or past its deadline: FAILED


def reconcile_action(
    job: Job,
    now: datetime,
    *,
    on_queue: bool,
    execution_running: bool,
    max_resumes: int,
    message_lost_after_seconds: float = 0.0,
    work_queue_empty: bool = True,
) -> Reconcile:
    """What to do with a job the reconciler found unfinished and not updated for a while.

    A poll-loop job is stranded when its execution no longer runs; a queue-mode job when no live lease
    covers it: its worker died, or no worker took its message yet (QUEUED, or requeued: a requeue releases
    the lapsed lease) `message_lost_after_seconds` (the work queue's visibility timeout: a message some worker
    received comes back by then) after it was last written while the work queue holds no message at all (in a
    backlog its message may still wait: requeueing there would only grow the backlog and spend the job's
    resumes), its message lost (the API died between storing the job and enqueueing it, or the local stack
    restarted). A message that was only slow comes twice then, which a worker's lease makes harmless. A
    stranded job is resumed at most `max_resumes` times and never past its deadline; a finished (canceled,
    say) job is left alone.
    """
    if job.status.is_terminal:
        return Reconcile.LEAVE
    if on_queue:
        waiting = job.lease_owner is None  # no worker took its (latest) message yet
        if waiting and (
            not work_queue_empty or (now - job.updated_at).total_seconds() < message_lost_after_seconds
        ):
            return Reconcile.LEAVE  # its message waits in SQS
        if lease_is_live(job, now):
            return Reconcile.LEAVE
    elif execution_running:
        return Reconcile.LEAVE
    # An engine's task payload is kept on the job; one stored before it was (None) cannot be picked up.
    lost_payload = job.task_id is not None and job.task_payload is None
    if job.resumes >= max_resumes or past_deadline(job, now) or lost_payload:
        return Reconcile.GIVE_UP
    return Reconcile.REQUEUE if on_queue else Reconcile.RESUME


def resumed(job: Job, now: datetime, execution_arn: str | None) -> Job:
    """The reconciler resumes the job (in execution `execution_arn`, or on the work queue): one more
    resume, noted on the job. Requeued, the lapsed lease is released: until a worker takes the new message
    the job waits for delivery (see `reconcile_action`), and the lapsed worker, if it still runs, loses it.
    IllegalTransition once it finished."""
    where = f"in {execution_arn.rsplit(':', 1)[-1]}" if execution_arn else "on the work queue"
    note = f"{to_iso(now)}: resumed {where} (resume {job.resumes + 1}) after its run was lost"
    requeued: dict[str, Any] = (
        {} if execution_arn is not None else {"lease_owner": None, "lease_expires_at": None}
    )
    return job.transition(
        job.status,
        now,
        resumes=job.resumes + 1,
        execution_arn=execution_arn if execution_arn is not None else job.execution_arn,
        notify_token=None,
        notes=job.with_note(note),
        **requeued,
    )


def gave_up(job: Job, now: datetime, max_resumes: int) -> Job:
    """A stranded job that may not be resumed: FAILED, past its deadline (DeadlineExceeded), an engine's
    (ExecutionLost) or with ResumesExhausted."""
    expired = _failed_at_deadline(job, now, job.try_count)
    if expired is not None:
        return expired
    if job.task_id is not None and job.task_payload is None:
        lost = JobError("ExecutionLost", "the engine's poll loop was lost with its execution")
        return failed(job, now, lost)
    return failed(
        job,
        now,
        JobError(
            "ResumesExhausted",
            f"the job's run was lost {job.resumes + 1} times; it was resumed {max_resumes} times at most",
        ),
    )
