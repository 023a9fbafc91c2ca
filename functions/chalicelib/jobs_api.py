"""The API's service layer: what the REST routes call. No HTTP here: plain data in, jobs out, named errors.

Every function takes the caller (`owner`) and what it needs (store, Step Functions client, clock, settings)
as arguments. A job another caller owns is reported as not found: its existence is not revealed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import rules
from .callbacks import Resolver, check_callback_target
from .clock import Clock, from_iso, real_seconds, to_iso
from .errors import (
    ConcurrentUpdate,
    ExecutionStartFailed,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidJobInput,
    InvalidRequest,
    JobAlreadyExists,
    JobAlreadyFinished,
    JobGone,
    JobNotFinished,
    JobNotFound,
    PayloadTooLarge,
    ShareLinkRevoked,
    SharingNotConfigured,
)
from .job import Job, JobError, JobStatus
from .job_request import JOB_ID_PATTERN, new_job, parse_job_request
from .providers import Providers, WorkerProvider, integral
from .results import ResultStore, discard
from .service import cancel_work
from .settings import Settings
from .shares import SHARE_ID_PATTERN, Share, new_share, verified_share
from .store import JobStore
from .views import retry_after_seconds
from .worker import work_message

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_SHARE_SECONDS = 30 * 24 * 3600
MAX_REVOKED_SHARES = 1000


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False: an Idempotency-Key replay answered with the job it created before


def parse_body(raw: bytes | str | None, settings: Settings) -> Any:
    """The request body as JSON; raises PayloadTooLarge or InvalidRequest."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"the body is {len(data)} bytes; at most {settings.max_body_bytes} are accepted"
        )
    if not data.strip():
        raise InvalidRequest("the body is empty: send the job request as a JSON object")
    try:
        return json.loads(data, parse_constant=_no_constants)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError):
        raise InvalidRequest("the body is not valid JSON") from None


def _no_constants(name: str) -> Any:
    raise InvalidRequest(f"the body is not valid JSON: {name} is not a JSON number")


def _request_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _job_id_for_key(owner: str, key: str) -> str:
    """One job per (owner, key): the key's job id is derived from both, so a conditional create decides."""
    return "k" + hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()[:39]


def _check_idempotency_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"'Idempotency-Key' must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return key


