"""Queue-mode jobs through the API: POST enqueues instead of starting an execution, a worker runs the job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from api_harness import Api, Receiver

from chalicelib.callbacks import SIGNATURE_HEADER, verify_signature
from chalicelib.job import JobStatus
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation


@pytest.fixture(scope="module")
def module_emulation() -> Iterator[Emulation]:
    with Emulation(clock=VirtualClock(), queue_delivery=True) as running:
        yield running


def test_a_queue_mode_job_is_enqueued_run_by_a_worker_and_redirects_to_its_result(api: Api) -> None:
    response = api.post({"provider": "simulated-stream", "input": {"tokens": 5, "tokens_per_second": 5}})
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "2"  # a worker reports about once a second
    job_id = response.json_body["id"]

    api.wait_status(job_id, JobStatus.COMPLETE)

    assert (
        api.emulation.sfn.list_executions(stateMachineArn=api.emulation.deployment.state_machine_arn)[
            "executions"
        ]
        == []
    )  # no state machine in queue mode
    status = api.get(f"/jobs/{job_id}")
    assert status.status_code == 303
    result = api.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.json_body is not None


def test_a_finished_queue_mode_job_is_called_back(api: Api, receiver: Receiver) -> None:
    body = {"provider": "simulated-stream", "input": {"tokens": 3}, "callback_url": receiver.url}
    job_id = api.post(body).json_body["id"]

    api.wait_status(job_id, JobStatus.COMPLETE)
    deadline = time.monotonic() + 5
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker writes COMPLETE, then calls back

    [(headers, sent)] = receiver.received
    assert json.loads(sent)["status"] == "COMPLETE"
    now = api.emulation.clock.now().timestamp()
    assert verify_signature(api.runtime.settings.callback_secret, headers[SIGNATURE_HEADER], sent, now)
