"""What an operator is told about a job run through the API on the emulation: one JSON log line per event,
each with the job id; the metrics (EMF) of each job's outcome; and no secret in any line."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from api_harness import Api, Receiver, make_api

from chalicelib.bootstrap import set_runtime
from chalicelib.job import JobStatus
from jobpoll.emulation import Emulation
from lro_server import Answer, LroServer


@dataclass
class Told:
    """Every line the functions wrote: their log (app.log) and their metric documents."""

    log: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return self.log + self.metrics

    def events(self, job_id: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines()]  # every line is one JSON object
        return [line for line in parsed if line.get("job_id") == job_id]


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def telling(api: Api) -> Iterator[Told]:
    """What the functions serving `api` write while inside."""
    told = Told()
    api.runtime = dataclasses.replace(api.runtime, metrics_output=told.metrics.append)
    set_runtime(api.runtime)
    log = logging.getLogger("jobpoll")  # app.log
    handler = _Collect(told.log)
    log.addHandler(handler)
    try:
        yield told
    finally:
        log.removeHandler(handler)


@pytest.fixture
def told(api: Api) -> Iterator[Told]:
    with telling(api) as told:
        yield told


def test_a_completed_job_is_told_once_per_event_with_its_metrics_and_no_secret(
    api: Api, receiver: Receiver, told: Told
) -> None:
    job_id = api.post({"input": {"delay": 25}, "callback_url": receiver.url}).json_body["id"]
    api.wait_done(job_id)
    shared = api.client.http.post(f"/jobs/{job_id}/shares", headers=api.headers(), body=b"{}")
    assert shared.status_code == 201
    job = api.runtime.store.get(job_id)
    assert job.status is JobStatus.COMPLETE and job.try_count == 3

    events = told.events(job_id)
    counted = Counter(line["event"] for line in events)
    assert counted == {
        "job_submitted": 1,  # created (the API)
        "job_started": 1,
        "job_polled": job.try_count,
        "job_finished": 1,
        "callback_delivered": 1,
        "result_shared": 1,
        "api_request": 1,  # the share link's POST (the job's POST names the job in job_submitted)
    }
    (finished,) = [line for line in events if line["event"] == "job_finished"]
    (directive,) = finished["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == api.runtime.settings.metrics_namespace
    assert directive["Dimensions"] == [["Provider"], []]
    assert (finished["Provider"], finished["status"], finished["JobsCompleted"]) == (
        "simulated",
        "COMPLETE",
        1,
    )
    assert finished["EndToEndLatency"] == round((job.updated_at - job.created_at).total_seconds() * 1000)
    assert (
        finished["_aws"]["Timestamp"] <= api.emulation.clock.now().timestamp() * 1000
    )  # the emulation's time
    polls = [line["Polls"] for line in events if line["event"] == "job_polled"]
    assert polls == [1] * job.try_count

    text = "\n".join(told.lines())
    settings = api.runtime.settings
    for secret in (settings.callback_secret, settings.share_key, api.tokens["alice"], receiver.url):
        assert secret not in text


def test_a_failed_and_a_canceled_job_are_counted_once_each(api: Api, told: Told) -> None:
    failed = api.post({"input": {"delay": 5, "fail": True}}).json_body["id"]
    api.wait_done(failed)
    canceled = api.post({"input": {"delay": 500}}).json_body["id"]
    assert api.delete(f"/jobs/{canceled}").status_code == 200
    api.wait_done(canceled)

    for job_id, metric in ((failed, "JobsFailed"), (canceled, "JobsCanceled")):
        (finished,) = [line for line in told.events(job_id) if line["event"] == "job_finished"]
        (directive,) = finished["_aws"]["CloudWatchMetrics"]
        assert directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
        assert finished[metric] == 1
    (failure,) = [line for line in told.events(failed) if line["event"] == "job_finished"]
    assert failure["error"] == "SimulatedFailure"


def test_an_http_jobs_profile_credentials_are_never_logged(module_emulation: Emulation) -> None:
    secret = "Bearer profile-secret-0b7e"
    with LroServer() as service:
        profiles = {"svc": {"base_url": f"{service.url}/v1", "headers": {"Authorization": secret}}}
        api = make_api(module_emulation, http_profiles=json.dumps(profiles))
        service.on("POST", "/v1/exports", Answer(202, None, {"Location": "/v1/exports/1"}))
        service.on("GET", "/v1/exports/1", Answer(200, {"status": "succeeded", "n": 1}))
        with telling(api) as told:
            request = {"method": "POST", "path": "/exports", "body": {"n": 1}}
            body = {
                "provider": "http",
                "input": {"profile": "svc", "style": "status-code", "request": request},
            }
            job_id = api.post(body).json_body["id"]
            api.wait_done(job_id)
    assert api.runtime.store.get(job_id).status is JobStatus.COMPLETE
    assert [line["event"] for line in told.events(job_id) if line["event"] == "job_finished"] == [
        "job_finished"
    ]
    assert service.seen and secret not in "\n".join(told.lines())
