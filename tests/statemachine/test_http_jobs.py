"""http jobs (style azure) through the real poller ASL and handlers, against a scripted service on 127.0.0.1,
on the virtual clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import jobs_api
from chalicelib.job import JobStatus
from chalicelib.providers.http import HttpProvider, Profile
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation
from lro_server import Answer, LroServer, problem

RESULT = {"transcript": "hello"}
MONITOR = "/v1/operations/1"


@pytest.fixture
def server() -> Iterator[LroServer]:
    with LroServer() as running:
        running.on(
            "POST", "/v1/analyze", Answer(202, {"status": "NotStarted"}, {"Operation-Location": MONITOR})
        )
        yield running


def with_http(emulation: Emulation, server: LroServer) -> None:
    profiles = {"speech": Profile("speech", server.url, headers={"Authorization": "Bearer test-only"})}
    emulation.add_provider(HttpProvider(emulation.clock, lambda: profiles, allow_loopback=True))


def job(**poll: Any) -> dict[str, Any]:
    request = {"method": "POST", "path": "/v1/analyze", "body": {"audio": "s3://in/a.wav"}}
    return {"provider": "http", "input": {"profile": "speech", "style": "azure", "request": request}, **poll}


def test_an_azure_operation_completes_with_the_services_result_polled_when_retry_after_says(
    emulation: Emulation, server: LroServer
) -> None:
    with_http(emulation, server)
    server.on(
        "GET",
        MONITOR,
        Answer(200, {"status": "Running", "percentComplete": 30}, {"Retry-After": "40"}),
        Answer(200, {"status": "Succeeded", "result": RESULT}),
    )

    execution = emulation.run(job(poll_mode="adaptive", wait_seconds=5, max_tries=5), name="azure-ok")

    assert execution["status"] == "SUCCEEDED"
    stored = emulation.runtime.store.get("azure-ok")
    assert stored.status is JobStatus.COMPLETE
    assert stored.result == RESULT
    assert stored.try_count == 2
    assert (stored.updated_at - stored.created_at).total_seconds() == 5 + 40  # the hint, not the backoff
    assert "Bearer" not in str(stored.work_id)  # the profile's secrets stay out of the job


def test_a_500_is_retried_by_the_state_machine_and_a_404_then_fails_the_job(
    emulation: Emulation, server: LroServer
) -> None:
    with_http(emulation, server)
    server.on(
        "GET",
        MONITOR,
        Answer(200, {"status": "Running"}),
        problem(500, "Internal Server Error", "try again"),
        problem(404, "Not Found", "operation 1 expired"),
    )

    execution = emulation.run(job(max_tries=5), name="azure-404")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ProviderRefused"
    stored = emulation.runtime.store.get("azure-404")
    assert stored.error is not None and stored.error.code == "ProviderRefused"
    assert "404" in stored.error.message and "operation 1 expired" in stored.error.message
    assert len(server.requests("GET", MONITOR)) == 3


def test_a_failed_operation_fails_the_job_with_the_services_error(
    emulation: Emulation, server: LroServer
) -> None:
    with_http(emulation, server)
    failure = {"code": "BadAudio", "message": "the audio is silent"}
    server.on("GET", MONITOR, Answer(200, {"status": "FAILED", "error": failure}))

    execution = emulation.run(job(), name="azure-failed")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ProviderJobFailed"
    assert "BadAudio: the audio is silent" in execution["cause"]


def test_canceling_a_running_job_reaches_the_services_cancel(server: LroServer) -> None:
    clock = VirtualClock(auto_advance=False)
    server.on("GET", MONITOR, Answer(200, {"status": "Running"}))
    server.on("DELETE", MONITOR, Answer(204))
    with Emulation(clock=clock) as emulation:
        with_http(emulation, server)
        arn = emulation.start(job(wait_seconds=10, max_tries=50), name="azure-cancel")
        wait_for(lambda: emulation.runtime.store.find("azure-cancel") is not None)

        def polled() -> bool:  # time moves until the first poll has happened (the Wait may start late)
            clock.advance(1)
            return emulation.runtime.store.get("azure-cancel").status is JobStatus.RUNNING

        wait_for(polled)

        runtime = emulation.runtime
        deleted = jobs_api.cancel_or_delete_result(
            "azure-cancel",
            owner="local",
            store=runtime.store,
            providers=runtime.providers,
            sfn=runtime.sfn,
            clock=clock,
            settings=runtime.settings,
        )

        assert deleted.canceled and deleted.job.status is JobStatus.CANCELED
        assert len(server.requests("DELETE", MONITOR)) == 1
        assert emulation.wait(arn, timeout=10)["status"] == "ABORTED"


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.005)
