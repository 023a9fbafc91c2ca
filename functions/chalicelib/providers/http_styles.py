"""How a service reports a long-running operation: one `Style` per convention the `http` provider speaks.

A style reads replies only (no I/O): after the submission, where the operation is to be polled (or the
outcome, when the work finished at once); after a poll, the state, progress, error or result (or the URL
holding the result); and which request cancels the operation.

- `azure`: the Azure REST API guidelines' long-running operation. The status monitor is at
  `Operation-Location`, else `Azure-AsyncOperation`, else `Location`; its `status` is NotStarted, Running,
  Succeeded, Failed or Canceled (any case; other values count as running); `error` on failure; the result in
  `result` or at `resourceLocation` (a `Location` monitor that answers without `status` is the result);
  progress from `percentComplete`. Cancel: DELETE on the monitor.
- `google`: an AIP-151 Operation (`name`, `done`, `error`, `response`, `metadata`), polled at
  `<base_url>/<name>`; progress from `metadata.progressPercent`. Cancel: POST `<name>:cancel`.
- `jobpoll`: this API. 202 while running, 303 to the result, 200 with the error when it failed.
  Cancel: DELETE on the job.
- `status-code`: the polled resource answers 202 while running, 200/201 (the result) or 303 (to the
  result) when done. Cancel: DELETE on it.
- `custom`: a field path to the status and the values that mean running, succeeded, failed and canceled;
  optional progress, result, error and monitor paths. Cancel: `cancel_method` on the monitor plus
  `cancel_suffix`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from ..errors import InvalidJobInput, ProviderError
from ..job import JobError
from .base import PollResult, WorkState, json_object

MAX_DETAIL_CHARS = 300
# google.rpc.Code: the names an Operation's numeric `error.code` stands for.
_RPC_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
CANCELED = JobError("OperationCanceled", "the service canceled the operation")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers (lower-case names), the body (capped) and the URL that answered."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def location(self, *names: str) -> str | None:
        """The first of the named headers that is present, as an absolute URL."""
        for name in names:
            value = self.header(name)
            if value:
                return urljoin(self.url, value.strip())
        return None

    def content(self) -> Any:
        """The body as JSON, else as text; None when empty."""
        if not self.body:
            return None
        text = self.body.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text

    def document(self) -> dict[str, Any]:
        """The body as a JSON object; ProviderError when it is not one."""
        content = self.content()
        if not isinstance(content, dict):
            raise ProviderError(f"the service answered {self.status} without a JSON object")
        return content

    def detail(self) -> str:
        """': <what the body says>' for an error message (problem+json title and detail, or an error
        envelope's code and message, or the text), or ''."""
        content = self.content()
        if isinstance(content, dict):
            error = content.get("error")
            if isinstance(error, dict):
                content = error
            parts = [str(content[key]) for key in ("title", "code", "detail", "message") if content.get(key)]
            text = ": ".join(parts)
        else:
            text = str(content or "")
        return f": {text[:MAX_DETAIL_CHARS]}" if text else ""


@dataclass(frozen=True)
class ResultAt:
    """The work succeeded; its result is at `url` (fetched inside the same profile)."""

    url: str


Outcome = PollResult | ResultAt


def _running(state: WorkState = WorkState.RUNNING, progress: float | None = None) -> PollResult:
    return PollResult(state=state, progress=progress)


def _succeeded(result: Any) -> PollResult:
    return PollResult(state=WorkState.SUCCEEDED, progress=1.0, result=result)


def _failed(error: JobError) -> PollResult:
    return PollResult(state=WorkState.FAILED, error=error)


def _error_from(value: Any, default_code: str = "OperationFailed") -> JobError:
    """A JobError from a service's error value: an object with code and message, or a text."""
    if isinstance(value, dict):
        code = value.get("code")
        if isinstance(code, int) and 0 <= code < len(_RPC_CODES):
            code = _RPC_CODES[code]
        message = value.get("message") or value.get("detail") or value.get("title") or json.dumps(value)
        return JobError(str(code or default_code)[:100], str(message)[:1000])
    if value:
        return JobError(default_code, str(value)[:1000])
    return JobError(default_code, "the service reported that the operation failed")


def _fraction(value: Any, scale: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, min(1.0, value / scale))


def field_at(document: Any, path: str) -> Any:
    """The value at a dotted path (`status.state`, `items.0.id`), or None."""
    value = document
    for key in path.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


class Style:
    """One convention. `result_by_redirect`: a 303 from the monitor points at the result (not followed as
    a redirect, but read as "done")."""

    name = ""
    result_by_redirect = False
    monitor_headers: tuple[str, ...] = ("operation-location", "location")

    def submitted(self, reply: Reply, base_url: str, spec: Any) -> str | Outcome:
        """The monitor's URL from the submission's reply, or the outcome when the work finished at once."""
        monitor = reply.location(*self.monitor_headers)
        if monitor is not None:
            return monitor
        if reply.status == 202:
            raise ProviderError(f"the service accepted the work (202) but named no {self._monitor_names()}")
        return self.interpret(reply, base_url, spec)

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        """What a poll's reply says."""
        raise NotImplementedError

    def cancel_request(self, monitor: str, spec: Any) -> tuple[str, str, bytes | None]:
        """The method, URL and body that ask the service to stop."""
        return "DELETE", monitor, None

    def _monitor_names(self) -> str:
        return " or ".join(name.title() for name in self.monitor_headers) + " header"


class AzureStyle(Style):
    name = "azure"
    monitor_headers = ("operation-location", "azure-asyncoperation", "location")

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        content = reply.content()
        status = content.get("status") if isinstance(content, dict) else None
        if not isinstance(status, str):
            if reply.status == 202:
                return _running()
            return _succeeded(content)  # a Location monitor answers the resource itself when done
        assert isinstance(content, dict)
        progress = _fraction(content.get("percentComplete"), 100)
        folded = status.casefold()
        if folded == "notstarted":
            return _running(WorkState.PENDING, progress)
        if folded == "succeeded":
            if "result" in content:
                return _succeeded(content["result"])
            location = content.get("resourceLocation")
            if isinstance(location, str) and location:
                return ResultAt(urljoin(reply.url, location))
            return _succeeded(content)
        if folded == "failed":
            return _failed(_error_from(content.get("error")))
        if folded in ("canceled", "cancelled"):
            return _failed(CANCELED)
        return _running(progress=progress)


class GoogleStyle(Style):
    name = "google"

    def submitted(self, reply: Reply, base_url: str, spec: Any) -> str | Outcome:
        operation = reply.document()
        name = operation.get("name")
        if operation.get("done") is True:
            return self.interpret(reply, base_url, spec)
        if not isinstance(name, str) or not name:
            raise ProviderError("the service answered an Operation without a 'name'")
        return f"{base_url}/{name.lstrip('/')}"

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        operation = reply.document()
        if operation.get("done") is not True:
            metadata = operation.get("metadata")
            progress = metadata.get("progressPercent") if isinstance(metadata, dict) else None
            return _running(progress=_fraction(progress, 100))
        if "error" in operation:
            error = _error_from(operation["error"])
            return _failed(CANCELED if error.code == "CANCELLED" else error)
        return _succeeded(operation.get("response"))

    def cancel_request(self, monitor: str, spec: Any) -> tuple[str, str, bytes | None]:
        return "POST", f"{monitor}:cancel", b"{}"


class JobpollStyle(Style):
    name = "jobpoll"
    result_by_redirect = True
    monitor_headers = ("location",)

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        if reply.status == 303:
            return _result_redirect(reply)
        job = reply.document()
        status = job.get("status")
        if reply.status == 202:
            progress = _fraction(job.get("progress"), 1)
            pending = status in ("QUEUED", "PENDING")
            return _running(WorkState.PENDING if pending else WorkState.RUNNING, progress)
        if status == "FAILED":
            return _failed(_error_from(job.get("error"), "ProviderJobFailed"))
        if status == "CANCELED":
            return _failed(CANCELED)
        if status == "COMPLETE":
            links = job.get("links")
            result = links.get("result") if isinstance(links, dict) else None
            return ResultAt(urljoin(reply.url, result) if isinstance(result, str) else f"{reply.url}/result")
        raise ProviderError(f"the job answered {reply.status} with status {json.dumps(status)[:40]}")


class StatusCodeStyle(Style):
    name = "status-code"
    result_by_redirect = True

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        if reply.status == 202:
            return _running()
        if reply.status == 303:
            return _result_redirect(reply)
        if reply.status in (200, 201, 204):
            return _succeeded(reply.content())
        raise ProviderError(f"the service answered {reply.status}, which the status-code style does not know")


def _result_redirect(reply: Reply) -> ResultAt:
    location = reply.location("location")
    if location is None:
        raise ProviderError("the service answered 303 without a Location")
    return ResultAt(location)


_CUSTOM_LISTS = ("running", "succeeded", "failed", "canceled")
_CUSTOM_PATHS = ("status_path", "progress_path", "result_path", "error_path", "monitor_path")
_SUFFIX = re.compile(r"^([:/][A-Za-z0-9_.:-]{1,49})?$")
_CUSTOM_FIELDS = {*_CUSTOM_LISTS, *_CUSTOM_PATHS, "progress_scale", "cancel_method", "cancel_suffix"}


_STATUS_VALUES = {
    "type": "array",
    "items": {"type": ["string", "integer", "boolean"]},
    "uniqueItems": True,
}
# What `validate_custom` accepts. A value in two lists counts for the first of running, succeeded, failed,
# canceled (the order `CustomStyle` reads them in), so every list the schema allows has one meaning.
CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status_path", "running", "succeeded", "failed"],
    "description": "Where the status is and the values that mean each state (a value in two lists counts for "
    "the first of running, succeeded, failed, canceled)",
    "properties": {
        **{name: {"type": "string", "minLength": 1, "maxLength": 200} for name in _CUSTOM_PATHS},
        **{name: {**_STATUS_VALUES, "minItems": 1} for name in _CUSTOM_LISTS if name != "canceled"},
        "canceled": _STATUS_VALUES,
        "progress_scale": {"type": "number", "exclusiveMinimum": 0, "default": 1},
        "cancel_method": {"enum": ["DELETE", "POST"], "default": "DELETE"},
        "cancel_suffix": {"type": "string", "pattern": "^(?:[:/](?!.*\\.\\.)[A-Za-z0-9_.:-]{1,49})?$"},
    },
}


