"""The job store: a port (`JobStore`) and its DynamoDB adapter (`DynamoDBJobStore`).

Every write is conditional: `create` only where no job has the id, `save` only where the stored version is the
one the writer read. `update` wraps read-modify-write in that check and retries on conflict, so two writers
never lose an update. `memory_store.InMemoryJobStore` keeps the same semantics without AWS (unit tests);
tests/integration/test_store_contract.py runs the same cases against both.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .clock import from_iso, to_iso
from .errors import ConcurrentUpdate, JobAlreadyExists, JobNotFound
from .job import CallbackRecord, Job, JobError, JobStatus, PollSettings
from .results import ResultStore, StoredResult, discard, encoded, new_key
from .settings import DEFAULT_RESULT_THRESHOLD_BYTES

# Attribute names. `ttl` holds epoch seconds for DynamoDB's time-to-live.
KEY = "job_id"
TTL_ATTRIBUTE = "ttl"
# The global secondary index on owner + created_at (infra/template.json): a caller's jobs, newest first.
OWNER_INDEX = "by-owner"
PAGE_KEY_ATTRIBUTES = (KEY, "owner", "created_at")
# The index on the provider's work id (keys only): which job a service's event is about.
WORK_INDEX = "by-work-id"
# The sparse index of unfinished jobs by last update (keys only): only unfinished jobs carry `open_shard`,
# so the reconciler reads stale unfinished jobs, never the finished ones. The shard spreads writes over a
# few partitions.
UNFINISHED_INDEX = "by-unfinished"
UNFINISHED_SHARDS = 4


@dataclass(frozen=True)
class JobPage:
    """One page of a listing; `last_key` is where the next page starts (None: no more)."""

    jobs: list[Job]
    last_key: dict[str, str] | None


def _to_item(job: Job) -> dict[str, Any]:
    item: dict[str, Any] = {
        KEY: {"S": job.job_id},
        "status": {"S": job.status.value},
        "provider": {"S": job.provider},
        "owner": {"S": job.owner},
        "request": {"S": json.dumps(job.request, separators=(",", ":"))},
        "poll": {"S": json.dumps(job.poll.to_dict(), separators=(",", ":"))},
        "generation": {"N": str(job.generation)},
        "resumes": {"N": str(job.resumes)},
        "try_count": {"N": str(job.try_count)},
        "progress": {"N": repr(float(job.progress))},
        "created_at": {"S": to_iso(job.created_at)},
        "updated_at": {"S": to_iso(job.updated_at)},
        "expires_at": {"S": to_iso(job.expires_at)},
        TTL_ATTRIBUTE: {"N": str(int(job.expires_at.timestamp()))},
        "version": {"N": str(job.version)},
    }
    if not job.status.is_terminal:
        item["open_shard"] = {"S": open_shard(job.job_id)}
    if job.work_id is not None:
        item["work_id"] = {"S": job.work_id}
    if job.provider_status is not None:
        item["provider_status"] = {"S": job.provider_status}
    if job.result is not None:
        item["result"] = {"S": json.dumps(job.result, separators=(",", ":"))}
    if job.error is not None:
        item["error"] = {"S": json.dumps(job.error.to_dict(), separators=(",", ":"))}
    if job.next_poll_at is not None:
        item["next_poll_at"] = {"S": to_iso(job.next_poll_at)}
    if job.execution_arn is not None:
        item["execution_arn"] = {"S": job.execution_arn}
    if job.callback_url is not None:
        item["callback_url"] = {"S": job.callback_url}
    if job.callback is not None:
        item["callback"] = {"S": json.dumps(job.callback.to_dict(), separators=(",", ":"))}
    if job.request_hash is not None:
        item["request_hash"] = {"S": job.request_hash}
    if job.result_deleted_at is not None:
        item["result_deleted_at"] = {"S": to_iso(job.result_deleted_at)}
    if job.task_id is not None:
        item["task_id"] = {"S": job.task_id}
    if job.task_payload is not None:
        item["task_payload"] = {"S": json.dumps(job.task_payload, separators=(",", ":"))}
    if job.notify_token is not None:
        item["notify_token"] = {"S": job.notify_token}
    if job.lease_owner is not None:
        item["lease_owner"] = {"S": job.lease_owner}
    if job.lease_expires_at is not None:
        item["lease_expires_at"] = {"S": to_iso(job.lease_expires_at)}
    if job.partial_output is not None:
        item["partial_output"] = {"S": job.partial_output}
    if job.notes:
        item["notes"] = {"L": [{"S": note} for note in job.notes]}
    if job.stored_result is not None:
        item["stored_result"] = {"S": json.dumps(job.stored_result.to_dict(), separators=(",", ":"))}
    if job.revoked_shares:
        item["revoked_shares"] = {"L": [{"S": share} for share in job.revoked_shares]}
    return item


def _from_item(item: dict[str, Any]) -> Job:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    result_text = text("result")
    error_text = text("error")
    next_poll_text = text("next_poll_at")
    callback_text = text("callback")
    deleted_text = text("result_deleted_at")
    stored_text = text("stored_result")
    return Job(
        job_id=item[KEY]["S"],
        status=JobStatus(item["status"]["S"]),
        provider=item["provider"]["S"],
        owner=item["owner"]["S"],
        request=json.loads(item["request"]["S"]),
        poll=PollSettings.from_dict(json.loads(item["poll"]["S"])),
        generation=int(item["generation"]["N"]),
        resumes=int(item.get("resumes", {}).get("N", 0)),
        task_id=text("task_id"),
        task_payload=json.loads(payload) if (payload := text("task_payload")) else None,
        notify_token=text("notify_token"),
        lease_owner=text("lease_owner"),
        lease_expires_at=from_iso(lease) if (lease := text("lease_expires_at")) else None,
        partial_output=text("partial_output"),
        notes=tuple(note["S"] for note in item.get("notes", {}).get("L", [])),
        try_count=int(item["try_count"]["N"]),
        progress=float(item["progress"]["N"]),
        created_at=from_iso(item["created_at"]["S"]),
        updated_at=from_iso(item["updated_at"]["S"]),
        expires_at=from_iso(item["expires_at"]["S"]),
        version=int(item["version"]["N"]),
        work_id=text("work_id"),
        provider_status=text("provider_status"),
        result=json.loads(result_text) if result_text is not None else None,
        error=JobError.from_dict(json.loads(error_text)) if error_text is not None else None,
        next_poll_at=from_iso(next_poll_text) if next_poll_text is not None else None,
        execution_arn=text("execution_arn"),
        callback_url=text("callback_url"),
        callback=CallbackRecord.from_dict(json.loads(callback_text)) if callback_text is not None else None,
        request_hash=text("request_hash"),
        result_deleted_at=from_iso(deleted_text) if deleted_text is not None else None,
        stored_result=StoredResult.from_dict(json.loads(stored_text)) if stored_text is not None else None,
        revoked_shares=tuple(share["S"] for share in item.get("revoked_shares", {}).get("L", [])),
    )


def open_shard(job_id: str) -> str:
    """The unfinished-jobs index partition of a job."""
    return f"open-{zlib.crc32(job_id.encode()) % UNFINISHED_SHARDS}"


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobStore(Protocol):
    """Where jobs are kept. Writes are conditional; `change` functions given to `update` must be pure."""

    def create(self, job: Job) -> Job:
        """Store a new job (version 1); raises JobAlreadyExists if the id is taken."""
        ...

    def get(self, job_id: str) -> Job:
        """The stored job; raises JobNotFound."""
        ...

    def find(self, job_id: str) -> Job | None:
        """The stored job, or None."""
        ...

    def find_by_work_id(self, work_id: str) -> Job | None:
        """The job whose provider work has this id, or None."""
        ...

    def save(self, job: Job) -> Job:
        """Write `job` if the stored version is `job.version`; the stored job, or ConcurrentUpdate."""
        ...

    def stale_unfinished(self, updated_before: datetime, limit: int) -> list[Job]:
        """Unfinished jobs last updated before `updated_before`, oldest first, at most `limit`."""
        ...

    def update(
        self, job_id: str, change: Callable[[Job], Job], attempts: int = 8, current: Job | None = None
    ) -> Job:
        """Apply `change` and save conditionally, re-reading and applying again on a conflict."""
        ...

    def list_by_owner(
        self,
        owner: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        live_at: datetime | None = None,
        after: dict[str, str] | None = None,
        max_queries: int = 10,
    ) -> JobPage:
        """The owner's jobs, newest first, one page."""
        ...


