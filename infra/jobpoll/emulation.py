"""The in-process AWS emulation: moto with the real ASL executing and the real handlers in-process.

`Emulation` is a context manager that starts moto, installs the patches (moto_patches), creates the job
table, the project's Lambda functions and the poller state machine, and points the handlers' runtime at
moto and at the emulation clock. Tests and the benchmark drive it; `jobpoll local up` (local.py) runs the same
handlers and patches behind a moto server instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import json
import os
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3

from .clocks import EmulationClock, VirtualClock
from .definition import function_arn_placeholder, render, table_properties
from .executions import continued_in
from .faults import FaultPlan, Invocation
from .paths import ensure_functions_importable
from .queues import EventSourceMapping, QueueDelivery

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
REGION = "us-east-1"
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_ASSUME_ROLE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


@functools.cache
def _shared_session() -> boto3.session.Session:
    # One session for every emulation (made on first use, after the environment is set): its loaders
    # cache the service models, so clients are quick to make.
    return boto3.session.Session()


def loopback_only_sender(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """The emulation's callback sender: only 127.0.0.1 is reached; any other host fails as an unreachable
    one would, with no DNS lookup and no packet leaving the machine."""
    from chalicelib.callbacks import urllib_sender

    host = urllib.parse.urlsplit(url).hostname
    if host not in {"127.0.0.1", "localhost"}:
        raise OSError(f"the emulation sends callbacks to loopback only, not to {host}")
    return urllib_sender(url, body, headers, timeout)


def isolate_from_aws() -> None:
    """Point this process at nothing real: fake credentials, a fixed region, no endpoint, UTC.

    For processes that run the in-process emulation (tests, the demo, benchmarks); call before the first
    boto3 client is made.
    """
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "TZ": "UTC",
        }
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    time.tzset()


def _create_function(lambda_client: Any, function_name: str, handler: str, role_arn: str, code: bytes) -> str:
    return str(
        lambda_client.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": code},
        )["FunctionArn"]
    )


def resolve_handler(handler: str) -> Callable[[Any, Any], Any]:
    """`app.start_job` -> the callable Lambda would run for that Handler setting."""
    ensure_functions_importable()
    module_name, _, attribute = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]


def chalice_lambda_functions() -> dict[str, str]:
    """The project's `@app.lambda_function`s: name -> handler string (e.g. StartJob -> app.start_job)."""
    ensure_functions_importable()
    app = importlib.import_module("app").app
    return {fn.name: fn.handler_string for fn in app.pure_lambda_functions}


def chalice_queue_handlers() -> dict[str, tuple[str, str, int]]:
    """The project's `@app.on_sqs_message`s: name -> (handler string, queue name, batch size)."""
    ensure_functions_importable()
    app = importlib.import_module("app").app
    return {
        source.name: (source.handler_string, source.queue, source.batch_size)
        for source in app.event_sources
        if hasattr(source, "queue") and hasattr(source, "batch_size")
    }


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process in the emulation")
    return buffer.getvalue()


@dataclass
class Deployment:
    table_name: str
    state_machine_arn: str
    function_arns: dict[str, str] = field(default_factory=dict)
    results_bucket: str = ""
    # Queue mode: queue name -> (url, arn), and the event source mappings to emulate.
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    mappings: list[EventSourceMapping] = field(default_factory=list)

    def queue_url(self, name: str) -> str:
        return self.queues[name][0]