def validate_custom(spec: Any) -> dict[str, Any]:
    """The `custom` style's description, checked; raises InvalidJobInput."""
    if not isinstance(spec, dict):
        raise InvalidJobInput(
            'style \'custom\' needs \'custom\': {"status_path", "running", "succeeded", "failed", ...}'
        )
    json_object(spec, _CUSTOM_FIELDS, "'custom'")
    normalised: dict[str, Any] = {}
    for name in _CUSTOM_PATHS:
        value = spec.get(name)
        if value is None and name != "status_path":
            continue
        if not isinstance(value, str) or not value or len(value) > 200:
            raise InvalidJobInput(f"'custom.{name}' must be a dotted field path, e.g. \"status.state\"")
        normalised[name] = value
    for name in _CUSTOM_LISTS:
        values = spec.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, str | int | bool) for v in values):
            raise InvalidJobInput(f"'custom.{name}' must be a list of the status values that mean {name}")
        if not values and name != "canceled":
            raise InvalidJobInput(f"'custom.{name}' must name at least one status value")
        normalised[name] = [str(v) for v in values]
    scale = spec.get("progress_scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise InvalidJobInput("'custom.progress_scale' must be a positive number (the value meaning done)")
    normalised["progress_scale"] = scale
    method = spec.get("cancel_method", "DELETE")
    if method not in ("DELETE", "POST"):
        raise InvalidJobInput("'custom.cancel_method' must be DELETE or POST")
    normalised["cancel_method"] = method
    suffix = spec.get("cancel_suffix", "")
    if not isinstance(suffix, str) or not _SUFFIX.match(suffix) or ".." in suffix:
        raise InvalidJobInput("'custom.cancel_suffix' must be a short suffix such as ':cancel' or '/cancel'")
    normalised["cancel_suffix"] = suffix
    return normalised


class CustomStyle(Style):
    name = "custom"

    def submitted(self, reply: Reply, base_url: str, spec: Any) -> str | Outcome:
        monitor = reply.location(*self.monitor_headers)
        if monitor is None and "monitor_path" in spec:
            value = field_at(reply.content(), spec["monitor_path"])
            if isinstance(value, str) and value:
                monitor = urljoin(reply.url, value)
        if monitor is not None:
            return monitor
        outcome = self.interpret(reply, base_url, spec)
        if isinstance(outcome, PollResult) and outcome.state in (WorkState.PENDING, WorkState.RUNNING):
            raise ProviderError(
                "the service named no operation to poll (no Location, no 'custom.monitor_path')"
            )
        return outcome

    def interpret(self, reply: Reply, base_url: str, spec: Any) -> Outcome:
        document = reply.content()
        status = field_at(document, spec["status_path"])
        folded = str(status).casefold() if isinstance(status, str | int | bool) else None

        def means(name: str) -> bool:
            return folded is not None and folded in {v.casefold() for v in spec[name]}

        if means("running"):
            progress = field_at(document, spec["progress_path"]) if "progress_path" in spec else None
            return _running(progress=_fraction(progress, spec["progress_scale"]))
        if means("succeeded"):
            return _succeeded(field_at(document, spec["result_path"]) if "result_path" in spec else document)
        if means("failed"):
            return _failed(
                _error_from(field_at(document, spec["error_path"]) if "error_path" in spec else None)
            )
        if means("canceled"):
            return _failed(CANCELED)
        shown = json.dumps(status)[:60]
        raise ProviderError(
            f"the status at '{spec['status_path']}' is {shown}, none of the values 'custom' lists"
        )

    def cancel_request(self, monitor: str, spec: Any) -> tuple[str, str, bytes | None]:
        method = spec["cancel_method"]
        return method, monitor + spec["cancel_suffix"], b"{}" if method == "POST" else None


STYLES: dict[str, Style] = {
    style.name: style
    for style in (AzureStyle(), GoogleStyle(), JobpollStyle(), StatusCodeStyle(), CustomStyle())
}