class ConditionalStore:
    """`save`, `find` and the retrying `update` of the port, on top of a store's own `get` and `_write`.

    A result over `result_threshold_bytes` is written to `results` (when given) and the job keeps only
    where it is (`stored_result`), so the record stays small.
    """

    results: ResultStore | None = None
    result_threshold_bytes: int = DEFAULT_RESULT_THRESHOLD_BYTES

    def get(self, job_id: str) -> Job:
        raise NotImplementedError

    def _write(self, job: Job) -> Job:
        """Store `job` with the next version if the stored version is `job.version`; else ConcurrentUpdate."""
        raise NotImplementedError

    def save(self, job: Job) -> Job:
        """Write `job` if the stored version is `job.version`; the stored job, or ConcurrentUpdate."""
        offloaded = self._offloaded(job)
        try:
            return self._write(offloaded)
        except ConcurrentUpdate:
            if self.results is not None and offloaded.stored_result is not job.stored_result:
                discard(self.results, offloaded.stored_result)  # this write lost: its object is nobody's
            raise

    def _offloaded(self, job: Job) -> Job:
        if self.results is None or job.result is None:
            return job
        body = encoded(job.result)
        if len(body) <= self.result_threshold_bytes:
            return job
        stored = StoredResult(new_key(job.job_id), len(body))
        self.results.put(stored.key, body)
        return dataclasses.replace(job, result=None, stored_result=stored)

    def find(self, job_id: str) -> Job | None:
        """The stored job, or None."""
        try:
            return self.get(job_id)
        except JobNotFound:
            return None

    def update(
        self, job_id: str, change: Callable[[Job], Job], attempts: int = 8, current: Job | None = None
    ) -> Job:
        """Apply `change` and save conditionally; on a conflict re-read and apply again.

        `current` is the job as the caller already read it (saves one read when nobody wrote since).
        `change` must be a pure function of the job it is given: it may run more than once.
        """
        job = current if current is not None else self.get(job_id)
        for _ in range(attempts - 1):
            try:
                return self.save(change(job))
            except ConcurrentUpdate as lost:
                # The winner's job where the failed write returned it: one round trip per attempt, not two.
                job = lost.current if lost.current is not None else self.get(job_id)
        return self.save(change(job))


