"""The `http` provider: any REST long-running operation, reached through a named profile.

A profile (`Profile`) holds what a job must never carry: the service's `base_url`, its headers (credentials)
and defaults for the job input. Profiles come from settings: JSON text locally (`--http-profiles`), an SSM
SecureString deployed, read once per cold start. A job's input names a profile, a style (how the service
reports its operation, see `http_styles.py`) and a request relative to the profile's base_url:

    {"profile": "speech", "style": "azure", "request": {"method": "POST", "path": "/v1/analyze", "body": {}}}

Every request stays inside the profile: its URL (the submission, each poll, each redirect, a result's
location, a cancel) must lie under `base_url`, and its host must pass the SSRF guard the callbacks use
(deployed: public addresses only; local mode: loopback too). Connection errors, timeouts, 429 and 5xx raise
ProviderUnavailable (the state machine retries); another 4xx fails the job with the service's status and its
problem detail; bodies are read up to a cap. The work id carries the profile's name, the style and the
operation's URL, so that any Lambda instance can poll it and no secret is stored with the job.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.utils
import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urljoin, urlsplit

from ..callbacks import DIRECT_OPENER, Resolver, system_resolver, unreachable_reason
from ..clock import Clock
from ..errors import (
    InvalidJobInput,
    ProviderError,
    ProviderRefused,
    ProviderResponseTooLarge,
    ProviderUnavailable,
    UnsafeProviderUrl,
)
from ..job import JobError
from .base import PollResult, WorkState, json_object
from .http_styles import CUSTOM_SCHEMA, STYLES, Outcome, Reply, ResultAt, validate_custom

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
# A service that finishes at once (no operation to poll): its outcome travels in the work id, kept small.
MAX_INLINE_OUTCOME_BYTES = 32 * 1024
MAX_REDIRECTS = 5
MAX_PATH_LENGTH = 2048
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
USER_AGENT = "jobpoll-http/1"
_PREFIX = "http-"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_INPUT_FIELDS = {"profile", "style", "request", "custom"}
_REQUEST_FIELDS = {"method", "path", "headers", "body"}
_PROFILE_FIELDS = {"base_url", "headers", "defaults", "timeout_seconds"}
_DEFAULT_FIELDS = {"style", "custom"}
# Credentials belong in the profile: a job may not send these (nor override a header its profile sets).
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "ocp-apim-subscription-key",
        "x-goog-api-key",
    }
)
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Profile:
    """A service jobpoll may call: where it is, the headers every request carries, job input defaults."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def url(self, path: str) -> str:
        """The absolute URL of `path` (which starts with /) under the base URL."""
        return self.base_url + path

    def contains(self, url: str) -> bool:
        """True when `url` lies under the base URL: same scheme, host and port, and below its path."""
        try:
            base, other = urlsplit(self.base_url), urlsplit(url)
            base_port = base.port or _DEFAULT_PORTS.get(base.scheme)
            other_port = other.port or _DEFAULT_PORTS.get(other.scheme.lower())
        except ValueError:
            return False
        if other.scheme.lower() != base.scheme or (other.hostname or "") != (base.hostname or ""):
            return False
        if other_port != base_port or other.username is not None or other.password is not None:
            return False
        segments = unquote(other.path).split("/")
        if any(segment in (".", "..") for segment in segments):
            return False
        prefix = base.path.rstrip("/")
        return not prefix or other.path == prefix or other.path.startswith(prefix + "/")


Profiles = Callable[[], Mapping[str, Profile]]


