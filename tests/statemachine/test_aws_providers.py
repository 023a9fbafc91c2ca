"""Amazon Transcribe and Athena jobs through the real state machine, on moto's emulation of the services.

moto moves a transcription job or a query one state further on each describe (manual progression, set
below). As on AWS, a transcription of media that is not in S3, or a query whose output bucket does not exist,
fails with the service's reason (moto_patches). The services' completion events are put on the emulation's
bus in their documented shapes; the template's rules route them to NotifyJob.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.athena.models import athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager
from moto.transcribe.models import transcribe_backends
from statemachine_support import advance_until_done, eventually

from chalicelib import jobs_api
from chalicelib.job import Job, JobError, JobStatus
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import REGION, Emulation

TRANSCRIBE = ("aws-transcribe", {"media_uri": "s3://media/talk.mp3", "language_code": "en-US"})
ATHENA = ("aws-athena", {"query": "SELECT 1", "output_location": "s3://results/jobpoll/"})
UNREADABLE_MEDIA = {"media_uri": "s3://media/missing.mp3", "language_code": "en-US"}
NO_OUTPUT_BUCKET = {"query": "SELECT 1", "output_location": "s3://no-such-bucket/jobpoll/"}
MODELS = ("transcribe::transcriptionjob", "athena::execution")


@pytest.fixture(autouse=True)
def one_state_per_describe() -> Iterator[None]:
    """Each describe moves the service's job one state on (moto's manual progression)."""
    for model in MODELS:
        state_manager.set_transition(model, {"progression": "manual", "times": 1})
    yield
    for model in MODELS:
        state_manager.unset_transition(model)


def stock_s3(emulation: Emulation) -> Emulation:
    """The media to transcribe and the bucket for query results."""
    s3 = emulation.client("s3")
    for bucket in ("media", "results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="media", Key="talk.mp3", Body=b"ID3 not really audio")
    return emulation


@pytest.fixture
def paused(paused: Emulation) -> Emulation:
    """The emulation on the manual clock, with the media and the results bucket in its S3."""
    return stock_s3(paused)


def submitted(emulation: Emulation, job_id: str) -> Job:
    """The job once its work is submitted to the service."""
    return eventually(
        lambda: (job := emulation.runtime.store.find(job_id)) is not None and job.work_id is not None and job,
        f"{job_id} is submitted",
    )


def waiting_for_notification(emulation: Emulation, job_id: str) -> Job:
    return eventually(
        lambda: (job := emulation.runtime.store.find(job_id)) is not None and job.notify_token and job,
        f"{job_id} waits for its notification",
    )


def advance_until(clock: VirtualClock, condition: Callable[[], Any], step: float = 1) -> Any:
    """Move time on in small steps until `condition()` holds (the waiting thread may start late)."""
    for _ in range(2000):
        if found := condition():
            return found
        clock.advance(step)
        time.sleep(0.002)
    raise AssertionError("the condition never held")


def put_event(emulation: Emulation, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    """The service's state-change event, as the service puts it on the default bus."""
    entries = emulation.client("events").put_events(
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    assert entries["FailedEntryCount"] == 0


def completion_event(provider: str, work_id: str, state: str = "done") -> tuple[str, str, dict[str, Any]]:
    """The documented shape of each service's completion event (`state`: done or failed)."""
    if provider == "aws-transcribe":
        status = {"done": "COMPLETED", "failed": "FAILED"}[state]
        detail = {"TranscriptionJobName": work_id, "TranscriptionJobStatus": status}
        return "aws.transcribe", "Transcribe Job State Change", detail
    current = {"done": "SUCCEEDED", "failed": "FAILED"}[state]
    detail = {
        "versionId": "0",
        "currentState": current,
        "previousState": "RUNNING",
        "statementType": "DML",
        "queryExecutionId": work_id,
        "workgroupName": "primary",
        "sequenceNumber": "3",
    }
    return "aws.athena", "Athena Query State Change", detail


def describe_until_finished(emulation: Emulation, provider: str, work_id: str) -> None:
    """Move the service's job to its end (each describe is one step on moto)."""
    for _ in range(3):
        if provider == "aws-transcribe":
            emulation.client("transcribe").get_transcription_job(TranscriptionJobName=work_id)
        else:
            emulation.client("athena").get_query_execution(QueryExecutionId=work_id)


def polls(emulation: Emulation) -> list[Any]:
    return [i for i in emulation.invocations if i.function.endswith("GetJobStatus")]


@pytest.mark.parametrize(
    ("provider", "body", "tries", "final"),
    [(*TRANSCRIBE, 3, "COMPLETED"), (*ATHENA, 2, "SUCCEEDED")],
)
def test_a_service_job_is_polled_to_its_result_with_the_services_own_status(
    emulation: Emulation, provider: str, body: dict, tries: int, final: str
) -> None:
    stock_s3(emulation)
    execution = emulation.run(
        {"provider": provider, "input": body, "wait_seconds": 10}, name=f"{provider}-ok"
    )

    assert execution["status"] == "SUCCEEDED"
    job = emulation.runtime.store.get(f"{provider}-ok")
    assert job.status is JobStatus.COMPLETE
    assert job.provider_status == final
    assert job.try_count == tries
    if provider == "aws-transcribe":
        assert job.result["transcript_uri"].endswith(".json")
        assert job.result["job"]["TranscriptionJobName"] == job.work_id
        assert job.result["job"]["Media"] == {"MediaFileUri": "s3://media/talk.mp3"}
    else:
        assert job.result["output_location"] == f"s3://results/jobpoll/{job.work_id}.csv"
        assert "DataScannedInBytes" in job.result["statistics"]


def test_the_services_status_is_on_the_job_while_it_runs(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    paused.start({"provider": "aws-transcribe", "input": TRANSCRIBE[1], "wait_seconds": 10}, name="seen")
    submitted(paused, "seen")
    seen = []
    for tries in (1, 2):
        job = advance_until(
            manual_clock, lambda t=tries: (j := paused.runtime.store.get("seen")).try_count == t and j
        )
        seen.append((job.status, job.provider_status))
    assert seen == [(JobStatus.PENDING, "QUEUED"), (JobStatus.RUNNING, "IN_PROGRESS")]


@pytest.mark.parametrize(
    ("provider", "body", "code", "reason"),
    [
        ("aws-transcribe", UNREADABLE_MEDIA, "TranscriptionFailed", "The S3 URI that you provided can't be"),
        (
            "aws-athena",
            NO_OUTPUT_BUCKET,
            "QueryFailed",
            "Unable to verify/create output bucket no-such-bucket",
        ),
    ],
)
def test_work_the_service_fails_fails_the_job_with_the_services_reason(
    paused: Emulation, manual_clock: VirtualClock, provider: str, body: dict, code: str, reason: str
) -> None:
    arn = paused.start({"provider": provider, "input": body, "wait_seconds": 10}, name=f"{provider}-bad")

    execution = advance_until_done(paused, manual_clock, arn)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ProviderJobFailed"
    job = paused.runtime.store.get(f"{provider}-bad")
    assert job.status is JobStatus.FAILED
    assert job.provider_status == "FAILED"
    assert job.error is not None and job.error.code == code
    assert reason in job.error.message
    assert execution["cause"] == f"{code}: {job.error.message}"


@pytest.mark.parametrize(("provider", "body"), [TRANSCRIBE, ATHENA])
def test_canceling_the_job_stops_the_services_work_and_the_execution(
    paused: Emulation, provider: str, body: dict
) -> None:
    arn = paused.start({"provider": provider, "input": body, "wait_seconds": 10}, name=f"{provider}-stop")
    work_id = str(submitted(paused, f"{provider}-stop").work_id)
    runtime = paused.runtime

    deleted = jobs_api.cancel_or_delete_result(
        f"{provider}-stop",
        owner="local",
        store=runtime.store,
        providers=runtime.providers,
        sfn=runtime.sfn,
        clock=runtime.clock,
        settings=runtime.settings,
    )

    assert deleted.canceled and deleted.job.status is JobStatus.CANCELED
    assert paused.wait(arn)["status"] == "ABORTED"
    if provider == "aws-transcribe":
        assert work_id not in transcribe_backends[DEFAULT_ACCOUNT_ID][REGION].transcriptions
    else:
        assert athena_backends[DEFAULT_ACCOUNT_ID][REGION].executions[work_id].status == "CANCELLED"
    runtime.providers[provider].cancel(work_id)  # idempotent: canceling again is no error


@pytest.mark.parametrize(("provider", "body"), [TRANSCRIBE, ATHENA])
def test_with_notify_the_services_completion_event_completes_the_job_without_a_poll(
    paused: Emulation, provider: str, body: dict
) -> None:
    name = f"{provider}-told"
    arn = paused.start({"provider": provider, "input": body, "notify": True}, name=name)
    work_id = str(waiting_for_notification(paused, name).work_id)
    describe_until_finished(paused, provider, work_id)

    put_event(paused, *completion_event(provider, work_id))

    assert paused.wait(arn)["status"] == "SUCCEEDED"
    job = paused.runtime.store.get(name)
    assert job.status is JobStatus.COMPLETE
    assert job.try_count == 0 and not polls(paused)
    # Recorded once NotifyJob returns, which may be just after the execution it woke has ended.
    (notified,) = eventually(
        lambda: [i for i in paused.invocations if i.function.endswith("NotifyJob")], "NotifyJob has returned"
    )
    assert notified.event["detail"]["currentState" if provider == "aws-athena" else "TranscriptionJobStatus"]
    assert isinstance(notified.event["time"], str) and notified.event["time"].endswith("Z")  # as AWS sends it
    assert notified.result == {"job_id": name, "status": "COMPLETE", "delivered": True}


def test_a_failure_event_fails_the_waiting_job_with_the_services_reason(paused: Emulation) -> None:
    arn = paused.start({"provider": "aws-athena", "input": NO_OUTPUT_BUCKET, "notify": True}, name="told-bad")
    work_id = str(waiting_for_notification(paused, "told-bad").work_id)

    put_event(paused, *completion_event("aws-athena", work_id, "failed"))

    execution = paused.wait(arn)
    assert execution["status"] == "FAILED"
    job = paused.runtime.store.get("told-bad")
    assert job.error == JobError("QueryFailed", "Unable to verify/create output bucket no-such-bucket")
    assert job.try_count == 0 and not polls(paused)


def test_when_the_event_never_comes_polling_takes_over(paused: Emulation, manual_clock: VirtualClock) -> None:
    arn = paused.start(
        {
            "provider": "aws-transcribe",
            "input": TRANSCRIBE[1],
            "notify": True,
            "notify_timeout_seconds": 300,
            "wait_seconds": 10,
        },
        name="never-told",
    )
    waiting_for_notification(paused, "never-told")

    execution = advance_until_done(paused, manual_clock, arn)

    assert execution["status"] == "SUCCEEDED"
    job = paused.runtime.store.get("never-told")
    assert job.provider_status == "COMPLETED"
    assert job.try_count == 3  # polls after the 300 s wait, one per state on moto


def test_an_event_that_comes_before_the_wait_ends_it_at_once(
    paused: Emulation, manual_clock: VirtualClock
) -> None:
    # AwaitNotification's first invocation fails at the Lambda service: the event arrives during the retry.
    paused.faults.service_error("jobpoll-dev-AwaitNotification")
    arn = paused.start({"provider": "aws-athena", "input": ATHENA[1], "notify": True}, name="told-early")
    work_id = str(submitted(paused, "told-early").work_id)
    describe_until_finished(paused, "aws-athena", work_id)
    put_event(paused, *completion_event("aws-athena", work_id))
    eventually(
        lambda: paused.runtime.store.get("told-early").status is JobStatus.COMPLETE, "the event is taken"
    )

    execution = advance_until_done(paused, manual_clock, arn, step=1)

    assert execution["status"] == "SUCCEEDED"
    assert paused.runtime.store.get("told-early").try_count == 0
    awaited = [i for i in paused.invocations if i.function.endswith("AwaitNotification")]
    assert awaited[-1].error is not None and awaited[-1].error["errorType"] == "JobAlreadyFinished"


def test_events_about_work_no_job_has_or_about_polled_jobs_change_nothing(emulation: Emulation) -> None:
    stock_s3(emulation)
    execution = emulation.run({"provider": "aws-athena", "input": ATHENA[1]}, name="polled")
    job = emulation.runtime.store.get("polled")
    assert execution["status"] == "SUCCEEDED"

    put_event(emulation, *completion_event("aws-athena", "not-a-jobpoll-query"))
    put_event(emulation, *completion_event("aws-athena", str(job.work_id), "failed"))

    notified = eventually(
        lambda: (
            len(found := [i for i in emulation.invocations if i.function.endswith("NotifyJob")]) == 2
            and all(i.result or i.error for i in found)
            and found
        ),
        "both events are delivered",
    )
    results = sorted(json.dumps(i.result, sort_keys=True) for i in notified)
    assert results == sorted(
        [
            json.dumps(
                {"job_id": None, "work_id": "not-a-jobpoll-query", "delivered": False}, sort_keys=True
            ),
            json.dumps({"job_id": "polled", "status": "COMPLETE", "delivered": False}, sort_keys=True),
        ]
    )
    assert emulation.runtime.store.get("polled").status is JobStatus.COMPLETE


def test_the_simulated_service_announces_finished_work_so_a_notified_job_needs_no_poll(
    manual_clock: VirtualClock,
) -> None:
    with Emulation(clock=manual_clock, simulated_events=True) as emulation:
        arn = emulation.start(
            {"delay": 30, "notify": True, "notify_timeout_seconds": 120, "result": "ready"}, name="announced"
        )
        waiting_for_notification(emulation, "announced")

        manual_clock.advance(30)

        assert emulation.wait(arn)["status"] == "SUCCEEDED"
        job = emulation.runtime.store.get("announced")
        assert job.result["output"] == "ready"
        assert job.try_count == 0 and not polls(emulation)
        assert emulation.simulated_service is not None
        assert emulation.simulated_service.emitted == [{"work_id": job.work_id, "state": "SUCCEEDED"}]
