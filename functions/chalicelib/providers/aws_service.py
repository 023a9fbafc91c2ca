"""What the AWS job-service providers share: one mapping of boto3 errors to jobpoll's, JSON-safe output,
and the input checks their schemas describe.

A throttled or failing service (429, 5xx, throttling codes, no connection) is transient: ProviderUnavailable,
which the state machine retries. A request the service refuses as invalid is the caller's: InvalidJobInput
with the service's own message (it names the field). Anything else is a ProviderError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ..clock import to_iso
from ..errors import InvalidJobInput, ProviderError, ProviderUnavailable

T = TypeVar("T")

_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerException",
        "InternalServerError",
        "RequestTimeout",
    }
)
_INVALID_CODES = frozenset(
    {"ValidationException", "BadRequestException", "InvalidRequestException", "InvalidParameterException"}
)


# A string field's schema pattern for "not empty, not only white space" (what `checked_object` refuses).
NON_BLANK = "\\S"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def call(service: str, operation: Callable[..., T], **parameters: Any) -> T:
    """`operation(**parameters)` with boto3's errors turned into jobpoll's (see the module docstring)."""
    try:
        return operation(**parameters)
    except ClientError as exc:
        raise as_jobpoll_error(service, exc) from exc
    except ParamValidationError as exc:
        raise InvalidJobInput(f"{service} refused the request: {exc}") from exc
    except BotoCoreError as exc:  # no connection, a read timeout, no credentials yet
        raise ProviderUnavailable(f"{service} could not be reached: {exc}") from exc


def cancel_call(service: str, operation: Callable[..., Any], gone: str, **parameters: Any) -> None:
    """A best-effort, idempotent cancel: an error whose message contains `gone` (the work is not there
    any more, or finished) means there is nothing left to cancel."""
    try:
        call(service, operation, **parameters)
    except (ProviderError, InvalidJobInput) as exc:
        if gone.lower() not in str(exc).lower():
            raise


def as_jobpoll_error(service: str, exc: ClientError) -> ProviderError | InvalidJobInput:
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = str(exc.response.get("Error", {}).get("Message") or exc)
    if code in _TRANSIENT_CODES or status == 429 or status >= 500:
        return ProviderUnavailable(f"{service} is unavailable ({code or status}): {message}")
    if code in _INVALID_CODES:
        return InvalidJobInput(f"{service} refused the request ({code}): {message}")
    return ProviderError(f"{service} answered {code or status}: {message}")


def json_safe(value: Any) -> Any:
    """A service's answer as JSON (datetimes as ISO 8601 UTC), without boto3's ResponseMetadata."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, datetime):
        return to_iso(value)
    return value


def checked_object(request: Any, provider: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """`request` checked against a flat object schema (required, string and string-array properties,
    enum, pattern, maxLength); raises InvalidJobInput naming the field."""
    if not isinstance(request, dict):
        raise InvalidJobInput(f"{provider} input must be a JSON object, got {type(request).__name__}")
    properties: Mapping[str, Any] = schema["properties"]
    unknown = sorted(set(request) - set(properties))
    if unknown:
        known = ", ".join(sorted(properties))
        raise InvalidJobInput(f"unknown {provider} input field(s): {', '.join(unknown)} (known: {known})")
    for name in schema.get("required", []):
        if name not in request:
            raise InvalidJobInput(f"{provider} input needs {name!r}: {properties[name]['description']}")
    for name, value in request.items():
        _check_value(name, value, properties[name])
    return dict(request)


def _check_value(name: str, value: Any, spec: Mapping[str, Any]) -> None:
    if spec["type"] == "array":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidJobInput(f"{name!r} must be a list of strings")
        if len(value) > spec.get("maxItems", len(value)):
            raise InvalidJobInput(f"{name!r} takes at most {spec['maxItems']} items")
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidJobInput(f"{name!r} must be a non-empty string, got {json.dumps(value)}")
    if len(value) > spec.get("maxLength", len(value)):
        raise InvalidJobInput(f"{name!r} is longer than {spec['maxLength']} characters")
    if "enum" in spec and value not in spec["enum"]:
        raise InvalidJobInput(f"{name!r} must be one of {', '.join(spec['enum'])}, got {value!r}")
    pattern = spec.get("pattern")
    if pattern and not re.search(pattern, value):
        raise InvalidJobInput(f"{name!r} must match {pattern}, got {value!r}")
