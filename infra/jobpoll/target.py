"""Where a command acts: an AWS account (region, profile) or the local emulation (an endpoint URL).

Also reads what `jobpoll local up` leaves for clients in `.jobpoll/local.json`.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ToolingError
from .paths import LOCAL_STATE

DEFAULT_REGION = "us-east-1"
# The emulation checks no credentials; boto3 still wants some to sign with.
_EMULATION_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class Target:
    """An AWS account, or the local emulation when `endpoint_url` is set."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _clients_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def is_emulation(self) -> bool:
        return self.endpoint_url is not None

    def session(self) -> Any:
        """The boto3 session for this target (one per Target: creating sessions and clients is slow)."""
        return self._session

    @functools.cached_property
    def _session(self) -> Any:
        import boto3
        import botocore.exceptions

        try:
            session = boto3.Session(profile_name=self.profile, region_name=self.region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise ToolingError(str(exc)) from exc
        if session.region_name is None:
            session = boto3.Session(profile_name=self.profile, region_name=DEFAULT_REGION)
        if self.is_emulation and session.get_credentials() is None:
            session = boto3.Session(region_name=session.region_name, **_EMULATION_CREDENTIALS)
        return session

    def client(self, service: str) -> Any:
        """The target's client of `service`, made once (boto3 clients are thread-safe; making one costs
        milliseconds of CPU, too many for a call per job)."""
        with self._clients_lock:
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = self.session().client(
                    service, endpoint_url=self.endpoint_url
                )
            return client

    @property
    def region_name(self) -> str:
        return str(self.session().region_name)


@dataclass(frozen=True)
class LocalState:
    """What a client needs to reach a running `jobpoll local up`."""

    api_url: str
    aws_endpoint_url: str
    region: str
    stack_name: str
    outputs: dict[str, str]
    pid: int
    # A bearer token from the local issuer (subject `local`, a tenant's scopes), for the console and demo.
    api_token: str = field(default="", repr=False)
    # The local token issuer (`jobpoll token` signs with its key).
    issuer_url: str = ""
    # The key that signs job callbacks (HMAC-SHA256; check with chalicelib.callbacks.verify_signature).
    callback_secret: str = field(default="", repr=False)
    # `--speed`: the stack's time runs `clock_speed` times faster than real time since `clock_origin`.
    clock_speed: float = 1.0
    clock_origin: str = ""
    # The web console `local up` serves (infra/jobpoll/web_console.py).
    console_url: str = ""
    # The `chalice local` child serving the API (found and stopped by a start after a crash).
    api_pid: int = 0

    def target(self) -> Target:
        return Target(region=self.region, endpoint_url=self.aws_endpoint_url)

    def write(self, path: Path = LOCAL_STATE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)  # it holds the token and the callback key: the owner's alone
        path.chmod(0o600)
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")

    @classmethod
    def read(cls, path: Path = LOCAL_STATE) -> LocalState:
        """The running local stack's state; ToolingError if none is running."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ToolingError(f"no local stack running (no {path}): run `jobpoll local up`") from None