def deploy(
    clients: Callable[[str], Any],
    app_name: str = "jobpoll",
    stage: str = "dev",
    lease_seconds: int = 60,
    max_receive_count: int = 3,
) -> Deployment:
    """Create the table, the functions, the state machine and the queues through the AWS API (moto's)."""
    prefix = f"{app_name}-{stage}"
    role_arn = clients("iam").create_role(
        RoleName=f"{prefix}-emulated", AssumeRolePolicyDocument=json.dumps(_ASSUME_ROLE)
    )["Role"]["Arn"]

    table_name = f"{prefix}-jobs"
    properties = table_properties()
    ttl = properties.pop("TimeToLiveSpecification", None)
    properties.pop("PointInTimeRecoverySpecification", None)
    dynamodb = clients("dynamodb")
    dynamodb.create_table(TableName=table_name, **properties)
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)

    lambda_client = clients("lambda")
    code = _placeholder_zip()
    function_arns = {}
    for name, handler in chalice_lambda_functions().items():
        function_arns[name] = _create_function(lambda_client, f"{prefix}-{name}", handler, role_arn, code)

    definition = render({function_arn_placeholder(n): arn for n, arn in function_arns.items()})
    state_machine_arn = clients("stepfunctions").create_state_machine(
        name=f"{prefix}-poller", definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    results_bucket = f"{prefix}-results"
    clients("s3").create_bucket(Bucket=results_bucket)
    deployment = Deployment(table_name, state_machine_arn, function_arns, results_bucket=results_bucket)
    _deploy_queues(clients, deployment, prefix, role_arn, code, lease_seconds, max_receive_count)
    return deployment


def _deploy_queues(
    clients: Callable[[str], Any],
    deployment: Deployment,
    prefix: str,
    role_arn: str,
    code: bytes,
    lease_seconds: int,
    max_receive_count: int,
) -> None:
    """The work queue and its dead-letter queue, and a function per `@app.on_sqs_message`."""
    from chalicelib.settings import Settings

    sqs = clients("sqs")
    settings = Settings.from_env()

    def create(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        deployment.queues[name] = (url, arn)
        return url, arn

    _, dlq_arn = create(settings.dead_letter_queue_name)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    # Longer than the lease, so a redelivery finds a dead worker's lease lapsed.
    create(
        settings.work_queue_name,
        VisibilityTimeout=str(lease_seconds + 30),
        RedrivePolicy=json.dumps(redrive),
    )
    lambda_client = clients("lambda")
    for name, (handler, queue, batch_size) in chalice_queue_handlers().items():
        arn = _create_function(lambda_client, f"{prefix}-{name}", handler, role_arn, code)
        deployment.function_arns[name] = arn
        queue_url, queue_arn = deployment.queues[queue]
        deployment.mappings.append(EventSourceMapping(queue_url, queue_arn, arn, batch_size))


class Emulation:
    """moto in-process, executing the poller with the real handlers on `clock` (virtual by default)."""

    def __init__(
        self,
        clock: EmulationClock | None = None,
        region: str = REGION,
        queue_delivery: bool = False,
        lease_seconds: int = 60,
    ) -> None:
        self.clock: EmulationClock = clock or VirtualClock()
        self.region = region
        self.lease_seconds = lease_seconds
        self.queue_delivery: QueueDelivery | None = None
        self._deliver_queues = queue_delivery
        self.invocations: list[Invocation] = []
        self.listeners: list[Callable[[Invocation], None]] = [self.invocations.append]
        self.faults = FaultPlan()
        self._clients: dict[str, Any] = {}
        self._stack = ExitStack()

    def client(self, service: str) -> Any:
        """A client of moto's `service`, one per emulation (clients are thread-safe)."""
        if service not in self._clients:
            self._clients[service] = _shared_session().client(service, region_name=self.region)
        return self._clients[service]

    def __enter__(self) -> Emulation:
        from moto import mock_aws

        from .moto_patches import emulation_patches

        ensure_functions_importable()
        from chalicelib.bootstrap import build_runtime, set_runtime
        from chalicelib.settings import Settings

        try:
            self._stack.enter_context(mock_aws(config=MOTO_CONFIG))  # type: ignore[call-overload]
            self._stack.enter_context(
                emulation_patches(self.clock, resolve_handler, self.faults, self.listeners)
            )
            self.deployment = deploy(self.client, lease_seconds=self.lease_seconds)
            base = Settings.from_env()
            self.settings = dataclasses.replace(
                base,
                table_name=self.deployment.table_name,
                state_machine_arn=self.deployment.state_machine_arn,
                work_queue_url=self.deployment.queue_url(base.work_queue_name),
                results_bucket=self.deployment.results_bucket,
                lease_seconds=self.lease_seconds,
            )
            self.runtime = build_runtime(
                self.settings,
                self.clock,
                self.client("dynamodb"),
                self.client("stepfunctions"),
                self.client("sqs"),
                s3=self.client("s3"),
                sender=loopback_only_sender,
            )
            set_runtime(self.runtime)
            self._stack.callback(set_runtime, None)
            if self._deliver_queues:
                self.queue_delivery = QueueDelivery(
                    self.client, self.deployment.mappings, self.clock, self.region
                ).start()
                self._stack.callback(self.queue_delivery.stop)
            self.sfn = self.client("stepfunctions")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def start(self, execution_input: Any, name: str | None = None) -> str:
        """Start an execution of the poller; returns its ARN."""
        kwargs = {"name": name} if name else {}
        return str(
            self.sfn.start_execution(
                stateMachineArn=self.deployment.state_machine_arn,
                input=json.dumps(execution_input),
                **kwargs,
            )["executionArn"]
        )

    def wait(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block (real time, bounded) until the execution ends; returns describe_execution's answer."""
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in _TERMINAL:
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout}s")
            time.sleep(pause)  # moto's execution thread needs the GIL to make progress
            pause = min(pause * 2, 0.02)

    def run(self, execution_input: Any, name: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Start an execution and wait for its end."""
        return self.wait(self.start(execution_input, name), timeout)

    def wait_for_chain(self, execution_arn: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait for an execution and every execution it continued in; returns each one's description."""
        chain = [self.wait(execution_arn, timeout)]
        while (next_arn := continued_in(chain[-1])) is not None:
            chain.append(self.wait(next_arn, timeout))
        return chain

    def add_provider(self, provider: Any) -> None:
        """Register another provider (or engine) with the handlers' runtime, under `provider.name`."""
        from chalicelib.bootstrap import set_runtime

        providers = {**self.runtime.providers, provider.name: provider}
        self.runtime = dataclasses.replace(self.runtime, providers=providers)
        set_runtime(self.runtime)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        paginator = self.sfn.get_paginator("get_execution_history")
        return [e for page in paginator.paginate(executionArn=execution_arn) for e in page["events"]]
