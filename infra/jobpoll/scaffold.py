"""`jobpoll new provider NAME [--kind poll|engine|worker]`: a working provider of that kind, its test file
using the conformance kit (jobpoll.testing), and its line in the provider registry.

The provider is a small, honest example: a stand-in service (a countdown, or for a worker a list it writes
out) with input validation, progress and cancel, marked where the calls to the team's own service go.
"""

from __future__ import annotations

import json
import keyword
from pathlib import Path
from string import Template

from .errors import ToolingError
from .paths import ROOT, ensure_functions_importable

KINDS = ("poll", "engine", "worker")
_CLASS_SUFFIX = {"poll": "Provider", "engine": "Engine", "worker": "Worker"}
_CONTRACT = {"poll": "PollProviderContract", "engine": "EngineContract", "worker": "WorkerContract"}


def provider_paths(root: Path, module: str) -> tuple[Path, Path, Path]:
    """The registry file, the provider's module and its test file in the project at `root`."""
    functions = root / "functions" / "chalicelib"
    return (
        functions / "providers.json",
        functions / "providers" / f"{module}.py",
        root / "tests" / "providers" / f"test_{module}_provider.py",
    )


def new_provider(name: str, kind: str = "poll", root: Path = ROOT) -> list[Path]:
    """Write the provider NAME of `kind` and its tests, and register it; returns the files written.

    Refuses (ToolingError, one line) an invalid name, a name that is registered, or files that exist.
    """
    ensure_functions_importable()
    from chalicelib.providers.registry import ProviderRegistryError, check_name, read_entries

    if kind not in KINDS:
        raise ToolingError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        check_name(name)
    except ProviderRegistryError as exc:
        raise ToolingError(str(exc)) from None
    module = name.replace("-", "_")
    if keyword.iskeyword(module):
        raise ToolingError(f"invalid provider name {name!r}: it is a Python keyword")
    registry_file, module_file, test_file = provider_paths(root, module)
    try:
        entries = read_entries(registry_file)
    except ProviderRegistryError as exc:
        raise ToolingError(str(exc)) from None
    if name in entries:
        raise ToolingError(f"provider {name!r} exists already ({entries[name]})")
    for path in (module_file, test_file):
        if path.exists():
            raise ToolingError(f"{path.relative_to(root)} exists already: pick another name")

    class_name = "".join(word.capitalize() for word in name.split("-")) + _CLASS_SUFFIX[kind]
    imports = ", ".join(sorted([_CONTRACT[kind], "JobRunner"]))
    values = {
        "name": name,
        "module": module,
        "cls": class_name,
        "contract": _CONTRACT[kind],
        "imports": imports,
    }
    module_file.write_text(Template(_PROVIDERS[kind]).substitute(values))
    test_file.parent.mkdir(parents=True, exist_ok=True)
    test_file.write_text(Template(_TESTS[kind]).substitute(values))
    document = json.loads(registry_file.read_text())
    document["providers"][name] = f"chalicelib.providers.{module}:{class_name}"
    registry_file.write_text(json.dumps(document, indent=2) + "\n")
    return [module_file, test_file, registry_file]


