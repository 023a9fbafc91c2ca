"""The bearer-token check on its own (no moto): Cognito-shaped access tokens, scope claims, time claims."""

from __future__ import annotations

import time

import jwt
import pytest

from chalicelib.auth import Caller, TokenVerifier, parse_scopes
from chalicelib.errors import MissingScope, NotAuthenticated
from jobpoll.issuer import LocalIssuer, new_private_key

POOL = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123"


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer(POOL, new_private_key(), audience="unused")


def _cognito_access_token(issuer: LocalIssuer, client_id: str, scope: str) -> str:
    now = int(time.time())
    claims = {"iss": POOL, "sub": "u-1", "client_id": client_id, "token_use": "access", "scope": scope}
    claims |= {"iat": now, "exp": now + 300}
    return jwt.encode(claims, issuer.private_key, algorithm="RS256", headers={"kid": issuer.kid})


def test_a_cognito_access_token_is_checked_by_client_id_and_its_resource_servers_scopes(
    issuer: LocalIssuer,
) -> None:
    verifier = TokenVerifier(
        POOL, "client-7", issuer.jwks, audience_claim="client_id", scope_prefix="jobpoll/"
    )
    token = _cognito_access_token(issuer, "client-7", "jobpoll/jobs:read other/jobs:cancel jobs:submit")

    assert verifier.verify(token) == Caller(f"{POOL}#u-1", frozenset({"jobs:read"}))
    with pytest.raises(NotAuthenticated, match="another client"):
        verifier.verify(_cognito_access_token(issuer, "client-8", "jobpoll/jobs:read"))


def test_scopes_come_from_scope_or_scp() -> None:
    assert parse_scopes({"scope": "jobs:read  jobs:submit"}) == {"jobs:read", "jobs:submit"}
    assert parse_scopes({"scp": ["jobs:read"]}) == {"jobs:read"}
    assert parse_scopes({"scp": "jobs:cancel"}) == {"jobs:cancel"}
    assert parse_scopes({"scope": 7}) == frozenset()


def test_the_operator_scope_reads_and_cancels_but_does_not_submit() -> None:
    operator = Caller("o", frozenset({"jobs:operator"}))
    operator.require("jobs:read")
    operator.require("jobs:cancel")
    with pytest.raises(MissingScope) as refused:
        operator.require("jobs:submit")
    assert refused.value.scope == "jobs:submit"


@pytest.mark.parametrize(
    ("claims", "message"),
    [({"exp": "tomorrow"}, "expired"), ({"nbf": "now"}, "not valid yet"), ({"exp": True}, "expired")],
)
def test_time_claims_that_are_not_numbers_are_refused(
    issuer: LocalIssuer, claims: dict[str, object], message: str
) -> None:
    now = int(time.time())
    payload = {"iss": POOL, "aud": "api", "sub": "s", "iat": now, "exp": now + 60, **claims}
    token = jwt.encode(payload, issuer.private_key, algorithm="RS256", headers={"kid": issuer.kid})
    with pytest.raises(NotAuthenticated, match=message):
        TokenVerifier(POOL, "api", issuer.jwks).verify(token)


def test_a_token_within_the_leeway_of_its_expiry_is_still_accepted_and_after_it_refused(
    issuer: LocalIssuer,
) -> None:
    token = LocalIssuer(POOL, issuer.private_key, "api").token("s", [], seconds=60, now=1_000_000)
    at = {"now": 1_000_060 + 29.0}
    verifier = TokenVerifier(POOL, "api", issuer.jwks, now=lambda: at["now"], leeway_seconds=30)
    assert verifier.verify(token).owner == f"{POOL}#s"
    at["now"] += 1
    with pytest.raises(NotAuthenticated, match="expired"):
        verifier.verify(token)
