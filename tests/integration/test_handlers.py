"""The Lambda handlers through chalice.test.Client, on moto DynamoDB and a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import Runtime, build_runtime, set_runtime
from chalicelib.errors import IllegalTransition, InvalidJobInput
from chalicelib.job import JobStatus
from chalicelib.settings import Settings
from chalicelib.store import DynamoDBJobStore
from jobpoll.clocks import VirtualClock


@pytest.fixture
def runtime(job_store: DynamoDBJobStore) -> Iterator[Runtime]:
    installed = build_runtime(
        Settings(table_name=job_store.table_name),
        VirtualClock(auto_advance=False),
        job_store.dynamodb,
        sfn=object(),  # these handlers never reach Step Functions
    )
    set_runtime(installed)
    yield installed
    set_runtime(None)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def start(client: Client, request: object, name: str = "job-1") -> dict:
    return client.lambda_.invoke(
        "StartJob", {"request": request, "execution_name": name, "execution_id": f"arn:x:{name}"}
    ).payload


def test_start_job_stores_and_submits_the_job(client: Client, runtime: Runtime) -> None:
    state = start(client, {"delay": 20})
    assert {k: state[k] for k in ("job_id", "status", "try_count", "progress", "wait_seconds")} == {
        "job_id": "job-1",
        "status": "PENDING",
        "try_count": 0,
        "progress": 0.0,
        "wait_seconds": 10,
    }
    assert (state["poll"]["wait_seconds"], state["poll"]["max_tries"]) == (10, 3)
    job = runtime.store.get("job-1")
    assert job.status is JobStatus.PENDING
    assert job.work_id is not None and job.execution_arn == "arn:x:job-1"


def test_a_retried_start_does_not_submit_the_work_twice(client: Client, runtime: Runtime) -> None:
    start(client, {"delay": 20})
    work_id = runtime.store.get("job-1").work_id
    assert start(client, {"delay": 20})["status"] == "PENDING"
    assert runtime.store.get("job-1").work_id == work_id


def test_start_job_refuses_bad_input_and_stores_nothing(client: Client, runtime: Runtime) -> None:
    with pytest.raises(InvalidJobInput, match="'delay' must be between 0 and"):
        start(client, {"delay": -1})
    assert runtime.store.find("job-1") is None


def test_start_job_will_not_restart_a_finished_job(client: Client, runtime: Runtime) -> None:
    start(client, {"delay": 0})
    client.lambda_.invoke("GetJobStatus", {"job_id": "job-1"})
    with pytest.raises(IllegalTransition):
        start(client, {"delay": 0})


def test_every_poll_counts_and_stores_a_try(client: Client, runtime: Runtime) -> None:
    start(client, {"delay": 30})
    clock = runtime.clock
    assert isinstance(clock, VirtualClock)
    seen = []
    for _ in range(3):
        clock.advance(10)
        state = client.lambda_.invoke("GetJobStatus", {"job_id": "job-1"}).payload
        seen.append((state["status"], state["try_count"], runtime.store.get("job-1").try_count))
    assert seen == [("RUNNING", 1, 1), ("RUNNING", 2, 2), ("COMPLETE", 3, 3)]


def test_recording_a_failure_for_a_job_never_stored_stores_nothing(client: Client, runtime: Runtime) -> None:
    outcome = client.lambda_.invoke(
        "RecordJobFailure",
        {"state": {"failure": {"Error": "InvalidJobInput", "Cause": "bad"}}, "execution_name": "ghost"},
    ).payload
    assert outcome == {
        "job_id": "ghost",
        "status": "FAILED",
        "error": "InvalidJobInput",
        "cause": "bad",
        "recorded": False,
    }
    assert runtime.store.find("ghost") is None


def test_recording_a_failure_keeps_a_finished_jobs_outcome(client: Client, runtime: Runtime) -> None:
    start(client, {"delay": 0})
    client.lambda_.invoke("GetJobStatus", {"job_id": "job-1"})
    outcome = client.lambda_.invoke(
        "RecordJobFailure",
        {"state": {"job_id": "job-1", "failure": {"Error": "Late", "Cause": "x"}}, "execution_name": "e"},
    ).payload
    assert outcome["recorded"] is False
    assert runtime.store.get("job-1").status is JobStatus.COMPLETE


def test_a_lambda_error_cause_is_reduced_to_its_message(client: Client, runtime: Runtime) -> None:
    start(client, {"delay": 50})
    cause = '{"errorType": "RuntimeError", "errorMessage": "disk on fire", "stackTrace": []}'
    client.lambda_.invoke(
        "RecordJobFailure",
        {"state": {"job_id": "job-1", "failure": {"Error": "RuntimeError", "Cause": cause}}},
    )
    job = runtime.store.get("job-1")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.message == "disk on fire"


class TimedOutStepFunctions:
    """Step Functions answering as AWS does for a task token whose wait has timed out."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def send_task_success(self, **kwargs: object) -> None:
        from botocore.exceptions import ClientError

        self.calls.append("send_task_success")
        raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}}, "SendTaskSuccess")


def test_a_notification_after_the_wait_timed_out_still_updates_the_job(runtime: Runtime) -> None:
    from chalicelib import service
    from chalicelib.providers import PollResult, WorkState

    with Client(app) as client:
        start(client, {"delay": 50, "notify": True})
    service.await_notification(
        {"job_id": "job-1", "task_token": "token-1"}, store=runtime.store, clock=runtime.clock
    )
    sfn = TimedOutStepFunctions()

    outcome = service.notify_job(
        "job-1", PollResult(WorkState.SUCCEEDED, result=7), store=runtime.store, sfn=sfn, clock=runtime.clock
    )

    assert outcome == {"job_id": "job-1", "status": "COMPLETE", "delivered": False}
    assert sfn.calls == ["send_task_success"]
    assert runtime.store.get("job-1").result == 7
