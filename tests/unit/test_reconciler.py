"""The reconciler's rules and use case on the in-memory store, with a fake Step Functions: no AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_use_cases import FakeProvider, FakeWorker

from chalicelib import engine, reconciler, rules, service
from chalicelib.errors import IllegalTransition, LeaseLost
from chalicelib.job import JobStatus, PollSettings
from chalicelib.memory_store import InMemoryJobStore
from chalicelib.providers import PollResult, WorkState
from chalicelib.settings import Settings
from factories import NOW, make_job
from jobpoll.clocks import VirtualClock

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:poller"
SETTINGS = Settings(
    state_machine_arn=MACHINE,
    work_queue_url="https://sqs.local/work",
    max_resumes=2,
    reconcile_after_seconds=60,
)
POLL = PollSettings(wait_seconds=10, max_tries=50, deadline_seconds=3600)
STALE = NOW + timedelta(seconds=120)


@dataclass
class FakeStepFunctions:
    """Executions by ARN with a status; `start_execution` records the start and makes it RUNNING."""

    statuses: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    started: list[dict[str, Any]] = field(default_factory=list)

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn not in self.statuses:
            error = {"Error": {"Code": "ExecutionDoesNotExist", "Message": "no"}}
            raise ClientError(error, "DescribeExecution")  # type: ignore[arg-type]
        output = self.outputs.get(executionArn)
        return {"status": self.statuses[executionArn], "output": json.dumps(output)}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        arn = reconciler.execution_arn_for(stateMachineArn, name)
        self.statuses[arn] = "RUNNING"
        self.started.append({"name": name, "input": json.loads(input)})
        return {"executionArn": arn}


@dataclass
class FakeQueue:
    sent: list[str] = field(default_factory=list)
    waiting: int = 0  # messages in the queue

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        counts = {"ApproximateNumberOfMessages": self.waiting, "ApproximateNumberOfMessagesNotVisible": 0}
        return {"Attributes": {name: str(counts[name]) for name in AttributeNames}}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.sent.append(MessageBody)
        return {}


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


def arn(name: str) -> str:
    return reconciler.execution_arn_for(MACHINE, name)


def run(
    store: InMemoryJobStore,
    sfn: FakeStepFunctions,
    sqs: FakeQueue | None = None,
    at: Any = STALE,
    providers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return reconciler.reconcile(
        store=store,
        providers=providers or {"simulated": FakeProvider(), "fake-worker": FakeWorker()},
        sfn=sfn,
        sqs=sqs or FakeQueue(),
        clock=VirtualClock(start=at, auto_advance=False),
        settings=SETTINGS,
    )


def start_resumed(store: InMemoryJobStore, provider: FakeProvider, started: dict[str, Any]) -> dict[str, Any]:
    """What the resumed execution's StartJob does with its input."""
    return service.start_job(
        started["input"],
        started["name"],
        store=store,
        providers={"simulated": provider},
        clock=VirtualClock(start=STALE, auto_advance=False),
        settings=SETTINGS,
        execution_arn=arn(started["name"]),
    )


# ---- the rules ----


def decide(job: Any, *, on_queue: bool = False, running: bool = False, now: Any = STALE) -> rules.Reconcile:
    return rules.reconcile_action(
        job,
        now,
        on_queue=on_queue,
        execution_running=running,
        max_resumes=2,
        message_lost_after_seconds=SETTINGS.work_queue_visibility_timeout_seconds,
    )


def test_a_job_whose_execution_ended_is_resumed_and_one_whose_execution_runs_is_left() -> None:
    job = make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1")
    assert decide(job) is rules.Reconcile.RESUME
    assert decide(job, running=True) is rules.Reconcile.LEAVE


def test_finished_and_canceled_jobs_are_never_resumed() -> None:
    for status in (JobStatus.CANCELED, JobStatus.COMPLETE, JobStatus.FAILED):
        assert decide(make_job(status=status, poll=POLL)) is rules.Reconcile.LEAVE
    with pytest.raises(IllegalTransition):
        rules.resumed(make_job(status=JobStatus.CANCELED), STALE, arn("j1-r1"))


