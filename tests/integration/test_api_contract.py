"""The API's contract: problem documents for every error, responses that match /openapi.json, and no 5xx
for any generated body or id. One emulation for the module (these tests do not depend on each other's jobs).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from api_harness import Api, make_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from jobpoll.emulation import Emulation

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api(module_emulation: Emulation) -> Api:
    return make_api(module_emulation)


def request(api: Api, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
    return api.client.http.request(method, path, headers={**api.headers(), **headers}, body=body)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/jobs", b"{not json", {}, 400),
        ("POST", "/jobs", b"", {}, 400),
        ("POST", "/jobs", b"[1, 2]", {}, 400),
        ("POST", "/jobs", b'{"input": {"delay": 1, "result": NaN}}', {}, 400),
        ("POST", "/jobs", b'{"input": {"delay": "soon"}}', {}, 400),
        ("POST", "/jobs", b'{"input": {"delay": 1}, "job_id": "mine"}', {}, 400),
        ("POST", "/jobs", b'{"input": {"delay": 1}, "callback_url": "http://10.0.0.8/x"}', {}, 400),
        ("POST", "/jobs", b'{"pad": "' + b"x" * 70_000 + b'"}', {}, 413),
        ("POST", "/jobs", b"{}", {"Content-Type": "text/plain"}, 415),
        ("PUT", "/jobs", b"{}", {}, 405),
        ("PATCH", "/jobs/abc", b"{}", {}, 405),
        ("GET", "/nothing/here", b"", {}, 404),
        ("GET", "/jobs/abc/result/more", b"", {}, 404),
        ("GET", "/jobs/no-such-job", b"", {}, 404),
        ("GET", "/jobs/has.dots", b"", {}, 404),
        ("DELETE", "/jobs/no-such-job", b"", {}, 404),
        ("GET", "/jobs/no-such-job/result", b"", {}, 404),
        ("GET", "/jobs", b"", {"Authorization": "Bearer wrong"}, 401),
        ("GET", "/jobs", b"", {"Authorization": ""}, 401),
        ("GET", "/jobs?status=running", b"", {}, 400),
        ("GET", "/jobs?limit=1000", b"", {}, 400),
        ("GET", "/jobs?next=not-a-token", b"", {}, 400),
    ],
)
def test_every_error_is_a_problem_document(
    api: Api, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = request(api, method, path, body, **headers)
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == PROBLEM
    problem = json.loads(response.body)
    assert problem["status"] == status
    assert problem["type"] and problem["title"]
    assert "Traceback" not in response.body.decode()


def test_a_wrong_method_names_the_allowed_ones(api: Api) -> None:
    response = request(api, "PUT", "/jobs", b"{}")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_an_unauthenticated_call_is_told_how_to_authenticate(api: Api) -> None:
    response = api.client.http.get("/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# ---- /openapi.json against real responses --------------------------------------------------------------


class OpenApiChecker:
    """Finds the documented response for a real one and validates status, headers and body."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in document["paths"]
        ]

    def check(self, method: str, url_path: str, response: Any) -> None:
        path = url_path.split("?")[0]
        template = next((t for pattern, t in self.routes if pattern.match(path)), None)
        assert template is not None, f"{path} is not documented"
        operation = self.document["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not documented"
        documented = operation["responses"].get(str(response.status_code)) or operation["responses"].get(
            "default"
        )
        assert documented is not None, f"{method} {template} {response.status_code} is not documented"
        for header in documented.get("headers", {}):
            if header != "Link":
                assert header in response.headers, f"{method} {template}: no {header} header"
        content = documented.get("content")
        if not content:
            assert not response.body, f"{method} {template} {response.status_code} should have no body"
            return
        content_type = response.headers["Content-Type"]
        assert content_type in content, f"{content_type} not documented for {method} {template}"
        schema = {**content[content_type]["schema"], "components": self.document["components"]}
        Draft202012Validator(schema).validate(json.loads(response.body))


def test_the_openapi_document_is_valid_openapi_3_1(api: Api) -> None:
    document = api.client.http.get("/openapi.json").json_body
    assert document["openapi"] == "3.1.0"
    validate_spec(document)


def test_real_responses_match_the_openapi_document(api: Api) -> None:
    checker = OpenApiChecker(api.client.http.get("/openapi.json").json_body)
    seen: set[tuple[str, str, int]] = set()

    def call(method: str, path: str, body: Any = None, owner: str = "alice", **headers: str) -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        response = api.client.http.request(method, path, headers={**api.headers(owner), **headers}, body=raw)
        checker.check(method, path, response)
        seen.add((method, path.split("?")[0], response.status_code))
        return response

    long_job = {"input": {"delay": 3600}, "wait_seconds": 600, "max_tries": 10}
    running = call("POST", "/jobs", long_job).json_body["id"]
    api.wait_status(running, *_not_queued())
    call("GET", f"/jobs/{running}")  # 202
    call("GET", f"/jobs/{running}/result")  # 409
    call("POST", "/jobs", long_job, **{"Idempotency-Key": "contract"})
    call("POST", "/jobs", {"input": {"delay": 1}}, **{"Idempotency-Key": "contract"})  # 422
    call("DELETE", f"/jobs/{running}")  # 200 canceled
    call("GET", f"/jobs/{running}")  # 200 canceled
    done = call("POST", "/jobs", {"input": {"delay": 1}, "callback_url": "https://hooks.public.test/x"})
    done_id = done.json_body["id"]
    api.wait_done(done_id)
    call("GET", f"/jobs/{done_id}")  # 303
    call("GET", f"/jobs/{done_id}/result")  # 200
    # Virtual time runs on while jobs wait: the link lives as long as its job, so it cannot expire here.
    link = call("POST", f"/jobs/{done_id}/shares", {"expires_in_seconds": 30 * 24 * 3600}).json_body  # 201
    shared_path = link["url"].split("api.example.test", 1)[1]
    call("GET", shared_path, Authorization="")  # 200, no credentials
    call("GET", shared_path[:-4] + "0000" if not shared_path.endswith("0000") else shared_path[:-4] + "1111")
    call("DELETE", f"/jobs/{done_id}/shares/{link['id']}")  # 204
    call("GET", shared_path)  # 403 revoked
    call("DELETE", f"/jobs/{done_id}/shares/not-an-id")  # 400
    large = call("POST", "/jobs", {"input": {"delay": 1, "result_bytes": 300 * 1024}}).json_body["id"]
    api.wait_done(large)
    call("GET", f"/jobs/{large}/result")  # 303 to the object
    call("DELETE", f"/jobs/{done_id}")  # 204
    call("GET", f"/jobs/{done_id}/result")  # 410
    call("GET", "/jobs?limit=1")
    call("GET", "/jobs?status=CANCELED")
    call("GET", "/jobs/nope")  # 404
    call("GET", "/jobs", Authorization="Bearer nope")  # 401
    call("POST", "/jobs", None)  # 400
    call("GET", "/openapi.json")

    statuses = {status for _, _, status in seen}
    assert {200, 201, 202, 204, 303, 400, 401, 403, 404, 409, 410, 422} <= statuses
    assert ("GET", f"/jobs/{large}/result", 303) in seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(min_size=1, max_size=200))
