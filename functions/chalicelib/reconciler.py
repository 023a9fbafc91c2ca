"""The reconciler's use case: find unfinished jobs whose run was lost and resume them from the record.

A scheduled function calls `reconcile`. It reads the stale unfinished jobs (the store's sparse index, not a
scan), asks Step Functions whether each one's execution still runs, and applies `rules.reconcile_action`:
a poll loop continues in a new execution (named `<job id>-r<resume>`, so a start is never made twice), a
queue-mode job's message goes on the work queue again, a job resumed too often fails. The job is written
first, conditionally on the version read: of two reconcilers (or a reconciler and the job's own loop),
one write wins, and only the winner starts a loop.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from . import rules
from .clock import Clock
from .errors import ConcurrentUpdate, IllegalTransition
from .job import Job
from .metrics import Metrics
from .providers import Providers, WorkerProvider
from .service import cancel_work
from .settings import Settings
from .store import JobStore
from .worker import work_message

_GONE = {"ExecutionDoesNotExist", "ResourceNotFound"}


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    """The ARN of the state machine's execution called `name`."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def execution_running(sfn: Any, execution_arn: str, max_hops: int = 5) -> bool:
    """Whether the execution, or the execution it continued in, still runs (False: it ended or is gone)."""
    for _ in range(max_hops):
        try:
            described = sfn.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE:
                return False
            raise
        if described["status"] == "RUNNING":
            return True
        output = json.loads(described.get("output") or "null")
        following = output.get("continued_in") if isinstance(output, dict) else None
        if not isinstance(following, dict) or not isinstance(following.get("execution_arn"), str):
            return False
        execution_arn = following["execution_arn"]
    return True  # a long chain of hand-overs: a live loop, most likely; look again next time


def reconcile(
    *,
    store: JobStore,
    providers: Providers,
    sfn: Any,
    sqs: Any,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """One reconciler run; returns how many jobs it looked at and what it did with them (`metrics`
    counts each job resumed)."""
    now = clock.now()
    stale = store.stale_unfinished(
        now - timedelta(seconds=settings.reconcile_after_seconds), settings.reconcile_batch_size
    )
    done: Counter[str] = Counter()
    resumed: list[str] = []
    errors = 0
    for job in stale:
        try:
            action = _reconcile_one(job, now, store, providers, sfn, sqs, settings, on_finished)
        except ClientError:
            errors += 1  # throttled, say: this job waits for the next run, the others go on
            continue
        if action in (rules.Reconcile.RESUME, rules.Reconcile.REQUEUE):
            resumed.append(job.job_id)
            if metrics is not None:
                metrics.job_resumed(job)
        done[action.value] += 1
    counts = {action.value: done[action.value] for action in rules.Reconcile}
    return {"looked_at": len(stale), **counts, "errors": errors, "resumed": resumed}


def _reconcile_one(
    job: Job,
    now: datetime,
    store: JobStore,
    providers: Providers,
    sfn: Any,
    sqs: Any,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None,
) -> rules.Reconcile:
    on_queue = isinstance(providers.get(job.provider), WorkerProvider)
    running = not on_queue and execution_running(
        sfn, job.execution_arn or execution_arn_for(settings.state_machine_arn, job.job_id)
    )
    action = rules.reconcile_action(
        job, now, on_queue=on_queue, execution_running=running, max_resumes=settings.max_resumes
    )
    try:
        if action is rules.Reconcile.RESUME:
            name = f"{job.job_id}-r{job.resumes + 1}"
            written = store.save(rules.resumed(job, now, execution_arn_for(settings.state_machine_arn, name)))
            _start(sfn, settings, name, written)
        elif action is rules.Reconcile.REQUEUE:
            store.save(rules.resumed(job, now, None))
            sqs.send_message(QueueUrl=settings.work_queue_url, MessageBody=work_message(job.job_id))
        elif action is rules.Reconcile.GIVE_UP:
            failed = store.save(rules.gave_up(job, now, settings.max_resumes))
            cancel_work(failed, providers)
            if on_finished is not None:
                on_finished(failed)
    except (ConcurrentUpdate, IllegalTransition):
        return rules.Reconcile.LEAVE  # the job changed since it was read: its own loop is alive
    return action


def _start(sfn: Any, settings: Settings, name: str, job: Job) -> None:
    continuation = {"job_id": job.job_id, "generation": job.generation, "resumes": job.resumes}
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=name,
            input=json.dumps({"continuation": continuation}),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
