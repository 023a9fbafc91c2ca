"""Large results kept as objects, and share links of results: on the in-memory stores, no AWS."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from chalicelib import jobs_api, rules, worker
from chalicelib.bootstrap import enabled
from chalicelib.errors import (
    ConcurrentUpdate,
    InvalidRequest,
    JobGone,
    ShareLinkExpired,
    ShareLinkInvalid,
    ShareLinkRevoked,
    SharingNotConfigured,
)
from chalicelib.job import JobStatus
from chalicelib.memory_store import InMemoryJobStore
from chalicelib.providers import PollResult, WorkState, registry
from chalicelib.results import InMemoryResultStore
from chalicelib.settings import Settings
from chalicelib.shares import Share
from factories import NOW, make_job
from jobpoll.clocks import VirtualClock

THRESHOLD = 1024
SETTINGS = Settings(result_threshold_bytes=THRESHOLD, result_url_seconds=60)
KEY = "k" * 64
OWNER = "local"


@pytest.fixture
def results() -> InMemoryResultStore:
    return InMemoryResultStore()


@pytest.fixture
def store(results: InMemoryResultStore) -> InMemoryJobStore:
    return InMemoryJobStore(results, result_threshold_bytes=THRESHOLD)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


def completed(store: InMemoryJobStore, result: object, job_id: str = "j1") -> None:
    job = store.create(make_job(job_id, status=JobStatus.RUNNING, work_id="w"))
    store.update(
        job_id,
        lambda j: rules.after_poll(j, PollResult(WorkState.SUCCEEDED, result=result), NOW),
        current=job,
    )


def test_a_result_over_the_threshold_is_an_object_and_the_record_keeps_only_where_it_is(
    store: InMemoryJobStore, results: InMemoryResultStore
) -> None:
    big = {"text": "x" * 5000}
    completed(store, big)
    job = store.get("j1")
    assert job.result is None and job.stored_result is not None and job.has_result
    assert json.loads(results.get(job.stored_result.key)) == big
    assert job.stored_result.size_bytes == len(results.get(job.stored_result.key))


def test_a_result_at_the_threshold_stays_on_the_record(
    store: InMemoryJobStore, results: InMemoryResultStore
) -> None:
    small = "y" * (THRESHOLD - 2)  # with its quotes: exactly the threshold
    completed(store, small)
    assert store.get("j1").result == small and store.get("j1").stored_result is None
    assert results.objects == {}


def test_a_write_that_loses_its_conditional_check_leaves_no_object(
    store: InMemoryJobStore, results: InMemoryResultStore
) -> None:
    job = store.create(make_job(status=JobStatus.RUNNING, work_id="w"))
    store.save(job)  # someone else wrote first: `job` is stale now
    stale_finish = rules.after_poll(job, PollResult(WorkState.SUCCEEDED, result="z" * 5000), NOW)
    with pytest.raises(ConcurrentUpdate):
        store.save(stale_finish)
    assert results.objects == {}


def test_the_api_answers_a_stored_result_with_a_short_lived_url(
    store: InMemoryJobStore, results: InMemoryResultStore, clock: VirtualClock
) -> None:
    completed(store, "x" * 5000)
    answer = jobs_api.job_result(
        "j1", owner=OWNER, store=store, clock=clock, settings=SETTINGS, results=results
    )
    key = store.get("j1").stored_result.key  # type: ignore[union-attr]
    assert (answer.value, answer.url) == (None, f"memory://{key}?expires=60")
    completed(store, "small", job_id="j2")
    inline = jobs_api.job_result(
        "j2", owner=OWNER, store=store, clock=clock, settings=SETTINGS, results=results
    )
    assert (inline.value, inline.url) == ("small", None)


def test_deleting_the_result_removes_its_object(
    store: InMemoryJobStore, results: InMemoryResultStore, clock: VirtualClock
) -> None:
    completed(store, "x" * 5000)
    deleted = jobs_api.cancel_or_delete_result(
        "j1",
        owner=OWNER,
        store=store,
        providers={},
        sfn=None,
        clock=clock,
        settings=SETTINGS,
        results=results,
    )
    assert not deleted.canceled and deleted.job.stored_result is None and deleted.job.result_deleted_at
    assert results.objects == {}
    with pytest.raises(JobGone):
        jobs_api.job_result("j1", owner=OWNER, store=store, clock=clock, settings=SETTINGS, results=results)


def test_an_expired_jobs_result_object_is_removed_when_the_job_is_next_asked_for(
    store: InMemoryJobStore, results: InMemoryResultStore, clock: VirtualClock
) -> None:
    completed(store, "x" * 5000)
    clock.advance(timedelta(days=7).total_seconds())
    with pytest.raises(JobGone):
        jobs_api.job_result("j1", owner=OWNER, store=store, clock=clock, settings=SETTINGS, results=results)
    assert results.objects == {}


def test_a_queue_worker_with_a_large_result_completes_the_job(
    store: InMemoryJobStore, results: InMemoryResultStore, clock: VirtualClock
) -> None:
    class BigWorker:
        name = "big"

        def validate(self, request: object) -> object:
            return request

        def run(self, request: object, report: object) -> str:
            return "w" * 5000

    store.create(make_job(provider="big"))
    outcome = worker.run_job(
        "j1", worker_id="w1", store=store, providers={"big": BigWorker()}, clock=clock, settings=SETTINGS
    )
    job = store.get("j1")
    assert outcome == "complete" and job.status is JobStatus.COMPLETE
    assert job.stored_result is not None and json.loads(results.get(job.stored_result.key)) == "w" * 5000


# ---- Share links ----------------------------------------------------------------------------------------


def share(store: InMemoryJobStore, clock: VirtualClock, body: object = None) -> Share:
    return jobs_api.share_result(
        "j1", body, owner=OWNER, store=store, clock=clock, settings=SETTINGS, share_key=KEY
    )


def read_shared(
    store: InMemoryJobStore, clock: VirtualClock, token: str, key: str = KEY
) -> jobs_api.ResultAnswer:
    return jobs_api.shared_result(
        token, store=store, clock=clock, settings=SETTINGS, share_key=key, results=None
    )


def test_a_share_link_reads_the_result_until_it_expires(store: InMemoryJobStore, clock: VirtualClock) -> None:
    completed(store, {"answer": 42})
    link = share(store, clock, {"expires_in_seconds": 600})
    assert link.expires_at == NOW + timedelta(seconds=600)
    assert read_shared(store, clock, link.token(KEY)).value == {"answer": 42}
    clock.advance(600)
    with pytest.raises(ShareLinkExpired):
        read_shared(store, clock, link.token(KEY))


def test_a_revoked_share_link_is_refused_and_others_still_work(
    store: InMemoryJobStore, clock: VirtualClock
) -> None:
    completed(store, "r")
    first, second = share(store, clock), share(store, clock)
    jobs_api.revoke_share("j1", first.share_id, owner=OWNER, store=store, clock=clock)
    jobs_api.revoke_share("j1", first.share_id, owner=OWNER, store=store, clock=clock)  # twice: no change
    assert store.get("j1").revoked_shares == (first.share_id,)
    with pytest.raises(ShareLinkRevoked):
        read_shared(store, clock, first.token(KEY))
    assert read_shared(store, clock, second.token(KEY)).value == "r"


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-1] + ("0" if token[-1] != "0" else "1"),  # signature altered
        lambda token: token.replace(".j1.", ".j2."),  # another job, same signature
        lambda token: token.rsplit(".", 2)[0] + ".9999999999." + token.rsplit(".", 1)[1],  # longer life
        lambda token: "not-a-token",
        lambda token: "",
    ],
)
def test_a_forged_or_altered_share_link_is_invalid(
    store: InMemoryJobStore, clock: VirtualClock, forge
) -> None:  # type: ignore[no-untyped-def]
    completed(store, "r")
    completed(store, "other", job_id="j2")
    token = share(store, clock).token(KEY)
    with pytest.raises(ShareLinkInvalid):
        read_shared(store, clock, forge(token))


def test_a_link_signed_with_another_key_is_invalid(store: InMemoryJobStore, clock: VirtualClock) -> None:
    completed(store, "r")
    with pytest.raises(ShareLinkInvalid):
        read_shared(store, clock, share(store, clock).token("another key"))


def test_a_share_link_ends_with_its_job(store: InMemoryJobStore, clock: VirtualClock) -> None:
    completed(store, "r")
    link = share(store, clock, {"expires_in_seconds": 30 * 24 * 3600})
    assert link.expires_at == store.get("j1").expires_at


def test_share_links_need_a_key_and_a_sensible_lifetime(store: InMemoryJobStore, clock: VirtualClock) -> None:
    completed(store, "r")
    with pytest.raises(SharingNotConfigured):
        jobs_api.share_result(
            "j1", None, owner=OWNER, store=store, clock=clock, settings=SETTINGS, share_key=""
        )
    for body in (
        {"expires_in_seconds": 0},
        {"expires_in_seconds": True},
        {"other": 1},
        [],
        {"expires_in_seconds": 1.5},
    ):
        with pytest.raises(InvalidRequest):
            share(store, clock, body)
    with pytest.raises(InvalidRequest):
        jobs_api.revoke_share("j1", "not-a-share-id", owner=OWNER, store=store, clock=clock)


def test_a_shared_result_that_was_deleted_is_gone(store: InMemoryJobStore, clock: VirtualClock) -> None:
    completed(store, "r")
    token = share(store, clock).token(KEY)
    store.update("j1", lambda job: rules.output_deleted(job, NOW))
    with pytest.raises(JobGone):
        read_shared(store, clock, token)


def test_only_the_enabled_providers_are_built() -> None:
    specs = registry.load()
    chosen = enabled(specs, ("simulated", "aws-athena", "unknown"))
    assert [spec.name for spec in chosen] == ["simulated", "aws-athena"]
    assert enabled(specs, ()) == specs


def test_settings_read_the_result_and_share_variables() -> None:
    settings = Settings.from_env(
        {
            "JOBPOLL_RESULTS_BUCKET": "b",
            "JOBPOLL_RESULT_THRESHOLD_BYTES": "2048",
            "JOBPOLL_SHARE_KEY_PARAMETER": "/s/share-key",
            "JOBPOLL_ENABLED_PROVIDERS": "simulated, aws-athena",
        }
    )
    assert (settings.results_bucket, settings.result_threshold_bytes) == ("b", 2048)
    assert settings.share_key_parameter == "/s/share-key" and settings.enabled_providers == (
        "simulated",
        "aws-athena",
    )
    assert "s3cr3t-value" not in repr(dataclasses.replace(settings, share_key="s3cr3t-value"))
