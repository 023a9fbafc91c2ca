"""The web console: a small HTTP server on 127.0.0.1 serving the pages (console_assets/) and a JSON API
over one stack's executions and jobs (console.Console: the CLI's targeting and clients).

The browser talks only to this server; AWS credentials and the API's token stay in this process. Every
JSON answer carries an ETag, and a request whose If-None-Match matches gets 304: the pages poll while
something runs and learn cheaply that nothing changed. Errors are problem details (RFC 9457); a stack that
is not running is one, saying how to start it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from . import graph, render
from .console import START_LOCAL, Console
from .errors import JobpollError, PortInUse, StackNotRunning
from .executions import STATUSES, Executions, continued_in
from .jobs_client import ApiProblem, ApiUnreachable

HOST = "127.0.0.1"
PAGE_SIZE = 20
SEED_INPUT = {"delay": 20}
_ASSET_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_PROBLEM = "application/problem+json"


class Problem(Exception):
    """An answer in problem+json."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(detail or title)
        self.status = status
        self.body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
        if detail:
            self.body["detail"] = detail


class Stack:
    """The stack the console acts on: connected on first use, and again after it went away."""

    def __init__(self, connect: Callable[[], Console], start_hint: str = START_LOCAL) -> None:
        self._connect = connect
        self.start_hint = start_hint
        self._lock = threading.RLock()
        self._console: Console | None = None
        self._definition: dict[str, Any] | None = None

    def console(self) -> Console:
        with self._lock:
            if self._console is None:
                try:
                    self._console = self._connect()
                except StackNotRunning:
                    raise self.not_running() from None
                self._definition = None
            return self._console

    def definition(self) -> dict[str, Any]:
        executions = self.console().executions()
        with self._lock:
            if self._definition is None:
                self._definition = executions.definition()
            return self._definition

    def not_running(self) -> Problem:
        with self._lock:
            self._console = None
        return Problem(HTTPStatus.SERVICE_UNAVAILABLE, "the stack is not running", self.start_hint)


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """A history event for the page: its state and its input, output, error and cause (JSON parsed)."""
    details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
    view = {"id": event["id"], "type": event["type"], "timestamp": event["timestamp"]}
    for key in ("name", "input", "output", "error", "cause"):
        if key in details:
            view["state" if key == "name" else key] = _parsed(details[key])
    return view


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def current_state(events: list[dict[str, Any]]) -> str | None:
    """The state an execution is in: entered and not yet exited."""
    current = None
    for event in events:
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"].endswith("StateExited"):
            current = None
    return current


def execution_view(executions: Executions, definition: dict[str, Any], name: str) -> dict[str, Any]:
    """An execution with its history, its state graph (path and current state) and where it continued."""
    described = executions.describe(name)
    events = executions.history(name)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    running = described["status"] == "RUNNING"
    shown = [_event(event) for event in events]
    job_ids = [
        e["output"]["job_id"] for e in shown if isinstance(e.get("output"), dict) and "job_id" in e["output"]
    ]
    following = continued_in(described)
    return {
        "execution": {
            key: _parsed(value) if key in ("input", "output") else value for key, value in described.items()
        },
        "events": shown,
        "graph": graph.svg(definition, entered, current_state(events) if running else None),
        "entered": graph.path_taken(entered)[0],
        "job_id": job_ids[-1] if job_ids else None,
        "continued_in": following.rsplit(":", 1)[-1] if following else None,
    }


def _page(query: dict[str, str]) -> int:
    try:
        return max(0, int(query.get("page", "0")))
    except ValueError:
        raise Problem(HTTPStatus.BAD_REQUEST, "bad page", "page must be a whole number") from None


def list_executions(executions: Executions, query: dict[str, str]) -> dict[str, Any]:
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise Problem(HTTPStatus.BAD_REQUEST, "bad status", f"status must be one of {', '.join(STATUSES)}")
    page = _page(query)
    found = executions.list(status, limit=(page + 1) * PAGE_SIZE + 1)
    return {
        "executions": found[page * PAGE_SIZE : (page + 1) * PAGE_SIZE],
        "page": page,
        "more": len(found) > (page + 1) * PAGE_SIZE,
        "statuses": list(STATUSES),
    }


def providers(console: Console) -> list[dict[str, Any]]:
    """The providers the API lists (GET /providers), or else the ones its OpenAPI document's JobRequest
    names."""
    jobs = console.jobs()
    try:
        return list(jobs.request("GET", "/providers").body["providers"])
    except ApiProblem as problem:
        if problem.answer.status not in (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED):
            raise
    document = jobs.request("GET", "/openapi.json").body
    variants = document["components"]["schemas"]["JobRequest"]["anyOf"]
    return [{"name": v["properties"]["provider"]["const"]} for v in variants if "provider" in v["properties"]]


Route = Callable[[Stack, re.Match[str], dict[str, str], Any], tuple[int, Any]]


def _body_input(body: Any) -> Any:
    if not isinstance(body, dict) or "input" not in body:
        raise Problem(HTTPStatus.BAD_REQUEST, "bad request", 'send {"input": ...}')
    return body["input"]


