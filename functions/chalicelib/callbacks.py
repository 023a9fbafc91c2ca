"""Callbacks: when a job with a `callback_url` finishes, POST the job there, signed, retried with backoff.

Signature: `X-Jobpoll-Signature: t=<epoch seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the shared
secret (settings.callback_secret). A receiver recomputes it with `verify_signature` and refuses stale
timestamps (replays). Delivery is retried on 5xx, 429, timeouts and connection errors, never on other 4xx,
waiting `backoff * 2**n` seconds between tries through the injected `sleep` (virtual time in tests).

SSRF: only http(s); the host's every address must be public (`ipaddress.is_global`). Local mode also allows
loopback (a receiver on the developer's machine). Checked when the job is submitted and again before each
delivery (DNS may have changed); redirects are never followed and no proxy is used, so the connection goes to
an address that was checked (a DNS answer that changes between check and connect is the residual risk).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from .clock import Clock
from .errors import InvalidCallbackUrl, JobPollError
from .job import CallbackRecord, Job
from .metrics import Metrics
from .settings import Settings
from .store import JobStore
from .views import job_view

SIGNATURE_HEADER = "X-Jobpoll-Signature"
MAX_URL_LENGTH = 2048
DEFAULT_TOLERANCE_SECONDS = 300
USER_AGENT = "jobpoll-callback/1"

Resolver = Callable[[str], list[str]]

_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST_NAME = r"(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?"  # the last label starts with a letter
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LOOPBACK = r"127(?:\." + _OCTET + r"){3}"


def callback_url_schema(allow_loopback: bool) -> dict[str, object]:
    """What `parse_callback_url` and `check_callback_target` accept, as the OpenAPI document shows it:
    http(s), a host name (local mode: or a loopback address), no credentials, a port from 1 to 65535.
    Whether a name resolves to an address the stage may call is known only when the job is submitted."""
    host = f"(?:{_HOST_NAME}|{_LOOPBACK})" if allow_loopback else _HOST_NAME
    return {
        "type": "string",
        "format": "uri",
        "maxLength": MAX_URL_LENGTH,
        "pattern": rf"^https?://{host}(?::{_PORT})?(?:[/?#][A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*)?$",
        "description": (
            "POSTed the job when it finishes, signed (X-Jobpoll-Signature). A host that resolves to a "
            "loopback, link-local, private or reserved address is refused (400 invalid-callback-url)"
            + (", except loopback in local mode" if allow_loopback else "")
        ),
    }


class Sender(Protocol):
    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """POST `body`; returns the HTTP status; raises OSError (timeouts included) when none came."""
        ...


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (epoch seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now_epoch: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `header` (X-Jobpoll-Signature) signs `body` with `secret` and is at most
    `tolerance_seconds` old. For receivers: pass the raw request body, before any JSON parsing."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now_epoch - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


def parse_callback_url(value: Any) -> str:
    """The URL if it is a well-formed http(s) URL without credentials; raises InvalidCallbackUrl."""
    if not isinstance(value, str) or not value:
        raise InvalidCallbackUrl("'callback_url' must be a non-empty string")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidCallbackUrl(f"'callback_url' must be at most {MAX_URL_LENGTH} characters")
    if any(ord(ch) <= 32 or ord(ch) >= 127 for ch in value):
        raise InvalidCallbackUrl(
            "'callback_url' must be ASCII without spaces (percent-encode the path, punycode the host)"
        )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidCallbackUrl(f"'callback_url' is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidCallbackUrl("'callback_url' must be an http or https URL")
    if not parts.hostname:
        raise InvalidCallbackUrl("'callback_url' has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidCallbackUrl("'callback_url' must not carry credentials")
    if port == 0:
        raise InvalidCallbackUrl("'callback_url' has port 0")
    return value


def system_resolver(host: str) -> list[str]:
    """Every address `host` resolves to (DNS); raises OSError when it does not resolve."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


def _address_allowed(address: str, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


def unreachable_reason(host: str, *, allow_loopback: bool, resolve: Resolver = system_resolver) -> str | None:
    """Why `host` may not be reached ("does not resolve", "resolves to a private ... address"), or None when
    every address it resolves to is public (or loopback, where allowed). The SSRF guard of every outgoing
    request jobpoll makes on a job's behalf (callbacks, the http provider)."""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError):
            return "does not resolve"
    if not addresses:
        return "does not resolve"
    refused = [address for address in addresses if not _address_allowed(address, allow_loopback)]
    if refused:
        return f"resolves to a loopback, link-local, private or reserved address ({refused[0]})"
    return None