def execution_arn_for(state_machine_arn: str, job_id: str) -> str:
    """The ARN of the execution named `job_id` (an execution ARN is the state machine's, renamed)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + job_id


def submit_job(
    body: Any,
    *,
    owner: str,
    idempotency_key: str | None,
    store: JobStore,
    providers: Providers,
    sfn: Any,
    clock: Clock,
    settings: Settings,
    resolve: Resolver,
    sqs: Any = None,
    on_finished: Callable[[Job], Any] | None = None,
) -> Submitted:
    """Validate, store the job (QUEUED) and only then start it: an execution named by the job id, or, for
    a queue-mode provider, a message on the work queue. A job that cannot be started is FAILED (and given
    to `on_finished`)."""
    if isinstance(body, dict) and "job_id" in body:
        raise InvalidJobInput("'job_id' is assigned by the server")
    request = parse_job_request(body, providers, settings)
    if request.callback_url is not None:
        if not settings.callback_secret:
            raise InvalidJobInput("callbacks are not configured on this server (no signing secret)")
        check_callback_target(request.callback_url, allow_loopback=settings.local_mode, resolve=resolve)
    request_hash = _request_hash(body)
    start_execution = functools.partial(
        _start_execution, sfn=sfn, store=store, clock=clock, settings=settings, on_finished=on_finished
    )
    if idempotency_key is not None:
        job_id = _job_id_for_key(owner, _check_idempotency_key(idempotency_key))
    else:
        job_id = uuid.uuid4().hex
    try:
        job = store.create(new_job(job_id, request, clock, settings, owner, request_hash=request_hash))
    except JobAlreadyExists:
        existing = store.get(job_id)
        if idempotency_key is None or existing.owner != owner:
            raise
        if existing.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body; use a new key"
            ) from None
        if existing.is_expired(clock.now()):
            raise JobGone("the job this Idempotency-Key created has expired; use a new key") from None
        if (
            existing.status is JobStatus.QUEUED
            and existing.resumes == 0
            and not _runs_on_queue(request.provider, providers)
        ):
            # Maybe the first request stored the job and died before starting it. Starting again is safe:
            # Step Functions answers a start with a running execution's name and input with that execution.
            # But the reconciler may resume the same job meanwhile (a new execution): a conditional write
            # first, so that of the two only one starts a loop (the soak found both submitting the work).
            try:
                claimed = store.save(existing.amend(clock.now()))
            except ConcurrentUpdate:
                claimed = None
            if claimed is not None:
                start_execution(claimed, request.execution_input(job_id))
            existing = store.get(job_id)
        return Submitted(existing, created=False)
    if _runs_on_queue(request.provider, providers):
        _enqueue(job, sqs=sqs, store=store, clock=clock, settings=settings, on_finished=on_finished)
    else:
        start_execution(job, request.execution_input(job_id))
    return Submitted(job, created=True)


def _runs_on_queue(provider: str, providers: Providers) -> bool:
    return isinstance(providers.get(provider), WorkerProvider)


def retry_after(job: Job, clock: Clock, providers: Providers, settings: Settings) -> int:
    """The Retry-After for an unfinished job: until its next poll, or every 2 s for a queue-mode job.

    In real seconds, at least 1: it tells a real client how long to wait, whatever the clock's speed.
    """
    if _runs_on_queue(job.provider, providers):
        seconds = settings.queue_retry_after_seconds
    else:
        seconds = retry_after_seconds(job, clock.now(), settings.default_retry_after_seconds)
    return max(1, math.ceil(real_seconds(clock, seconds)))


def _enqueue(
    job: Job,
    *,
    sqs: Any,
    store: JobStore,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None,
) -> None:
    """Queue mode: a worker takes the job from the work queue (see worker.py)."""
    try:
        if not settings.work_queue_url:
            raise InvalidJobInput("queue mode is not configured here (no work queue)")
        sqs.send_message(QueueUrl=settings.work_queue_url, MessageBody=work_message(job.job_id))
    except (ClientError, BotoCoreError, InvalidJobInput) as exc:
        _mark_start_failed(job, exc, store, clock, on_finished)


def _start_execution(
    job: Job,
    execution_input: dict[str, Any],
    *,
    sfn: Any,
    store: JobStore,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None,
) -> None:
    """Start the execution named by the job id; if Step Functions refuses, mark the job FAILED."""
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn, name=job.job_id, input=json.dumps(execution_input)
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return  # started before (and maybe finished): the job record tells the rest
        _mark_start_failed(job, exc, store, clock, on_finished)
    except BotoCoreError as exc:
        _mark_start_failed(job, exc, store, clock, on_finished)


def _mark_start_failed(
    job: Job, exc: Exception, store: JobStore, clock: Clock, on_finished: Callable[[Job], Any] | None
) -> None:
    reason = f"the job did not start: {type(exc).__name__}: {exc}"[:300]
    error = JobError("ExecutionStartFailed", reason)

    def fail(latest: Job) -> Job:
        return rules.failed(latest, clock.now(), error)

    try:
        failed = store.update(job.job_id, fail, current=job)
    except IllegalTransition:
        pass
    else:
        if on_finished is not None:
            on_finished(failed)
    raise ExecutionStartFailed(reason) from exc


def visible_job(
    job_id: str,
    *,
    owner: str,
    store: JobStore,
    clock: Clock,
    operator: bool = False,
    results: ResultStore | None = None,
) -> Job:
    """The caller's job (an operator's: anyone's); JobNotFound for a malformed id, no job or another
    caller's; JobGone if expired."""
    if not JOB_ID_PATTERN.match(job_id):
        raise JobNotFound(f"no job {job_id[:80]!r}")
    job = store.find(job_id)
    if job is None or (job.owner != owner and not operator):
        raise JobNotFound(f"no job {job_id!r}")
    return _unexpired(job, clock.now(), results)


def _unexpired(job: Job, now: datetime, results: ResultStore | None) -> Job:
    """The job unless it has expired (JobGone). An expired job's result object goes with it (the bucket's
    lifecycle rule removes those of jobs nobody asks for again)."""
    if job.is_expired(now):
        if results is not None:
            discard(results, job.stored_result)
        raise JobGone(f"job {job.job_id} expired at its retention limit")
    return job


