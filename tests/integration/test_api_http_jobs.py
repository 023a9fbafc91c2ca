"""http jobs through the REST API: the profile is checked at POST, the service's answer reaches the result."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_harness import Api, make_api

from jobpoll.emulation import Emulation
from lro_server import Answer, LroServer


@pytest.fixture
def service() -> Iterator[LroServer]:
    with LroServer() as running:
        yield running


@pytest.fixture
def http_api(module_emulation: Emulation, service: LroServer) -> Api:
    profiles = {"svc": {"base_url": f"{service.url}/v1", "headers": {"Authorization": "Bearer test-only"}}}
    return make_api(module_emulation, http_profiles=json.dumps(profiles))


def http_job(path: str, **extra: object) -> dict[str, object]:
    request = {"method": "POST", "path": path, "body": {"n": 1}}
    return {
        "provider": "http",
        "input": {"profile": "svc", "style": "status-code", "request": request},
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (http_job("/../admin"), "outside the base_url"),
        ({"provider": "http", "input": {"profile": "other", "request": {"path": "/x"}}}, "known: svc"),
        (
            http_job("/x", input={"profile": "svc", "style": "azure", "token": "t"}),
            "unknown http input field",
        ),
    ],
)
def test_an_http_job_outside_its_profile_is_refused_with_a_400_problem(
    http_api: Api, service: LroServer, body: dict[str, object], detail: str
) -> None:
    response = http_api.post(body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert detail in response.json_body["detail"]
    assert service.seen == []


def test_an_http_job_completes_with_the_services_result(http_api: Api, service: LroServer) -> None:
    service.on("POST", "/v1/exports", Answer(202, None, {"Location": "/v1/exports/1"}))
    service.on("GET", "/v1/exports/1", Answer(202), Answer(303, None, {"Location": "/v1/files/1"}))
    service.on("GET", "/v1/files/1", Answer(200, {"rows": 3}))

    response = http_api.post(http_job("/exports", max_tries=5))
    job_id = str(response.json_body["id"])

    assert response.status_code == 202
    assert http_api.wait_done(job_id)["status"] == "SUCCEEDED"
    assert http_api.get(f"/jobs/{job_id}/result").json_body == {"rows": 3}
