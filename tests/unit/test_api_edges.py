"""The API's edges: who the caller is, the URL the client used, problem documents, the new settings."""

from __future__ import annotations

import json

import pytest
from chalice import Response

from chalicelib.auth import IAM_SCOPES, Caller
from chalicelib.errors import IdempotencyKeyReused, JobGone, JobNotFound, NotAuthenticated
from chalicelib.gateway import base_url, caller_identity
from chalicelib.problems import as_problem, from_exception
from chalicelib.settings import Settings

IAM = Settings()
JWT = Settings(auth="jwt", jwt_issuer="https://issuer.example.test", jwt_audience="jobpoll")


def test_an_iam_caller_is_named_by_its_arn_and_an_assumed_role_by_the_role() -> None:
    user = {"identity": {"userArn": "arn:aws:iam::123456789012:user/ci"}}
    role = {"identity": {"userArn": "arn:aws:sts::123456789012:assumed-role/Deployer/session-42"}}
    assert caller_identity(user, IAM) == Caller("arn:aws:iam::123456789012:user/ci", IAM_SCOPES)
    assert caller_identity(role, IAM).owner == "arn:aws:sts::123456789012:assumed-role/Deployer"
    with pytest.raises(NotAuthenticated):
        caller_identity({"authorizer": {"principalId": "someone"}}, IAM)


def test_in_jwt_mode_the_caller_is_what_the_authorizer_named() -> None:
    context = {"authorizer": {"principalId": "https://issuer.example.test#bob", "scope": "jobs:read"}}
    assert caller_identity(context, JWT) == Caller(
        "https://issuer.example.test#bob", frozenset({"jobs:read"})
    )
    with pytest.raises(NotAuthenticated):
        caller_identity({"identity": {"userArn": "arn:aws:iam::123456789012:user/ci"}}, JWT)
    with pytest.raises(NotAuthenticated):
        caller_identity({}, JWT)


def test_the_base_url_includes_the_api_gateway_stage() -> None:
    context = {"path": "/api/jobs/abc", "stage": "api", "domainName": "x.execute-api.us-east-1.amazonaws.com"}
    headers = {"host": "x.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}
    assert base_url(context, headers, "/jobs/abc") == "https://x.execute-api.us-east-1.amazonaws.com/api"


def test_the_base_url_follows_a_proxy_and_a_custom_domain_base_path() -> None:
    context = {"path": "/v1/jobs", "stage": "api"}
    headers = {"host": "internal", "x-forwarded-host": "jobs.example.com", "x-forwarded-proto": "https, http"}
    assert base_url(context, headers, "/jobs") == "https://jobs.example.com/v1"


def test_the_base_url_under_chalice_local_and_with_a_hostile_host() -> None:
    assert base_url({"path": "/jobs"}, {"host": "127.0.0.1:8000"}, None) == "http://127.0.0.1:8000"
    assert base_url({"path": "/jobs"}, {"host": "evil\r\nX: y"}, None) == "http://localhost"


def body(response: Response) -> dict[str, object]:
    return dict(json.loads(response.body))


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (JobNotFound("x"), 404, "job-not-found"),
        (JobGone("x"), 410, "job-gone"),
        (IdempotencyKeyReused("x"), 422, "idempotency-key-reused"),
        (NotAuthenticated("x"), 401, "not-authenticated"),
    ],
)
def test_domain_errors_map_to_problem_documents(exc: Exception, status: int, kind: str) -> None:
    response = from_exception(exc)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body(response) == {
        "type": f"urn:jobpoll:problem:{kind}",
        "title": body(response)["title"],
        "status": status,
        "detail": "x",
    }


def test_an_unexpected_exception_is_a_500_without_details() -> None:
    response = from_exception(RuntimeError("secret internals"))
    assert response.status_code == 500
    assert "secret" not in response.body


def test_chalices_own_errors_become_problems_and_keep_their_headers() -> None:
    chalice_405 = Response(
        body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: PUT"},
        status_code=405,
        headers={"Allow": "GET, POST"},
    )
    converted = as_problem(chalice_405)
    assert converted.headers == {"Allow": "GET, POST", "Content-Type": "application/problem+json"}
    assert body(converted) == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "Unsupported method: PUT",
    }
    traceback_500 = Response(body="Traceback (most recent call last): ...", status_code=500)
    assert "Traceback" not in as_problem(traceback_500).body


def test_settings_read_mode_auth_and_secret_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "JOBPOLL_MODE": "local",
            "JOBPOLL_AUTH": "JWT",
            "JOBPOLL_JWT_ISSUER": "http://127.0.0.1:8001",
            "JOBPOLL_JWT_AUDIENCE": "jobpoll",
            "JOBPOLL_MAX_REQUESTS_PER_SECOND": "5",
            "JOBPOLL_CALLBACK_SECRET": "key-7f3a",
        }
    )
    assert settings.local_mode
    assert (settings.auth, settings.jwt_issuer, settings.jwt_audience) == (
        "jwt",
        "http://127.0.0.1:8001",
        "jobpoll",
    )
    assert settings.max_requests_per_second == 5
    assert settings.callback_secret == "key-7f3a"
    assert "key-7f3a" not in repr(settings)  # secrets stay out of logs
    with pytest.raises(ValueError, match="JOBPOLL_MODE"):
        Settings.from_env({"JOBPOLL_MODE": "prod"})
    with pytest.raises(ValueError, match="JOBPOLL_AUTH"):
        Settings.from_env({"JOBPOLL_AUTH": "basic"})
