"""The API against its own /openapi.json, driven by a schema-driven fuzzer (schemathesis: its checks, the
stateful phase): no request the document allows is refused, every response is one the document declares.

Seeded and bounded, in-process: the API is served on a loopback thread by the local stack's request handler
(jobpoll.local_api), as `jobpoll local up` serves it, on a moto job table. What the API starts (executions,
queue messages) is recorded, not run: the state machine is not under test here, and every job stays where
the API left it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from api_harness import the_issuer, token_settings
from chalice.config import Config

from app import app
from chalicelib.auth import TENANT_SCOPES
from chalicelib.bootstrap import build_runtime, set_runtime
from chalicelib.settings import Settings
from chalicelib.store import JobStore
from jobpoll.clocks import VirtualClock
from jobpoll.local_api import serve, serving_in_thread

if TYPE_CHECKING:
    from schemathesis.engine import events

# schemathesis is imported by the test, not the module: every xdist worker collects this module, one runs it.

SEED = 6
EXAMPLES_PER_OPERATION = 5


class Recorded:
    """Step Functions and SQS as the API calls them: each call is recorded and answered, nothing runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            self.calls.append((operation, request))
            return {
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:poller:x",
                "MessageId": "m",
            }

        return call


def public_resolver(host: str) -> list[str]:
    """Every callback host name resolves to a public address (no DNS lookup)."""
    return ["93.184.216.34"]


def accepting_sender(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """Every callback is received at once: nothing leaves the machine."""
    return 204


@pytest.fixture
def api_url(job_store: JobStore) -> Iterator[tuple[str, str]]:
    """The API on 127.0.0.1 (a free port) in local mode; yields its URL and a caller's bearer token."""
    token = the_issuer().token("fuzzer", TENANT_SCOPES)
    settings = dataclasses.replace(
        Settings(),
        mode="local",
        **token_settings(),
        callback_secret=secrets.token_hex(32),
        share_key=secrets.token_hex(32),
        # http jobs are fuzzed too: validated at POST, never submitted (StartJob does not run here).
        http_profiles=json.dumps(
            {
                "service": {
                    "base_url": "http://127.0.0.1:9/api",
                    "headers": {"Authorization": f"Bearer {secrets.token_urlsafe(8)}"},
                    "defaults": {"style": "google"},
                }
            }
        ),
        table_name=job_store.table_name,
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:poller",
        work_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/work",
    )
    recorded = Recorded()
    set_runtime(
        build_runtime(
            settings,
            VirtualClock(),
            boto3.client("dynamodb", region_name="us-east-1"),
            sfn=recorded,
            sqs=recorded,
            resolve=public_resolver,
            sender=accepting_sender,
            jwks=the_issuer().jwks,
        )
    )
    try:
        with serving_in_thread(serve(app, Config(chalice_stage="dev"), "127.0.0.1", 0)) as url:
            yield url, token
    finally:
        set_runtime(None)


def test_no_request_the_document_allows_is_refused_and_every_response_is_declared(
    api_url: tuple[str, str],
) -> None:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events

    url, token = api_url
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
            "workers": 1,
            # The coverage phase's boundary values of every field, positive only: its negative cases (~350
            # more requests) are what test_api_contract's generated bodies already do; undeclared methods
            # are tests/unit/test_local_api.py's, through the same request handler.
            "phases": {"coverage": {"generation": {"mode": "positive"}}},
            "checks": {
                # 410 (an expired job, a deleted result) and 422 (an Idempotency-Key reused with another body)
                # answer a well-formed request by the state it meets, as 404 and 409 do: declared, not a
                # schema the request broke.
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "410", "422", "429"]
                },
                # DELETE cancels a running job, or deletes a finished job's output: the job stays readable
                # (CANCELED, or with result_deleted_at), as the long-running-operation pattern has it.
                "use_after_free": {"enabled": False},
            },
        }
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    failures: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            failures.extend(_failures(event))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"{type(event).__name__}: {event.value!r}")
    assert not failures, "\n\n".join(failures)


def _failures(event: events.ScenarioFinished) -> list[str]:
    from schemathesis.engine import Status

    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status is Status.FAILURE:
                case = event.recorder.cases[case_id].value
                failure = check.failure_info.failure if check.failure_info else ""
                response = event.recorder.find_response(case_id=case_id)
                answer = f"{response.status_code} {response.text[:300]}" if response is not None else "-"
                found.append(
                    f"[{event.phase.value}] {check.name}: {case.method} {case.formatted_path} "
                    f"query={case.query} body={getattr(case, 'body', None)!r}\n-> {answer}\n{failure}"
                )
    return found
