"""A job's life through the API while time stands still: polling a running job, canceling it, expiry, and a
cancel racing the job's completion. The virtual clock moves only when a test advances it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from api_harness import Api, Receiver, make_api, stop_running_executions

from chalicelib import jobs_api, service
from chalicelib.bootstrap import set_runtime
from chalicelib.clock import to_iso
from chalicelib.errors import JobAlreadyFinished
from chalicelib.job import Job, JobStatus
from chalicelib.store import DynamoDBJobStore
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation

LONG_JOB = {"input": {"delay": 3600}, "wait_seconds": 600, "max_tries": 100}
TTL_SECONDS = 7200


@pytest.fixture(scope="module")
def module_emulation() -> Iterator[Emulation]:
    with Emulation(clock=VirtualClock(auto_advance=False)) as running:
        yield running


@pytest.fixture
def api(module_emulation: Emulation) -> Iterator[Api]:
    yield make_api(module_emulation, job_ttl_seconds=TTL_SECONDS)
    stop_running_executions(module_emulation)  # blocked in a Wait on the stopped clock


def started(api: Api, body: dict[str, Any] = LONG_JOB) -> str:
    """POST a job and wait (bounded) until its execution has submitted it and sits in its first Wait."""
    response = api.post(body)
    assert response.status_code == 202
    job_id = str(response.json_body["id"])
    api.wait_status(job_id, JobStatus.PENDING)
    return job_id


def test_a_running_job_answers_202_with_retry_after_and_its_own_location(api: Api) -> None:
    start = api.emulation.clock.now()
    job_id = started(api)
    api.emulation.clock.advance(100)

    response = api.get(f"/jobs/{job_id}")

    assert response.status_code == 202
    assert response.headers["Location"] == f"http://api.example.test/jobs/{job_id}"
    assert response.headers["Retry-After"] == "500"  # the next poll is 600 s after the start
    assert response.json_body["status"] == "PENDING"
    assert response.json_body["next_poll_at"] == to_iso(start + timedelta(seconds=600))


def test_the_result_of_a_running_job_is_a_409_problem(api: Api) -> None:
    job_id = started(api)
    response = api.get(f"/jobs/{job_id}/result")
    assert response.status_code == 409
    assert response.json_body["type"] == "urn:jobpoll:problem:job-not-finished"


def test_delete_cancels_a_running_job_and_stops_its_execution(api: Api) -> None:
    job_id = started(api)

    response = api.delete(f"/jobs/{job_id}")

    assert response.status_code == 200
    assert response.json_body["status"] == "CANCELED"
    assert api.emulation.wait(api.execution_arn(job_id), timeout=5)["status"] == "ABORTED"
    status = api.get(f"/jobs/{job_id}")
    assert status.status_code == 200
    assert status.json_body["error"]["code"] == "JobCanceled"
    assert api.get(f"/jobs/{job_id}/result").status_code == 409


def test_an_expired_job_answers_410_before_dynamodb_deletes_it(api: Api) -> None:
    job_id = started(api)
    api.delete(f"/jobs/{job_id}")  # stops the execution: only the clock moves below
    api.emulation.clock.advance(TTL_SECONDS)

    assert api.runtime.store.find(job_id) is not None  # DynamoDB's TTL has not deleted the item
    for response in (
        api.get(f"/jobs/{job_id}"),
        api.get(f"/jobs/{job_id}/result"),
        api.delete(f"/jobs/{job_id}"),
    ):
        assert response.status_code == 410
        assert response.headers["Content-Type"] == "application/problem+json"
    assert api.get("/jobs").json_body["jobs"] == []


def test_the_stored_ttl_is_the_expiry_time_in_epoch_seconds(api: Api) -> None:
    job_id = started(api)
    item = api.emulation.client("dynamodb").get_item(
        TableName=api.runtime.settings.table_name, Key={"job_id": {"S": job_id}}
    )["Item"]
    expected = api.emulation.clock.now() + timedelta(seconds=TTL_SECONDS)
    assert int(item["ttl"]["N"]) == int(expected.timestamp())


class RacingStore(DynamoDBJobStore):
    """Every racer reads the job, then waits for the others before writing: both read the same version."""

    def __init__(self, store: DynamoDBJobStore, racers: int) -> None:
        super().__init__(store.table_name, store.dynamodb)
        self._barrier = threading.Barrier(racers, timeout=5)
        self._waited: set[int] = set()

    def get(self, job_id: str) -> Job:
        job = super().get(job_id)
        me = threading.get_ident()
        if me not in self._waited:
            self._waited.add(me)
            self._barrier.wait()
        return job


def test_cancel_racing_completion_has_exactly_one_winner_and_the_loser_sees_it(api: Api) -> None:
    job_id = started(api)
    # Stop the execution so only the two racers below write the job.
    api.emulation.sfn.stop_execution(executionArn=api.execution_arn(job_id))
    api.emulation.clock.advance(3600)  # the provider's work is done: a poll now completes the job
    racing = RacingStore(api.runtime.store, racers=2)
    outcomes: dict[str, Any] = {}

    def cancel() -> None:
        try:
            outcomes["cancel"] = jobs_api.cancel_or_delete_result(
                job_id,
                owner=api.owners["alice"],
                store=racing,
                providers=api.runtime.providers,
                sfn=api.runtime.sfn,
                clock=api.runtime.clock,
                settings=api.runtime.settings,
            ).job
        except JobAlreadyFinished as exc:
            outcomes["cancel"] = exc

    def complete() -> None:
        outcomes["poll"] = service.poll_job(
            {"job_id": job_id}, store=racing, providers=api.runtime.providers, clock=api.runtime.clock
        )

    threads = [threading.Thread(target=cancel), threading.Thread(target=complete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    final = api.runtime.store.get(job_id)
    canceled_won = not isinstance(outcomes["cancel"], JobAlreadyFinished)
    if canceled_won:
        assert final.status is JobStatus.CANCELED
        assert outcomes["poll"]["status"] == "CANCELED"  # the poll lost and reports the winner's state
    else:
        assert final.status is JobStatus.COMPLETE
        assert outcomes["cancel"].job.status is JobStatus.COMPLETE  # the cancel lost and sees COMPLETE
        assert outcomes["poll"]["status"] == "COMPLETE"
    assert final.version == 3  # created, submitted, and exactly one finishing write


def test_a_cancel_that_loses_answers_409_with_the_winners_state(api: Api) -> None:
    job_id = started(api)
    api.emulation.sfn.stop_execution(executionArn=api.execution_arn(job_id))
    api.emulation.clock.advance(3600)
    store = api.runtime.store
    before_cancel = store.get(job_id)
    service.poll_job(
        {"job_id": job_id}, store=store, providers=api.runtime.providers, clock=api.runtime.clock
    )

    # The API read the job before the completion was written: its conditional write must lose.
    class StaleFirstRead(DynamoDBJobStore):
        served = False

        def find(self, wanted: str) -> Job | None:
            if not StaleFirstRead.served:
                StaleFirstRead.served = True
                return before_cancel
            return super().find(wanted)

    stale = StaleFirstRead(store.table_name, store.dynamodb)
    set_runtime(dataclasses.replace(api.runtime, store=stale))

    response = api.delete(f"/jobs/{job_id}")

    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json_body["type"] == "urn:jobpoll:problem:job-already-finished"
    assert response.json_body["job"]["status"] == "COMPLETE"
    assert store.get(job_id).status is JobStatus.COMPLETE


def test_a_canceled_job_is_called_back_too(api: Api, receiver: Receiver) -> None:
    job_id = started(api, {**LONG_JOB, "callback_url": receiver.url})

    assert api.delete(f"/jobs/{job_id}").json_body["status"] == "CANCELED"

    assert [json.loads(body)["status"] for _, body in receiver.received] == ["CANCELED"]
