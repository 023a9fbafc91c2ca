"""Every patch of moto internals, in one place. Targets moto 5.2.x (measured on 5.2.5).

Why each exists:
- Lambda: with `use_docker: False`, moto's `LambdaSimpleBackend.invoke` never runs code. We replace it with
  one that resolves the function's `Handler` (e.g. `app.start_job`) to the project's callable and calls it
  in-process; an exception comes back as `x-amz-function-error` with `{"errorType", "errorMessage"}`, as
  Lambda answers, so the state machine's Retry/Catch see the exception's class name.
- Time: Wait states wait on `env.program_state_event` for real seconds and compare `TimestampPath` times
  with local wall time; Retry intervals call `time.sleep` in the retrier module. All three go to one
  emulation clock instead, so tests run on virtual time and `--speed` compresses real time. A StopExecution
  still interrupts a wait (the wait checks `env.is_running()`).
- CloudFormation: moto's `AWS::StepFunctions::StateMachine` reads only `DefinitionString` (no `Definition`, no
  `DefinitionSubstitutions`, no logging/tracing) and always writes to the non-executing backend, so a stack's
  state machine would never run. We replace its create/update/delete with ones that render the definition as
  CloudFormation does and use the backend the Step Functions API uses (`responses.get_backend`), so the
  packaged template deploys into moto unchanged. And executing a change set leaves the stack's outputs those
  of its empty initial template: `ChangeSet.apply` also takes the new template and rebuilds the output map.

`check_patch_targets()` fails loudly when moto moves or reshapes any of these; a test calls it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudformation.models import ChangeSet, Stack
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.stepfunctions.utils import cfn_to_api_tags

SUPPORTED_MOTO = ("5.2.3", "5.3")


class EmulationClock(Protocol):
    def now(self) -> Any: ...

    def wait(
        self,
        seconds: float,
        interrupt: threading.Event | None = None,
        still_running: Callable[[], bool] = ...,
    ) -> None: ...

    def sleep(self, seconds: float) -> None: ...


class MotoMoved(RuntimeError):
    """moto's internals are not where these patches expect them."""


# (owner, attribute, parameter names expected) for every patched target.
_TARGETS: list[tuple[Any, str, tuple[str, ...]]] = [
    (
        LambdaSimpleBackend,
        "invoke",
        ("self", "function_name", "qualifier", "body", "headers", "response_headers"),
    ),
    (WaitFunction, "_wait_interval", ("self", "env", "wait_seconds")),
    (Timestamp, "_get_wait_seconds", ("self", "env")),
    (Timestamp, "_from_timestamp_string", ("timestamp",)),
    (ChangeSet, "apply", ("self",)),
    (Stack, "_create_output_map", ("self",)),
    (Stack, "_parse_template", ("self",)),
    (
        StateMachine,
        "create_from_cloudformation_json",
        ("resource_name", "cloudformation_json", "account_id", "region_name", "kwargs"),
    ),
    (
        StateMachine,
        "update_from_cloudformation_json",
        ("original_resource", "new_resource_name", "cloudformation_json", "account_id", "region_name"),
    ),
    (
        StateMachine,
        "delete_from_cloudformation_json",
        ("resource_name", "cloudformation_json", "account_id", "region_name"),
    ),
]


def check_patch_targets() -> None:
    """Raise MotoMoved unless every patched target exists with the expected parameters."""
    problems = []
    for owner, name, params in _TARGETS:
        target = getattr(owner, name, None)
        if target is None:
            problems.append(f"{owner.__module__}.{owner.__name__}.{name} is gone")
            continue
        found = tuple(inspect.signature(target).parameters)
        if found != params:
            problems.append(f"{owner.__name__}.{name}{found} != expected {params}")
    if not callable(getattr(getattr(retrier_decl, "time", None), "sleep", None)):
        problems.append("retrier_decl no longer sleeps through its module-level `time`")
    if "time.sleep" not in inspect.getsource(retrier_decl.RetrierDecl._eval_body):
        problems.append("RetrierDecl._eval_body no longer calls time.sleep")
    if "program_state_event" not in inspect.getsource(WaitFunction._wait_interval):
        problems.append("WaitFunction._wait_interval no longer waits on program_state_event")
    if tuple(inspect.signature(stepfunctions_backend).parameters) != ("account", "region"):
        problems.append("moto.stepfunctions.responses.get_backend(account, region) changed")
    if "DefinitionString" not in inspect.getsource(StateMachine.create_from_cloudformation_json):
        problems.append("StateMachine.create_from_cloudformation_json no longer reads DefinitionString")
    if "resource_map.update" not in inspect.getsource(ChangeSet.apply):
        problems.append("ChangeSet.apply no longer updates the stack's resource map")
    if problems:
        raise MotoMoved(
            f"moto internals moved (patches target moto {SUPPORTED_MOTO[0]} to <{SUPPORTED_MOTO[1]}): "
            + "; ".join(problems)
        )


