"""What the emulation injects besides running handlers, and the record of each invocation. One fault system:

- `FaultPlan` queues faults for the next invocations of a function (tests of Retry and Catch), and, given
  `FaultRates` (a seeded plan of rates per fault class, read from a file by `jobpoll local up --fault-plan`),
  draws faults at those rates: Lambda service errors and a worker killed mid-job (moto_patches' in-process
  invoke), DynamoDB throttling and conditional conflicts (moto_patches.injected_dynamodb_faults), duplicate
  SQS deliveries (queues.QueueDelivery). Every drawn fault is appended to a `FaultLog` (one JSON line per
  fault under the stack's state dir), so the count survives a SIGKILL of the stack.
- Only the local emulation reads a plan: nothing deployed does, and `--fault-plan` is an option of
  `jobpoll local up` alone.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ToolingError
from .persistence import FAULT_LOG


@dataclass(frozen=True)
class ServiceFault:
    """A Lambda service-side error (what Step Functions names `Lambda.<code>`), with its HTTP status."""

    code: str
    status: int


@dataclass(frozen=True)
class KillMidRun:
    """The invocation's process dies `after_seconds` (emulation time) into its run: no cleanup, no answer."""

    after_seconds: float


Fault = BaseException | ServiceFault | KillMidRun

SERVICE_EXCEPTION = ServiceFault("ServiceException", 500)
TOO_MANY_REQUESTS = ServiceFault("TooManyRequestsException", 429)


