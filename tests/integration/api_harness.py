"""The REST API under test: chalice.test.Client(app) on the emulation, in local mode with generated tokens."""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client, HTTPResponse

from app import app
from chalicelib.auth import AUTH_JWT, TENANT_SCOPES, owner_of
from chalicelib.bootstrap import Runtime, build_runtime, set_runtime
from chalicelib.job import Job, JobStatus
from chalicelib.jobs_api import execution_arn_for
from jobpoll.emulation import Emulation, loopback_only_sender
from jobpoll.issuer import LocalIssuer, new_private_key
from jobpoll.local_api import install_refusing_authorizer
from jobpoll.sandbox import HandlerClock

ISSUER_URL = "https://issuer.example.test"


@functools.cache
def the_issuer() -> LocalIssuer:
    """The tests' token issuer (one RSA key per test process)."""
    return LocalIssuer(ISSUER_URL, new_private_key())


def token_settings(issuer: LocalIssuer | None = None) -> dict[str, Any]:
    """Settings overrides for an API that takes the issuer's bearer tokens."""
    issuer = issuer or the_issuer()
    return {"auth": AUTH_JWT, "jwt_issuer": issuer.url, "jwt_audience": issuer.audience}


@dataclass
class Api:
    """The API under test: `client` is chalice.test.Client(app) on the emulation's runtime."""

    client: Client
    emulation: Emulation
    runtime: Runtime
    tokens: dict[str, str]  # caller name (alice, bob) -> bearer token
    owners: dict[str, str]  # caller name -> the owner identity stored on its jobs (unique per test)
    subjects: dict[str, str] = field(default_factory=dict)  # caller name -> its tokens' `sub`

    def token(self, owner: str = "alice", scopes: Iterable[str] = TENANT_SCOPES, **claims: Any) -> str:
        """A fresh token of the caller with other scopes or claims."""
        return the_issuer().token(self.subjects[owner], scopes, **claims)

    def headers(self, owner: str = "alice", **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens[owner]}",
            "Content-Type": "application/json",
            "Host": "api.example.test",
            **extra,
        }

    def post(self, body: Any, owner: str = "alice", **headers: str) -> HTTPResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.http.post("/jobs", headers=self.headers(owner, **headers), body=raw)

    def get(self, path: str, owner: str = "alice") -> HTTPResponse:
        return self.client.http.get(path, headers=self.headers(owner))

    def delete(self, path: str, owner: str = "alice") -> HTTPResponse:
        return self.client.http.delete(path, headers=self.headers(owner))

    def execution_arn(self, job_id: str) -> str:
        return execution_arn_for(self.emulation.deployment.state_machine_arn, job_id)

    def wait_done(self, job_id: str) -> dict[str, Any]:
        """Block (bounded) until the job's execution ends."""
        return self.emulation.wait(self.execution_arn(job_id))

    def wait_status(self, job_id: str, *statuses: JobStatus, timeout: float = 10.0) -> Job:
        """Block (bounded, real time) until the stored job is in one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.runtime.store.get(job_id)
            if job.status in statuses:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status.value}")
            time.sleep(0.005)


def fake_resolver(host: str) -> list[str]:
    """DNS for tests, without the network: `localhost` is loopback, `*.private.test` private."""
    if host == "localhost":
        return ["127.0.0.1"]
    if host.endswith(".private.test"):
        return ["10.1.2.3"]
    if host.endswith(".public.test"):
        return ["93.184.216.34"]
    raise OSError(f"{host} does not resolve")


def make_api(
    emulation: Emulation,
    *,
    jwks: Callable[[], Mapping[str, Any]] | None = None,
    token_time: Callable[[], float] = time.time,
    **settings: Any,
) -> Api:
    """Install a runtime in local mode with two fresh callers, so tests sharing an emulation never see
    each other's jobs; their tokens (from the tests' issuer) and the callback secret are generated here."""
    issuer = the_issuer()
    subjects = {name: f"{name}-{secrets.token_hex(4)}" for name in ("alice", "bob")}
    tokens = {name: issuer.token(subject, TENANT_SCOPES) for name, subject in subjects.items()}
    owners = {name: owner_of(issuer.url, subject) for name, subject in subjects.items()}
    overrides: dict[str, Any] = {
        "mode": "local",
        **token_settings(issuer),
        "callback_secret": secrets.token_hex(32),
        "share_key": secrets.token_hex(32),
        **settings,
    }
    configured = dataclasses.replace(emulation.settings, **overrides)
    runtime = build_runtime(
        configured,
        HandlerClock(emulation.clock),  # as the emulation's: a handler's invocation ends at its Timeout
        emulation.client("dynamodb"),
        sfn=emulation.client("stepfunctions"),
        sqs=emulation.client("sqs"),
        clients=emulation.client,
        resolve=fake_resolver,
        sender=loopback_only_sender,
        jwks=jwks or issuer.jwks,
        token_time=token_time,
    )
    set_runtime(runtime)  # the emulation's exit resets it
    install_refusing_authorizer()
    return Api(Client(app), emulation, runtime, tokens, owners, subjects)


def stop_running_executions(emulation: Emulation, timeout: float = 5.0) -> None:
    """Stop executions still running (blocked in a Wait on a stopped clock) so none outlives its test."""
    arn = emulation.deployment.state_machine_arn
    deadline = time.monotonic() + timeout
    running = emulation.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    for execution in running:
        while True:
            try:
                emulation.sfn.stop_execution(executionArn=execution["executionArn"])
                break
            except Exception:  # moto cannot stop an execution whose worker has not started yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers the queued statuses in order (then 200)."""

    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