_POLL = '''"""$name: a poll provider (written by `jobpoll new provider $name`).

Make it yours: `submit` starts the work at your service and returns its id, `poll` asks the service how it
is going, `cancel` asks it to stop. As written, the "service" is a countdown that needs no network: the
work completes `seconds` after it was submitted and returns `message`. The work id carries the submission
time, so any Lambda instance can poll it, as it could poll a real service.

A real service's transient failures (a timeout, a connection error, a 429 or a 5xx) should raise
`ProviderUnavailable`: the state machine retries it. Anything else wrong fails the job.
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

from ..clock import Clock, from_epoch_ms, to_epoch_ms
from ..errors import InvalidJobInput, ProviderError
from .base import PollResult, WorkState

MAX_SECONDS = 24 * 3600
MAX_MESSAGE = 1000
_PREFIX = "$name-"


class $cls:
    """$name: work that completes `seconds` after it was submitted (a stand-in for your service)."""

    name = "$name"
    kind = "poll"
    can_notify = False
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["seconds"],
        "additionalProperties": False,
        "properties": {
            "seconds": {"type": "integer", "minimum": 1, "maximum": MAX_SECONDS, "description": "How long"},
            "message": {"type": "string", "maxLength": MAX_MESSAGE, "description": "What the work returns"},
        },
    }
    examples: ClassVar[list[dict[str, Any]]] = [{"seconds": 20, "message": "hello"}]

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def validate(self, request: Any) -> dict[str, Any]:
        """The input, checked and normalised; raises InvalidJobInput naming the field."""
        return _validate(request)

    def submit(self, request: dict[str, Any]) -> str:
        """Start the work; returns its id (your service's own id, once it is a real one)."""
        ticket = {"submitted_ms": to_epoch_ms(self._clock.now()), "request": request}
        return _PREFIX + base64.urlsafe_b64encode(json.dumps(ticket).encode()).decode()

    def poll(self, work_id: str) -> PollResult:
        """How the work is going: running (with progress, and when it should be done), or done."""
        ticket = _ticket(work_id)
        elapsed = (self._clock.now() - from_epoch_ms(ticket["submitted_ms"])).total_seconds()
        if elapsed < ticket["seconds"]:
            return PollResult(
                WorkState.RUNNING,
                progress=max(0.0, elapsed / ticket["seconds"]),
                retry_after_seconds=ticket["seconds"] - elapsed,  # adaptive polling follows this hint
            )
        return PollResult(WorkState.SUCCEEDED, progress=1.0, result={"message": ticket["message"]})

    def cancel(self, work_id: str) -> None:
        """Ask the service to stop the work: best effort, and safe to repeat. The countdown runs nowhere, so
        there is nothing to stop; jobpoll marks the job CANCELED whatever the service does."""
        _ticket(work_id)


def _validate(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise InvalidJobInput(f"$name input must be a JSON object, got {type(request).__name__}")
    unknown = sorted(set(request) - {"seconds", "message"})
    if unknown:
        raise InvalidJobInput(f"unknown $name input field(s): {', '.join(unknown)}")
    if "seconds" not in request:
        raise InvalidJobInput("$name input needs 'seconds'")
    seconds = request["seconds"]
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)  # JSON's 20.0 is a whole number too
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_SECONDS:
        raise InvalidJobInput(f"'seconds' must be a whole number from 1 to {MAX_SECONDS}, got {seconds!r}")
    message = request.get("message", "done")
    if not isinstance(message, str) or len(message) > MAX_MESSAGE:
        raise InvalidJobInput(f"'message' must be text of at most {MAX_MESSAGE} characters")
    return {"seconds": seconds, "message": message}


def _ticket(work_id: str) -> dict[str, Any]:
    if not work_id.startswith(_PREFIX):
        raise ProviderError(f"not a $name work id: {work_id[:40]!r}")
    try:
        ticket = json.loads(base64.urlsafe_b64decode(work_id[len(_PREFIX) :]))
        return {"submitted_ms": int(ticket["submitted_ms"]), **_validate(ticket["request"])}
    except (ValueError, KeyError, TypeError, InvalidJobInput) as exc:
        raise ProviderError(f"malformed $name work id: {work_id[:40]!r}") from exc
'''

_ENGINE = '''"""$name: an engine (written by `jobpoll new provider $name --kind engine`).

An engine is one function that answers every task: the first task starts the work and answers "poll me
again at this time" (`schedule_poll_task`), each poll task checks the work and answers that again or the
final `task_result` for the original task. As written, the work is a countdown that needs no network: it
completes `seconds` after it started and returns `message`; the engine asks to be polled every
`poll_seconds`. Make it yours by starting and checking your own service's work in `handle`.

Cancel: jobpoll stops the job's execution, so no further task comes; a service with work to stop would be
told so where the job's cancel is handled. A real service's transient failures should raise
`ProviderUnavailable`: the state machine retries the task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from ..clock import Clock, from_epoch_ms, to_epoch_ms
from ..engine import schedule_poll_task, task_result
from ..errors import InvalidJobInput

MAX_SECONDS = 24 * 3600
MAX_MESSAGE = 1000


class $cls:
    """$name: a countdown answered as an engine (a stand-in for your service)."""

    name = "$name"
    kind = "engine"
    can_notify = False
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["seconds"],
        "additionalProperties": False,
        "properties": {
            "seconds": {"type": "integer", "minimum": 1, "maximum": MAX_SECONDS, "description": "How long"},
            "message": {"type": "string", "maxLength": MAX_MESSAGE, "description": "What the work returns"},
            "poll_seconds": {"type": "integer", "minimum": 1, "maximum": 3600, "description": "Poll every"},
        },
    }
    examples: ClassVar[list[dict[str, Any]]] = [{"seconds": 20, "message": "hello", "poll_seconds": 10}]

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def validate(self, request: Any) -> dict[str, Any]:
        """The input, checked and normalised; raises InvalidJobInput naming the field."""
        if not isinstance(request, dict):
            raise InvalidJobInput(f"$name input must be a JSON object, got {type(request).__name__}")
        unknown = sorted(set(request) - {"seconds", "message", "poll_seconds"})
        if unknown:
            raise InvalidJobInput(f"unknown $name input field(s): {', '.join(unknown)}")
        if "seconds" not in request:
            raise InvalidJobInput("$name input needs 'seconds'")
        seconds = _whole(request["seconds"], "seconds", 1, MAX_SECONDS)
        poll_seconds = _whole(request.get("poll_seconds", 10), "poll_seconds", 1, 3600)
        message = request.get("message", "done")
        if not isinstance(message, str) or len(message) > MAX_MESSAGE:
            raise InvalidJobInput(f"'message' must be text of at most {MAX_MESSAGE} characters")
        return {"seconds": seconds, "message": message, "poll_seconds": poll_seconds}

    def handle(self, task: dict[str, Any]) -> dict[str, Any]:
        """Answer one task: start the work (first task) or check it (a poll task)."""
        payload, now = task["taskPayload"], self._clock.now()
        if not payload.get("isPollTask"):
            request = payload["input"]
            started = to_epoch_ms(now)
            work = {**request, "isPollTask": True, "origTaskId": task["taskId"], "startedMs": started}
            wait = min(request["poll_seconds"], request["seconds"])
            return schedule_poll_task(task, _whole_second(now + timedelta(seconds=wait)), work, now, 0.0)
        started = from_epoch_ms(payload["startedMs"])
        due = started + timedelta(seconds=payload["seconds"])
        if now >= due:
            return task_result(task, payload["origTaskId"], now, output={"message": payload["message"]})
        progress = (now - started) / (due - started)
        next_poll = min(now + timedelta(seconds=payload["poll_seconds"]), due)
        return schedule_poll_task(task, _whole_second(next_poll), payload, now, progress)


def _whole_second(moment: datetime) -> datetime:
    """The next whole second: a Wait's time is honoured to the second, so `due` is never just missed."""
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def _whole(value: Any, field: str, lowest: int, highest: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 20.0 is a whole number too
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise InvalidJobInput(f"'{field}' must be a whole number from {lowest} to {highest}, got {value!r}")
    return value
'''