def test_generated_share_tokens_never_produce_a_5xx(api: Api, token: str) -> None:
    response = api.client.http.get(f"/shared/{quote(token, safe='')}", headers={"Host": "api.example.test"})
    assert response.status_code < 500, response.body
    assert response.headers["Content-Type"] == PROBLEM


def _not_queued() -> tuple[Any, ...]:
    from chalicelib.job import JobStatus

    return tuple(status for status in JobStatus if status is not JobStatus.QUEUED)


# ---- Generated input never makes a 5xx ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.sampled_from(["simulated", "other"]) | json_values,
        "input": st.fixed_dictionaries(
            {},
            optional={
                "delay": st.integers(-5, 10**9) | json_values,
                "fail": json_values,
                "result": json_values,
            },
        )
        | json_values,
        "wait_seconds": st.integers(-2, 10**6) | json_values,
        "max_tries": st.integers(-2, 10**6) | json_values,
        "callback_url": st.sampled_from(
            ["http://127.0.0.1:9/x", "https://hooks.public.test/", "http://[::1]/"]
        )
        | st.text(max_size=30),
        "job_id": st.text(max_size=5),
    },
)
bodies = (
    st.binary(max_size=64)
    | json_values.map(lambda v: json.dumps(v).encode())
    | job_like.map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, key=st.none() | st.text(max_size=12))
def test_generated_post_bodies_never_produce_a_5xx(api: Api, body: bytes, key: str | None) -> None:
    headers = {} if key is None else {"Idempotency-Key": key}
    try:
        response = request(api, "POST", "/jobs", body, **headers)
    except UnicodeEncodeError:
        return  # not a header value an HTTP client can send
    assert response.status_code < 500, response.body
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == PROBLEM


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job_id=st.text(min_size=1, max_size=100), method=st.sampled_from(["GET", "DELETE"]), suffix=st.booleans()
)
def test_generated_job_ids_never_produce_a_5xx(api: Api, job_id: str, method: str, suffix: bool) -> None:
    path = f"/jobs/{quote(job_id, safe='')}" + ("/result" if suffix else "")
    response = request(api, method if not suffix else "GET", path)
    assert response.status_code < 500, response.body
    assert response.headers["Content-Type"] == PROBLEM


def test_an_unexpected_error_is_a_500_problem_without_a_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import jobs_api

    def broken(**_: Any) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(jobs_api, "list_jobs", broken)
    response = request(api, "GET", "/jobs")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == PROBLEM
    assert "internal detail" not in response.body.decode()
    assert "Traceback" not in response.body.decode()


def test_json_with_a_charset_is_accepted(api: Api) -> None:
    body = json.dumps({"input": {"delay": 1}}).encode()
    response = request(api, "POST", "/jobs", body, **{"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 202


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.none() | st.sampled_from(["RUNNING", "COMPLETE"]) | st.text(max_size=10),
    limit=st.none() | st.integers(-5, 500).map(str) | st.text(max_size=5),
    token=st.none()
    | st.text(max_size=40)
    | st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()),
)
def test_generated_list_queries_never_produce_a_5xx(
    api: Api, status: str | None, limit: str | None, token: str | None
) -> None:
    query = {k: v for k, v in {"status": status, "limit": limit, "next": token}.items() if v is not None}
    response = request(api, "GET", "/jobs?" + urlencode(query))
    assert response.status_code in (200, 400), response.body


def test_a_callback_is_refused_where_no_signing_secret_is_configured(module_emulation: Emulation) -> None:
    api = make_api(module_emulation, callback_secret="")
    response = api.post({"input": {"delay": 1}, "callback_url": "https://hooks.public.test/x"})
    assert response.status_code == 400
    assert "not configured" in response.json_body["detail"]