@dataclass(frozen=True)
class ResultAnswer:
    """A finished job's result: the value itself, or (a large result) a short-lived URL to GET it from."""

    value: Any = None
    url: str | None = None


def _result_of(job: Job, results: ResultStore | None, settings: Settings) -> ResultAnswer:
    if not job.status.is_terminal:
        raise JobNotFinished(f"job {job.job_id} is {job.status.value}; poll it until it is COMPLETE")
    if job.result_deleted_at is not None:
        raise JobGone(f"the result of job {job.job_id} was deleted")
    if job.status is not JobStatus.COMPLETE:
        raise JobNotFinished(f"job {job.job_id} is {job.status.value}: it has no result")
    if job.stored_result is not None:
        if results is None:
            raise JobGone(f"the result of job {job.job_id} is in a result store this server cannot reach")
        return ResultAnswer(url=results.url(job.stored_result.key, settings.result_url_seconds))
    return ResultAnswer(value=job.result)


def job_result(
    job_id: str,
    *,
    owner: str,
    store: JobStore,
    clock: Clock,
    settings: Settings,
    results: ResultStore | None = None,
    operator: bool = False,
) -> ResultAnswer:
    """The finished job's result; JobNotFinished while it runs, JobGone once deleted or expired."""
    job = visible_job(job_id, owner=owner, store=store, clock=clock, operator=operator, results=results)
    return _result_of(job, results, settings)


def _share_seconds(body: Any, settings: Settings) -> int:
    if body is None:
        return settings.default_share_seconds
    if not isinstance(body, dict) or set(body) - {"expires_in_seconds"}:
        raise InvalidRequest("the body must be {} or {'expires_in_seconds': N}")
    seconds = integral(body.get("expires_in_seconds", settings.default_share_seconds))
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_SHARE_SECONDS:
        raise InvalidRequest(f"'expires_in_seconds' must be a whole number from 1 to {MAX_SHARE_SECONDS}")
    return seconds


def share_result(
    job_id: str, body: Any, *, owner: str, store: JobStore, clock: Clock, settings: Settings, share_key: str
) -> Share:
    """A new share link of the caller's job's result, expiring after the body's `expires_in_seconds`
    (default: settings) or with the job, whichever comes first."""
    if not share_key:
        raise SharingNotConfigured("share links are not configured on this server (no share key)")
    job = visible_job(job_id, owner=owner, store=store, clock=clock)
    seconds = _share_seconds(body, settings)
    return new_share(job.job_id, min(clock.now() + timedelta(seconds=seconds), job.expires_at))


def revoke_share(job_id: str, share_id: str, *, owner: str, store: JobStore, clock: Clock) -> Job:
    """Revoke a share link of the caller's job: a marker on the job, checked whenever the link is used."""
    job = visible_job(job_id, owner=owner, store=store, clock=clock)
    if not SHARE_ID_PATTERN.match(share_id):
        raise InvalidRequest("a share id is 16 hexadecimal digits (the `id` its creation answered)")
    if share_id not in job.revoked_shares and len(job.revoked_shares) >= MAX_REVOKED_SHARES:
        raise InvalidRequest(f"job {job_id} has {MAX_REVOKED_SHARES} revoked share links already")
    return store.update(
        job_id, lambda current: rules.share_revoked(current, share_id, clock.now()), current=job
    )


def shared_result(
    token: str,
    *,
    store: JobStore,
    clock: Clock,
    settings: Settings,
    share_key: str,
    results: ResultStore | None = None,
) -> ResultAnswer:
    """The result a share link grants: ShareLinkInvalid (forged, altered, malformed), ShareLinkExpired,
    ShareLinkRevoked, or the job's own answers (JobGone once it or its result is gone)."""
    now = clock.now()
    share = verified_share(token, share_key, now)
    job = store.find(share.job_id)
    if job is None:
        raise JobGone(f"the shared job {share.job_id} no longer exists")
    if share.share_id in job.revoked_shares:
        raise ShareLinkRevoked("the job's owner revoked this share link")
    return _result_of(_unexpired(job, now, results), results, settings)


@dataclass(frozen=True)
class Deleted:
    job: Job
    canceled: bool  # True: the job was running and is now CANCELED; False: its stored output was deleted


