"""Every patch of moto internals, in one place. Targets moto 5.2.x (measured on 5.2.5).

Why each exists:
- Lambda: with `use_docker: False`, moto's `LambdaSimpleBackend.invoke` never runs code. We replace it with
  one that resolves the function's `Handler` (e.g. `app.start_job`) to the project's callable and calls it
  in-process; an exception comes back as `x-amz-function-error` with `{"errorType", "errorMessage"}`, as
  Lambda answers, so the state machine's Retry/Catch see the exception's class name. Each function's
  `Timeout` (from the template) is enforced as Lambda does: an invocation still running at its end fails with
  `Sandbox.Timedout` ("Task timed out after N seconds"), the error Step Functions then reports for the task
  (the run time and the context: sandbox.py).
- Time: Wait states wait on `env.program_state_event` for real seconds and compare `TimestampPath` times
  with local wall time; Retry intervals call `time.sleep` in the retrier module. All three go to one
  emulation clock instead, so tests run on virtual time and `--speed` compresses real time. A StopExecution
  still interrupts a wait (the wait checks `env.is_running()`). Task-token waits (`.waitForTaskToken`:
  the TimeoutSeconds of the callback and its HeartbeatSeconds) wait on the same clock. moto sets up a task's
  heartbeat wait only after its Lambda returned, so a SendTaskSuccess that came in between was lost and the
  task waited for a heartbeat; the patched setup passes such an early outcome on.
- StopExecution: moto marks the program stopped while its thread may still be inside a state; that state,
  its stack cleared under it, then raises (e.g. "pop from empty list" in a Choice), and the error replaced
  the stopped state, so a stopped execution ended FAILED. On AWS a stopped execution is ABORTED: an error
  after the stop is ignored.
- Step Functions integration: moto 5.2 passes `arn:aws:states:::states:startExecution` parameters to boto3
  in ASL's casing (`StateMachineArn`), which botocore cannot serialise (`stateMachineArn`), and returns
  boto3's casing (`executionArn`) where AWS answers `ExecutionArn`; we translate both ways, as AWS does, so a
  poll loop can continue in a new execution.
- SQS: visibility timeouts, delays and timestamps follow the emulation clock (moto reads wall time), so a
  worker that dies mid-job is taken over once its message's visibility timeout passes on that clock.
- Faults (`jobpoll local up --fault-plan`): moto's DynamoDB never throttles; `injected_dynamodb_faults`
  raises ProvisionedThroughputExceededException (and, for version-conditional writes, a lost condition) at the
  plan's rates, from the backend's GetItem, Query and PutItem, so every client (the API, the handlers) sees
  them as from AWS.
- DynamoDB: moto checks a write's condition and then stores the item with nothing in between to stop another
  thread's write; DynamoDB applies a conditional write atomically. `atomic_dynamodb_writes()` serialises
  moto's item writes, so two writers racing on one job behave as on AWS (one wins, the other's condition
  fails).
- EventBridge: moto delivers a matched event to log groups, queues, buses and API destinations only; a Lambda
  target raises NotImplementedError in `Rule.send_to_targets`. We deliver Lambda targets as EventBridge does:
  an asynchronous invocation (the Event invocation type) with the event as AWS shapes it (`time` in ISO 8601),
  and leave the other targets to moto. A rule with no event pattern (a scheduled rule) matches no event, as
  on AWS: moto's empty pattern matches every one, so each event on the bus also ran the reconciler.
- Transcribe and Athena: moto never fails a job, and its GetTranscriptionJob and GetQueryExecution leave out
  why a job failed. As on AWS, a transcription job whose media is not in (moto's) S3, and a query whose
  output bucket does not exist, are accepted and then FAILED with the service's reason; the describes answer
  `FailureReason` and `Status.StateChangeReason`, as AWS does.
- Speed: moto's interpreter builds a new JSONPath parser (PLY tables) for every path it evaluates and a new
  boto3 Lambda client for every Task; both are cached here (same results, ~2x faster executions), so an hour
  of polling runs in well under a second. And it parses the state machine's definition (ANTLR) anew for
  every execution, a few hundred milliseconds of CPU each: the parsed program is kept per definition, as
  its components keep no execution's state (that lives in the execution's `Environment`), so a thousand
  executions of one state machine parse it once. Its JSON response serializer walks every DynamoDB
  attribute value member by member through a chain of alias lookups (tens of milliseconds for a page of
  jobs); an attribute value of strings, numbers, booleans, nulls, lists and maps is already in the wire's
  shape and goes out as it is (binary ones still take moto's way). And its server lists moto's package
  directory (a `stat` per service) twice for every request to find the service it is for: the list is
  read once. CreateStateMachine parses the definition only to validate it: it uses the same kept program,
  so a definition is parsed once per process (each emulation creates the same state machine).
- CloudFormation: moto's `AWS::StepFunctions::StateMachine` reads only `DefinitionString` (no `Definition`, no
  `DefinitionSubstitutions`, no logging/tracing) and always writes to the non-executing backend, so a stack's
  state machine would never run. We replace its create/update/delete with ones that render the definition as
  CloudFormation does and use the backend the Step Functions API uses (`responses.get_backend`), so the
  packaged template deploys into moto unchanged. And executing a change set leaves the stack's outputs those
  of its empty initial template: `ChangeSet.apply` also takes the new template and rebuilds the output map.
  moto's CloudFormation has no `AWS::CloudWatch::Alarm` (it warns, records no resource, and then fails to
  describe the stack's resources): the alarms are created, updated and deleted through moto's CloudWatch
  (`put_metric_alarm`, `delete_alarms`), so a stack's alarms are there to describe, as on AWS.

Every patch goes through a `_Target` declared beside it (`_target(owner, name, parameters)`), and a target
registers itself when declared: `check_patch_targets()` checks every one, so it covers each applied patch by
construction, and fails loudly when moto moves or reshapes any of them; a test calls it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto import backends as moto_backends
from moto.athena.models import AthenaBackend
from moto.athena.responses import AthenaResponse
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudformation import parsing as cloudformation_parsing
from moto.cloudformation.models import ChangeSet, Stack
from moto.cloudwatch.models import (
    CloudWatchBackend,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.exceptions import JsonRESTError
from moto.core.models import botocore_stubber
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, ConditionalCheckFailed, DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import Rule as EventRule
from moto.settings import moto_server_port
from moto.sqs import models as sqs_models
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from moto.transcribe.models import FakeTranscriptionJob, TranscribeBackend

from .clocks import EmulationClock
from .definition import cfn_state_machine_definition
from .faults import FaultPlan, Invocation, KillMidRun, ServiceFault
from .sandbox import (
    LambdaContext,
    RunTime,
    SandboxKilled,
    SandboxTimedOut,
    killed_error,
    run_in_sandbox,
    timed_out_error,
)

SUPPORTED_MOTO = ("5.2.3", "5.3")


class MotoMoved(RuntimeError):
    """moto's internals are not where these patches expect them."""


