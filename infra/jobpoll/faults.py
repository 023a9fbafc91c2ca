"""What the emulation's Lambda does besides running handlers: faults to inject (for tests of Retry and
Catch) and the record of each invocation. moto_patches' in-process invoke reads both."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServiceFault:
    """A Lambda service-side error (what Step Functions names `Lambda.<code>`), with its HTTP status."""

    code: str
    status: int


@dataclass
class FaultPlan:
    """Faults to inject into Lambda invocations, by function name (for tests of Retry and Catch)."""

    _queued: dict[str, list[BaseException | ServiceFault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def service_error(self, function: str, code: str = "ServiceException", times: int = 1) -> None:
        """The next `times` invocations of `function` fail at the Lambda service (status 500/429)."""
        status = 429 if code == "TooManyRequestsException" else 500
        self._push(function, [ServiceFault(code, status)] * times)

    def handler_error(self, function: str, error: BaseException, times: int = 1) -> None:
        """The next `times` invocations of `function` raise `error` inside the handler."""
        self._push(function, [error] * times)

    def _push(self, function: str, faults: list[BaseException | ServiceFault]) -> None:
        with self._lock:
            self._queued.setdefault(function, []).extend(faults)

    def take(self, function: str) -> BaseException | ServiceFault | None:
        with self._lock:
            queue = self._queued.get(function)
            return queue.pop(0) if queue else None


@dataclass
class Invocation:
    """One Lambda invocation the emulation ran: the event, and the result or the error Lambda reported."""

    function: str
    event: Any
    result: Any = None
    error: dict[str, str] | None = None
