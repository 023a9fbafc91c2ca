"""The store port's contract: the same cases against the DynamoDB store (on moto) and the in-memory one."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest

from chalicelib.errors import ConcurrentUpdate, JobAlreadyExists, JobNotFound
from chalicelib.job import Job, JobError, JobStatus
from chalicelib.memory_store import InMemoryJobStore
from chalicelib.results import InMemoryResultStore, ResultStore, S3ResultStore, StoredResult
from chalicelib.store import DynamoDBJobStore, JobStore
from factories import NOW, make_job


def new_job(job_id: str = "job-1") -> Job:
    return make_job(job_id, request={"delay": 20, "fail": False})


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[JobStore]:
    """Each store the port has: DynamoDB (moto) and in-memory."""
    if request.param == "memory":
        yield InMemoryJobStore()
    else:
        yield request.getfixturevalue("job_store")


@pytest.fixture(params=["dynamodb+s3", "memory"])
def offloading(request: pytest.FixtureRequest) -> Iterator[tuple[JobStore, ResultStore]]:
    """Each store with a result store for results over 1 KiB: DynamoDB with S3 (moto), in-memory."""
    results: ResultStore
    if request.param == "memory":
        results = InMemoryResultStore()
        yield InMemoryJobStore(results, result_threshold_bytes=1024), results
    else:
        table = request.getfixturevalue("job_store")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="results")
        results = S3ResultStore("results", s3)
        yield DynamoDBJobStore(table.table_name, table.dynamodb, results, 1024), results


def test_a_result_over_the_threshold_is_kept_in_the_result_store(
    offloading: tuple[JobStore, ResultStore],
) -> None:
    store, results = offloading
    job = store.create(new_job())
    big, small = {"text": "x" * 2000}, {"text": "x" * 10}
    saved = store.save(dataclasses.replace(job, status=JobStatus.COMPLETE, result=big))
    assert saved.result is None and saved.stored_result is not None
    assert store.get("job-1") == saved
    assert json.loads(results.get(saved.stored_result.key)) == big
    store.create(new_job("job-2"))
    kept = store.update("job-2", lambda j: dataclasses.replace(j, status=JobStatus.COMPLETE, result=small))
    assert (kept.result, kept.stored_result) == (small, None)


def test_a_stored_job_reads_back_whole(store: JobStore) -> None:
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
        stored_result=StoredResult("results/job-1/r.json", 300_000),
        revoked_shares=("0123456789abcdef", "fedcba9876543210"),
        task_id="t-1",
        task_payload={"workId": "w-42", "isPollTask": True, "engineConfig": {"pollSeconds": 10}},
    )
    stored = store.create(job)
    assert stored.version == 1
    assert store.get("job-1") == stored


def test_the_record_carries_a_ttl_in_epoch_seconds(job_store: DynamoDBJobStore) -> None:
    job_store.create(new_job())
    item = job_store.dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "job-1"}})["Item"]
    assert int(item["ttl"]["N"]) == int((NOW + timedelta(days=7)).timestamp())


def test_creating_an_existing_id_is_refused_and_keeps_the_stored_job(store: JobStore) -> None:
    first = store.create(new_job())
    with pytest.raises(JobAlreadyExists):
        store.create(dataclasses.replace(new_job(), request={"delay": 99}))
    assert store.get("job-1") == first


def test_a_missing_job_is_a_named_error(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        store.get("nope")
    assert store.find("nope") is None


def test_a_stale_write_is_refused(store: JobStore) -> None:
    read = store.create(new_job())
    store.save(dataclasses.replace(read, progress=0.5))
    with pytest.raises(ConcurrentUpdate) as lost:
        store.save(dataclasses.replace(read, progress=0.9))
    assert store.get("job-1").progress == 0.5
    assert lost.value.current == store.get("job-1")  # the winner, as the failed write found it


def test_an_update_that_loses_applies_its_change_to_the_winner_without_reading_again(store: JobStore) -> None:
    # The soak found a cancel answering 503 on a job its poll loop wrote every 0.4 s real: each read then
    # write lost. The failed write returns the job that won, so each further attempt is one write.
    read = store.create(new_job())
    store.save(dataclasses.replace(read, try_count=4))
    reads = 0
    get = store.get

    def counted_get(job_id: str) -> Job:
        nonlocal reads
        reads += 1
        return get(job_id)

    store.get = counted_get  # type: ignore[method-assign]
    updated = store.update("job-1", lambda job: dataclasses.replace(job, progress=0.5), current=read)
    assert (updated.try_count, updated.progress, updated.version, reads) == (4, 0.5, 3, 0)


def test_two_concurrent_updates_of_one_job_are_both_kept(store: JobStore) -> None:
    store.create(new_job())
    both_read = threading.Barrier(2)

    def change_after_both_read(field: str, value: object):
        def change(job: Job) -> Job:
            if job.version == 1:  # the first attempt of each writer reads the same version
                both_read.wait(timeout=5)
            return dataclasses.replace(job, **{field: value})

        return change

    writers = [
        threading.Thread(target=store.update, args=("job-1", change_after_both_read("try_count", 7))),
        threading.Thread(target=store.update, args=("job-1", change_after_both_read("progress", 0.75))),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=10)

    final = store.get("job-1")
    assert (final.try_count, final.progress) == (7, 0.75)
    assert final.version == 3  # two writes landed, one after the other


def test_update_gives_up_with_a_named_error_when_conflicts_never_end(store: JobStore) -> None:
    store.create(new_job())

    def conflicting(job: Job) -> Job:
        store.save(store.get(job.job_id))  # someone else writes first, every time
        return dataclasses.replace(job, progress=0.1)

    with pytest.raises(ConcurrentUpdate):
        store.update("job-1", conflicting, attempts=3)


def owned(job_id: str, minutes: int, owner: str = "alice", **changes: object) -> Job:
    return make_job(job_id, owner=owner, created_at=NOW + timedelta(minutes=minutes), **changes)


def test_a_listing_is_the_owners_jobs_newest_first_in_pages(store: JobStore) -> None:
    for minutes in range(5):
        store.create(owned(f"a{minutes}", minutes))
    store.create(owned("b0", 9, owner="bob"))

    first = store.list_by_owner("alice", limit=2)
    second = store.list_by_owner("alice", limit=2, after=first.last_key)
    third = store.list_by_owner("alice", limit=2, after=second.last_key)

    assert [job.job_id for job in first.jobs + second.jobs + third.jobs] == ["a4", "a3", "a2", "a1", "a0"]
    assert first.last_key is not None and second.last_key is not None
    assert third.last_key is None


def test_a_listing_keeps_only_the_status_and_the_live_jobs_asked_for(store: JobStore) -> None:
    store.create(owned("running", 0, status=JobStatus.RUNNING))
    store.create(owned("failed", 1, status=JobStatus.FAILED))
    store.create(owned("expired", 2, status=JobStatus.RUNNING, expires_at=NOW + timedelta(minutes=5)))

    running = store.list_by_owner("alice", limit=10, status=JobStatus.RUNNING)
    live = store.list_by_owner("alice", limit=10, live_at=NOW + timedelta(hours=1))

    assert [job.job_id for job in running.jobs] == ["expired", "running"]
    assert [job.job_id for job in live.jobs] == ["failed", "running"]
    assert running.last_key is None and live.last_key is None


def test_a_job_is_found_by_its_providers_work_id(store: JobStore) -> None:
    store.create(new_job("job-1"))
    stored = store.update("job-1", lambda job: dataclasses.replace(job, work_id="w-7"))
    assert store.find_by_work_id("w-7") == stored
    assert store.find_by_work_id("w-unknown") is None


def test_stale_unfinished_jobs_are_found_oldest_first_and_finished_ones_never(store: JobStore) -> None:
    for number, status in enumerate(
        [JobStatus.RUNNING, JobStatus.COMPLETE, JobStatus.QUEUED, JobStatus.CANCELED]
    ):
        at = NOW + timedelta(seconds=10 * (3 - number))
        store.create(make_job(f"job-{number}", status=status, created_at=at))
    recent = NOW + timedelta(seconds=100)
    store.create(make_job("job-recent", status=JobStatus.PENDING, created_at=recent))
    found = store.stale_unfinished(NOW + timedelta(seconds=60), limit=10)
    assert [job.job_id for job in found] == ["job-2", "job-0"]
    assert [job.job_id for job in store.stale_unfinished(NOW + timedelta(seconds=60), limit=1)] == ["job-2"]
    finished = store.update("job-2", lambda job: job.transition(JobStatus.FAILED, job.updated_at))
    assert finished.job_id not in [job.job_id for job in store.stale_unfinished(recent, limit=10)]
