"""Who may call the API (auth mode jwt): every token attack answers 401 or 403 problem+json, never a 500;
scopes per route, the operator scope, per-caller limits (429 then recovery) and a key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from api_harness import ISSUER_URL, Api, make_api, the_issuer
from cryptography.hazmat.primitives import serialization

from chalicelib.auth import SCOPE_OPERATOR, SCOPE_READ, SCOPE_SUBMIT, TENANT_SCOPES
from chalicelib.job import JobStatus
from jobpoll.emulation import Emulation
from jobpoll.issuer import LocalIssuer, new_private_key

PROBLEM = "application/problem+json"
RUNNING_JOB = {"input": {"delay": 3600}, "wait_seconds": 600, "max_tries": 10}


class FakeTime:
    """Token time (epoch seconds) that moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(api: Api, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER_URL,
        "aud": "jobpoll",
        "sub": api.subjects["alice"],
        "scope": " ".join(TENANT_SCOPES),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    return {**claims, **changes}


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _alg_none(api: Api) -> str:
    return _unsigned({"alg": "none", "typ": "JWT", "kid": the_issuer().kid}, _claims(api)) + "."


def _hs256_with_the_public_key(api: Api) -> str:
    """The algorithm-confusion attack: HMAC keyed with the issuer's public key, which anyone can read."""
    public_pem = (
        the_issuer()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": the_issuer().kid}, _claims(api))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _other_key_claiming_the_issuers_kid(api: Api) -> str:
    claims = _claims(api)
    return jwt.encode(claims, new_private_key(), algorithm="RS256", headers={"kid": the_issuer().kid})


ATTACKS = {
    "another key": lambda api: LocalIssuer(ISSUER_URL, new_private_key()).token(
        api.subjects["alice"], TENANT_SCOPES
    ),
    "another key with the issuer's kid": _other_key_claiming_the_issuers_kid,
    "expired": lambda api: api.token(now=time.time() - 7200, seconds=3600),
    "not valid yet": lambda api: api.token(now=time.time() + 3600),
    "wrong audience": lambda api: LocalIssuer(ISSUER_URL, the_issuer().private_key, "other-api").token(
        api.subjects["alice"], TENANT_SCOPES
    ),
    "wrong issuer": lambda api: LocalIssuer("https://evil.example.test", the_issuer().private_key).token(
        api.subjects["alice"], TENANT_SCOPES
    ),
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_the_public_key,
    "no exp": lambda api: jwt.encode(
        {k: v for k, v in _claims(api).items() if k != "exp"},
        the_issuer().private_key,
        algorithm="RS256",
        headers={"kid": the_issuer().kid},
    ),
    "tampered claims": lambda api: ".".join(
        [
            api.token().split(".")[0],
            _b64(json.dumps(_claims(api, sub="root")).encode()),
            api.token().split(".")[2],
        ]
    ),
    "not a JWT": lambda api: "not-a-token",
}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.body)["status"] == 401


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_expired_or_misdirected_token_is_refused_with_401(api: Api, attack: str) -> None:
    token = ATTACKS[attack](api)
    headers = {**api.headers(), "Authorization": f"Bearer {token}"}

    assert_unauthorized(api.client.http.post("/jobs", headers=headers, body=json.dumps(RUNNING_JOB)))
    assert_unauthorized(api.client.http.get("/jobs", headers=headers))
    assert api.get("/jobs").json_body["jobs"] == []  # nothing was created


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6cw==", "Bearer " + "x" * 10_000]
)
def test_a_missing_or_malformed_authorization_header_is_refused_with_401(
    api: Api, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json", "Host": "api.example.test"}
    if authorization is not None:
        headers["Authorization"] = authorization
    assert_unauthorized(api.client.http.get("/jobs", headers=headers))


def test_the_issuers_own_token_is_accepted_and_names_the_owner_by_issuer_and_subject(api: Api) -> None:
    response = api.post(RUNNING_JOB)

    assert response.status_code == 202
    stored = api.runtime.store.get(response.json_body["id"])
    assert stored.owner == f"{ISSUER_URL}#{api.subjects['alice']}"


def test_a_token_without_the_routes_scope_is_refused_with_403_naming_it(api: Api) -> None:
    job_id = api.post(RUNNING_JOB).json_body["id"]
    reader = {**api.headers(), "Authorization": f"Bearer {api.token(scopes=[SCOPE_READ])}"}

    refused = api.client.http.post("/jobs", headers=reader, body=json.dumps(RUNNING_JOB))
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == PROBLEM
    assert json.loads(refused.body)["scope"] == SCOPE_SUBMIT
    assert "jobs:submit" in json.loads(refused.body)["detail"]
    assert 'scope="jobs:submit"' in refused.headers["WWW-Authenticate"]
    canceling = api.client.http.delete(f"/jobs/{job_id}", headers=reader)
    assert json.loads(canceling.body)["scope"] == "jobs:cancel"
    assert api.client.http.get(f"/jobs/{job_id}", headers=reader).status_code == 202
    submitter = {**api.headers(), "Authorization": f"Bearer {api.token(scopes=[SCOPE_SUBMIT])}"}
    assert api.client.http.get(f"/jobs/{job_id}", headers=submitter).status_code == 403


def test_an_operator_reads_and_cancels_another_tenants_job_and_the_job_records_it(api: Api) -> None:
    job_id = api.post(RUNNING_JOB).json_body["id"]
    operator = {**api.headers(), "Authorization": f"Bearer {api.token('bob', scopes=[SCOPE_OPERATOR])}"}

    assert api.client.http.get(f"/jobs/{job_id}", headers=operator).status_code == 202
    canceled = api.client.http.delete(f"/jobs/{job_id}", headers=operator)

    assert canceled.status_code == 200
    job = api.runtime.store.get(job_id)
    assert job.status is JobStatus.CANCELED and job.owner == api.owners["alice"]
    assert (
        job.error is not None and api.owners["bob"] in job.error.message and "operator" in job.error.message
    )
    # Without the operator scope bob sees nothing of alice's.
    assert api.get(f"/jobs/{job_id}", owner="bob").status_code == 404


def test_a_rotated_key_is_fetched_on_its_new_kid_and_the_retired_one_is_refused(
    module_emulation: Emulation,
) -> None:
    old, new = the_issuer(), LocalIssuer(ISSUER_URL, new_private_key())
    published = {"keys": [old.public_jwk]}
    fetches: list[int] = []
    clock = FakeTime()

    def jwks() -> dict[str, Any]:
        fetches.append(1)
        return published

    api = make_api(module_emulation, jwks=jwks, token_time=clock)
    assert api.get("/jobs").status_code == 200
    assert len(fetches) == 1
    assert api.get("/jobs").status_code == 200
    assert len(fetches) == 1  # cached for the cold start

    published = {"keys": [new.public_jwk]}
    clock.now += 60
    new_token = new.token(api.subjects["alice"], TENANT_SCOPES, now=clock.now)
    headers = {**api.headers(), "Authorization": f"Bearer {new_token}"}
    assert api.client.http.get("/jobs", headers=headers).status_code == 200
    assert len(fetches) == 2  # an unknown kid fetched the keys again
    assert_unauthorized(api.get("/jobs"))  # the old key is no longer published


def test_unknown_kids_do_not_flood_the_issuer_with_fetches(module_emulation: Emulation) -> None:
    fetches: list[int] = []

    def jwks() -> dict[str, Any]:
        fetches.append(1)
        return the_issuer().jwks()

    api = make_api(module_emulation, jwks=jwks, token_time=FakeTime())
    stranger = LocalIssuer(ISSUER_URL, new_private_key()).token(api.subjects["alice"], TENANT_SCOPES)
    headers = {**api.headers(), "Authorization": f"Bearer {stranger}"}
    for _ in range(5):
        assert_unauthorized(api.client.http.get("/jobs", headers=headers))
    assert len(fetches) == 1


def test_an_unreachable_issuer_refuses_tokens_with_401_not_500(module_emulation: Emulation) -> None:
    def jwks() -> dict[str, Any]:
        raise OSError("connection refused")

    api = make_api(module_emulation, jwks=jwks)
    assert_unauthorized(api.get("/jobs"))


def test_over_the_request_rate_a_caller_gets_429_then_recovers_and_others_are_not_held(
    module_emulation: Emulation,
) -> None:
    clock = FakeTime()
    api = make_api(module_emulation, token_time=clock, max_requests_per_second=2)

    assert [api.get("/jobs").status_code for _ in range(2)] == [200, 200]
    refused = api.get("/jobs")
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == PROBLEM
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.get("/jobs", owner="bob").status_code == 200  # one tenant does not starve another
    clock.now += 1
    assert api.get("/jobs").status_code == 200


def test_over_its_jobs_in_flight_a_caller_gets_429_until_one_finishes(module_emulation: Emulation) -> None:
    api = make_api(module_emulation, max_jobs_in_flight=1)
    first = api.post(RUNNING_JOB).json_body["id"]

    refused = api.post(RUNNING_JOB)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.post(RUNNING_JOB, owner="bob").status_code == 202
    assert api.delete(f"/jobs/{first}").status_code == 200
    assert api.post(RUNNING_JOB).status_code == 202


def test_the_openapi_document_declares_the_issuer_and_each_operations_scope(api: Api) -> None:
    document = json.loads(api.client.http.get("/openapi.json").body)

    (scheme,) = document["components"]["securitySchemes"].values()
    assert scheme == {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{ISSUER_URL}/.well-known/openid-configuration",
        "description": scheme["description"],
    }
    (name,) = document["components"]["securitySchemes"]
    assert document["paths"]["/jobs"]["post"]["security"] == [{name: ["jobs:submit"]}]
    assert document["paths"]["/jobs/{job_id}"]["delete"]["security"] == [{name: ["jobs:cancel"]}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