_WORKER = '''"""$name: a worker provider (written by `jobpoll new provider $name --kind worker`).

A worker runs on jobpoll's queue worker: `run` does the work itself, calling `report(output so far,
progress)` as the output grows, and returns the whole result. As written, the work writes out `items` lines,
one every `seconds_per_item`. Make it yours by doing your work in `run` and reporting as it goes.

Cancel: when the job is canceled, `report` raises JobCanceled; let it propagate and the work stops there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..clock import Clock
from ..errors import InvalidJobInput
from .base import Report

MAX_ITEMS = 1000


class $cls:
    """$name: writes out `items` lines, one every `seconds_per_item` (a stand-in for your work)."""

    name = "$name"
    kind = "worker"
    can_notify = False
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["items"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS, "description": "Lines to write"},
            "seconds_per_item": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 1},
        },
    }
    examples: ClassVar[list[dict[str, Any]]] = [{"items": 10, "seconds_per_item": 1}]

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def validate(self, request: Any) -> dict[str, Any]:
        """The input, checked and normalised; raises InvalidJobInput naming the field."""
        if not isinstance(request, dict):
            raise InvalidJobInput(f"$name input must be a JSON object, got {type(request).__name__}")
        unknown = sorted(set(request) - {"items", "seconds_per_item"})
        if unknown:
            raise InvalidJobInput(f"unknown $name input field(s): {', '.join(unknown)}")
        if "items" not in request:
            raise InvalidJobInput("$name input needs 'items'")
        items = request["items"]
        if isinstance(items, float) and items.is_integer():
            items = int(items)  # JSON's 10.0 is a whole number too
        if isinstance(items, bool) or not isinstance(items, int) or not 1 <= items <= MAX_ITEMS:
            raise InvalidJobInput(f"'items' must be a whole number from 1 to {MAX_ITEMS}, got {items!r}")
        pace = request.get("seconds_per_item", 1)
        if isinstance(pace, bool) or not isinstance(pace, int | float) or not 0 < pace <= 60:
            raise InvalidJobInput(f"'seconds_per_item' must be above 0 and at most 60, got {pace!r}")
        return {"items": items, "seconds_per_item": pace}

    def run(self, request: dict[str, Any], report: Report) -> Any:
        """Do the work, reporting the output so far; `report` raises JobCanceled when the job is canceled."""
        lines: list[str] = []
        for index in range(request["items"]):
            self._clock.sleep(request["seconds_per_item"])
            lines.append(f"item {index + 1} of {request['items']}")
            report("\\n".join(lines), (index + 1) / request["items"])
        return {"lines": lines}
'''

_PROVIDERS = {"poll": _POLL, "engine": _ENGINE, "worker": _WORKER}

_TEST = '''"""$name: the conformance kit's contract (jobpoll.testing), and a job of its own."""

from __future__ import annotations

from chalicelib.providers.$module import $cls
from jobpoll.testing import $imports


class Test${cls}Contract($contract):
    provider_class = $cls


def test_${module}_job_completes_with_its_result(run_provider_job: JobRunner) -> None:
    outcome = run_provider_job($cls, $example)

    assert outcome.status == "COMPLETE", outcome
    assert outcome.job.result$result_path == $result
'''

_TESTS = {
    "poll": Template(_TEST).safe_substitute(
        example='{"seconds": 30, "message": "hi"}', result_path="", result='{"message": "hi"}'
    ),
    "engine": Template(_TEST).safe_substitute(
        example='{"seconds": 30, "message": "hi"}', result_path='["output"]', result='{"message": "hi"}'
    ),
    "worker": Template(_TEST).safe_substitute(
        example='{"items": 3}',
        result_path='["lines"]',
        result='["item 1 of 3", "item 2 of 3", "item 3 of 3"]',
    ),
}