def parse_profiles(text: str) -> dict[str, Profile]:
    """Profiles from their JSON (`{"NAME": {"base_url": ..., "headers": {...}, "defaults": {...}}}`);
    raises ValueError with one line that never quotes a header's value."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ValueError(f"http profiles are not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("http profiles must be a JSON object of profile name -> profile")
    return {name: _parse_profile(name, entry) for name, entry in data.items()}


def _parse_profile(name: str, entry: Any) -> Profile:
    where = f"http profile {name!r}"
    if not _NAME.match(name):
        raise ValueError(f"{where}: a name is 1-64 letters, digits, '_', '.' or '-'")
    entry = json_object(entry, _PROFILE_FIELDS, where, ValueError)
    base_url = entry.get("base_url")
    if not isinstance(base_url, str):
        raise ValueError(f"{where} needs 'base_url', an http(s) URL")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{where}: 'base_url' is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{where}: 'base_url' must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(f"{where}: 'base_url' must not carry credentials, a query or a fragment")
    headers = entry.get("headers", {})
    if not _valid_headers(headers):
        raise ValueError(f"{where}: 'headers' must map header names to single-line strings")
    defaults = entry.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_FIELDS:
        raise ValueError(f"{where}: 'defaults' may give {' and '.join(sorted(_DEFAULT_FIELDS))} only")
    timeout = entry.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise ValueError(f"{where}: 'timeout_seconds' must be a number in (0, {MAX_TIMEOUT_SECONDS:g}]")
    return Profile(
        name=name,
        base_url=f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}",
        headers=dict(headers),
        defaults=dict(defaults),
        timeout_seconds=float(timeout),
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header's delay in seconds (it gives seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class HttpProvider:
    """A REST long-running operation at a configured profile's base URL, in one of the common styles."""

    name = "http"
    kind = "poll"
    can_notify = False
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "profile": "speech",
            "style": "azure",
            "request": {
                "method": "POST",
                "path": "/v1/analyze",
                "body": {"url": "https://example.com/a.wav"},
            },
        }
    ]

    def __init__(
        self,
        clock: Clock,
        profiles: Profiles,
        *,
        allow_loopback: bool = False,
        resolve: Resolver = system_resolver,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._clock = clock
        self._profiles = profiles
        self._allow_loopback = allow_loopback
        self._resolve = resolve
        self._max_response_bytes = max_response_bytes

    @property
    def input_schema(self) -> dict[str, Any] | None:
        """The job input `validate` accepts, for the configured profiles (None: none configured, so no
        http job can be valid and the API's document offers none)."""
        try:
            profiles = self._profiles()
        except ValueError:
            return None
        return input_schema(profiles) if profiles else None

    # ---- the provider interface ---------------------------------------------------------------------

    def validate(self, request: Any) -> dict[str, Any]:
        request = json_object(request, _INPUT_FIELDS, "http input")
        profile = self._profile(request.get("profile"))
        merged = {**profile.defaults, **request}
        style = merged.get("style")
        if not isinstance(style, str) or style not in STYLES:  # a dict or list would be unhashable
            raise InvalidJobInput(f"'style' must be one of {', '.join(STYLES)}, got {json.dumps(style)}")
        normalised: dict[str, Any] = {
            "profile": profile.name,
            "style": style,
            "request": _validate_request(request.get("request"), profile),
        }
        if style == "custom":
            normalised["custom"] = validate_custom(merged.get("custom"))
        elif "custom" in request:
            raise InvalidJobInput("'custom' is for style 'custom' only")
        return normalised

    def submit(self, request: dict[str, Any]) -> str:
        profile = self._profile(request["profile"])
        style = STYLES[request["style"]]
        spec = request.get("custom")
        call = request["request"]
        body = json.dumps(call["body"]).encode() if "body" in call else None
        reply = self._fetch(profile, call["method"], profile.url(call["path"]), body, call.get("headers", {}))
        outcome = style.submitted(reply, profile.base_url, spec)
        ticket: dict[str, Any] = {"profile": profile.name, "style": style.name}
        if spec is not None:
            ticket["custom"] = spec
        if isinstance(outcome, str):
            ticket["monitor"] = self._inside(profile, outcome)
        else:
            ticket["done"] = _outcome_to_dict(self._finish(profile, outcome))
            if len(json.dumps(ticket["done"])) > MAX_INLINE_OUTCOME_BYTES:
                raise ProviderResponseTooLarge(
                    f"the service finished at once with a result over {MAX_INLINE_OUTCOME_BYTES} bytes"
                )
        encoded = base64.urlsafe_b64encode(json.dumps(ticket, separators=(",", ":")).encode())
        return _PREFIX + encoded.decode().rstrip("=")

    def poll(self, work_id: str) -> PollResult:
        ticket = _decode(work_id)
        if "done" in ticket:
            return _outcome_from_dict(ticket["done"])
        profile = self._profile(ticket["profile"])
        style = STYLES[ticket["style"]]
        spec = ticket.get("custom")
        try:
            reply = self._fetch(profile, "GET", ticket["monitor"], follow_303=not style.result_by_redirect)
            outcome = style.interpret(reply, profile.base_url, spec)
            result = self._finish(profile, outcome)
        except ProviderUnavailable:
            raise
        except ProviderError as exc:  # refused, unsafe, too large, malformed: polling again will not help
            return PollResult(state=WorkState.FAILED, error=JobError(exc.code, str(exc)))
        if result.state in (WorkState.PENDING, WorkState.RUNNING):
            hint = retry_after_seconds(reply.header("retry-after"), self._clock.now())
            return dataclasses.replace(result, retry_after_seconds=hint)
        return result

    def cancel(self, work_id: str) -> None:
        ticket = _decode(work_id)
        if "monitor" not in ticket:
            return  # finished at once: nothing runs
        profile = self._profile(ticket["profile"])
        method, url, body = STYLES[ticket["style"]].cancel_request(ticket["monitor"], ticket.get("custom"))
        with contextlib.suppress(ProviderRefused):  # gone already, or finished: nothing left to stop
            self._fetch(profile, method, url, body)

    # ---- helpers ------------------------------------------------------------------------------------

    def _profile(self, name: Any) -> Profile:
        try:
            profiles = self._profiles()
        except ValueError as exc:
            raise ProviderError(f"the http profiles are not usable: {exc}") from None
        if not isinstance(name, str) or name not in profiles:
            known = ", ".join(sorted(profiles)) or "none configured"
            raise InvalidJobInput(
                f"'profile' must name an http profile (known: {known}), got {json.dumps(name)}"
            )
        return profiles[name]

    def _inside(self, profile: Profile, url: str) -> str:
        if not profile.contains(url):
            raise UnsafeProviderUrl(f"{_shown(url)} is outside the base_url of http profile {profile.name!r}")
        return url

    def _finish(self, profile: Profile, outcome: Outcome) -> PollResult:
        """The outcome as a PollResult: a result at another URL is fetched (inside the profile)."""
        if isinstance(outcome, ResultAt):
            reply = self._fetch(profile, "GET", outcome.url)
            return PollResult(state=WorkState.SUCCEEDED, progress=1.0, result=reply.content())
        return outcome

    def _fetch(
        self,
        profile: Profile,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        follow_303: bool = True,
    ) -> Reply:
        """One request inside `profile`, following redirects that stay inside it; a 2xx or 3xx `Reply`."""
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._send(profile, method, self._inside(profile, url), body, headers or {})
            location = reply.header("location")
            if reply.status not in _REDIRECTS or location is None or (reply.status == 303 and not follow_303):
                return reply
            url = urljoin(url, location)
            if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                method, body = "GET", None
        raise ProviderError(f"more than {MAX_REDIRECTS} redirects from {_shown(url)}")

    def _send(
        self, profile: Profile, method: str, url: str, body: bytes | None, extra: Mapping[str, str]
    ) -> Reply:
        host = urlsplit(url).hostname or ""
        reason = unreachable_reason(host, allow_loopback=self._allow_loopback, resolve=self._resolve)
        if reason is not None:
            raise UnsafeProviderUrl(f"the host {host!r} of http profile {profile.name!r} {reason}")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **extra, **profile.headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        where = f"{method} {_shown(url)}"
        try:
            with DIRECT_OPENER.open(request, timeout=profile.timeout_seconds) as response:
                reply = self._reply(response, url, where)
        except urllib.error.HTTPError as exc:
            with exc:
                reply = self._reply(exc, url, where)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, reset, timed out, garbled
            raise ProviderUnavailable(f"{where}: {type(exc).__name__}: {exc}"[:500]) from None
        if reply.status == 429 or reply.status >= 500:
            raise ProviderUnavailable(f"{where} answered {reply.status}{reply.detail()}")
        if reply.status >= 400:
            raise ProviderRefused(f"{where} answered {reply.status}{reply.detail()}")
        return reply

    def _reply(self, response: Any, url: str, where: str) -> Reply:
        cap = self._max_response_bytes
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > cap:
            raise ProviderResponseTooLarge(f"{where} answered {length} bytes; at most {cap} are read")
        try:
            content = response.read(cap + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderUnavailable(f"{where}: reading the answer failed: {exc}"[:500]) from None
        if len(content) > cap:
            raise ProviderResponseTooLarge(f"{where} answered more than {cap} bytes")
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Reply(status=int(response.status), headers=headers, body=content, url=url)


def _validate_request(call: Any, profile: Profile) -> dict[str, Any]:
    if call is None:
        raise InvalidJobInput('http input needs \'request\': {"method", "path", "headers"?, "body"?}')
    call = json_object(call, _REQUEST_FIELDS, "'request'")
    method = call.get("method", "POST")
    if method not in METHODS:
        raise InvalidJobInput(
            f"'request.method' must be one of {', '.join(METHODS)}, got {json.dumps(method)}"
        )
    path = call.get("path")
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or len(path) > MAX_PATH_LENGTH
        or any(ord(ch) <= 32 or ord(ch) >= 127 for ch in path)
    ):
        raise InvalidJobInput(
            "'request.path' must be a path under the profile's base_url, starting with '/' "
            f"(ASCII, no spaces, at most {MAX_PATH_LENGTH} characters)"
        )
    if "#" in path or not profile.contains(profile.url(path)):
        raise InvalidJobInput(
            f"'request.path' {path[:80]!r} leads outside the base_url of profile {profile.name!r}"
        )
    headers = call.get("headers", {})
    if not _valid_headers(headers):
        raise InvalidJobInput("'request.headers' must map header names to single-line strings")
    owned = {name.lower() for name in profile.headers}
    refused = sorted(name for name in headers if name.lower() in _CREDENTIAL_HEADERS | _HOP_HEADERS | owned)
    if refused:
        raise InvalidJobInput(
            f"'request.headers' may not set {', '.join(refused)}: credentials and the profile's headers "
            "come from the profile"
        )
    normalised: dict[str, Any] = {"method": method, "path": path}
    if headers:
        normalised["headers"] = headers
    if "body" in call:
        normalised["body"] = call["body"]
    return normalised


def _valid_headers(headers: Any) -> bool:
    """True for a JSON object of header names to single-line string values."""
    return isinstance(headers, dict) and all(
        isinstance(k, str)
        and bool(_HEADER_NAME.match(k))
        and isinstance(v, str)
        and not {"\r", "\n"} & set(v)
        for k, v in headers.items()
    )


def _shown(url: str) -> str:
    """A URL for messages: without its query (which may carry a signature or a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


def _outcome_to_dict(result: PollResult) -> dict[str, Any]:
    data: dict[str, Any] = {"state": result.state.value, "result": result.result}
    if result.error is not None:
        data["error"] = result.error.to_dict()
    return data


def _outcome_from_dict(data: dict[str, Any]) -> PollResult:
    error = JobError.from_dict(data["error"]) if "error" in data else None
    return PollResult(state=WorkState(data["state"]), progress=1.0, result=data.get("result"), error=error)


def _decode(work_id: str) -> dict[str, Any]:
    if not work_id.startswith(_PREFIX):
        raise ProviderError(f"not an http work id: {work_id[:40]!r}")
    body = work_id[len(_PREFIX) :]
    try:
        ticket = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if ticket["style"] not in STYLES or not ("monitor" in ticket or "done" in ticket):
            raise ValueError("incomplete")
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"malformed http work id: {work_id[:40]!r}") from exc
    return dict(ticket)


def _any_case(word: str) -> str:
    """A regular expression matching `word` in any case (JSON Schema patterns take no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# A path under the base URL: starts with one '/', printable ASCII, no fragment, no '.' or '..' segment (also
# percent-encoded) and no encoded '/' that could make one; `Profile.contains` checks the same at submission.
_DOT = "(?:\\.|%2[eE])"
PATH_PATTERN = f'^/(?!/)(?!(?:[^?]*/)?{_DOT}{{1,2}}(?:[/?]|$))(?!.*%2[fF])[!-"$-~]*$'


def input_schema(profiles: Mapping[str, Profile]) -> dict[str, Any]:
    """The http job input as JSON Schema: one variant per profile and style, as `validate` checks it."""
    variants = []
    for name, profile in sorted(profiles.items()):
        refused = sorted(_CREDENTIAL_HEADERS | _HOP_HEADERS | {h.lower() for h in profile.headers})
        request = {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {
                "method": {"enum": list(METHODS), "default": "POST"},
                "path": {"type": "string", "pattern": PATH_PATTERN, "maxLength": MAX_PATH_LENGTH},
                "headers": {
                    "type": "object",
                    "propertyNames": {
                        "pattern": _HEADER_NAME.pattern,
                        "not": {"pattern": f"^(?:{'|'.join(_any_case(h) for h in refused)})$"},
                    },
                    "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n]*$"},
                    "description": "Credentials and the profile's own headers come from the profile",
                },
                "body": {"description": "Sent as JSON"},
            },
        }
        for style in STYLES:
            default_style = profile.defaults.get("style") == style
            properties: dict[str, Any] = {
                "profile": {"const": name},
                "style": {"const": style},
                "request": request,
            }
            required = ["profile", "request"] + ([] if default_style else ["style"])
            if style == "custom":
                properties["custom"] = CUSTOM_SCHEMA
                if "custom" not in profile.defaults:
                    required.append("custom")
            variants.append(
                {
                    "title": f"{name} ({style})",
                    "type": "object",
                    "additionalProperties": False,
                    "required": required,
                    "properties": properties,
                }
            )
    return {"anyOf": variants}
