"""Metrics (CloudWatch EMF documents) and structured log lines: their exact JSON, and which use case writes
which document once per event. No AWS: the in-memory store and fake providers."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from test_use_cases import SETTINGS, FakeProvider, FakeWorker

from chalicelib import rules, service, worker
from chalicelib.job import CallbackRecord, JobError, JobStatus
from chalicelib.logs import json_lines, log_event
from chalicelib.memory_store import InMemoryJobStore
from chalicelib.metrics import Metrics
from chalicelib.providers import PollResult, WorkState
from factories import NOW, make_job
from jobpoll.clocks import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=NOW, auto_advance=False)


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def metrics(lines: list[str], clock: VirtualClock) -> Metrics:
    return Metrics(lines.append, clock, "jobpoll/test")


def documents(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def test_a_completed_job_is_one_emf_document_with_its_count_and_latency(
    metrics: Metrics, lines: list[str], clock: VirtualClock
) -> None:
    clock.advance(90)
    finished_at = NOW + timedelta(seconds=42.5)
    job = make_job("job-1", status=JobStatus.COMPLETE, updated_at=finished_at)
    metrics.job_finished(job)
    (line,) = lines
    assert "\n" not in line
    assert json.loads(line) == {
        "_aws": {
            "Timestamp": int((NOW + timedelta(seconds=90)).timestamp() * 1000),  # the clock's time
            "CloudWatchMetrics": [
                {
                    "Namespace": "jobpoll/test",
                    "Dimensions": [["Provider"], []],
                    "Metrics": [
                        {"Name": "JobsCompleted", "Unit": "Count"},
                        {"Name": "EndToEndLatency", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "Provider": "simulated",
        "event": "job_finished",
        "level": "INFO",
        "job_id": "job-1",
        "status": "COMPLETE",
        "JobsCompleted": 1,
        "EndToEndLatency": 42500,
    }


@pytest.mark.parametrize(
    ("status", "metric"), [(JobStatus.FAILED, "JobsFailed"), (JobStatus.CANCELED, "JobsCanceled")]
)
def test_a_failed_or_canceled_job_counts_without_a_latency(
    metrics: Metrics, lines: list[str], status: JobStatus, metric: str
) -> None:
    error = JobError("ProviderFailed", "boom") if status is JobStatus.FAILED else None
    metrics.job_finished(make_job(status=status, error=error))
    (document,) = documents(lines)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
    assert document[metric] == 1
    assert document.get("error") == (error.code if error else None)


def test_the_job_id_is_a_property_never_a_dimension(metrics: Metrics, lines: list[str]) -> None:
    job = make_job("j-42", status=JobStatus.RUNNING, try_count=3, progress=0.25)
    metrics.job_started(job)
    metrics.job_polled(job)
    metrics.job_resumed(job)
    for document in documents(lines):
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["Provider"], []]
        assert document["job_id"] == "j-42"
        for metric in directive["Metrics"]:
            assert document[metric["Name"]] == 1
    started, polled, resumed = documents(lines)
    assert (started["event"], started["JobsStarted"]) == ("job_started", 1)
    assert (polled["Polls"], polled["try_count"], polled["progress"]) == (1, 3, 0.25)
    assert (resumed["JobsResumed"], resumed["resumes"]) == (1, 1)


def test_a_log_event_is_one_json_line_and_nothing_else() -> None:
    stream = io.StringIO()
    logger = json_lines(logging.getLogger("jobpoll-test-logs"))
    logger.handlers[-1].setStream(stream)  # type: ignore[attr-defined]
    logger.setLevel(logging.INFO)
    log_event(logger, "job_submitted", job_id="j1", created=True)
    log_event(logger, "ignored", logging.DEBUG, job_id="j1")
    expected = {"created": True, "event": "job_submitted", "job_id": "j1", "level": "INFO"}
    assert stream.getvalue().splitlines() == [json.dumps(expected, sort_keys=True)]
    assert json_lines(logger) is logger and len(logger.handlers) == 1  # configured once


def test_a_poll_loop_writes_started_then_one_document_per_poll_then_finished(
    metrics: Metrics, lines: list[str], clock: VirtualClock
) -> None:
    store, finished = InMemoryJobStore(), []
    provider = FakeProvider([PollResult(WorkState.RUNNING, progress=0.5), PollResult(WorkState.SUCCEEDED)])
    providers = {"fake": provider}
    for _ in range(2):  # the second: a retried StartJob (the job was submitted already) starts nothing
        state = service.start_job(
            {"provider": "fake", "input": {}, "job_id": "j1"},
            "j1",
            store=store,
            providers=providers,
            clock=clock,
            settings=SETTINGS,
            metrics=metrics,
        )
    for _ in range(2):
        clock.advance(10)
        state = service.poll_job(
            state, store=store, providers=providers, clock=clock, on_finished=finished.append, metrics=metrics
        )
    events = [(d["event"], d["Provider"], d.get("status")) for d in documents(lines)]
    assert events == [
        ("job_started", "fake", "PENDING"),
        ("job_polled", "fake", "RUNNING"),
        ("job_polled", "fake", "COMPLETE"),
    ]
    # The finished job goes to on_finished: the runtime's counts it (Runtime.job_finished).
    assert [job.status for job in finished] == [JobStatus.COMPLETE]


def test_a_queue_job_counts_as_started_on_its_first_lease_only(
    metrics: Metrics, lines: list[str], clock: VirtualClock
) -> None:
    store = InMemoryJobStore()
    providers = {"fake-worker": FakeWorker()}
    store.create(make_job("fresh", provider="fake-worker"))
    # A job whose first worker died: its lease lapses and the next delivery takes the job over.
    store.create(make_job("taken-over", provider="fake-worker"))
    store.update("taken-over", lambda job: rules.lease_taken(job, "dead", NOW, SETTINGS.lease_seconds))
    clock.advance(SETTINGS.lease_seconds + 1)
    for job_id in ("fresh", "taken-over"):
        outcome = worker.run_job(
            job_id, worker_id="w", store=store, providers=providers, clock=clock, settings=SETTINGS,
            metrics=metrics,
        )  # fmt: skip
        assert outcome == "complete"
    assert [(d["event"], d["job_id"]) for d in documents(lines)] == [("job_started", "fresh")]


def test_a_callback_is_one_document_delivered_or_failed(metrics: Metrics, lines: list[str]) -> None:
    delivered = CallbackRecord(attempts=2, delivered_at=NOW, last_status=200)
    refused = CallbackRecord(attempts=5, last_status=503)
    metrics.callback_sent(make_job("a", status=JobStatus.COMPLETE, callback=delivered))
    metrics.callback_sent(make_job("b", status=JobStatus.FAILED, callback=refused))
    ok, failed = documents(lines)
    assert (ok["event"], ok["CallbacksDelivered"], ok["attempts"], ok["last_status"]) == (
        "callback_delivered",
        1,
        2,
        200,
    )
    assert (failed["event"], failed["CallbacksFailed"], failed["attempts"], failed["last_status"]) == (
        "callback_failed",
        1,
        5,
        503,
    )
