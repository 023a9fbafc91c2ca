"""What API Gateway (or `chalice local`) tells us about a request: who calls, and the URL it was sent to.

Plain functions of the event's `requestContext`, headers and path, so they are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .auth import AUTH_IAM, IAM_SCOPES, Caller, scopes_of
from .errors import NotAuthenticated
from .settings import Settings

# `arn:aws:sts::123456789012:assumed-role/Role/session`: the session name changes with every assumption.
_ASSUMED_ROLE = re.compile(r"^(arn:aws[a-z-]*:sts::\d{12}:assumed-role/[^/]+)/.+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def _get(headers: Mapping[str, Any], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return str(value) if value is not None else ""


def caller_identity(context: Mapping[str, Any], settings: Settings) -> Caller:
    """Who sends this request and what it may do; raises NotAuthenticated.

    Auth mode `iam`: API Gateway has verified the SigV4 signature and puts the caller's ARN in
    `identity.userArn` (an assumed role stands for the role, whatever the session). Modes `jwt` and
    `cognito`: the API's authorizer (app.py) has verified the bearer token and put the owner identity in
    `principalId` and the token's scopes in its context.
    """
    if settings.auth == AUTH_IAM:
        identity = context.get("identity") or {}
        user_arn = identity.get("userArn") if isinstance(identity, Mapping) else None
        if isinstance(user_arn, str) and user_arn:
            match = _ASSUMED_ROLE.match(user_arn)
            return Caller(match.group(1) if match else user_arn, IAM_SCOPES)
        raise NotAuthenticated("the request carries no caller identity (the API expects IAM authentication)")
    authorizer = context.get("authorizer") or {}
    principal = authorizer.get("principalId") if isinstance(authorizer, Mapping) else None
    if isinstance(principal, str) and principal and isinstance(authorizer, Mapping):
        return Caller(principal, scopes_of(authorizer))
    raise NotAuthenticated("send 'Authorization: Bearer <token>'")


def base_url(context: Mapping[str, Any], headers: Mapping[str, Any], event_path: str | None) -> str:
    """The absolute URL the client used to reach the API's root, e.g. `https://host/api`.

    Scheme and host come from `X-Forwarded-Proto`/`X-Forwarded-Host` (API Gateway and proxies set them),
    else the `Host` header. The path prefix (an API Gateway stage such as `/api`, or a custom domain's base
    path) is what `requestContext.path` has in front of the route's own path.
    """
    proto = _get(headers, "x-forwarded-proto").split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        proto = "http"
    host = _get(headers, "x-forwarded-host").split(",")[0].strip() or _get(headers, "host").strip()
    if not host:
        host = str(context.get("domainName") or "")
    if not _HOST.match(host):
        host = "localhost"
    prefix = ""
    full_path = context.get("path")
    if isinstance(full_path, str) and event_path and full_path.endswith(event_path):
        prefix = full_path[: len(full_path) - len(event_path)].rstrip("/")
    elif isinstance(full_path, str) and not event_path:
        stage = context.get("stage")
        if isinstance(stage, str) and full_path.startswith(f"/{stage}/"):
            prefix = f"/{stage}"
    if not _PREFIX.match(prefix):
        prefix = ""
    return f"{proto}://{host}{prefix}"
