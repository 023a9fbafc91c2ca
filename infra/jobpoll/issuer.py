"""The local stack's token issuer: an OIDC issuer on loopback, as Cognito, Auth0 or Keycloak are on AWS.

Its RSA key lives in a PEM file next to the local stack's state (so tokens survive a restart); it serves its
OpenID configuration and JWKS on 127.0.0.1, and `jobpoll token` signs tokens with it. The API checks these
tokens with the same authorizer code as a deployed `jwt` stack.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .paths import ensure_functions_importable

ensure_functions_importable()
from chalicelib.auth import SCOPES, TENANT_SCOPES  # noqa: E402

__all__ = ["TENANT_SCOPES", "LocalIssuer", "new_private_key", "serving"]

AUDIENCE = "jobpoll"
DEFAULT_TOKEN_SECONDS = 24 * 3600
ALGORITHM = "RS256"
CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class LocalIssuer:
    """Signs tokens for `audience` as `url` with one RSA key (its `kid`: the key's JWK thumbprint)."""

    url: str
    private_key: rsa.RSAPrivateKey
    audience: str = AUDIENCE

    @classmethod
    def load_or_create(cls, key_file: Path, url: str, audience: str = AUDIENCE) -> LocalIssuer:
        """The issuer whose key is in `key_file`, made (readable by its owner only) when it is missing.

        Its URL (the tokens' `iss`, part of every owner identity) is the one it was made with, kept beside
        the key: a restart on another port still accepts its tokens and shows its jobs to their owners."""
        url_file = key_file.with_suffix(".url")
        if key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{key_file} does not hold an RSA private key")
            if url_file.exists():
                url = url_file.read_text().strip() or url
        else:
            key = new_private_key()
            key_file.parent.mkdir(parents=True, exist_ok=True)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as output:
                output.write(pem)
            url_file.write_text(url + "\n")
        return cls(url, key, audience)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk["kid"] = jwk_thumbprint(jwk)
        return {**jwk, "use": "sig", "alg": ALGORITHM}

    @property
    def kid(self) -> str:
        return str(self.public_jwk["kid"])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def openid_configuration(self, served_at: str | None = None) -> dict[str, Any]:
        """The discovery document; `served_at`: where the JWKS is served, if not at the issuer's URL."""
        return {
            "issuer": self.url,
            "jwks_uri": (served_at or self.url) + JWKS_PATH,
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(SCOPES),
        }

    def token(
        self,
        subject: str,
        scopes: Iterable[str],
        seconds: int = DEFAULT_TOKEN_SECONDS,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token for `subject` with `scopes`, valid from now for `seconds`."""
        issued = int(time.time() if now is None else now)
        payload = {
            "iss": self.url,
            "aud": self.audience,
            "sub": subject,
            "scope": " ".join(scopes),
            "iat": issued,
            "nbf": issued,
            "exp": issued + seconds,
            **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638's SHA-256 thumbprint of an RSA JWK, base64url."""
    import base64
    import hashlib

    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _handler(issuer: LocalIssuer, served_at: str) -> type[BaseHTTPRequestHandler]:
    documents = {CONFIGURATION_PATH: issuer.openid_configuration(served_at), JWKS_PATH: issuer.jwks()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = documents.get(self.path.split("?")[0])
            body = json.dumps(document if document is not None else {"error": "not found"}).encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no line per key fetch

    return Handler


@contextmanager
def serving(issuer: LocalIssuer, port: int, host: str = "127.0.0.1") -> Iterator[ThreadingHTTPServer]:
    """Serve the issuer's OpenID configuration and JWKS on host:port (loopback) while in the block."""
    server = ThreadingHTTPServer((host, port), _handler(issuer, f"http://{host}:{port}"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