class LambdaServiceFault(JsonRESTError):
    """A Lambda service-side error (what Step Functions names `Lambda.<code>`)."""

    def __init__(self, error_code: str, message: str, status: int) -> None:
        super().__init__(error_code, message)
        self.code = status


@dataclass
class FaultPlan:
    """Faults to inject into Lambda invocations, by function name (for tests of Retry and Catch)."""

    _queued: dict[str, list[BaseException]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def service_error(self, function: str, code: str = "ServiceException", times: int = 1) -> None:
        """The next `times` invocations of `function` fail at the Lambda service (status 500/429)."""
        status = 429 if code == "TooManyRequestsException" else 500
        self._push(function, [LambdaServiceFault(code, "injected fault", status)] * times)

    def handler_error(self, function: str, error: BaseException, times: int = 1) -> None:
        """The next `times` invocations of `function` raise `error` inside the handler."""
        self._push(function, [error] * times)

    def _push(self, function: str, faults: list[BaseException]) -> None:
        with self._lock:
            self._queued.setdefault(function, []).extend(faults)

    def take(self, function: str) -> BaseException | None:
        with self._lock:
            queue = self._queued.get(function)
            return queue.pop(0) if queue else None


@dataclass
class Invocation:
    function: str
    event: Any
    result: Any = None
    error: dict[str, str] | None = None


class _Context:
    """The parts of the Lambda context object handlers may read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


HandlerResolver = Callable[[str], Callable[[Any, Any], Any]]


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
        fault = faults.take(name)
        if isinstance(fault, JsonRESTError):
            raise fault
        invocation = Invocation(function=name, event=event)
        try:
            if fault is not None:
                raise fault
            invocation.result = resolve(str(function.handler))(event, _Context(name))
            payload = json.dumps(invocation.result)
        except Exception as exc:  # what Lambda reports for an unhandled exception
            invocation.error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({**invocation.error, "stackTrace": []})
        for listener in listeners:
            listener(invocation)
        return payload.encode()

    return invoke


def _clocked_wait_interval(clock: EmulationClock) -> Callable[..., None]:
    def _wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        clock.wait(wait_seconds, env.program_state_event, env.is_running)

    return _wait_interval


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


class _ClockedTime:
    """Stands in for the `time` module inside moto's retrier, so Retry intervals run on the clock."""

    def __init__(self, clock: EmulationClock) -> None:
        self.sleep = clock.sleep


def _camel_keys(value: Any) -> Any:
    """CloudFormation's PascalCase property keys as the Step Functions API spells them."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel_keys(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value


def cfn_state_machine_definition(properties: dict[str, Any]) -> str:
    """The definition CloudFormation would create: `Definition` (or `DefinitionString`) with every
    `${Name}` of `DefinitionSubstitutions` replaced."""
    definition = properties.get("Definition")
    text = json.dumps(definition) if definition is not None else str(properties.get("DefinitionString", ""))
    for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", str(value))
    return text


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


@contextlib.contextmanager
def cloudformation_patches() -> Iterator[None]:
    """moto's CloudFormation creates executable state machines from `Definition` + substitutions, and a
    stack created or updated through a change set has its outputs."""
    with (
        mock.patch.object(ChangeSet, "apply", _apply_change_set),
        mock.patch.object(
            StateMachine, "create_from_cloudformation_json", classmethod(_cfn_create_state_machine)
        ),
        mock.patch.object(
            StateMachine, "update_from_cloudformation_json", classmethod(_cfn_update_state_machine)
        ),
        mock.patch.object(
            StateMachine, "delete_from_cloudformation_json", classmethod(_cfn_delete_state_machine)
        ),
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
            mock.patch.object(
                LambdaSimpleBackend, "invoke", _in_process_invoke(resolve, plan, listeners or [])
            ),
            mock.patch.object(WaitFunction, "_wait_interval", _clocked_wait_interval(clock)),
            mock.patch.object(Timestamp, "_get_wait_seconds", _clocked_timestamp_seconds(clock)),
            mock.patch.object(retrier_decl, "time", _ClockedTime(clock)),
            cloudformation_patches(),
        ):
            yield plan
    finally:
        _installed.release()
