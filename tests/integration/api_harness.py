"""The REST API under test: chalice.test.Client(app) on the emulation, in local mode with generated tokens."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client, HTTPResponse

from app import app
from chalicelib.bootstrap import Runtime, build_runtime, set_runtime
from chalicelib.job import Job, JobStatus
from chalicelib.jobs_api import execution_arn_for
from jobpoll.emulation import Emulation, loopback_only_sender


@dataclass
class Api:
    """The API under test: `client` is chalice.test.Client(app) on the emulation's runtime."""

    client: Client
    emulation: Emulation
    runtime: Runtime
    tokens: dict[str, str]  # caller name (alice, bob) -> bearer token
    owners: dict[str, str]  # caller name -> the owner identity stored on its jobs (unique per test)

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


def make_api(emulation: Emulation, **settings: Any) -> Api:
    """Install a runtime in local mode with two fresh callers, so tests sharing an emulation never see
    each other's jobs; tokens and the callback secret are generated here."""
    tokens = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}
    owners = {name: f"{name}-{secrets.token_hex(4)}" for name in tokens}
    overrides: dict[str, Any] = {
        "mode": "local",
        "local_tokens": tuple((token, owners[name]) for name, token in tokens.items()),
        "callback_secret": secrets.token_hex(32),
        "share_key": secrets.token_hex(32),
        **settings,
    }
    configured = dataclasses.replace(emulation.settings, **overrides)
    runtime = build_runtime(
        configured,
        emulation.clock,
        emulation.client("dynamodb"),
        sfn=emulation.client("stepfunctions"),
        sqs=emulation.client("sqs"),
        clients=emulation.client,
        resolve=fake_resolver,
        sender=loopback_only_sender,
    )
    set_runtime(runtime)  # the emulation's exit resets it
    return Api(Client(app), emulation, runtime, tokens, owners)


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