def cancel_or_delete_result(
    job_id: str,
    *,
    owner: str,
    store: JobStore,
    providers: Providers,
    sfn: Any,
    clock: Clock,
    settings: Settings,
    on_finished: Callable[[Job], Any] | None = None,
    operator: bool = False,
    results: ResultStore | None = None,
) -> Deleted:
    """Cancel a running job, or delete a finished job's output (its owner only).

    The cancel is a conditional write: against a job finishing at the same moment exactly one write wins.
    When the job finished first, JobAlreadyFinished carries the winner's state. An operator cancels any
    tenant's job, and the job records who did.
    """
    job = visible_job(job_id, owner=owner, store=store, clock=clock, operator=operator, results=results)
    by_operator = job.owner != owner
    if job.status.is_terminal:
        if by_operator:
            raise JobAlreadyFinished(f"job {job_id} is finished: only its owner deletes its output", job=job)
        return Deleted(_delete_output(job, store, clock, results), canceled=False)
    reason = f"canceled by the operator {owner}" if by_operator else "canceled by its owner"

    try:
        job = store.update(job_id, lambda current: rules.canceled(current, clock.now(), reason), current=job)
    except IllegalTransition:
        winner = store.get(job_id)
        raise JobAlreadyFinished(
            f"job {job_id} finished ({winner.status.value}) before it could be canceled", job=winner
        ) from None
    _stop_execution(job, sfn, settings, reason)
    cancel_work(job, providers)
    if on_finished is not None:
        job = on_finished(job) or job
    return Deleted(job, canceled=True)


def _stop_execution(job: Job, sfn: Any, settings: Settings, reason: str) -> None:
    arn = job.execution_arn or execution_arn_for(settings.state_machine_arn, job.job_id)
    # Best effort: the job is CANCELED already, and the execution's next poll sees that and ends. (moto 5.2
    # raises AttributeError for an execution whose worker has not started yet.)
    with contextlib.suppress(ClientError, BotoCoreError, AttributeError):
        sfn.stop_execution(executionArn=arn, error="JobCanceled", cause=reason)


def _delete_output(job: Job, store: JobStore, clock: Clock, results: ResultStore | None) -> Job:
    """The job without its output; a large result's object is removed once the record no longer names it."""
    if job.result_deleted_at is not None:
        return job
    deleted = store.update(
        job.job_id, lambda current: rules.output_deleted(current, clock.now()), current=job
    )
    if results is not None:
        discard(results, job.stored_result)  # a finished job's result never changes: this is the one
    return deleted


@dataclass(frozen=True)
class Listing:
    jobs: list[Job]
    next_token: str | None


# A page token: the last job's creation time (epoch milliseconds, 13 digits) and its id. Any token of this
# shape is a valid place to continue from, so the OpenAPI document describes exactly what is accepted.
PAGE_TOKEN_PATTERN = re.compile(r"^([0-9]{13})-([A-Za-z0-9_-]{1,64})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _encode_token(key: Mapping[str, str]) -> str:
    created_ms = (from_iso(key["created_at"]) - _EPOCH) // _MILLISECOND  # exact: no float rounding
    return f"{created_ms:013d}-{key['job_id']}"


def _decode_token(token: str, owner: str) -> dict[str, str]:
    match = PAGE_TOKEN_PATTERN.match(token)
    if match is None:
        raise InvalidRequest("'next' is not a page token this API issued")
    created_ms, job_id = match.groups()
    return {"created_at": to_iso(_EPOCH + int(created_ms) * _MILLISECOND), "job_id": job_id, "owner": owner}


def parse_status(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in JobStatus)
        raise InvalidRequest(f"'status' must be one of {known}") from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(value)


def list_jobs(
    *,
    owner: str,
    status: JobStatus | None,
    limit: int,
    token: str | None,
    store: JobStore,
    now: datetime,
) -> Listing:
    """The caller's live jobs, newest first, one page; `next_token` leads to the next page."""
    after = _decode_token(token, owner) if token is not None else None
    page = store.list_by_owner(owner, limit=limit, status=status, live_at=now, after=after)
    return Listing(page.jobs, _encode_token(page.last_key) if page.last_key else None)