def test_a_job_resumed_too_often_or_past_its_deadline_is_given_up() -> None:
    tired = make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", resumes=2)
    assert decide(tired) is rules.Reconcile.GIVE_UP
    failed = rules.gave_up(tired, STALE, 2)
    assert (failed.status, failed.error and failed.error.code) == (JobStatus.FAILED, "ResumesExhausted")
    late = make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1")
    after_deadline = NOW + timedelta(seconds=POLL.deadline_seconds)
    assert decide(late, now=after_deadline) is rules.Reconcile.GIVE_UP
    expired = rules.gave_up(late, after_deadline, 2)
    assert expired.error is not None and expired.error.code == "DeadlineExceeded"


def test_an_engine_job_cannot_be_resumed_without_its_execution_and_fails_as_lost() -> None:
    job = make_job(status=JobStatus.RUNNING, poll=POLL, task_id="t-1")
    assert decide(job) is rules.Reconcile.GIVE_UP
    assert (rules.gave_up(job, STALE, 2).error or None).code == "ExecutionLost"  # type: ignore[union-attr]


def test_a_queue_job_is_requeued_only_once_its_workers_lease_lapsed() -> None:
    leased = make_job(
        status=JobStatus.RUNNING, poll=POLL, lease_owner="w", lease_expires_at=STALE + timedelta(seconds=1)
    )
    assert decide(leased, on_queue=True) is rules.Reconcile.LEAVE
    lapsed = make_job(status=JobStatus.RUNNING, poll=POLL, lease_owner="w", lease_expires_at=STALE)
    assert decide(lapsed, on_queue=True) is rules.Reconcile.REQUEUE


def test_a_queue_job_still_queued_when_found_stale_is_requeued_as_its_message_was_lost(
    store: InMemoryJobStore,
) -> None:
    # Stored, then the API (or the local stack) died before its message reached the queue: only the
    # reconciler knows. A message that was merely slow arrives twice, which the worker's lease makes safe.
    day = PollSettings(wait_seconds=10, max_tries=50, deadline_seconds=86400)
    lost = make_job(status=JobStatus.QUEUED, poll=day, provider="fake-worker")
    visibility = SETTINGS.work_queue_visibility_timeout_seconds
    lost_at = NOW + timedelta(seconds=visibility)
    assert decide(lost, on_queue=True, now=lost_at) is rules.Reconcile.REQUEUE
    store.create(lost)
    backlog = FakeQueue(waiting=500)  # its message may wait in the backlog: requeueing would grow it
    assert run(store, FakeStepFunctions(), backlog, at=lost_at)["requeue"] == 0
    queue = FakeQueue()
    assert run(store, FakeStepFunctions(), queue)["requeue"] == 0  # a message may wait that long in SQS
    assert run(store, FakeStepFunctions(), queue, at=lost_at)["requeue"] == 1
    assert len(queue.sent) == 1 and store.get(lost.job_id).resumes == 1


def test_a_requeued_job_whose_message_no_worker_took_yet_spends_no_further_resume(
    store: InMemoryJobStore,
) -> None:
    # The soak found a queue-mode job FAILED with ResumesExhausted: its worker's lease lapsed, and while
    # the requeued message waited in a backlog every reconciler run requeued it again (three resumes).
    day = PollSettings(wait_seconds=10, max_tries=50, deadline_seconds=86400)
    lapsed = make_job(
        status=JobStatus.RUNNING, poll=day, provider="fake-worker", lease_owner="w-1", lease_expires_at=NOW
    )
    store.create(lapsed)
    backlog = FakeQueue(waiting=500)
    assert run(store, FakeStepFunctions(), backlog)["requeue"] == 1
    requeued = store.get(lapsed.job_id)
    assert (requeued.resumes, requeued.lease_owner, requeued.lease_expires_at) == (1, None, None)
    visibility = SETTINGS.work_queue_visibility_timeout_seconds
    later = STALE + timedelta(seconds=visibility + 600)
    assert run(store, FakeStepFunctions(), backlog, at=later)["requeue"] == 0  # its message still waits
    assert store.get(lapsed.job_id).resumes == 1 and len(backlog.sent) == 1
    with pytest.raises(LeaseLost):  # the lapsed worker, if it still runs, stops at its next report
        rules.lease_renewed(requeued, "w-1", later, 60, "", 0.5)
    taken = rules.lease_taken(requeued, "w-2", later, 60)  # the new message reaches a worker
    assert (taken.lease_owner, taken.try_count) == ("w-2", 1)
    empty = FakeQueue()  # no message anywhere that long after the requeue: that one was lost too
    assert run(store, FakeStepFunctions(), empty, at=later)["requeue"] == 1
    assert store.get(lapsed.job_id).resumes == 2


