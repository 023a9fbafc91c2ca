"""The REST API through chalice.test.Client, on the emulation (moto + the real poller on virtual time)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_harness import Api, make_api

from chalicelib import jobs_api, rules
from chalicelib.job import JobStatus

SEED = {"provider": "simulated", "input": {"delay": 20}}
PROBLEM = "application/problem+json"


def job_id_of(response: Any) -> str:
    return str(response.json_body["id"])


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == PROBLEM
    body = json.loads(response.body)
    assert body["status"] == status
    assert body["type"] and body["title"]
    return dict(body)


def test_post_stores_the_job_before_answering_202_with_an_absolute_location(api: Api) -> None:
    response = api.post(SEED)

    assert response.status_code == 202
    job_id = job_id_of(response)
    assert response.headers["Location"] == f"http://api.example.test/jobs/{job_id}"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json_body["status"] == "QUEUED"
    assert api.runtime.store.get(job_id).owner == api.owners["alice"]
    assert api.get(f"/jobs/{job_id}").status_code in (202, 303)  # never 404 right after


def test_location_honours_forwarded_proto_and_host(api: Api) -> None:
    response = api.post(SEED, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "jobs.example.com"})
    assert response.headers["Location"] == f"https://jobs.example.com/jobs/{job_id_of(response)}"


def test_a_job_driven_from_post_to_its_result(api: Api) -> None:
    job_id = job_id_of(api.post(SEED))
    assert api.wait_done(job_id)["status"] == "SUCCEEDED"

    status = api.get(f"/jobs/{job_id}")
    assert status.status_code == 303
    assert status.headers["Location"] == f"http://api.example.test/jobs/{job_id}/result"
    assert status.json_body["status"] == "COMPLETE"
    assert status.json_body["progress"] == 1.0
    assert status.json_body["try_count"] >= 1  # other tests' waits move the shared clock too
    first = api.get(f"/jobs/{job_id}/result")
    second = api.get(f"/jobs/{job_id}/result")
    assert first.status_code == second.status_code == 200
    assert first.json_body == second.json_body
    assert first.json_body["output"] == {"message": "simulated work done", "delay": 20}


def test_a_failed_job_answers_200_with_its_error_and_has_no_result(api: Api) -> None:
    job_id = job_id_of(api.post({"input": {"delay": 5, "fail": True}}))
    api.wait_done(job_id)

    response = api.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json_body["status"] == "FAILED"
    assert response.json_body["error"]["code"] == "SimulatedFailure"
    assert "Retry-After" not in response.headers
    assert_problem(api.get(f"/jobs/{job_id}/result"), 409)


def test_finished_output_is_deleted_and_the_result_then_answers_410(api: Api) -> None:
    job_id = job_id_of(api.post(SEED))
    api.wait_done(job_id)

    deleted = api.delete(f"/jobs/{job_id}")

    assert deleted.status_code == 204
    assert api.runtime.store.get(job_id).result is None
    assert_problem(api.get(f"/jobs/{job_id}/result"), 410)
    assert api.delete(f"/jobs/{job_id}").status_code == 204  # deleting again changes nothing


def test_idempotency_key_replays_the_same_job_and_starts_nothing(api: Api) -> None:
    first = api.post(SEED, **{"Idempotency-Key": "order-17"})
    again = api.post(SEED, **{"Idempotency-Key": "order-17"})

    assert first.status_code == again.status_code == 202
    assert job_id_of(first) == job_id_of(again)
    assert again.headers.get("Idempotent-Replayed") == "true"
    executions = api.emulation.sfn.list_executions(
        stateMachineArn=api.emulation.deployment.state_machine_arn
    )["executions"]
    assert [e["name"] for e in executions].count(job_id_of(first)) == 1


def test_a_replay_starts_a_job_whose_first_request_died_before_starting_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as crashed:
        crashed.setattr(jobs_api, "_start_execution", lambda *args, **kwargs: None)
        first = api.post(SEED, **{"Idempotency-Key": "order-19"})
    job_id = job_id_of(first)
    assert api.runtime.store.get(job_id).status is JobStatus.QUEUED

    again = api.post(SEED, **{"Idempotency-Key": "order-19"})

    assert job_id_of(again) == job_id
    assert api.wait_done(job_id)["status"] == "SUCCEEDED"
    assert api.post(SEED, **{"Idempotency-Key": "order-19"}).json_body["status"] == "COMPLETE"


def test_a_replay_starts_nothing_for_a_job_the_reconciler_resumed_meanwhile(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as crashed:
        crashed.setattr(jobs_api, "_start_execution", lambda *args, **kwargs: None)
        job_id = job_id_of(api.post(SEED, **{"Idempotency-Key": "order-20"}))
    # The reconciler resumed the stranded job (in `<id>-r1`) before the client sent its request again.
    later = api.emulation.clock.now()
    api.runtime.store.update(job_id, lambda job: rules.resumed(job, later, f"arn:x:{job_id}-r1"))

    again = api.post(SEED, **{"Idempotency-Key": "order-20"})

    assert job_id_of(again) == job_id
    executions = api.emulation.sfn.list_executions(
        stateMachineArn=api.emulation.deployment.state_machine_arn
    )["executions"]
    assert job_id not in [e["name"] for e in executions]  # one loop per job: the reconciler's


def test_idempotency_key_with_another_body_is_a_422_problem(api: Api) -> None:
    api.post(SEED, **{"Idempotency-Key": "order-18"})
    other = api.post({"input": {"delay": 99}}, **{"Idempotency-Key": "order-18"})
    assert_problem(other, 422)


def test_the_same_idempotency_key_from_two_callers_makes_two_jobs(api: Api) -> None:
    alices = api.post(SEED, "alice", **{"Idempotency-Key": "k"})
    bobs = api.post(SEED, "bob", **{"Idempotency-Key": "k"})
    assert job_id_of(alices) != job_id_of(bobs)


def test_a_failed_start_marks_the_job_failed_and_answers_503(module_emulation: Any) -> None:
    api = make_api(
        module_emulation,
        state_machine_arn=module_emulation.deployment.state_machine_arn.replace("poller", "missing"),
    )
    response = api.post(SEED)

    body = assert_problem(response, 503)
    assert "did not start" in body["detail"]
    [job] = api.runtime.store.list_by_owner(api.owners["alice"], limit=10).jobs
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code == "ExecutionStartFailed"


def test_another_callers_job_cannot_be_seen_listed_or_canceled(api: Api) -> None:
    job_id = job_id_of(api.post({"input": {"delay": 3600}, "wait_seconds": 600, "max_tries": 10}))

    assert_problem(api.get(f"/jobs/{job_id}", owner="bob"), 404)
    assert_problem(api.get(f"/jobs/{job_id}/result", owner="bob"), 404)
    assert_problem(api.delete(f"/jobs/{job_id}", owner="bob"), 404)
    assert api.get("/jobs", owner="bob").json_body == {"jobs": [], "next": None}
    assert api.runtime.store.get(job_id).status is not JobStatus.CANCELED
    assert [job["id"] for job in api.get("/jobs").json_body["jobs"]] == [job_id]


def test_a_listing_pages_through_more_than_one_page_newest_first(api: Api) -> None:
    created = []
    for n in range(5):
        created.append(job_id_of(api.post({"input": {"delay": n}})))
        api.emulation.clock.advance(1)  # distinct creation times
    seen: list[str] = []
    path = "/jobs?limit=2"
    pages = 0
    while path and pages < 10:
        response = api.get(path)
        assert response.status_code == 200
        seen += [job["id"] for job in response.json_body["jobs"]]
        token = response.json_body["next"]
        pages += 1
        if token:
            assert response.headers["Link"].endswith('; rel="next"')
        path = f"/jobs?limit=2&next={token}" if token else ""
    assert seen == list(reversed(created))
    assert pages == 3


def test_a_listing_filters_by_status(api: Api) -> None:
    done = job_id_of(api.post({"input": {"delay": 1, "fail": True}}))
    api.wait_done(done)
    api.post({"input": {"delay": 1}}, **{"Idempotency-Key": "another"})

    failed = api.get("/jobs?status=FAILED&limit=1").json_body

    assert [job["id"] for job in failed["jobs"]] == [done]
    assert_problem(api.get("/jobs?status=running"), 400)
    assert_problem(api.get("/jobs?limit=0"), 400)
    assert_problem(api.get("/jobs?next=not-a-token"), 400)


def test_callback_urls_to_internal_addresses_are_refused(api: Api) -> None:
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hook",
        "http://hooks.private.test/x",
        "ftp://hooks.public.test/x",
        "http://user:pw@hooks.public.test/x",
        "http://does-not-resolve.test/x",
    ):
        assert_problem(api.post({**SEED, "callback_url": url}), 400)
    assert api.post({**SEED, "callback_url": "https://hooks.public.test/x"}).status_code == 202
    assert api.post({**SEED, "callback_url": "http://127.0.0.1:9/x"}).status_code == 202  # local mode