class DynamoDBJobStore(ConditionalStore):
    """Jobs in one DynamoDB table, keyed by `job_id`."""

    def __init__(
        self,
        table_name: str,
        dynamodb: Any,
        results: ResultStore | None = None,
        result_threshold_bytes: int = DEFAULT_RESULT_THRESHOLD_BYTES,
    ) -> None:
        self.table_name = table_name
        self.dynamodb = dynamodb
        self.results = results
        self.result_threshold_bytes = result_threshold_bytes

    def create(self, job: Job) -> Job:
        """Store a new job (version 1); raises JobAlreadyExists if the id is taken."""
        stored = _with_version(job, 1)
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=_to_item(stored),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": KEY},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise JobAlreadyExists(f"job {job.job_id} exists already") from exc
            raise
        return stored

    def get(self, job_id: str) -> Job:
        """The stored job; raises JobNotFound."""
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key={KEY: {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in response:
            raise JobNotFound(f"no job {job_id}")
        return _from_item(response["Item"])

    def find_by_work_id(self, work_id: str) -> Job | None:
        """The job whose provider work has this id, or None (the index is eventually consistent: a job
        submitted a moment ago may not be found yet)."""
        response = self.dynamodb.query(
            TableName=self.table_name,
            IndexName=WORK_INDEX,
            KeyConditionExpression="#work = :work",
            ExpressionAttributeNames={"#work": "work_id"},
            ExpressionAttributeValues={":work": {"S": work_id}},
            Limit=1,
        )
        items = response.get("Items", [])
        return self.find(items[0][KEY]["S"]) if items else None

    def stale_unfinished(self, updated_before: datetime, limit: int) -> list[Job]:
        """Unfinished jobs last updated before `updated_before`, oldest first: a Query per shard of the
        sparse unfinished index (finished jobs are not in it), never a Scan."""
        keys: list[tuple[str, str]] = []
        for shard in range(UNFINISHED_SHARDS):
            response = self.dynamodb.query(
                TableName=self.table_name,
                IndexName=UNFINISHED_INDEX,
                KeyConditionExpression="#shard = :shard AND #updated < :before",
                ExpressionAttributeNames={"#shard": "open_shard", "#updated": "updated_at"},
                ExpressionAttributeValues={
                    ":shard": {"S": f"open-{shard}"},
                    ":before": {"S": to_iso(updated_before)},
                },
                Limit=limit,
            )
            keys += [(item["updated_at"]["S"], item[KEY]["S"]) for item in response.get("Items", [])]
        jobs = (self.find(job_id) for _, job_id in sorted(keys)[:limit])
        return [job for job in jobs if job is not None and not job.status.is_terminal]

    def list_by_owner(
        self,
        owner: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        live_at: datetime | None = None,
        after: dict[str, str] | None = None,
        max_queries: int = 10,
    ) -> JobPage:
        """The owner's jobs, newest first: a Query on the owner index, never a Scan.

        `status` keeps only jobs in that status, `live_at` only jobs not expired at that time; `after` is a
        page's `last_key`. Filters apply after DynamoDB's Limit, so this queries again (at most
        `max_queries` times) until the page is full.
        """
        names = {"#owner": "owner"}
        values: dict[str, Any] = {":owner": {"S": owner}}
        filters = []
        if status is not None:
            names["#status"] = "status"
            values[":status"] = {"S": status.value}
            filters.append("#status = :status")
        if live_at is not None:
            names["#expires"] = "expires_at"
            values[":now"] = {"S": to_iso(live_at)}
            filters.append("#expires > :now")
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        if after is not None:
            query["ExclusiveStartKey"] = {name: {"S": after[name]} for name in PAGE_KEY_ATTRIBUTES}
        jobs: list[Job] = []
        last_evaluated: dict[str, Any] | None = None
        for _ in range(max_queries):
            response = self.dynamodb.query(**query)
            items = response.get("Items", [])
            last_evaluated = response.get("LastEvaluatedKey")
            for index, item in enumerate(items):
                jobs.append(_from_item(item))
                if len(jobs) == limit:
                    more = last_evaluated is not None or index < len(items) - 1
                    return JobPage(jobs, _page_key(item) if more else None)
            if last_evaluated is None:
                return JobPage(jobs, None)
            query["ExclusiveStartKey"] = last_evaluated
        return JobPage(jobs, _page_key(last_evaluated) if last_evaluated else None)

    def _write(self, job: Job) -> Job:
        """Write `job` over the stored one if nobody changed it since it was read (same version).

        Returns the stored job with its new version; raises ConcurrentUpdate when the check fails.
        """
        stored = _with_version(job, job.version + 1)
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=_to_item(stored),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(job.version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                winner = exc.response.get("Item")
                raise ConcurrentUpdate(
                    f"job {job.job_id} changed since version {job.version} was read",
                    _from_item(winner) if winner else None,
                ) from exc
            raise
        return stored


def _page_key(item: dict[str, Any]) -> dict[str, str]:
    return {name: item[name]["S"] for name in PAGE_KEY_ATTRIBUTES}


def _with_version(job: Job, version: int) -> Job:
    return dataclasses.replace(job, version=version)