@dataclass(frozen=True)
class FaultRates:
    """Rates (0..1, per operation) of each fault class, and the seed they are drawn with.

    The file `jobpoll local up --fault-plan FILE` reads is this as JSON, e.g.
    `{"seed": 7, "lambda_service_exception": 0.02, "dynamodb_throttle": 0.01}`; classes left out are 0.
    """

    seed: int = 0
    # Synchronous invocations of `lambda_functions` (the poll loop's tasks, which Step Functions retries).
    lambda_service_exception: float = 0.0
    lambda_too_many_requests: float = 0.0
    lambda_functions: tuple[str, ...] = ("StartJob", "GetJobStatus")
    # A queue worker's invocation dies `worker_killed_after_seconds` into its run.
    worker_killed: float = 0.0
    worker_killed_after_seconds: float = 2.0
    worker_functions: tuple[str, ...] = ("RunQueuedJob",)
    # DynamoDB item reads and writes (GetItem, PutItem, Query): ProvisionedThroughputExceededException.
    dynamodb_throttle: float = 0.0
    # Writes conditional on the item's version lose to a concurrent writer (ConditionalCheckFailed).
    dynamodb_conflict: float = 0.0
    # A received SQS batch is handed to two workers at once.
    duplicate_sqs_delivery: float = 0.0

    @classmethod
    def from_json(cls, text: str, source: str = "fault plan") -> FaultRates:
        """Parse and check a plan; ToolingError naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ToolingError(f"{source}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ToolingError(f"{source}: must be a JSON object of fault rates")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ToolingError(f"{source}: unknown fault classes {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            default = known[name].default
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ToolingError(f"{source}: {name!r} must be a list of function names")
                values[name] = tuple(value)
            elif name == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ToolingError(f"{source}: 'seed' must be an integer")
                values[name] = value
            elif name == "worker_killed_after_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ToolingError(f"{source}: {name!r} must be a number of seconds")
                values[name] = float(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ToolingError(f"{source}: {name!r} must be a rate from 0 to 1, got {value!r}")
                values[name] = float(value)
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> FaultRates:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ToolingError(f"--fault-plan {path}: {exc.strerror or exc}") from None
        return cls.from_json(text, f"--fault-plan {path}")


class FaultLog:
    """Each injected fault as one JSON line in `directory/faults.jsonl` (kept across a SIGKILL)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FAULT_LOG
        self._lock = threading.Lock()

    def record(self, fault_class: str, where: str) -> None:
        line = json.dumps({"fault": fault_class, "where": where}, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a") as log:
            log.write(line)


def injected_faults(directory: Path) -> Counter[str]:
    """How many faults of each class the stack logged in `directory` (a torn last line is skipped)."""
    counts: Counter[str] = Counter()
    try:
        lines = (directory / FAULT_LOG).read_text().splitlines()
    except FileNotFoundError:
        return counts
    for line in lines:
        try:
            counts[json.loads(line)["fault"]] += 1
        except (ValueError, KeyError, TypeError):
            continue
    return counts


@dataclass
class FaultPlan:
    """Faults to inject: queued for the next invocations of a function, or drawn at `rates`."""

    rates: FaultRates = field(default_factory=FaultRates)
    log: FaultLog | None = None
    _queued: dict[str, list[Fault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.rates.seed)

    def service_error(self, function: str, code: str = "ServiceException", times: int = 1) -> None:
        """The next `times` invocations of `function` fail at the Lambda service (status 500/429)."""
        status = 429 if code == "TooManyRequestsException" else 500
        self._push(function, [ServiceFault(code, status)] * times)

    def handler_error(self, function: str, error: BaseException, times: int = 1) -> None:
        """The next `times` invocations of `function` raise `error` inside the handler."""
        self._push(function, [error] * times)

    def kill_mid_run(self, function: str, after_seconds: float, times: int = 1) -> None:
        """The next `times` invocations of `function` die `after_seconds` into their run."""
        self._push(function, [KillMidRun(after_seconds)] * times)

    def _push(self, function: str, faults: list[Fault]) -> None:
        with self._lock:
            self._queued.setdefault(function, []).extend(faults)

    def _draw(self, rate: float, fault_class: str, where: str) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            hit = self._random.random() < rate
        if hit and self.log is not None:
            self.log.record(fault_class, where)
        return hit

    def take(self, function: str, asynchronous: bool = False) -> Fault | None:
        """The fault for this invocation of `function` (its deployed name), if any."""
        with self._lock:
            queue = self._queued.get(function)
            if queue:
                return queue.pop(0)
        rates = self.rates
        if not asynchronous and _named(function, rates.lambda_functions):
            if self._draw(rates.lambda_service_exception, "lambda_service_exception", function):
                return SERVICE_EXCEPTION
            if self._draw(rates.lambda_too_many_requests, "lambda_too_many_requests", function):
                return TOO_MANY_REQUESTS
        if _named(function, rates.worker_functions) and self._draw(
            rates.worker_killed, "worker_killed", function
        ):
            return KillMidRun(rates.worker_killed_after_seconds)
        return None

    def dynamodb_fault(self, operation: str, conditional_on_version: bool = False) -> str | None:
        """`throttle`, `conflict` (a version-conditional write only) or None for this DynamoDB call."""
        if self._draw(self.rates.dynamodb_throttle, "dynamodb_throttle", operation):
            return "throttle"
        if conditional_on_version and self._draw(
            self.rates.dynamodb_conflict, "dynamodb_conflict", operation
        ):
            return "conflict"
        return None

    def duplicate_delivery(self, queue_url: str) -> bool:
        """Whether this received SQS batch goes to two workers at once."""
        return self._draw(self.rates.duplicate_sqs_delivery, "duplicate_sqs_delivery", queue_url)


def _named(function: str, names: tuple[str, ...]) -> bool:
    """Whether a deployed function name (`jobpoll-dev-StartJob`, or CloudFormation's
    `jobpoll-local-StartJob-1A2B3C`) is one of the template's `names`."""
    return any(f"-{name}-" in f"-{function}-" for name in names)


@dataclass
class Invocation:
    """One Lambda invocation the emulation ran: the event, and the result or the error Lambda reported."""

    function: str
    event: Any
    result: Any = None
    error: dict[str, str] | None = None