@dataclass(frozen=True)
class _Target:
    """A moto internal that a patch replaces, with the parameters the patch expects (None: any, passed
    through unchanged). The only way the patches below replace anything is `patch()`."""

    owner: Any
    name: str
    parameters: tuple[str, ...] | None

    def original(self) -> Any:
        return getattr(self.owner, self.name)

    def patch(self, replacement: Any) -> Any:
        return mock.patch.object(self.owner, self.name, replacement)


_TARGETS: list[_Target] = []


def _target(owner: Any, name: str, parameters: tuple[str, ...] | None) -> _Target:
    """Declare (and register for `check_patch_targets`) a target of a patch."""
    target = _Target(owner, name, parameters)
    _TARGETS.append(target)
    return target


_MOTO_CFN_CREATE_STATE_MACHINE = getattr(StateMachine, "create_from_cloudformation_json", None)
_MOTO_APPLY_CHANGE_SET = getattr(ChangeSet, "apply", None)
_MOTO_SEND_TO_TARGETS = getattr(EventRule, "send_to_targets", None)


def check_patch_targets() -> None:
    """Raise MotoMoved unless every patched target exists with the expected parameters."""
    problems = []
    for declared in _TARGETS:
        owner, name, params = declared.owner, declared.name, declared.parameters
        target = getattr(owner, name, None)
        if target is None:
            problems.append(f"{getattr(owner, '__module__', '')}.{owner.__name__}.{name} is gone")
            continue
        if params is None:
            continue
        found = tuple(inspect.signature(target).parameters)
        if found != params:
            problems.append(f"{owner.__name__}.{name}{found} != expected {params}")
    if not callable(getattr(getattr(retrier_decl, "time", None), "sleep", None)):
        problems.append("retrier_decl no longer sleeps through its module-level `time`")
    sources = {
        "RetrierDecl._eval_body": (getattr(retrier_decl.RetrierDecl, "_eval_body", None), "time.sleep"),
        "WaitFunction._wait_interval": (
            getattr(WaitFunction, "_wait_interval", None),
            "program_state_event",
        ),
        # moto's own versions, as imported (the check also runs while our replacements are installed)
        "StateMachine.create_from_cloudformation_json": (_MOTO_CFN_CREATE_STATE_MACHINE, "DefinitionString"),
        "ChangeSet.apply": (_MOTO_APPLY_CHANGE_SET, "resource_map.update"),
        # the Lambda delivery matches the rule's pattern and reads its targets the same way
        "Rule.send_to_targets": (_MOTO_SEND_TO_TARGETS, "self.event_pattern.matches_event"),
        "Rule.send_to_targets targets": (_MOTO_SEND_TO_TARGETS, "for target in self.targets"),
        # the parsed program is cached per definition: the worker must parse nothing else
        "ExecutionWorker._get_evaluation_entrypoint": (
            _MOTO_EXECUTION_ENTRYPOINT,
            "parse(\n            self._evaluation_details.state_machine_details.definition\n        )[0]",
        ),
    }
    for label, (function, needle) in sources.items():
        if function is not None and needle not in inspect.getsource(function):
            problems.append(f"{label} no longer uses {needle}")
    if tuple(inspect.signature(stepfunctions_backend).parameters) != ("account", "region"):
        problems.append("moto.stepfunctions.responses.get_backend(account, region) changed")
    if problems:
        raise MotoMoved(
            f"moto internals moved (patches target moto {SUPPORTED_MOTO[0]} to <{SUPPORTED_MOTO[1]}): "
            + "; ".join(problems)
        )


