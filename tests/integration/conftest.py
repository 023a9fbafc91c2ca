"""Fixtures for integration tests: a moto job store, the packaged stack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_harness import Api, Receiver, make_api
from moto import mock_aws

from chalicelib.store import DynamoDBJobStore
from jobpoll.clocks import VirtualClock
from jobpoll.definition import table_properties
from jobpoll.emulation import Emulation
from jobpoll.moto_patches import atomic_dynamodb_writes
from jobpoll.package import Package, chalice_package, cloudformation_template

REGION = "us-east-1"
BUNDLE_BUCKET = "jobpoll-artifacts-123456789012-us-east-1"
BUNDLE_KEY = "jobpoll-dev/deployment.zip"


@pytest.fixture
def job_store() -> Iterator[DynamoDBJobStore]:
    """The DynamoDB job store on a moto table created from infra/template.json (writes atomic, as on AWS)."""
    with mock_aws(), atomic_dynamodb_writes():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        properties = table_properties()
        properties.pop("TimeToLiveSpecification")
        properties.pop("PointInTimeRecoverySpecification")
        dynamodb.create_table(TableName="jobs", **properties)
        yield DynamoDBJobStore("jobs", dynamodb)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """`chalice package --merge-template` of functions/ + infra/template.json (stage dev), run once."""
    return chalice_package("dev", Path(tmp_path_factory.mktemp("package")), REGION)


@pytest.fixture(scope="session")
def transformed(packaged: Package) -> dict[str, Any]:
    """The packaged SAM template after the SAM transform, as it is deployed to AWS."""
    return cloudformation_template(packaged, REGION, BUNDLE_BUCKET, BUNDLE_KEY)


@pytest.fixture(scope="module")
def module_emulation() -> Iterator[Emulation]:
    """One emulation for a test module (auto-advancing virtual time); tests keep apart by owner."""
    with Emulation(clock=VirtualClock()) as running:
        yield running


@pytest.fixture
def api(module_emulation: Emulation) -> Api:
    """The REST API in local mode with two fresh callers (alice, bob) on the module's emulation."""
    return make_api(module_emulation)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A callback receiver on 127.0.0.1 (a thread, shut down after the test)."""
    state = Receiver(statuses=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append((dict(self.headers), self.rfile.read(length)))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
