"""Who calls and what they may do: bearer tokens (JWT) from an OIDC issuer, checked against its JWKS.

`TokenVerifier.verify` is what the API's Chalice authorizer runs (on AWS as a Lambda authorizer, locally
under `chalice local`): signature by one of the issuer's keys (asymmetric algorithms only, the algorithm
fixed by the key, so `alg: none` and HS256-with-the-public-key are refused), `iss`, `aud`, `exp`, `nbf`. Keys
are fetched once per cold start and again when a token names a `kid` not seen yet. The caller's owner
identity is `iss` + `sub`, the scopes come from `scope` (space-separated) or `scp` (a list).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import MissingScope, NotAuthenticated

SCOPE_SUBMIT = "jobs:submit"
SCOPE_READ = "jobs:read"
SCOPE_CANCEL = "jobs:cancel"
# Reads and cancels every tenant's jobs; what an operator does is recorded on the job.
SCOPE_OPERATOR = "jobs:operator"
SCOPES = (SCOPE_SUBMIT, SCOPE_READ, SCOPE_CANCEL, SCOPE_OPERATOR)
# A tenant's scopes: submit, read and cancel its own jobs.
TENANT_SCOPES = (SCOPE_SUBMIT, SCOPE_READ, SCOPE_CANCEL)
# What an IAM (SigV4) caller may do: IAM policies decide who reaches the API at all.
IAM_SCOPES = frozenset(TENANT_SCOPES)

AUTH_IAM = "iam"
AUTH_JWT = "jwt"
AUTH_COGNITO = "cognito"
AUTH_MODES = (AUTH_IAM, AUTH_JWT, AUTH_COGNITO)

# The algorithms a key of each type signs with: the token's header never chooses the family.
_ALGORITHMS_BY_KEY_TYPE = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
# A token naming an unknown `kid` refetches the JWKS at most this often (forged kids cannot flood the issuer).
MIN_REFRESH_SECONDS = 10.0
MAX_TOKEN_CHARS = 8192
JWKS_TIMEOUT_SECONDS = 3.0

Jwks = Mapping[str, Any]


class Unauthorized(Exception):
    """Raised by the API's authorizer to refuse a request: API Gateway answers 401 for exactly this
    message (any other error of an authorizer is a 500)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the stable owner identity its jobs carry, and what it may do."""

    owner: str
    scopes: frozenset[str]

    @property
    def operator(self) -> bool:
        return SCOPE_OPERATOR in self.scopes

    def require(self, scope: str) -> None:
        """Raise MissingScope unless the caller holds `scope` (the operator scope stands for read/cancel)."""
        if scope in self.scopes or (self.operator and scope in (SCOPE_READ, SCOPE_CANCEL)):
            return
        raise MissingScope(scope)

    def context(self) -> dict[str, str]:
        """What the authorizer hands to the routes (API Gateway's authorizer context holds strings)."""
        return {"scope": " ".join(sorted(self.scopes))}


def owner_of(issuer: str, subject: str) -> str:
    """The owner identity of a token's subject: the issuer's URL and the subject, together unique."""
    return f"{issuer}#{subject}"


# Cognito names a resource server's custom scopes `<identifier>/<scope>`: the user pool's resource server
# for this API is `jobpoll`, so its access tokens carry `jobpoll/jobs:submit`.
COGNITO_RESOURCE_SERVER = "jobpoll"


def parse_scopes(claims: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """The token's scopes (`scope`, space-separated, or `scp`), those with `prefix` named without it."""
    scope, scp = claims.get("scope"), claims.get("scp")
    if isinstance(scope, str):
        names = scope.split()
    elif isinstance(scp, str):
        names = scp.split()
    elif isinstance(scp, list):
        names = [str(item) for item in scp]
    else:
        names = []
    if prefix:
        names = [name.removeprefix(prefix) for name in names if name.startswith(prefix)]
    return frozenset(names)


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` value; NotAuthenticated if there is none."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("send 'Authorization: Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS:
        raise NotAuthenticated("the bearer token is too long")
    return token


def url_jwks(url: str, timeout: float = JWKS_TIMEOUT_SECONDS) -> Callable[[], Jwks]:
    """Fetch the JWKS at `url` (each call fetches; TokenVerifier decides when)."""

    def fetch() -> Jwks:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return dict(json.loads(response.read(1024 * 1024)))

    return fetch


def discovered_jwks(issuer: str, timeout: float = JWKS_TIMEOUT_SECONDS) -> Callable[[], Jwks]:
    """The JWKS the issuer's OpenID configuration names (`jwks_uri`), found on first fetch."""
    found: list[str] = []

    def fetch() -> Jwks:
        if not found:
            with urllib.request.urlopen(
                issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=timeout
            ) as response:
                found.append(str(json.loads(response.read(1024 * 1024))["jwks_uri"]))
        return url_jwks(found[0], timeout)()

    return fetch


class TokenVerifier:
    """Checks bearer tokens of one issuer and audience; keys cached, refetched on an unknown `kid`."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        fetch_jwks: Callable[[], Jwks],
        now: Callable[[], float] = time.time,
        leeway_seconds: int = 30,
        audience_claim: str = "aud",
        scope_prefix: str = "",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._fetch = fetch_jwks
        self._now = now
        self._leeway = leeway_seconds
        # Cognito access tokens carry the app client in `client_id`, not `aud`.
        self._audience_claim = audience_claim
        self._scope_prefix = scope_prefix
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> Caller:
        """The caller a token stands for; NotAuthenticated for anything not exactly right."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticated("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("the token names no signing key ('kid')")
        key = self._key(kid)
        algorithms = _ALGORITHMS_BY_KEY_TYPE.get(str(key.key_type), ())
        if header.get("alg") not in algorithms:
            raise NotAuthenticated(f"the token's algorithm {header.get('alg')!r} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(algorithms),
                issuer=self.issuer,
                audience=self.audience if self._audience_claim == "aud" else None,
                options={
                    "require": ["iss", "sub", "exp"],
                    "verify_aud": self._audience_claim == "aud",
                    # Time is checked below, against the injectable clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("the token is from another issuer") from None
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"the token is not valid: {exc}") from None
        self._check_time(claims)
        if self._audience_claim != "aud" and claims.get(self._audience_claim) != self.audience:
            raise NotAuthenticated("the token is for another client")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise NotAuthenticated("the token has no subject")
        return Caller(owner_of(self.issuer, subject), parse_scopes(claims, self._scope_prefix))

    def _check_time(self, claims: Mapping[str, Any]) -> None:
        now = self._now()
        exp, nbf = _seconds(claims.get("exp")), _seconds(claims.get("nbf"))
        if exp is None or now >= exp + self._leeway:
            raise NotAuthenticated("the token has expired (or has no numeric 'exp')")
        if "nbf" in claims and (nbf is None or now + self._leeway < nbf):
            raise NotAuthenticated("the token is not valid yet")

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self._now()
            if self._fetched_at is None or now - self._fetched_at >= MIN_REFRESH_SECONDS:
                self._fetched_at = now
                self._keys = _parse_jwks(self._fetch_keys())
            key = self._keys.get(kid)
        if key is None:
            raise NotAuthenticated("the token is signed by a key the issuer does not publish")
        return key

    def _fetch_keys(self) -> Jwks:
        try:
            return self._fetch()
        except (OSError, ValueError, KeyError) as exc:
            # The issuer is unreachable: no token can be checked, and none is let through.
            raise NotAuthenticated(f"the issuer's keys cannot be read ({type(exc).__name__})") from None


def _seconds(value: Any) -> float | None:
    """An epoch-seconds claim (a JSON number), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _parse_jwks(jwks: Jwks) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig" or "kid" not in entry:
            continue
        if entry.get("kty") not in _ALGORITHMS_BY_KEY_TYPE:
            continue  # symmetric ("oct") keys are never accepted
        try:
            keys[str(entry["kid"])] = jwt.PyJWK(dict(entry))
        except jwt.PyJWTError:
            continue
    return keys


def scopes_of(context: Mapping[str, Any]) -> frozenset[str]:
    """The scopes an authorizer put in the request's context (see Caller.context)."""
    return frozenset(str(context.get("scope") or "").split())