class LambdaServiceFault(JsonRESTError):
    """A Lambda service-side error (what Step Functions names `Lambda.<code>`)."""

    def __init__(self, fault: ServiceFault) -> None:
        super().__init__(fault.code, "injected fault")
        self.code = fault.status


HandlerResolver = Callable[[str], Callable[[Any, Any], Any]]


_LAMBDA_INVOKE = _target(
    LambdaSimpleBackend,
    "invoke",
    ("self", "function_name", "qualifier", "body", "headers", "response_headers"),
)


def _in_process_invoke(
    resolve: HandlerResolver, faults: FaultPlan, listeners: list[Callable[[Invocation], None]]
) -> Callable[..., bytes]:
    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        function = self.get_function(function_name, qualifier)
        name = function.function_name
        event = json.loads(body) if body else {}
        asynchronous = (headers or {}).get("X-Amz-Invocation-Type") == "Event"
        fault = faults.take(name, asynchronous)
        if isinstance(fault, ServiceFault):
            raise LambdaServiceFault(fault)
        invocation = Invocation(function=name, event=event)

        def run() -> str:
            timeout = float(function.timeout)
            context = LambdaContext(name, RunTime(timeout))
            try:
                if isinstance(fault, KillMidRun):
                    context.run_time.killed_at = fault.after_seconds
                elif fault is not None:
                    raise fault
                handler = resolve(str(function.handler))
                invocation.result = run_in_sandbox(handler, event, context)
                payload = json.dumps(invocation.result)
            except SandboxTimedOut:
                invocation.error = timed_out_error(context.aws_request_id, timeout)
                payload = json.dumps(invocation.error)
            except SandboxKilled:
                invocation.error = killed_error(context.aws_request_id)
                payload = json.dumps(invocation.error)
            except Exception as exc:  # what Lambda reports for an unhandled exception
                invocation.error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                payload = json.dumps({**invocation.error, "stackTrace": []})
            for listener in listeners:
                listener(invocation)
            return payload

        if asynchronous:
            # Asynchronous: Lambda queues the event and answers 202 at once; the caller never waits.
            threading.Thread(target=run, name=f"async-{name}", daemon=True).start()
            return b""
        payload = run()
        if invocation.error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload.encode()

    return invoke


_EVENT_RULE_SEND = _target(EventRule, "send_to_targets", ("self", "original_event", "transform_input"))