def check_callback_target(url: str, *, allow_loopback: bool, resolve: Resolver = system_resolver) -> None:
    """Refuse a URL whose host is (or resolves to) a loopback, link-local, private or reserved address."""
    host = urlsplit(parse_callback_url(url)).hostname or ""
    reason = unreachable_reason(host, allow_loopback=allow_loopback, resolve=resolve)
    if reason is not None:
        raise InvalidCallbackUrl(f"the callback host {host!r} {reason}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could lead past the address check: report the 3xx instead


# No proxies, no redirects followed: the connection goes to the address that was checked.
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def urllib_sender(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST with the standard library: no redirects followed, no proxies."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with DIRECT_OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from exc


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


@dataclass(frozen=True)
class CallbackSettings:
    secret: str
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float
    allow_loopback: bool


def deliver(
    url: str,
    body: bytes,
    *,
    config: CallbackSettings,
    clock: Clock,
    sleep: Callable[[float], None],
    sender: Sender = urllib_sender,
    resolve: Resolver = system_resolver,
) -> CallbackRecord:
    """POST `body` to `url`, signed, retrying transient failures; returns what happened."""
    attempts = 0
    last_status: int | None = None
    last_error: str | None = None
    for attempt in range(config.max_attempts):
        if attempt:
            sleep(config.backoff_seconds * 2 ** (attempt - 1))
        try:
            check_callback_target(url, allow_loopback=config.allow_loopback, resolve=resolve)
        except InvalidCallbackUrl as exc:
            return CallbackRecord(attempts=attempts, last_status=None, last_error=str(exc))
        attempts += 1
        now: datetime = clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # Real time: the receiver checks it against its own clock (the local stack's may run faster).
            SIGNATURE_HEADER: sign(config.secret, int(clock.to_real(now).timestamp()), body),
        }
        try:
            last_status = sender(url, body, headers, config.timeout_seconds)
            last_error = None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, refusals, garbled answers
            last_status, last_error = None, f"{type(exc).__name__}: {exc}"[:500]
            continue
        if 200 <= last_status < 300:
            return CallbackRecord(attempts=attempts, delivered_at=clock.now(), last_status=last_status)
        if not _retryable(last_status):
            break
    return CallbackRecord(attempts=attempts, last_status=last_status, last_error=last_error)


@dataclass(frozen=True)
class Notifier:
    """Delivers a finished job's callback and records the outcome on the job (best effort: never raises
    for a failed delivery; the job's `callback` field tells what happened)."""

    store: JobStore
    settings: Settings
    clock: Clock
    sleep: Callable[[float], None]
    sender: Sender = urllib_sender
    resolve: Resolver = system_resolver
    # Hands a finished job's callback to another process (the DeliverCallback function); None: deliver here.
    dispatch: Callable[[str], None] | None = None
    # Counts each delivery's outcome (and logs it: one line).
    metrics: Metrics | None = None

    def config(self) -> CallbackSettings:
        return CallbackSettings(
            secret=self.settings.callback_secret,
            max_attempts=max(1, self.settings.callback_max_attempts),
            backoff_seconds=float(self.settings.callback_backoff_seconds),
            timeout_seconds=float(self.settings.callback_timeout_seconds),
            allow_loopback=self.settings.local_mode,
        )

    def job_finished(self, job: Job) -> Job:
        """Deliver `job`'s callback if it has one and is finished (or dispatch it to the delivering
        function); returns the job as stored after."""
        if job.callback_url is None or not job.status.is_terminal:
            return job
        if self.dispatch is not None:
            self.dispatch(job.job_id)
            return job
        return self._deliver(job)

    def deliver_stored(self, job_id: str) -> Job:
        """The delivering function's work: deliver the stored job's callback unless it was delivered."""
        job = self.store.get(job_id)
        if job.callback_url is None or not job.status.is_terminal:
            return job
        if job.callback is not None and job.callback.delivered_at is not None:
            return job  # an async invocation may run twice
        return self._deliver(job)

    def _deliver(self, job: Job) -> Job:
        assert job.callback_url is not None
        config = self.config()
        if not config.secret:
            record = CallbackRecord(last_error="callbacks are not configured (no signing secret)")
        else:
            body = _canonical_json(job_view(job, self.clock.now()))
            record = deliver(
                job.callback_url,
                body,
                config=config,
                clock=self.clock,
                sleep=self.sleep,
                sender=self.sender,
                resolve=self.resolve,
            )
        if self.metrics is not None:
            self.metrics.callback_sent(dataclasses.replace(job, callback=record))
        try:
            return self.store.update(
                job.job_id, lambda latest: latest.amend(self.clock.now(), callback=record)
            )
        except JobPollError:
            return job


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