def _jobs_query(query: dict[str, str]) -> str:
    kept = {key: value for key, value in query.items() if key in ("status", "next", "limit") and value}
    return f"/jobs?{urllib.parse.urlencode(kept)}" if kept else "/jobs"


def _job_path(match: re.Match[str], suffix: str = "") -> str:
    return f"/jobs/{urllib.parse.quote(match['id'], safe='')}{suffix}"


ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (
        "GET",
        re.compile(r"/api/stack"),
        lambda stack, m, q, b: (
            200,
            {
                "stack_name": stack.console().stack_name,
                "local": stack.console().is_local,
                "seed_input": SEED_INPUT,
            },
        ),
    ),
    (
        "GET",
        re.compile(r"/api/executions"),
        lambda s, m, q, b: (200, list_executions(s.console().executions(), q)),
    ),
    (
        "POST",
        re.compile(r"/api/executions"),
        lambda s, m, q, b: (201, s.console().executions().start(_body_input(b), (b.get("name") or None))),
    ),
    (
        "GET",
        re.compile(r"/api/executions/(?P<id>[^/]+)"),
        lambda s, m, q, b: (200, execution_view(s.console().executions(), s.definition(), m["id"])),
    ),
    (
        "POST",
        re.compile(r"/api/executions/(?P<id>[^/]+)/stop"),
        lambda s, m, q, b: (200, s.console().executions().stop(m["id"], "stopped from the web console")),
    ),
    ("GET", re.compile(r"/api/providers"), lambda s, m, q, b: (200, {"providers": providers(s.console())})),
    (
        "GET",
        re.compile(r"/api/jobs"),
        lambda s, m, q, b: (200, s.console().jobs().request("GET", _jobs_query(q)).body),
    ),
    ("POST", re.compile(r"/api/jobs"), lambda s, m, q, b: (202, s.console().jobs().submit(b))),
    (
        "GET",
        re.compile(r"/api/jobs/(?P<id>[^/]+)"),
        lambda s, m, q, b: (200, s.console().jobs().get(m["id"])),
    ),
    (
        "GET",
        re.compile(r"/api/jobs/(?P<id>[^/]+)/result"),
        lambda s, m, q, b: (200, s.console().jobs().request("GET", _job_path(m, "/result")).body),
    ),
    (
        "DELETE",
        re.compile(r"/api/jobs/(?P<id>[^/]+)"),
        lambda s, m, q, b: (200, s.console().jobs().cancel(m["id"]) or {"id": m["id"], "deleted": True}),
    ),
]


def answer(stack: Stack, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    """The JSON API: (status, body); a Problem for what went wrong."""
    for route_method, pattern, route in ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            try:
                return route(stack, match, query, body)
            except ApiProblem as problem:
                detail = problem.answer.body
                if isinstance(detail, dict):
                    raise Problem(
                        problem.answer.status,
                        str(detail.get("title", "error")),
                        str(detail.get("detail", "")),
                    ) from None
                raise Problem(problem.answer.status, "the API refused", str(problem)) from None
            except (ApiUnreachable, EndpointConnectionError):
                raise stack.not_running() from None
            except (JobpollError, BotoCoreError, ClientError) as exc:
                missing = "no execution" in str(exc)
                raise Problem(
                    404 if missing else 502, "not found" if missing else "the stack refused", str(exc)
                ) from None
    raise Problem(HTTPStatus.NOT_FOUND, "not found", f"no {method} {path} in the console")


class ConsoleServer(ThreadingHTTPServer):
    """The console on 127.0.0.1:port (0: a free one); `start()` serves it in a thread."""

    daemon_threads = True

    def __init__(self, port: int, stack: Stack) -> None:
        self.stack = stack
        try:
            super().__init__((HOST, port), _Handler)
        except OSError:
            raise PortInUse(port, "console") from None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.1,), name="web-console", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    server: ConsoleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # no line per request
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if not path.startswith("/api/"):
            self._asset(path)
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError as exc:
                raise Problem(HTTPStatus.BAD_REQUEST, "not JSON", exc.msg) from None
            status, value = answer(self.server.stack, method, path, query, body)
        except Problem as problem:
            self._send(problem.status, _PROBLEM, json.dumps(problem.body).encode())
            return
        data = render.to_json(value).encode()
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        if method == "GET" and self.headers.get("If-None-Match") == etag:
            self._send(HTTPStatus.NOT_MODIFIED, None, b"", {"ETag": etag})
            return
        self._send(status, "application/json", data, {"ETag": etag})

    def _asset(self, path: str) -> None:
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        suffix = "." + name.rsplit(".", 1)[-1]
        asset = resources.files("jobpoll").joinpath("console_assets", name)
        if "/" in name or suffix not in _ASSET_TYPES or not asset.is_file():
            problem = Problem(HTTPStatus.NOT_FOUND, "not found", f"no page {path}")
            self._send(problem.status, _PROBLEM, json.dumps(problem.body).encode())
            return
        self._send(HTTPStatus.OK, _ASSET_TYPES[suffix], asset.read_bytes())

    def _send(
        self, status: int, content_type: str | None, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header(
                "Content-Type", content_type + ("; charset=utf-8" if "image" not in content_type else "")
            )
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(data)
