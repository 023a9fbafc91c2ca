"""The API's OpenAPI 3.1 document (`GET /openapi.json`).

The job request is described from what validates it: the poll fields' schema (policy.py), each provider's
`input_schema` (beside its `validate`), the callback URL's (callbacks.py), the page token's pattern
(jobs_api.py). A schema-driven fuzzer finds no request the document allows that the API refuses
(tests/integration/test_api_fuzz.py), and a test checks real responses against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .auth import AUTH_IAM, SCOPE_CANCEL, SCOPE_OPERATOR, SCOPE_READ, SCOPE_SUBMIT, SCOPES
from .callbacks import callback_url_schema
from .job import JobStatus
from .job_request import DEFAULT_PROVIDER, JOB_ID_PATTERN
from .jobs_api import (
    DEFAULT_PAGE_SIZE,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_SHARE_SECONDS,
    PAGE_TOKEN_PATTERN,
)
from .policy import poll_field_schemas
from .problems import PROBLEM_CONTENT_TYPE
from .providers import Providers
from .settings import Settings
from .shares import SHARE_ID_PATTERN

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": _ref("Problem")}}}


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


_LOCATION = _header("Absolute URL", {"type": "string", "format": "uri"})
_RETRY_AFTER = _header("Seconds to wait before polling again", {"type": "string", "pattern": "^[0-9]+$"})
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": JOB_ID_PATTERN.pattern},
    "description": "The job id (1-64 letters, digits, '-' or '_')",
}
_LARGE_RESULT = {
    "description": "A large result (kept in the results bucket): GET it at Location, a presigned URL valid "
    "for minutes, without this API's credentials",
    "headers": {"Location": _LOCATION},
}
_RESULT = {"description": "The result", "content": {"application/json": {"schema": {}}}}
_COMMON_ERRORS = {
    "401": _problem("No caller identity, or a token that is expired, forged or for another API"),
    "403": _problem("The token lacks the scope this operation needs (named in `scope`)"),
    "429": _problem("Over the caller's request rate or jobs in flight: wait Retry-After seconds"),
    "404": _problem("No such job for this caller (another caller's job is not revealed)"),
    "410": _problem("The job expired, or its result was deleted"),
    "default": _problem("Any other error"),
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "job": _ref("Job"),
        },
    },
    "JobError": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    },
    "Callback": {
        "type": "object",
        "required": ["url", "attempts", "delivered_at", "last_status", "last_error"],
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "attempts": {"type": "integer", "minimum": 0},
            "delivered_at": _NULLABLE_TIME,
            "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
        },
    },
    "Job": {
        "type": "object",
        "required": [
            "id",
            "status",
            "provider",
            "input",
            "progress",
            "try_count",
            "max_tries",
            "wait_seconds",
            "created_at",
            "updated_at",
            "expires_at",
            "next_poll_at",
            "error",
            "result_available",
            "result_deleted_at",
            "callback",
        ],
        "properties": {
            "id": {"type": "string", "pattern": JOB_ID_PATTERN.pattern},
            "status": {"type": "string", "enum": [status.value for status in JobStatus]},
            "provider": {"type": "string"},
            "provider_status": {
                "type": ["string", "null"],
                "description": "The service's own status of the work, as last seen (e.g. IN_PROGRESS)",
            },
            "input": {"type": "object"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "try_count": {
                "type": "integer",
                "minimum": 0,
                "description": "Tries so far (polls, worker runs)",
            },
            "max_tries": {"type": "integer", "minimum": 1},
            "resumes": {
                "type": "integer",
                "minimum": 0,
                "description": "How often the job was resumed after its execution or worker was lost",
            },
            "wait_seconds": {"type": "integer", "minimum": 1},
            "created_at": _TIME,
            "updated_at": _TIME,
            "expires_at": _TIME,
            "next_poll_at": _NULLABLE_TIME,
            "error": {"oneOf": [_ref("JobError"), {"type": "null"}]},
            "result_available": {"type": "boolean"},
            "result_deleted_at": _NULLABLE_TIME,
            "callback": {"oneOf": [_ref("Callback"), {"type": "null"}]},
            "partial_output": {"type": ["string", "null"], "description": "Queue mode: the output so far"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {
                    "self": {"type": "string", "format": "uri"},
                    "result": {"type": "string", "format": "uri"},
                },
            },
        },
    },
    "Share": {
        "type": "object",
        "required": ["id", "job_id", "url", "expires_at"],
        "properties": {
            "id": {"type": "string", "pattern": SHARE_ID_PATTERN.pattern, "description": "Revoke with it"},
            "job_id": {"type": "string", "pattern": JOB_ID_PATTERN.pattern},
            "url": {"type": "string", "format": "uri", "description": "GET it without credentials"},
            "expires_at": _TIME,
        },
    },
    "ShareRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "expires_in_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_SHARE_SECONDS},
        },
    },
    "Provider": {
        "type": "object",
        "required": ["name", "kind", "can_notify", "description", "input_schema", "examples"],
        "properties": {
            "name": {"type": "string"},
            "kind": {
                "type": "string",
                "enum": ["poll", "engine", "worker"],
                "description": "poll: submit, poll, cancel; engine: one function answers every task; "
                "worker: run on a queue worker, its output growing as it runs",
            },
            "can_notify": {"type": "boolean", "description": "Whether `notify: true` is allowed"},
            "description": {"type": "string"},
            "input_schema": {
                "type": ["object", "null"],
                "description": "JSON Schema of the job's `input` (null: none configured here can run)",
            },
            "examples": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        },
    },
    "ProviderList": {
        "type": "object",
        "required": ["providers"],
        "properties": {"providers": {"type": "array", "items": _ref("Provider")}},
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next": {"type": ["string", "null"], "description": "Token for the next page (null: last page)"},
        },
    },
}


def job_request_schema(providers: Providers, settings: Settings) -> dict[str, Any]:
    """A job request, one variant per provider: its input, the poll fields, the callback URL."""
    variants = []
    for name, provider in sorted(providers.items()):
        input_schema = getattr(provider, "input_schema", {"type": "object"})
        if input_schema is None:  # nothing it could run is configured (e.g. http without profiles)
            continue
        properties: dict[str, Any] = {
            "provider": {"const": name},
            "input": input_schema,
            **poll_field_schemas(settings),
            "callback_url": callback_url_schema(allow_loopback=settings.local_mode),
        }
        if not getattr(provider, "can_notify", False):
            properties["notify"] = {"const": False, "description": f"{name} cannot notify"}
        variants.append(
            {
                "title": name,
                "type": "object",
                "additionalProperties": False,
                "required": ["input"] if name == DEFAULT_PROVIDER else ["provider", "input"],
                "properties": properties,
            }
        )
    return {"description": f"A job for one provider (default {DEFAULT_PROVIDER!r})", "anyOf": variants}


def document(providers: Providers, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route, schema and error response."""
    schemas: Mapping[str, Any] = {**SCHEMAS, "JobRequest": job_request_schema(providers, settings)}
    described: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "jobpoll",
            "version": "1.0.0",
            "description": (
                "Long-running jobs behind a polling API. POST a job, poll its Location until it answers "
                "303, follow the redirect to the result. Errors are RFC 9457 problem details."
            ),
        },
        "paths": {
            "/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Start a job",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                                # Printable ASCII, no space at either end (HTTP trims it).
                                "pattern": "^[!-~]([ -~]*[!-~])?$",
                            },
                            "description": "Same key + same body: the same job, nothing started again",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("JobRequest")}},
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted: poll the Location",
                            "headers": {"Location": _LOCATION, "Retry-After": _RETRY_AFTER},
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        "400": _problem("Malformed JSON or an invalid job request"),
                        "401": _COMMON_ERRORS["401"],
                        "403": _COMMON_ERRORS["403"],
                        "429": _COMMON_ERRORS["429"],
                        "410": _problem("The job this Idempotency-Key created has expired"),
                        "413": _problem("Body too large"),
                        "415": _problem("Not application/json"),
                        "422": _problem("Idempotency-Key reused with a different body"),
                        "503": _problem("The job could not be started (it is marked FAILED)"),
                        "default": _COMMON_ERRORS["default"],
                    },
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "The caller's jobs, newest first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": [status.value for status in JobStatus]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_PAGE_SIZE,
                                "default": DEFAULT_PAGE_SIZE,
                            },
                        },
                        {
                            "name": "next",
                            "in": "query",
                            "schema": {"type": "string", "pattern": PAGE_TOKEN_PATTERN.pattern},
                            "description": "The `next` of the previous page",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page",
                            "headers": {"Link": _header("rel=next link to the next page")},
                            "content": {"application/json": {"schema": _ref("JobList")}},
                        },
                        "400": _problem("A bad status, limit or page token"),
                        "401": _COMMON_ERRORS["401"],
                        "403": _COMMON_ERRORS["403"],
                        "429": _COMMON_ERRORS["429"],
                        "default": _COMMON_ERRORS["default"],
                    },
                },
            },
            "/jobs/{job_id}": {
                "parameters": [_JOB_ID],
                "get": {
                    "operationId": "getJob",
                    "summary": "The job's status",
                    "responses": {
                        "200": {
                            "description": "FAILED or CANCELED (see error)",
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        "202": {
                            "description": "Still running: poll again after Retry-After",
                            "headers": {"Location": _LOCATION, "Retry-After": _RETRY_AFTER},
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        "303": {
                            "description": "COMPLETE: the result is at Location",
                            "headers": {"Location": _LOCATION},
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        **_COMMON_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteJob",
                    "summary": "Cancel a running job; delete a finished job's result",
                    "responses": {
                        "200": {
                            "description": "Canceled",
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        "204": {"description": "The finished job's result was deleted"},
                        "409": _problem("The job finished before the cancel (the problem's `job` shows it)"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/jobs/{job_id}/result": {
                "parameters": [_JOB_ID],
                "get": {
                    "operationId": "getJobResult",
                    "summary": "The finished job's result (readable any number of times)",
                    "responses": {
                        "200": _RESULT,
                        "303": _LARGE_RESULT,
                        "409": _problem("Not finished, or finished without a result"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/jobs/{job_id}/shares": {
                "parameters": [_JOB_ID],
                "post": {
                    "operationId": "shareJobResult",
                    "summary": "A share link of the job's result: anyone with it reads the result, until it "
                    "expires (or the job does) or the owner revokes it",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("ShareRequest")}},
                    },
                    "responses": {
                        "201": {
                            "description": "The link (its `url`, also in Location)",
                            "headers": {"Location": _LOCATION},
                            "content": {"application/json": {"schema": _ref("Share")}},
                        },
                        "400": _problem("A bad body"),
                        "501": _problem("No share key is configured on this server"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/jobs/{job_id}/shares/{share_id}": {
                "parameters": [
                    _JOB_ID,
                    {
                        "name": "share_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": SHARE_ID_PATTERN.pattern},
                    },
                ],
                "delete": {
                    "operationId": "revokeShare",
                    "summary": "Revoke a share link (it answers 403 from then on)",
                    "responses": {
                        "204": {"description": "Revoked"},
                        "400": _problem("Not a share id"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/shared/{token}": {
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {
                    "operationId": "getSharedResult",
                    "summary": "A job's result through a share link (the link is the credential)",
                    "security": [],
                    "responses": {
                        "200": _RESULT,
                        "303": _LARGE_RESULT,
                        "401": _problem("Not a link this API signed (forged, altered or malformed)"),
                        "403": _problem("The owner revoked the link"),
                        "409": _problem("The job has no result (yet)"),
                        "410": _problem("The link expired, or the job or its result is gone"),
                        "default": _COMMON_ERRORS["default"],
                    },
                },
            },
            "/providers": {
                "get": {
                    "operationId": "listProviders",
                    "summary": "The providers a job can name, with their input schemas and examples",
                    "responses": {
                        "200": {
                            "description": "Every provider",
                            "content": {"application/json": {"schema": _ref("ProviderList")}},
                        },
                        "401": _COMMON_ERRORS["401"],
                        "429": _COMMON_ERRORS["429"],
                        "default": _COMMON_ERRORS["default"],
                    },
                }
            },
            "/providers/{name}": {
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "get": {
                    "operationId": "getProvider",
                    "summary": "One provider",
                    "responses": {
                        "200": {
                            "description": "The provider",
                            "content": {"application/json": {"schema": _ref("Provider")}},
                        },
                        "401": _COMMON_ERRORS["401"],
                        "429": _COMMON_ERRORS["429"],
                        "404": _problem("No such provider"),
                        "default": _COMMON_ERRORS["default"],
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {SECURITY_SCHEME: security_scheme(settings)},
        },
    }
    for operations in described["paths"].values():
        for operation in operations.values():
            name = operation.get("operationId") if isinstance(operation, dict) else None
            if name in OPERATION_SCOPES:
                scope = OPERATION_SCOPES[name]
                scopes = [scope] if scope is not None and settings.auth != AUTH_IAM else []
                operation["security"] = [{SECURITY_SCHEME: scopes}]
    return described


SECURITY_SCHEME = "caller"
# The scope each operation needs (auth modes jwt and cognito; an IAM caller holds the three of a tenant);
# None: any caller.
OPERATION_SCOPES: dict[str, str | None] = {
    "createJob": SCOPE_SUBMIT,
    "listJobs": SCOPE_READ,
    "getJob": SCOPE_READ,
    "getJobResult": SCOPE_READ,
    "deleteJob": SCOPE_CANCEL,
    "listProviders": None,
    "getProvider": None,
}


def security_scheme(settings: Settings) -> dict[str, Any]:
    """How callers authenticate in the deployed auth mode."""
    if settings.auth == AUTH_IAM:
        return {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM): credentials allowed execute-api:Invoke",
        }
    return {
        "type": "openIdConnect",
        "openIdConnectUrl": settings.jwt_issuer.rstrip("/") + "/.well-known/openid-configuration",
        "description": (
            f"Bearer tokens (JWT) of {settings.jwt_issuer} for {settings.jwt_audience}, with the operation's "
            f"scope ({', '.join(SCOPES)}; {SCOPE_OPERATOR} reads and cancels every tenant's jobs)"
        ),
    }
