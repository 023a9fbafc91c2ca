"""The local token issuer and `jobpoll token`: one key kept with the stack's state, tokens the API's
verifier accepts, the issuer's documents served on loopback."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import jwt
import pytest

from chalicelib.auth import TokenVerifier, discovered_jwks, owner_of
from chalicelib.errors import NotAuthenticated
from jobpoll import cli
from jobpoll.issuer import AUDIENCE, serving
from jobpoll.local import local_issuer


def test_the_issuers_key_is_kept_owner_only_and_reused(tmp_path: Path) -> None:
    state_file = tmp_path / ".jobpoll" / "local.json"
    first = local_issuer(state_file, 8001)
    again = local_issuer(state_file, 8001)

    key_file = tmp_path / ".jobpoll" / "issuer-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.kid == again.kid  # tokens survive a restart of the stack
    assert local_issuer(state_file, 9999).url == "http://127.0.0.1:8001"  # on another port too
    token = first.token("alice", ["jobs:read"])
    caller = TokenVerifier(first.url, AUDIENCE, again.jwks).verify(token)
    assert caller.owner == owner_of("http://127.0.0.1:8001", "alice")
    assert caller.scopes == frozenset({"jobs:read"})


def test_the_verifier_finds_the_keys_through_the_served_openid_configuration(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    served = local_issuer(tmp_path / "local.json", port)
    with serving(served, port):
        verifier = TokenVerifier(served.url, AUDIENCE, discovered_jwks(served.url))
        assert verifier.verify(served.token("bob", ["jobs:submit"])).owner == owner_of(served.url, "bob")
    with pytest.raises(NotAuthenticated, match="keys cannot be read"):
        TokenVerifier(served.url, AUDIENCE, discovered_jwks(served.url)).verify(served.token("bob", []))


def test_jobpoll_token_prints_a_signed_token_with_the_subject_and_scopes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file = tmp_path / "local.json"
    argv = ["token", "--sub", "alice", "--scope", "jobs:submit jobs:read", "--ttl", "60"]
    assert cli.main([*argv, "--state-file", str(state_file), "--issuer-port", "8123"]) == 0

    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("http://127.0.0.1:8123", "alice", AUDIENCE)
    assert claims["scope"] == "jobs:submit jobs:read"
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["kid"] == local_issuer(state_file, 8123).kid
