"""The in-process AWS emulation: moto with the real ASL executing and the real handlers in-process.

`Emulation` is a context manager that starts moto, installs the patches (moto_patches), creates the job
table, the queues, the project's Lambda functions and the poller state machine with the settings the packaged
template gives them (infra/template.json, rendered as `chalice package` gets it: no second description), and
points the handlers' runtime at moto and at the emulation clock. Tests and the benchmark drive it; `jobpoll
local up` (local.py) runs the same handlers and patches behind a moto server instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import json
import os
import re
import time
import urllib.parse
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3

from .clocks import EmulationClock, VirtualClock
from .definition import cfn_state_machine_definition, event_rules, scheduled_rules, table_properties
from .executions import continued_in
from .faults import FaultPlan, Invocation
from .package import render_merge_template
from .paths import ensure_functions_importable
from .queues import EventSourceMapping, QueueDelivery
from .sandbox import HandlerClock
from .schedules import ScheduleRunner, deployed_schedules
from .simulated_service import SimulatedServiceEvents

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
REGION = "us-east-1"
# The template's logical ids of the queue-mode queues.
WORK_QUEUE = "WorkQueue"
DEAD_LETTER_QUEUE = "DeadLetterQueue"
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
def _shared_client(service: str, region: str) -> Any:
    # One client per service and region for every emulation of the process (made on first use, after the
    # environment is set and moto imported): moto answers whichever emulation is running, and making a client
    # costs more than most emulated calls. Clients are thread-safe.
    return _shared_session().client(service, region_name=region)


@functools.cache
def _shared_session() -> boto3.session.Session:
    # One session for every client (its loaders cache the service models).
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


def _create_function(
    lambda_client: Any, function_name: str, handler: str, role_arn: str, code: bytes, timeout: int
) -> str:
    return str(
        lambda_client.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": code},
            Timeout=timeout,
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
    # Queue mode: the template's queues by logical id -> (url, arn), and the event source mappings.
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    mappings: list[EventSourceMapping] = field(default_factory=list)

    def queue_url(self, logical_id: str) -> str:
        return self.queues[logical_id][0]


class _Resolver:
    """Resolves the template's Ref, Fn::GetAtt Arn and Fn::Sub against what the emulation created (the
    stack's name, the parameters' defaults, created resources); KeyError for anything not created yet."""

    def __init__(self, template: Mapping[str, Any], stack_name: str, region: str) -> None:
        self.values: dict[str, Any] = {
            name: parameter.get("Default") for name, parameter in template.get("Parameters", {}).items()
        }
        self.values.update({"AWS::StackName": stack_name, "AWS::Region": region, "AWS::Partition": "aws"})
        self.arns: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                return self.values[value["Ref"]]
            if "Fn::GetAtt" in value:
                name, attribute = value["Fn::GetAtt"]
                if attribute != "Arn":
                    raise KeyError(f"{name}.{attribute}")
                return self.arns[name]
            if "Fn::Sub" in value:
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub(m.group(1))), value["Fn::Sub"])
            return {key: self(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def _sub(self, name: str) -> Any:
        resource, _, attribute = name.partition(".")
        return self({"Fn::GetAtt": [resource, attribute]} if attribute else {"Ref": resource})


def _by_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: dict(resource.get("Properties", {}))
        for name, resource in template["Resources"].items()
        if resource.get("Type") == resource_type
    }


def deploy(
    clients: Callable[[str], Any],
    settings: Any,
    app_name: str = "jobpoll",
    stage: str = "dev",
    region: str = REGION,
) -> Deployment:
    """Create the table, the functions, the state machine and the queues through the AWS API (moto's), each
    with the settings the packaged template gives it (infra/template.json rendered with `settings`)."""
    template = render_merge_template(settings=settings)
    resources = template["Resources"]
    prefix = f"{app_name}-{stage}"
    resolve = _Resolver(template, prefix, region)
    role_arn = clients("iam").create_role(
        RoleName=f"{prefix}-emulated", AssumeRolePolicyDocument=json.dumps(_ASSUME_ROLE)
    )["Role"]["Arn"]

    table_name = f"{prefix}-jobs"
    properties = table_properties(template)
    ttl = properties.pop("TimeToLiveSpecification", None)
    properties.pop("PointInTimeRecoverySpecification", None)
    dynamodb = clients("dynamodb")
    dynamodb.create_table(TableName=table_name, **properties)
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)

    lambda_client = clients("lambda")
    code = _placeholder_zip()
    function_arns = {}

    def create_function(name: str, handler: str) -> str:
        timeout = resources.get(name, {}).get("Properties", {}).get("Timeout")
        if not isinstance(timeout, int):
            raise KeyError(f"infra/template.json gives the function {name} no Timeout")
        arn = _create_function(lambda_client, f"{prefix}-{name}", handler, role_arn, code, timeout)
        function_arns[name] = arn
        return arn

    for name, handler in chalice_lambda_functions().items():
        create_function(name, handler)
    resolve.arns.update(function_arns)
    (machine,) = _by_type(template, "AWS::StepFunctions::StateMachine").values()
    definition = cfn_state_machine_definition(
        {
            "Definition": machine["Definition"],
            "DefinitionSubstitutions": resolve(machine["DefinitionSubstitutions"]),
        }
    )
    state_machine_arn = clients("stepfunctions").create_state_machine(
        name=resolve(machine["StateMachineName"]), definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    results_bucket = f"{prefix}-results"
    clients("s3").create_bucket(Bucket=results_bucket)
    deployment = Deployment(table_name, state_machine_arn, function_arns, results_bucket=results_bucket)
    _deploy_queues(clients("sqs"), _by_type(template, "AWS::SQS::Queue"), resolve, deployment)
    for name, (handler, _, batch_size) in chalice_queue_handlers().items():
        arn = create_function(name, handler)
        for source in resources[name]["Properties"]["Events"].values():
            queue_arn = resolve(source["Properties"]["Queue"])
            (queue_url,) = [url for url, known in deployment.queues.values() if known == queue_arn]
            deployment.mappings.append(EventSourceMapping(queue_url, queue_arn, arn, batch_size))
    events = clients("events")
    for rule, (function, pattern) in event_rules().items():
        events.put_rule(Name=f"{prefix}-{rule}", EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=f"{prefix}-{rule}", Targets=[{"Id": function, "Arn": function_arns[function]}]
        )
    for rule, (function, expression) in scheduled_rules().items():
        events.put_rule(Name=f"{prefix}-{rule}", ScheduleExpression=expression)
        events.put_targets(
            Rule=f"{prefix}-{rule}", Targets=[{"Id": function, "Arn": function_arns[function]}]
        )
    return deployment


def _attribute_text(value: Any) -> str:
    """A queue property as SQS's attribute strings spell it (a JSON policy, `true`, a number)."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _deploy_queues(
    sqs: Any, queues: dict[str, dict[str, Any]], resolve: _Resolver, deployment: Deployment
) -> None:
    """Every queue of the template, with its attributes (a dead-letter queue before the queues using it)."""
    pending = dict(queues)
    while pending:
        created = False
        for logical_id, properties in list(pending.items()):
            try:
                resolved = resolve(properties)
            except KeyError:
                continue  # refers to a queue not created yet
            name = resolved.pop("QueueName")
            attributes = {key: _attribute_text(value) for key, value in resolved.items()}
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            deployment.queues[logical_id] = (url, arn)
            resolve.arns[logical_id] = arn
            resolve.values[logical_id] = url
            del pending[logical_id]
            created = True
        if not created:
            raise KeyError(f"the template's queues {sorted(pending)} refer to what the emulation lacks")