def test_an_engine_job_whose_execution_was_lost_resumes_with_the_task_payload_kept_on_the_job(
    store: InMemoryJobStore,
) -> None:
    # The soak found engine jobs failing with ExecutionLost after a SIGKILL of the local stack: the payload
    # of the next poll task lived only in the lost execution. The job keeps it now.
    payload = {"workId": "w-42", "isPollTask": True, "origTaskId": "t-1"}
    answer = engine.SchedulePoll(next_poll_at=STALE, task_payload=payload, progress=0.5)
    job = rules.after_engine_answer(
        make_job(status=JobStatus.PENDING, poll=POLL, task_id="t-1", execution_arn=arn("j1")), answer, NOW
    )
    assert job.task_payload == payload
    assert decide(job) is rules.Reconcile.RESUME
    store.create(job)
    sfn = FakeStepFunctions(statuses={arn("j1"): "ABORTED"})
    assert run(store, sfn)["resume"] == 1
    (started,) = sfn.started
    state = start_resumed(store, FakeProvider(), started)
    assert state["task_payload"] == payload and state["job_id"] == "j1"


def test_a_resume_keeps_the_try_count_and_deadline_and_says_so_on_the_job() -> None:
    job = make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", try_count=7, notify_token="old")
    resumed = rules.resumed(job, STALE, arn("j1-r1"))
    assert (resumed.try_count, resumed.deadline, resumed.resumes) == (7, job.deadline, 1)
    assert resumed.execution_arn == arn("j1-r1") and resumed.notify_token is None
    assert "resumed in j1-r1 (resume 1)" in resumed.notes[-1]


# ---- the use case ----


def test_a_stranded_poll_loop_continues_in_a_new_execution_from_the_record(
    store: InMemoryJobStore,
) -> None:
    store.create(
        make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", try_count=4, execution_arn=arn("j1"))
    )
    sfn = FakeStepFunctions(statuses={arn("j1"): "ABORTED"})
    outcome = run(store, sfn)
    assert (outcome["resume"], outcome["resumed"]) == (1, ["j1"])
    (started,) = sfn.started
    assert started["name"] == "j1-r1"
    assert started["input"]["continuation"]["job_id"] == "j1"
    # The new execution's StartJob picks the loop up where the record left it.
    provider = FakeProvider([PollResult(WorkState.SUCCEEDED, result="done")])
    state = start_resumed(store, provider, started)
    assert (state["try_count"], provider.submitted) == (4, 0)
    state = service.poll_job(
        state, store=store, providers={"simulated": provider}, clock=VirtualClock(start=STALE)
    )
    assert (state["status"], state["try_count"]) == ("COMPLETE", 5)
    assert store.get("j1").resumes == 1


def test_a_job_never_started_is_submitted_by_its_resumed_execution(store: InMemoryJobStore) -> None:
    store.create(make_job(poll=POLL))  # stored by the API, whose StartExecution never happened
    sfn = FakeStepFunctions()
    run(store, sfn)
    (started,) = sfn.started
    provider = FakeProvider()
    state = start_resumed(store, provider, started)
    assert (state["status"], provider.submitted) == ("PENDING", 1)


