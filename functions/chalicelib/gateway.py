"""What API Gateway (or `chalice local`) tells us about a request: who calls, and the URL it was sent to.

Plain functions of the event's `requestContext`, headers and path, so they are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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


def caller_identity(context: Mapping[str, Any], headers: Mapping[str, Any], settings: Settings) -> str:
    """The owner of what this request creates or reads; raises NotAuthenticated.

    On AWS the routes use IAM auth, so API Gateway has verified the caller and puts its ARN in
    `identity.userArn` (an assumed role stands for the role, whatever the session). An authorizer's
    `principalId` is used where there is one. Only in local mode, where `chalice local` checks nothing, a
    bearer token from JOBPOLL_LOCAL_TOKENS names the caller.
    """
    identity = context.get("identity") or {}
    user_arn = identity.get("userArn") if isinstance(identity, Mapping) else None
    if isinstance(user_arn, str) and user_arn:
        match = _ASSUMED_ROLE.match(user_arn)
        return match.group(1) if match else user_arn
    authorizer = context.get("authorizer") or {}
    principal = authorizer.get("principalId") if isinstance(authorizer, Mapping) else None
    if isinstance(principal, str) and principal:
        return principal
    if settings.local_mode:
        scheme, _, token = _get(headers, "authorization").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            owner = settings.owner_for_token(token.strip())
            if owner is not None:
                return owner
            raise NotAuthenticated("the bearer token is not one of JOBPOLL_LOCAL_TOKENS")
        raise NotAuthenticated("send 'Authorization: Bearer <token>' (a token from JOBPOLL_LOCAL_TOKENS)")
    raise NotAuthenticated("the request carries no caller identity (the API expects IAM authentication)")


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