def _lambda_targets_delivered(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: EventRule, original_event: Any, transform_input: bool = True) -> None:
        from moto.awslambda.utils import get_backend as lambda_backend

        # A scheduled rule has no event pattern: EventBridge fires it on its schedule and never for an event
        # on the bus (moto matches every event against the empty pattern).
        if not self.event_pattern.get_pattern() or not self.event_pattern.matches_event(original_event):
            return
        to_lambda = [t for t in self.targets if t["Arn"].split(":")[2:3] == ["lambda"]]
        if len(to_lambda) < len(self.targets):
            rest = copy.copy(self)
            rest.targets = [t for t in self.targets if t not in to_lambda]
            original(rest, original_event, transform_input)
        event = {k: v for k, v in original_event.items() if k != "ingestion-time"}
        if isinstance(event.get("time"), int | float):
            event["time"] = datetime.fromtimestamp(event["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for target in to_lambda:
            _, _, _, region, account, *_ = target["Arn"].split(":")
            lambda_backend(account, region).invoke(
                target["Arn"], None, json.dumps(event), {"X-Amz-Invocation-Type": "Event"}, {}
            )

    return send_to_targets


_TRANSCRIPTION_RESPONSE = _target(FakeTranscriptionJob, "response_object", ("self", "response_type"))


def _transcription_failure_reason(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def response_object(self: FakeTranscriptionJob, response_type: str) -> dict[str, Any]:
        response = original(self, response_type)
        if response_type == "GET" and self.status == "FAILED" and self.failure_reason:
            response["TranscriptionJob"]["FailureReason"] = self.failure_reason
        return response

    return response_object


def _s3_has(account_id: str, bucket: str, key: str | None = None) -> bool:
    """Whether moto's S3 holds the bucket (and the key)."""
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    try:
        backend.get_bucket(bucket)
    except Exception:  # moto's MissingBucket
        return False
    return key is None or backend.get_object(bucket, key) is not None


def _s3_location(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


_UNREADABLE_MEDIA = (
    "The S3 URI that you provided can't be accessed. Make sure you have read permission and try your "
    "request again."
)
_START_TRANSCRIPTION = _target(TranscribeBackend, "start_transcription_job", None)


def _transcription_fails_without_media(original: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    def start_transcription_job(self: TranscribeBackend, transcription_job_name: str, **kwargs: Any) -> Any:
        response = original(self, transcription_job_name=transcription_job_name, **kwargs)
        location = _s3_location(str((kwargs.get("media") or {}).get("MediaFileUri", "")))
        if location is not None and not _s3_has(self.account_id, *location):
            job = self.transcriptions[transcription_job_name]
            job.status = "FAILED"
            job.failure_reason = _UNREADABLE_MEDIA  # type: ignore[assignment]
        return response

    return start_transcription_job


_START_QUERY = _target(AthenaBackend, "start_query_execution", None)


def _query_fails_without_output_bucket(original: Callable[..., str]) -> Callable[..., str]:
    def start_query_execution(self: AthenaBackend, *args: Any, **kwargs: Any) -> str:
        execution_id = original(self, *args, **kwargs)
        execution = self.executions[execution_id]
        location = _s3_location(str((execution.config or {}).get("OutputLocation", "")))
        if location is not None and not _s3_has(self.account_id, location[0]):
            execution.status = "FAILED"
            reason = f"Unable to verify/create output bucket {location[0]}"
            execution.state_change_reason = reason  # type: ignore[attr-defined]
        return execution_id

    return start_query_execution


_GET_QUERY = _target(AthenaResponse, "get_query_execution", ("self",))


def _query_state_change_reason(original: Callable[..., str]) -> Callable[..., str]:
    def get_query_execution(self: AthenaResponse) -> str:
        body = json.loads(original(self))
        execution = self.athena_backend.executions[body["QueryExecution"]["QueryExecutionId"]]
        reason = getattr(execution, "state_change_reason", None)
        if reason:
            body["QueryExecution"]["Status"]["StateChangeReason"] = reason
        return json.dumps(body)

    return get_query_execution


_WAIT_INTERVAL = _target(WaitFunction, "_wait_interval", ("self", "env", "wait_seconds"))


def _clocked_wait_interval(clock: EmulationClock) -> Callable[..., None]:
    def _wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        clock.wait(wait_seconds, env.program_state_event, env.is_running)

    return _wait_interval


_TIMESTAMP_WAIT_SECONDS = _target(Timestamp, "_get_wait_seconds", ("self", "env"))
# Called by the replacement of `_get_wait_seconds`, as moto's own calls it.
_target(Timestamp, "_from_timestamp_string", ("timestamp",))


def _clocked_timestamp_seconds(clock: EmulationClock) -> Callable[..., int]:
    # Same as moto's, but "now" is the emulation clock's (moto compares with naive local time).
    def _get_wait_seconds(self: Timestamp, env: Any) -> int:
        self.string.eval(env=env)
        timestamp_str: str = env.stack.pop()
        timestamp = self._from_timestamp_string(timestamp=timestamp_str)
        if timestamp is None:
            raise FailureEventException(self._create_failure_event(env, timestamp_str))
        now = clock.now().replace(tzinfo=None)
        return int((timestamp - now).total_seconds())

    return _get_wait_seconds


_CALLBACK_WAIT = _target(CallbackEndpoint, "wait", ("self", "timeout"))


def _clocked_callback_wait(clock: EmulationClock) -> Callable[..., Any]:
    def wait(self: CallbackEndpoint, timeout: float | None = None) -> Any:
        clock.wait_for(self._notify_event, timeout)
        return self._outcome

    return wait


_HEARTBEAT_WAIT = _target(HeartbeatEndpoint, "clear_and_wait", ("self",))


def _clocked_heartbeat_wait(clock: EmulationClock) -> Callable[..., bool]:
    # moto's own, with the wait on the emulation clock.
    def clear_and_wait(self: HeartbeatEndpoint) -> bool:
        with self._mutex:
            if self._next_heartbeat_event.is_set():
                self._next_heartbeat_event.clear()
                return True
        return clock.wait_for(self._next_heartbeat_event, self._heartbeat_seconds)

    return clear_and_wait


_SQS_UNIX_TIME = _target(sqs_models, "unix_time", ("dt",))
_SQS_UNIX_TIME_MILLIS = _target(sqs_models, "unix_time_millis", ("dt",))


def _clocked_unix_time(clock: EmulationClock, scale: float) -> Callable[..., float]:
    def unix_time(dt: Any = None) -> float:
        moment = dt if dt is not None else clock.now()
        if moment.tzinfo is None:  # moto's naive datetimes are UTC
            moment = moment.replace(tzinfo=UTC)
        return float(moment.timestamp() * scale)

    return unix_time


_HEARTBEAT_SETUP = _target(CallbackEndpoint, "setup_heartbeat_endpoint", ("self", "heartbeat_seconds"))


def _heartbeat_setup_keeping_early_outcomes(original: Callable[..., Any]) -> Callable[..., Any]:
    def setup_heartbeat_endpoint(self: CallbackEndpoint, heartbeat_seconds: int) -> HeartbeatEndpoint:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:  # the outcome came before the heartbeat wait existed
            endpoint.notify()
        return endpoint  # type: ignore[no-any-return]

    return setup_heartbeat_endpoint


# A module attribute: checked in `check_patch_targets` (it must still sleep through `time.sleep`).
_RETRIER_TIME = _target(retrier_decl, "time", None)


class _ClockedTime:
    """Stands in for the `time` module inside moto's retrier, so Retry intervals run on the clock."""

    def __init__(self, clock: EmulationClock) -> None:
        self.sleep = clock.sleep


_JSON_PATH_PARSE = _target(json_path, "parse", ("path", "debug"))
_EXECUTION_PROGRAM = _target(ExecutionWorker, "_get_evaluation_entrypoint", ("self",))
_MOTO_MODULES = _target(moto_backends, "list_of_moto_modules", ())


def _listed_once(list_modules: Callable[[], Any]) -> Callable[[], tuple[str, ...]]:
    return functools.cache(lambda: tuple(list_modules()))


_JSON_STRUCTURE = _target(
    BaseJSONSerializer, "_serialize_type_structure", ("self", "serialized", "value", "shape", "key")
)
_WIRE_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_WIRE_STRING_SETS = ("SS", "NS")


def _in_wire_shape(value: Any) -> bool:
    """Whether a DynamoDB attribute value (as moto holds it) is already what the JSON protocol sends:
    one member of S, N, BOOL, NULL, SS, NS (strings and booleans), M or L (of such values)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, member),) = value.items()
    if kind in _WIRE_SCALARS:
        return isinstance(member, _WIRE_SCALARS[kind])
    if kind in _WIRE_STRING_SETS:
        return isinstance(member, list) and all(isinstance(item, str) for item in member)
    if kind == "M":
        return isinstance(member, dict) and all(_in_wire_shape(item) for item in member.values())
    if kind == "L":
        return isinstance(member, list) and all(_in_wire_shape(item) for item in member)
    return False


def _attribute_values_as_they_are(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _in_wire_shape(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    return serialize_structure


_MOTO_EXECUTION_ENTRYPOINT = _EXECUTION_PROGRAM.original()


_programs: dict[str, Any] = {}
_programs_lock = threading.Lock()  # executions that start together wait for one parse, not one each


def _parsed_program(definition: str) -> Any:
    with _programs_lock:
        if definition not in _programs:
            _programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
        return _programs[definition]


def _cached_program(self: ExecutionWorker) -> Any:
    return _parsed_program(self._evaluation_details.state_machine_details.definition)


_VALIDATE_DEFINITION = _target(StepFunctionsParserBackend, "_validate_definition", ("definition",))
_MOTO_VALIDATE_DEFINITION = _VALIDATE_DEFINITION.original()


def _validated_definition(definition: str) -> None:
    """Validation is a parse: the one executions use, kept. An invalid definition (never kept) gets moto's
    own InvalidDefinition."""
    try:
        _parsed_program(definition)
    except Exception:
        _MOTO_VALIDATE_DEFINITION(definition)
        raise


_RESULT_PATH_PARSE = _target(result_path, "parse", ("string",))
_TASK_CLIENT = _target(lambda_eval_utils, "boto_client_for", ("region", "service", "state_credentials"))


def _cached_task_client(create: Callable[..., Any]) -> Callable[..., Any]:
    # moto builds a boto3 client per Task. What it builds depends only on the region, the service and where
    # requests go (in-process stubber or the server's port); moto 5.2 ignores `state_credentials`.
    clients: dict[tuple[str, str, bool, int], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, bool(botocore_stubber.enabled), int(moto_server_port()))
        with lock:
            if key not in clients:
                clients[key] = create(region=region, service=service, state_credentials=state_credentials)
            return clients[key]

    return boto_client_for


_SFN_NORMALISE_PARAMETERS = _target(
    StateTaskServiceSfn,
    "_normalise_parameters",
    ("self", "parameters", "boto_service_name", "service_action_name"),
)
_SFN_NORMALISE_RESPONSE = _target(
    StateTaskServiceSfn,
    "_normalise_response",
    ("self", "response", "boto_service_name", "service_action_name"),
)
# ASL parameter names of states:startExecution -> boto3's.
_SFN_START_EXECUTION_NAMES = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name"}


def _sfn_parameters_in_boto_casing(original: Callable[..., None]) -> Callable[..., None]:
    def _normalise_parameters(
        self: StateTaskServiceSfn,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for asl_name, boto_name in _SFN_START_EXECUTION_NAMES.items():
                if asl_name in parameters:
                    parameters[boto_name] = parameters.pop(asl_name)

    return _normalise_parameters


def _sfn_response_in_asl_casing(original: Callable[..., None]) -> Callable[..., None]:
    def _normalise_response(
        self: StateTaskServiceSfn,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, response, boto_service_name, service_action_name)
        if (
            service_action_name is None
            and isinstance(response, dict)
            and self._get_boto_service_action() == "start_execution"
        ):
            for boto_name in [name for name in response if name[:1].islower()]:
                response[boto_name[0].upper() + boto_name[1:]] = response.pop(boto_name)

    return _normalise_response


def _camel_keys(value: Any) -> Any:
    """CloudFormation's PascalCase property keys as the Step Functions API spells them."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel_keys(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value


_CHANGE_SET_APPLY = _target(ChangeSet, "apply", ("self",))
# Called by the replacement of `ChangeSet.apply`.
_target(Stack, "_create_output_map", ("self",))
_target(Stack, "_parse_template", ("self",))
_CFN_CREATE_STATE_MACHINE = _target(
    StateMachine,
    "create_from_cloudformation_json",
    ("resource_name", "cloudformation_json", "account_id", "region_name", "kwargs"),
)
_CFN_UPDATE_STATE_MACHINE = _target(
    StateMachine,
    "update_from_cloudformation_json",
    ("original_resource", "new_resource_name", "cloudformation_json", "account_id", "region_name"),
)
_CFN_DELETE_STATE_MACHINE = _target(
    StateMachine,
    "delete_from_cloudformation_json",
    ("resource_name", "cloudformation_json", "account_id", "region_name"),
)


def _cfn_create_state_machine(
    cls: type[StateMachine],
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> StateMachine:
    properties = cloudformation_json["Properties"]
    backend = stepfunctions_backend(account_id, region_name)
    return backend.create_state_machine(
        name=properties.get("StateMachineName", resource_name),
        definition=cfn_state_machine_definition(properties),
        roleArn=properties.get("RoleArn", ""),
        tags=cfn_to_api_tags(properties.get("Tags", [])),
        loggingConfiguration=_camel_keys(properties.get("LoggingConfiguration")),
        tracingConfiguration=_camel_keys(properties.get("TracingConfiguration")),
        sm_type=properties.get("StateMachineType"),
    )


def _cfn_update_state_machine(
    cls: type[StateMachine],
    original_resource: StateMachine,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> StateMachine:
    properties = cloudformation_json.get("Properties", {})
    if properties.get("StateMachineName", original_resource.name) != original_resource.name:
        replacement = _cfn_create_state_machine(
            cls, new_resource_name, cloudformation_json, account_id, region_name
        )
        _cfn_delete_state_machine(cls, original_resource.arn, cloudformation_json, account_id, region_name)
        return replacement
    return stepfunctions_backend(account_id, region_name).update_state_machine(
        original_resource.arn,
        definition=cfn_state_machine_definition(properties),
        role_arn=properties.get("RoleArn"),
        logging_configuration=_camel_keys(properties.get("LoggingConfiguration")),
        tracing_configuration=_camel_keys(properties.get("TracingConfiguration")),
    )


def _cfn_delete_state_machine(
    cls: type[StateMachine],
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> None:
    stepfunctions_backend(account_id, region_name).delete_state_machine(resource_name)


def _apply_change_set(self: ChangeSet) -> None:
    self.stack.resource_map.update(self.template_dict, self.parameters)
    self.stack.template = self.template
    self.stack._parse_template()
    self.stack.output_map = self.stack._create_output_map()


_CFN_MODEL_MAP = _target(cloudformation_parsing, "get_model_map", ())
# Called by the alarm model below.
_target(
    CloudWatchBackend,
    "put_metric_alarm",
    (
        *("self", "name", "namespace", "metric_name", "comparison_operator", "evaluation_periods", "period"),
        *("threshold", "statistic", "description", "dimensions", "alarm_actions", "metric_data_queries"),
        *("datapoints_to_alarm", "extended_statistic", "ok_actions", "insufficient_data_actions", "unit"),
        *("actions_enabled", "treat_missing_data", "evaluate_low_sample_count_percentile"),
        *("threshold_metric_id", "rule", "tags"),
    ),
)
_target(CloudWatchBackend, "delete_alarms", ("self", "alarm_names"))
ALARM_TYPE = "AWS::CloudWatch::Alarm"


def _metric_query(query: dict[str, Any]) -> MetricDataQuery:
    """One entry of an alarm's `Metrics` (metric math), as moto's PutMetricAlarm builds it."""
    stat = query.get("MetricStat")
    metric_stat = None
    if stat is not None:
        metric = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        metric_stat = MetricStat(
            Metric(metric["MetricName"], metric["Namespace"], dimensions),
            stat["Period"],
            stat["Stat"],
            stat.get("Unit"),  # type: ignore[arg-type]
        )
    return MetricDataQuery(
        query["Id"],
        query.get("Label"),  # type: ignore[arg-type]
        query.get("Period"),  # type: ignore[arg-type]
        query.get("ReturnData", True),
        expression=query.get("Expression"),
        metric_stat=metric_stat,
    )


@dataclass
class _StackAlarm:
    """A stack's alarm, as moto's CloudFormation keeps a resource (its physical id: the alarm's name)."""

    name: str
    cf_resource_type: str = ALARM_TYPE
    logical_resource_id: str = ""

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])


class _CloudFormationAlarm:
    """`AWS::CloudWatch::Alarm` in moto's CloudFormation (the model interface moto's parsing calls)."""

    @staticmethod
    def cloudformation_type() -> str:
        return ALARM_TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _StackAlarm:
        properties = cloudformation_json.get("Properties", {})
        name = str(properties.get("AlarmName", resource_name))
        queries = properties.get("Metrics")
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=[_metric_query(q) for q in queries] if queries else None,
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=properties.get("DatapointsToAlarm"),
            period=properties.get("Period"),
            threshold=float(properties["Threshold"]),
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription", ""),
            dimensions=properties.get("Dimensions", []),
            alarm_actions=properties.get("AlarmActions", []),
            ok_actions=properties.get("OKActions", []),
            insufficient_data_actions=properties.get("InsufficientDataActions", []),
            unit=properties.get("Unit"),
            actions_enabled=properties.get("ActionsEnabled", True),
            treat_missing_data=properties.get("TreatMissingData"),
        )
        return _StackAlarm(name, logical_resource_id=str(kwargs.get("LogicalId", "")))

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _StackAlarm,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _StackAlarm:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            original_resource.name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


def _model_map_with_alarms(original: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def get_model_map() -> dict[str, Any]:
        return {**original(), ALARM_TYPE: _CloudFormationAlarm}

    return get_model_map


@contextlib.contextmanager
def cloudformation_patches() -> Iterator[None]:
    """moto's CloudFormation creates executable state machines from `Definition` + substitutions, and a
    stack created or updated through a change set has its outputs and its alarms."""
    with (
        _CHANGE_SET_APPLY.patch(_apply_change_set),
        _CFN_CREATE_STATE_MACHINE.patch(classmethod(_cfn_create_state_machine)),
        _CFN_UPDATE_STATE_MACHINE.patch(classmethod(_cfn_update_state_machine)),
        _CFN_DELETE_STATE_MACHINE.patch(classmethod(_cfn_delete_state_machine)),
        _CFN_MODEL_MAP.patch(_model_map_with_alarms(_CFN_MODEL_MAP.original())),
    ):
        yield


def _stopped_stays_stopped(set_error: Callable[..., None]) -> Callable[..., None]:
    def keep_stop(self: Environment, error: Any) -> None:
        with self._state_mutex:  # set_error takes it too: an RLock
            if isinstance(self._program_state, ProgramStopped):
                return
            set_error(self, error)

    return keep_stop


@contextlib.contextmanager
def service_patches() -> Iterator[None]:
    """EventBridge delivers to Lambda targets; Transcribe and Athena fail work as AWS does, and say why; a
    stopped execution stays ABORTED."""
    with (
        _SET_ERROR.patch(_stopped_stays_stopped(_SET_ERROR.original())),
        _EVENT_RULE_SEND.patch(_lambda_targets_delivered(_EVENT_RULE_SEND.original())),
        _TRANSCRIPTION_RESPONSE.patch(_transcription_failure_reason(_TRANSCRIPTION_RESPONSE.original())),
        _GET_QUERY.patch(_query_state_change_reason(_GET_QUERY.original())),
        _START_TRANSCRIPTION.patch(_transcription_fails_without_media(_START_TRANSCRIPTION.original())),
        _START_QUERY.patch(_query_fails_without_output_bucket(_START_QUERY.original())),
    ):
        yield


_SET_ERROR = _target(Environment, "set_error", ("self", "error"))


_DYNAMODB_WRITES = [
    _target(DynamoDBBackend, name, None)
    for name in ("put_item", "update_item", "delete_item", "transact_write_items")
]
_dynamodb_write_lock = threading.RLock()


def _serialised(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def serialised(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return write(*args, **kwargs)

    serialised._jobpoll_atomic = True  # type: ignore[attr-defined]
    return serialised


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """While inside, moto applies each DynamoDB item write (condition check and store) atomically."""
    with contextlib.ExitStack() as patches:
        for write in _DYNAMODB_WRITES:
            original = write.original()
            if not getattr(original, "_jobpoll_atomic", False):  # not already serialised by an outer use
                patches.enter_context(write.patch(_serialised(original)))
        yield


_DYNAMODB_PUT = _target(
    DynamoDBBackend,
    "put_item",
    (
        "self",
        "table_name",
        "item_attrs",
        "expected",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
        "overwrite",
        "return_values_on_condition_check_failure",
    ),
)


@contextlib.contextmanager
def journaled_puts(record: Callable[[str, dict[str, Any]], None]) -> Iterator[None]:
    """While inside, each item moto's DynamoDB stores by PutItem (its condition held) is also handed to
    `record(table_name, item)`, under the write lock, so the journal's order is the table's."""
    original = _DYNAMODB_PUT.original()

    def put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            stored = original(self, table_name, item_attrs, *args, **kwargs)
            record(table_name, item_attrs)
            return stored

    put_item._jobpoll_atomic = True  # type: ignore[attr-defined]
    with _DYNAMODB_PUT.patch(put_item):
        yield


_DYNAMODB_GET = _target(DynamoDBBackend, "get_item", ("self", "table_name", "keys", "projection_expressions"))
_DYNAMODB_QUERY = _target(DynamoDBBackend, "query", None)


class ProvisionedThroughputExceeded(DynamodbException):
    """DynamoDB's throttling error (moto never raises it); boto3 retries it with backoff, as on AWS."""

    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded (injected fault)",
        )


@contextlib.contextmanager
def injected_dynamodb_faults(plan: FaultPlan) -> Iterator[None]:
    """While inside, item reads and writes are throttled at the plan's rates, and writes conditional on the
    item's version lose to a concurrent writer (ConditionalCheckFailed) at its conflict rate."""

    def faulty(target: _Target, operation: str) -> Callable[..., Any]:
        original = target.original()

        @functools.wraps(original)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            names = kwargs.get("expression_attribute_names") or (args[4] if len(args) > 4 else None)
            versioned = operation == "PutItem" and "version" in (names or {}).values()
            fault = plan.dynamodb_fault(operation, conditional_on_version=versioned)
            if fault == "throttle":
                raise ProvisionedThroughputExceeded()
            if fault == "conflict":
                raise ConditionalCheckFailed()
            return original(self, *args, **kwargs)

        call._jobpoll_atomic = getattr(original, "_jobpoll_atomic", False)  # type: ignore[attr-defined]
        return call

    with (
        _DYNAMODB_GET.patch(faulty(_DYNAMODB_GET, "GetItem")),
        _DYNAMODB_QUERY.patch(faulty(_DYNAMODB_QUERY, "Query")),
        _DYNAMODB_PUT.patch(faulty(_DYNAMODB_PUT, "PutItem")),
    ):
        yield


@contextlib.contextmanager
def speed_patches() -> Iterator[None]:
    """The same results, less CPU: parsed JSONPaths and programs, Task clients and moto's module list kept;
    DynamoDB attribute values sent as they are (the module docstring says why each)."""
    with (
        _JSON_PATH_PARSE.patch(functools.lru_cache(maxsize=4096)(_JSON_PATH_PARSE.original())),
        _RESULT_PATH_PARSE.patch(functools.lru_cache(maxsize=4096)(_RESULT_PATH_PARSE.original())),
        _TASK_CLIENT.patch(_cached_task_client(_TASK_CLIENT.original())),
        _EXECUTION_PROGRAM.patch(_cached_program),
        _JSON_STRUCTURE.patch(_attribute_values_as_they_are(_JSON_STRUCTURE.original())),
        _MOTO_MODULES.patch(_listed_once(_MOTO_MODULES.original())),
        _VALIDATE_DEFINITION.patch(staticmethod(_validated_definition)),
    ):
        yield


_installed = threading.Lock()


@contextlib.contextmanager
def emulation_patches(
    clock: EmulationClock,
    resolve: HandlerResolver,
    faults: FaultPlan | None = None,
    listeners: list[Callable[[Invocation], None]] | None = None,
) -> Iterator[FaultPlan]:
    """Run Lambda handlers in-process and all state-machine time on `clock` while inside."""
    check_patch_targets()
    if not _installed.acquire(blocking=False):
        raise RuntimeError("the moto emulation patches are installed already")
    plan = faults or FaultPlan()
    try:
        with (
            atomic_dynamodb_writes(),
            _LAMBDA_INVOKE.patch(
                _in_process_invoke(resolve, plan, listeners if listeners is not None else [])
            ),
            _WAIT_INTERVAL.patch(_clocked_wait_interval(clock)),
            _TIMESTAMP_WAIT_SECONDS.patch(_clocked_timestamp_seconds(clock)),
            _CALLBACK_WAIT.patch(_clocked_callback_wait(clock)),
            _HEARTBEAT_SETUP.patch(_heartbeat_setup_keeping_early_outcomes(_HEARTBEAT_SETUP.original())),
            _HEARTBEAT_WAIT.patch(_clocked_heartbeat_wait(clock)),
            _RETRIER_TIME.patch(_ClockedTime(clock)),
            _SFN_NORMALISE_PARAMETERS.patch(
                _sfn_parameters_in_boto_casing(_SFN_NORMALISE_PARAMETERS.original())
            ),
            _SFN_NORMALISE_RESPONSE.patch(_sfn_response_in_asl_casing(_SFN_NORMALISE_RESPONSE.original())),
            _SQS_UNIX_TIME.patch(_clocked_unix_time(clock, 1.0)),
            _SQS_UNIX_TIME_MILLIS.patch(_clocked_unix_time(clock, 1000.0)),
            speed_patches(),
            service_patches(),
            cloudformation_patches(),
        ):
            yield plan
    finally:
        _installed.release()
