from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import ConcurrentUpdate, JobAlreadyExists, JobNotFound
from chalicelib.job import Job, JobError, JobStatus, PollSettings
from chalicelib.store import JobStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def new_job(job_id: str = "job-1") -> Job:
    return Job(
        job_id=job_id,
        provider="simulated",
        request={"delay": 20, "fail": False},
        poll=PollSettings(wait_seconds=10, max_tries=3),
        status=JobStatus.QUEUED,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )


def test_a_stored_job_reads_back_whole(job_store: JobStore) -> None:
    job = dataclasses.replace(
        new_job(),
        status=JobStatus.FAILED,
        work_id="w-1",
        try_count=2,
        progress=0.25,
        result={"nested": [1, 2.5, None, "x"]},
        error=JobError("SimulatedFailure", "told to"),
        next_poll_at=NOW + timedelta(seconds=10),
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:job-1",
    )
    stored = job_store.create(job)
    assert stored.version == 1
    assert job_store.get("job-1") == stored


def test_the_record_carries_a_ttl_in_epoch_seconds(job_store: JobStore) -> None:
    job_store.create(new_job())
    item = job_store._dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "job-1"}})["Item"]
    assert int(item["ttl"]["N"]) == int((NOW + timedelta(days=7)).timestamp())


def test_creating_an_existing_id_is_refused_and_keeps_the_stored_job(job_store: JobStore) -> None:
    first = job_store.create(new_job())
    with pytest.raises(JobAlreadyExists):
        job_store.create(dataclasses.replace(new_job(), request={"delay": 99}))
    assert job_store.get("job-1") == first


def test_a_missing_job_is_a_named_error(job_store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        job_store.get("nope")
    assert job_store.find("nope") is None


def test_a_stale_write_is_refused(job_store: JobStore) -> None:
    read = job_store.create(new_job())
    job_store.save(dataclasses.replace(read, progress=0.5))
    with pytest.raises(ConcurrentUpdate):
        job_store.save(dataclasses.replace(read, progress=0.9))
    assert job_store.get("job-1").progress == 0.5


def test_two_concurrent_updates_of_one_job_are_both_kept(job_store: JobStore) -> None:
    job_store.create(new_job())
    both_read = threading.Barrier(2)

    def change_after_both_read(field: str, value: object):
        def change(job: Job) -> Job:
            if job.version == 1:  # the first attempt of each writer reads the same version
                both_read.wait(timeout=5)
            return dataclasses.replace(job, **{field: value})

        return change

    writers = [
        threading.Thread(target=job_store.update, args=("job-1", change_after_both_read("try_count", 7))),
        threading.Thread(target=job_store.update, args=("job-1", change_after_both_read("progress", 0.75))),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=10)

    final = job_store.get("job-1")
    assert (final.try_count, final.progress) == (7, 0.75)
    assert final.version == 3  # two writes landed, one after the other


def test_update_gives_up_with_a_named_error_when_conflicts_never_end(job_store: JobStore) -> None:
    job_store.create(new_job())

    def conflicting(job: Job) -> Job:
        job_store.save(job_store.get(job.job_id))  # someone else writes first, every time
        return dataclasses.replace(job, progress=0.1)

    with pytest.raises(ConcurrentUpdate):
        job_store.update("job-1", conflicting, attempts=3)
