"""Large results in S3 and share links, through the API on the emulation (moto): the real state machine
polls the simulated provider, the store puts the result in the results bucket, the API redirects to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from api_harness import Api

from chalicelib.job import JobStatus
from chalicelib.store import KEY

FIVE_MB = 5 * 1024 * 1024
LIFETIME = 30 * 24 * 3600  # a link's longest life (it ends with its job, 7 days on)
PROBLEM = "application/problem+json"


def finished_job(api: Api, **provider_input: Any) -> str:
    response = api.post({"input": {"delay": 1, **provider_input}, "wait_seconds": 1})
    assert response.status_code == 202, response.body
    job_id = str(response.json_body["id"])
    api.wait_done(job_id)
    assert api.runtime.store.get(job_id).status is JobStatus.COMPLETE
    return job_id


def objects(api: Api) -> list[str]:
    listing = api.emulation.client("s3").list_objects_v2(Bucket=api.runtime.settings.results_bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def share(api: Api, job_id: str, body: Any = None) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    response = api.client.http.post(f"/jobs/{job_id}/shares", headers=api.headers(), body=raw)
    assert response.status_code == 201, response.body
    assert response.headers["Location"] == response.json_body["url"]
    return dict(response.json_body)


def anonymous_get(api: Api, url: str) -> Any:
    """GET a URL of the API without any credentials."""
    path = url.split("api.example.test", 1)[1]
    return api.client.http.get(path, headers={"Host": "api.example.test"})


def test_a_5_mb_result_is_kept_in_s3_and_read_back_through_the_api_while_the_job_stays_small(
    api: Api,
) -> None:
    job_id = finished_job(api, result_bytes=FIVE_MB)

    item = api.emulation.client("dynamodb").get_item(
        TableName=api.runtime.settings.table_name, Key={KEY: {"S": job_id}}
    )["Item"]
    assert "result" not in item and len(json.dumps(item)) < 4096
    (key,) = [k for k in objects(api) if f"/{job_id}/" in k]

    assert api.get(f"/jobs/{job_id}").status_code == 303
    response = api.get(f"/jobs/{job_id}/result")
    assert response.status_code == 303 and response.body in (b"", "")
    downloaded = requests.get(response.headers["Location"], timeout=30)
    assert downloaded.status_code == 200
    result = downloaded.json()
    assert len(result["output"]) == FIVE_MB and result["output"].startswith("simulated result line")
    assert api.get(f"/jobs/{job_id}").json_body["result_available"] is True

    assert api.delete(f"/jobs/{job_id}").status_code == 204
    assert key not in objects(api)
    assert api.get(f"/jobs/{job_id}/result").status_code == 410


def test_an_expired_jobs_result_object_is_removed(api: Api) -> None:
    job_id = finished_job(api, result_bytes=300 * 1024)
    assert any(f"/{job_id}/" in key for key in objects(api))
    api.emulation.clock.advance(api.runtime.settings.job_ttl_seconds + 1)
    assert api.get(f"/jobs/{job_id}/result").status_code == 410
    assert not any(f"/{job_id}/" in key for key in objects(api))


def test_a_share_link_serves_the_result_without_the_owners_credentials(api: Api) -> None:
    job_id = finished_job(api, result={"answer": 42})
    link = share(api, job_id, {"expires_in_seconds": LIFETIME})
    response = anonymous_get(api, link["url"])
    assert response.status_code == 200 and response.json_body["output"] == {"answer": 42}
    assert api.get(f"/jobs/{job_id}", owner="bob").status_code == 404  # the link grants the result only


def test_a_share_link_of_a_large_result_redirects_to_the_object(api: Api) -> None:
    job_id = finished_job(api, result_bytes=300 * 1024)
    response = anonymous_get(api, share(api, job_id)["url"])
    assert response.status_code == 303
    assert len(requests.get(response.headers["Location"], timeout=30).json()["output"]) == 300 * 1024


@pytest.mark.parametrize(
    ("spoil", "status", "kind"),
    [
        ("forge", 401, "share-link-invalid"),
        ("revoke", 403, "share-link-revoked"),
        ("expire", 410, "share-link-expired"),
        ("delete", 410, "job-gone"),
    ],
)
def test_a_spoiled_share_link_is_refused_with_a_problem(api: Api, spoil: str, status: int, kind: str) -> None:
    job_id = finished_job(api)
    # Virtual time runs on while other jobs wait: only the link meant to expire has a short life.
    link = share(api, job_id, {"expires_in_seconds": 60 if spoil == "expire" else LIFETIME})
    url = link["url"]
    if spoil == "forge":
        url = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    elif spoil == "revoke":
        revoked = api.client.http.delete(f"/jobs/{job_id}/shares/{link['id']}", headers=api.headers())
        assert revoked.status_code == 204
    elif spoil == "expire":
        api.emulation.clock.advance(3600)
    else:
        assert api.delete(f"/jobs/{job_id}").status_code == 204
    response = anonymous_get(api, url)
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json_body["type"] == f"urn:jobpoll:problem:{kind}"


def test_only_the_owner_shares_or_revokes(api: Api) -> None:
    job_id = finished_job(api)
    denied = api.client.http.post(f"/jobs/{job_id}/shares", headers=api.headers("bob"), body=b"")
    assert denied.status_code == 404
    link = share(api, job_id)
    revoke = api.client.http.delete(f"/jobs/{job_id}/shares/{link['id']}", headers=api.headers("bob"))
    assert revoke.status_code == 404
    assert anonymous_get(api, link["url"]).status_code == 200