def test_a_handed_over_loop_whose_next_execution_runs_is_left_alone(store: InMemoryJobStore) -> None:
    store.create(make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", execution_arn=arn("j1")))
    sfn = FakeStepFunctions(
        statuses={arn("j1"): "SUCCEEDED", arn("j1-1"): "RUNNING"},
        outputs={arn("j1"): {"continued_in": {"execution_arn": arn("j1-1")}}},
    )
    assert run(store, sfn)["leave"] == 1 and sfn.started == []


def test_recent_jobs_are_not_looked_at_and_a_second_run_does_not_start_a_second_loop(
    store: InMemoryJobStore,
) -> None:
    store.create(make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", execution_arn=arn("j1")))
    sfn = FakeStepFunctions(statuses={arn("j1"): "FAILED"})
    assert run(store, sfn, at=NOW + timedelta(seconds=30))["looked_at"] == 0
    run(store, sfn)
    again = run(store, sfn, at=STALE + timedelta(seconds=120))  # the resumed execution still runs
    assert again["leave"] == 1 and [s["name"] for s in sfn.started] == ["j1-r1"]


def test_a_job_written_while_the_reconciler_decides_is_not_resumed(store: InMemoryJobStore) -> None:
    store.create(make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", execution_arn=arn("j1")))
    sfn = FakeStepFunctions(statuses={arn("j1"): "FAILED"})
    described = sfn.describe_execution

    def poll_meanwhile(executionArn: str) -> dict[str, Any]:
        store.update("j1", lambda job: job.amend(STALE, progress=0.5))  # its loop wrote: it is alive
        return described(executionArn)

    sfn.describe_execution = poll_meanwhile  # type: ignore[method-assign]
    assert run(store, sfn)["leave"] == 1 and sfn.started == []


def test_after_its_last_resume_a_stranded_job_fails_with_a_named_error(store: InMemoryJobStore) -> None:
    store.create(make_job(status=JobStatus.RUNNING, poll=POLL, work_id="w-1", execution_arn=arn("j1")))
    sfn = FakeStepFunctions(statuses={arn("j1"): "FAILED"})
    provider = FakeProvider()
    at = STALE
    for name in ("j1-r1", "j1-r2"):
        run(store, sfn, at=at, providers={"simulated": provider})
        sfn.statuses[arn(name)] = "TIMED_OUT"
        at += timedelta(seconds=120)
    outcome = run(store, sfn, at=at, providers={"simulated": provider})
    job = store.get("j1")
    assert outcome["give-up"] == 1 and job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "ResumesExhausted"
    assert provider.canceled == ["w-1"] and len(sfn.started) == 2


def test_a_queue_job_whose_worker_died_goes_on_the_work_queue_again(store: InMemoryJobStore) -> None:
    store.create(
        make_job(
            status=JobStatus.RUNNING,
            provider="fake-worker",
            poll=POLL,
            lease_owner="dead",
            lease_expires_at=NOW + timedelta(seconds=30),
        )
    )
    sqs = FakeQueue()
    outcome = run(store, FakeStepFunctions(), sqs)
    assert outcome["requeue"] == 1 and len(sqs.sent) == 1 and "j1" in sqs.sent[0]
    assert store.get("j1").resumes == 1


def test_a_step_functions_error_on_one_job_leaves_it_for_the_next_run_and_the_others_go_on(
    store: InMemoryJobStore,
) -> None:
    for job_id in ("j1", "j2"):
        store.create(
            make_job(job_id, status=JobStatus.RUNNING, poll=POLL, work_id="w", execution_arn=arn(job_id))
        )
    sfn = FakeStepFunctions(statuses={arn("j2"): "FAILED"})  # j1's describe throttles
    described = sfn.describe_execution

    def throttled_for_j1(executionArn: str) -> dict[str, Any]:
        if executionArn == arn("j1"):
            error = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
            raise ClientError(error, "DescribeExecution")  # type: ignore[arg-type]
        return described(executionArn)

    sfn.describe_execution = throttled_for_j1  # type: ignore[method-assign]
    outcome = run(store, sfn)
    assert (outcome["errors"], outcome["resumed"]) == (1, ["j2"])
    assert store.get("j1").resumes == 0