class Emulation:
    """moto in-process, executing the poller with the real handlers on `clock` (virtual by default)."""

    def __init__(
        self,
        clock: EmulationClock | None = None,
        region: str = REGION,
        queue_delivery: bool = False,
        queue_job_max_seconds: int | None = None,
        simulated_events: bool = False,
        schedules: bool = False,
    ) -> None:
        self.clock: EmulationClock = clock or VirtualClock()
        self.region = region
        self.queue_job_max_seconds = queue_job_max_seconds
        self.queue_delivery: QueueDelivery | None = None
        self._deliver_queues = queue_delivery
        self._run_schedules = schedules
        self._simulated_events = simulated_events
        self.simulated_service: SimulatedServiceEvents | None = None
        self.invocations: list[Invocation] = []
        self.listeners: list[Callable[[Invocation], None]] = [self.invocations.append]
        self.faults = FaultPlan()
        # The handlers' metric documents (EMF lines), newest last: kept here, not printed.
        self.metric_lines: deque[str] = deque(maxlen=100_000)
        self._stack = ExitStack()

    def client(self, service: str) -> Any:
        """A client of moto's `service` (one per process and region: clients are thread-safe)."""
        return _shared_client(service, self.region)

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
            base = Settings.from_env()
            if self.queue_job_max_seconds is not None:
                base = dataclasses.replace(base, queue_job_max_seconds=self.queue_job_max_seconds)
            self.deployment = deploy(self.client, base, region=self.region)
            self.settings = dataclasses.replace(
                base,
                table_name=self.deployment.table_name,
                state_machine_arn=self.deployment.state_machine_arn,
                work_queue_url=self.deployment.queue_url(WORK_QUEUE),
                results_bucket=self.deployment.results_bucket,
            )
            self.runtime = build_runtime(
                self.settings,
                HandlerClock(self.clock),
                self.client("dynamodb"),
                self.client("stepfunctions"),
                self.client("sqs"),
                sender=loopback_only_sender,
                clients=self.client,
                metrics_output=self.metric_lines.append,
            )
            set_runtime(self.runtime)
            self._stack.callback(set_runtime, None)
            if self._simulated_events:
                self.simulated_service = SimulatedServiceEvents(
                    functools.partial(self.client, "events"), self.clock
                )
                self.listeners.append(self.simulated_service)
                self._stack.callback(self.simulated_service.stop)
            if self._deliver_queues:
                self.queue_delivery = QueueDelivery(
                    self.client,
                    self.deployment.mappings,
                    self.clock,
                    self.region,
                    duplicate=self.faults.duplicate_delivery,
                ).start()
                self._stack.callback(self.queue_delivery.stop)
            # The template's schedules (the reconciler): `schedules.run_once()` fires them now; with
            # `schedules=True` they also fire every period of the emulation clock.
            self.schedules = ScheduleRunner(
                self.client, deployed_schedules(self.client("events")), self.clock, self.region
            )
            if self._run_schedules:
                self.schedules.start()
                self._stack.callback(self.schedules.stop)
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
