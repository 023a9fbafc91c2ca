"""HTTP errors as RFC 9457 problem details (`application/problem+json`), in one place.

Domain exceptions map to a status, a title and a type URI here and nowhere else; Chalice's own error bodies
(unknown method, unsupported media type, an unhandled exception) are rewritten into the same shape by
`as_problem`, which the app's HTTP middleware applies to every error response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from chalice import Response

from . import errors

# RFC 6750: what a 401 (or a 403 for a missing scope) tells the client to send.
CHALLENGE = 'Bearer realm="jobpoll"'

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:jobpoll:problem:"


@dataclass(frozen=True)
class ProblemType:
    status: int
    slug: str
    title: str

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.slug


# Most specific first: the first class an exception is an instance of decides.
_BY_EXCEPTION: list[tuple[type[Exception], ProblemType]] = [
    (errors.InvalidCallbackUrl, ProblemType(400, "invalid-callback-url", "Invalid callback URL")),
    (errors.InvalidJobInput, ProblemType(400, "invalid-job-request", "Invalid job request")),
    (errors.InvalidRequest, ProblemType(400, "invalid-request", "Invalid request")),
    (errors.NotAuthenticated, ProblemType(401, "not-authenticated", "Not authenticated")),
    (errors.MissingScope, ProblemType(403, "missing-scope", "Missing scope")),
    (errors.ShareLinkInvalid, ProblemType(401, "share-link-invalid", "Invalid share link")),
    (errors.ShareLinkRevoked, ProblemType(403, "share-link-revoked", "Share link revoked")),
    (errors.JobNotFound, ProblemType(404, "job-not-found", "Job not found")),
    (errors.ProviderNotFound, ProblemType(404, "provider-not-found", "Provider not found")),
    (errors.JobNotFinished, ProblemType(409, "job-not-finished", "Job not finished")),
    (errors.JobAlreadyFinished, ProblemType(409, "job-already-finished", "Job already finished")),
    (errors.JobAlreadyExists, ProblemType(409, "job-already-exists", "Job already exists")),
    (errors.ShareLinkExpired, ProblemType(410, "share-link-expired", "Share link expired")),
    (errors.JobGone, ProblemType(410, "job-gone", "Gone")),
    (errors.PayloadTooLarge, ProblemType(413, "payload-too-large", "Payload too large")),
    (errors.IdempotencyKeyReused, ProblemType(422, "idempotency-key-reused", "Idempotency key reused")),
    (errors.TooManyRequests, ProblemType(429, "too-many-requests", "Too many requests")),
    (errors.SharingNotConfigured, ProblemType(501, "sharing-not-configured", "Share links not configured")),
    (errors.ExecutionStartFailed, ProblemType(503, "execution-start-failed", "Job could not be started")),
    (errors.ConcurrentUpdate, ProblemType(503, "concurrent-update", "Busy, try again")),
]


def problem_type_for(exc: Exception) -> ProblemType:
    for cls, kind in _BY_EXCEPTION:
        if isinstance(exc, cls):
            return kind
    return ProblemType(500, "internal-error", "Internal server error")


def problem_body(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    type_uri: str = "about:blank",
    **ext: Any,
) -> dict[str, Any]:
    """An RFC 9457 problem object. `about:blank` problems take the status phrase as their title."""
    body: dict[str, Any] = {
        "type": type_uri,
        "title": title or _phrase(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(ext)
    return body


def problem_response(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    type_uri: str = "about:blank",
    headers: Mapping[str, Any] | None = None,
    **ext: Any,
) -> Response:
    return Response(
        body=json.dumps(problem_body(status, title, detail, type_uri, **ext)),
        status_code=status,
        headers={**(headers or {}), "Content-Type": PROBLEM_CONTENT_TYPE},
    )


def from_exception(exc: Exception, extensions: Mapping[str, Any] | None = None) -> Response:
    """The problem response for a domain exception (a 500 without details for anything unexpected)."""
    kind = problem_type_for(exc)
    headers: dict[str, str] = {}
    extensions = dict(extensions or {})
    if kind.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if isinstance(exc, errors.MissingScope):
        headers["WWW-Authenticate"] = f'{CHALLENGE}, error="insufficient_scope", scope="{exc.scope}"'
        extensions["scope"] = exc.scope
    if isinstance(exc, errors.TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if kind.status == 503:
        headers["Retry-After"] = "1"
    detail = str(exc) if kind.status < 500 or kind.status in (501, 503) else "An internal error occurred."
    return problem_response(kind.status, kind.title, detail, kind.uri, headers, **(extensions or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _header(headers: dict[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def is_problem(response: Response) -> bool:
    return _header(response.headers, "content-type").startswith(PROBLEM_CONTENT_TYPE)


def as_problem(response: Response) -> Response:
    """An error response from Chalice itself (`{"Code", "Message"}` or text) as a problem response.

    Keeps the status and headers such as `Allow`; never passes a 5xx's text (a traceback) through.
    """
    if response.status_code < 400 or is_problem(response):
        return response
    detail = None
    if response.status_code < 500:
        body = response.body
        if isinstance(body, bytes | str):
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        if isinstance(body, dict):
            detail = str(body.get("Message") or body.get("message") or "") or None
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return problem_response(response.status_code, detail=detail, headers=headers)
