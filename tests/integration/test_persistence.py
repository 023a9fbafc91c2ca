"""The local stack's journal of the job table: every stored job version is journaled as moto stores it,
and a restart puts the last version of each into a new table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import boto3
from moto import mock_aws

from chalicelib.job import JobStatus
from chalicelib.store import DynamoDBJobStore
from factories import NOW, make_job
from jobpoll import persistence
from jobpoll.definition import table_properties
from jobpoll.moto_patches import atomic_dynamodb_writes, journaled_puts


def _table(name: str) -> DynamoDBJobStore:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    properties = table_properties()
    properties.pop("TimeToLiveSpecification")
    properties.pop("PointInTimeRecoverySpecification")
    dynamodb.create_table(TableName=name, **properties)
    return DynamoDBJobStore(name, dynamodb)


def test_a_restart_restores_the_last_version_of_each_job_and_only_the_journaled_tables(
    tmp_path: Path,
) -> None:
    journal = persistence.TableJournal(tmp_path, key="job_id")
    with mock_aws(), atomic_dynamodb_writes():
        store = _table("jobs")
        other = _table("other")
        assert journal.restore(store.dynamodb, "jobs") == 0
        with journaled_puts(journal.record):
            store.create(make_job("a"))
            store.update("a", lambda job: job.transition(JobStatus.RUNNING, NOW, try_count=2))
            store.create(make_job("b", status=JobStatus.COMPLETE))
            other.create(make_job("elsewhere"))
        store.create(make_job("after"))  # once the patch is gone, nothing is journaled
        before = store.get("a")
    with journal.path.open("a") as torn:
        torn.write('{"job_id": {"S": "c"}, "sta')  # a kill in the middle of a write
    with mock_aws():
        fresh = _table("jobs-2")
        assert journal.restore(fresh.dynamodb, "jobs-2") == 2
        assert fresh.get("a") == before and fresh.get("a").try_count == 2
        assert fresh.get("b").status is JobStatus.COMPLETE
        assert fresh.find("elsewhere") is None and fresh.find("after") is None
    assert len(journal.path.read_text().splitlines()) == 2  # compacted


def test_the_clock_keeps_its_origin_at_the_same_speed_and_fresh_forgets_it(tmp_path: Path) -> None:
    origin = NOW - timedelta(hours=1)
    persistence.save_clock(tmp_path, 100.0, origin)
    assert persistence.clock_origin(tmp_path, 100.0) == origin
    assert persistence.clock_origin(tmp_path, 10.0) is None  # another speed: a new clock
    persistence.clear(tmp_path)
    assert persistence.clock_origin(tmp_path, 100.0) is None
