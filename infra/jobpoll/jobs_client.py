"""A client of jobpoll's REST API over urllib: submit, get, list, cancel, result, wait.

A stack in auth mode jwt or cognito (the local stack is one) takes `Authorization: Bearer <token>` (the
local stack's `api_token` from `.jobpoll/local.json`, or `--token`); in mode iam each request is signed
with SigV4 for `execute-api` with the session's credentials.
"""

from __future__ import annotations

import builtins
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ToolingError

TERMINAL = frozenset({"COMPLETE", "FAILED", "CANCELED"})
STATUSES = ("QUEUED", "PENDING", "RUNNING", "COMPLETE", "FAILED", "CANCELED")
_TIMEOUT = 15.0
# `wait` looks again when the API's Retry-After says (real seconds; this when it says nothing usable), and
# meanwhile lets the caller redraw every so often.
_DEFAULT_RETRY_AFTER = 1.0
_REDRAW_INTERVAL = 0.5

Sign = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]


class ApiProblem(ToolingError):
    """The API answered an error (its problem detail, in `answer`)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(_problem_line(answer))
        self.answer = answer


class ApiUnreachable(ToolingError):
    """Nothing answers at the API's URL."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """GET /jobs/{id} answers a finished job with 303 and the job's JSON: keep that answer."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def sigv4_signer(session: Any, region: str) -> Sign:
    """Signs requests for API Gateway's IAM auth with the session's credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = session.get_credentials()
    if credentials is None:
        raise ToolingError(
            "AWS credentials not found: configure them (aws configure, AWS_PROFILE, or --profile)"
        )

    def sign(method: str, url: str, headers: dict[str, str], data: bytes | None) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign


def bearer(token: str) -> Sign:
    def sign(method: str, url: str, headers: dict[str, str], data: bytes | None) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {token}"}

    return sign


class JobsClient:
    """jobpoll's REST API at `api_url`, each request authenticated by `sign`."""

    def __init__(
        self,
        api_url: str,
        sign: Sign,
        unreachable_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = _TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._sign = sign
        self._hint = unreachable_hint
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirects())

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        url = f"{self.api_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent = self._sign(method, url, sent, data)
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return Answer(response.status, dict(response.headers.items()), _body(response.read()))
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, dict(error.headers.items()), _body(error.read()))
            if error.code < 400:
                return answer
            raise ApiProblem(answer) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnreachable(f"cannot reach the API at {self.api_url}: {reason}{self._hint}") from None

    def submit(self, body: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(self.request("POST", "/jobs", body, headers).body)

    def get(self, job_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/jobs/{_quote(job_id)}").body)

    def list(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's jobs, newest first, following `next` until `limit` (all pages without one)."""
        jobs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {k: v for k, v in (("status", status), ("limit", limit), ("next", token)) if v}
            path = "/jobs" + (f"?{urllib.parse.urlencode(query)}" if query else "")
            page = self.request("GET", path).body
            jobs.extend(page["jobs"])
            token = page.get("next")
            if not token or (limit is not None and len(jobs) >= limit):
                return jobs[:limit] if limit is not None else jobs

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a running job (its JSON, now CANCELED); for a finished one, delete its output (None)."""
        answer = self.request("DELETE", f"/jobs/{_quote(job_id)}")
        return dict(answer.body) if answer.status == 200 and isinstance(answer.body, dict) else None

    def result(self, job_id: str) -> Any:
        """The finished job's result; a large one from the presigned URL the API redirects to (fetched
        without this API's credentials: the URL carries its own)."""
        answer = self.request("GET", f"/jobs/{_quote(job_id)}/result")
        location = {k.lower(): v for k, v in answer.headers.items()}.get("location")
        if answer.status == 303 and location:
            try:
                with self._opener.open(location, timeout=self._timeout) as response:
                    return _body(response.read())
            except (urllib.error.URLError, OSError) as exc:
                raise ToolingError(f"cannot read the result at its presigned URL: {exc}") from None
        return answer.body

    def share(self, job_id: str, expires_in_seconds: int | None = None) -> dict[str, Any]:
        """A share link of the job's result (`url`, `id` to revoke it, `expires_at`)."""
        body = {"expires_in_seconds": expires_in_seconds} if expires_in_seconds else {}
        return dict(self.request("POST", f"/jobs/{_quote(job_id)}/shares", body).body)

    def unshare(self, job_id: str, share_id: str) -> None:
        """Revoke a share link."""
        self.request("DELETE", f"/jobs/{_quote(job_id)}/shares/{_quote(share_id)}")

    def providers(self) -> builtins.list[dict[str, Any]]:
        """Every provider a job can name (GET /providers)."""
        return builtins.list(self.request("GET", "/providers").body["providers"])

    def provider(self, name: str) -> dict[str, Any]:
        """One provider: kind, whether it can notify, input schema and examples (GET /providers/NAME)."""
        return dict(self.request("GET", f"/providers/{_quote(name)}").body)

    def wait(
        self,
        job_id: str,
        on_update: Callable[[dict[str, Any]], None],
        timeout: float | None = None,
        on_pause: Callable[[float], None] = lambda left: None,
    ) -> dict[str, Any]:
        """Look at the job until it is finished, calling `on_update` with each view; the final view.

        Between looks it waits as the API's Retry-After says, calling `on_pause` with the seconds left
        every half second or so (a progress bar stays live without asking the API).
        """
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            answer = self.request("GET", f"/jobs/{_quote(job_id)}")
            job = dict(answer.body)
            on_update(job)
            if job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ToolingError(f"job {job_id} is still {job.get('status')} after {timeout:g} s")
            left = _seconds(answer.headers.get("Retry-After"))
            if deadline is not None:
                left = min(left, max(0.0, deadline - time.monotonic()))
            while left > 0:
                on_pause(left)
                step = min(left, _REDRAW_INTERVAL)
                self._sleep(step)
                left -= step


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _seconds(text: str | None) -> float:
    """Retry-After's delay-seconds (an HTTP date or garbage: the default)."""
    try:
        seconds = float(text) if text else _DEFAULT_RETRY_AFTER
    except ValueError:
        return _DEFAULT_RETRY_AFTER
    return seconds if 0 <= seconds < float("inf") else _DEFAULT_RETRY_AFTER


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode(errors="replace")


def _problem_line(answer: Answer) -> str:
    """A problem+json answer (or anything else) as one line."""
    body = answer.body
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or body.get("message") or json.dumps(body)
        return f"{detail} (HTTP {answer.status})"
    text = str(body or "").strip().splitlines()
    return f"HTTP {answer.status}" + (f": {text[0]}" if text else "")
