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
from .errors import PortInUse, StackNotRunning, ToolingError, UnknownExecution
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

    def __init__(
        self, connect: Callable[[], Console], start_hint: str = START_LOCAL, served_by: str | None = None
    ) -> None:
        self._connect = connect
        self.start_hint = start_hint
        self.served_by = served_by  # the command serving the console, when it is not `jobpoll local up`
        self._lock = threading.RLock()
        self._console: Console | None = None
        self._definition: dict[str, Any] | None = None
        self._executions_of: dict[str, str | None] = {}

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

    def execution_of(self, job_id: str) -> str | None:
        """The execution that polls the job (named by its id), or None (a queue-mode job has none)."""
        with self._lock:
            if job_id in self._executions_of:
                return self._executions_of[job_id]
        try:
            self.console().executions().describe(job_id)
            found: str | None = job_id
        except UnknownExecution:
            found = None
        with self._lock:
            self._executions_of[job_id] = found
        return found

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


Route = Callable[[Stack, dict[str, str], dict[str, str], Any], tuple[int, Any]]
ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


def route(method: str, pattern: str) -> Callable[[Route], Route]:
    """Registers a JSON API route: called with the stack, the path's parts, the query and the JSON body."""

    def register(handler: Route) -> Route:
        ROUTES.append((method, re.compile(pattern), handler))
        return handler

    return register


def _input(body: Any) -> Any:
    if not isinstance(body, dict) or "input" not in body:
        raise Problem(HTTPStatus.BAD_REQUEST, "bad request", 'send {"input": ...}')
    return body["input"]


@route("GET", r"/api/stack")
def _stack(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    console = stack.console()
    return 200, {
        "stack_name": console.stack_name,
        "local": console.is_local,
        "seed_input": SEED_INPUT,
        "served_by": stack.served_by,
    }


@route("GET", r"/api/executions")
def _executions(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, list_executions(stack.console().executions(), query)


@route("POST", r"/api/executions")
def _start(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    execution_input = _input(body)
    return 201, stack.console().executions().start(execution_input, body.get("name") or None)


@route("GET", r"/api/executions/(?P<id>[^/]+)")
def _execution(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, execution_view(stack.console().executions(), stack.definition(), path["id"])


@route("POST", r"/api/executions/(?P<id>[^/]+)/stop")
def _stop(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, stack.console().executions().stop(path["id"], "stopped from the web console")


@route("GET", r"/api/providers")
def _providers(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, {"providers": stack.console().jobs().providers()}


@route("GET", r"/api/jobs")
def _jobs(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    kept = {key: value for key, value in query.items() if key in ("status", "next", "limit") and value}
    listing = f"/jobs?{urllib.parse.urlencode(kept)}" if kept else "/jobs"
    return 200, stack.console().jobs().request("GET", listing).body


@route("POST", r"/api/jobs")
def _submit(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 202, stack.console().jobs().submit(body)


@route("GET", r"/api/jobs/(?P<id>[^/]+)")
def _job(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    job = stack.console().jobs().get(path["id"])
    return 200, {**job, "execution": stack.execution_of(path["id"])}


@route("GET", r"/api/jobs/(?P<id>[^/]+)/result")
def _result(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, stack.console().jobs().result(path["id"])


@route("DELETE", r"/api/jobs/(?P<id>[^/]+)")
def _cancel(stack: Stack, path: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
    canceled = stack.console().jobs().cancel(path["id"])
    return 200, canceled if canceled is not None else {"id": path["id"], "deleted": True}


def answer(stack: Stack, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    """The JSON API: (status, body); a Problem for what went wrong."""
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            try:
                return handler(stack, match.groupdict(), query, body)
            except ApiProblem as refused:  # the API's own problem detail, as it gave it
                problem = Problem(refused.answer.status, "the API refused", str(refused))
                if isinstance(refused.answer.body, dict):
                    problem.body = {**refused.answer.body, "status": refused.answer.status}
                raise problem from None
            except (ApiUnreachable, EndpointConnectionError):
                raise stack.not_running() from None
            except UnknownExecution as exc:
                raise Problem(HTTPStatus.NOT_FOUND, "no such execution", str(exc)) from None
            except (ToolingError, BotoCoreError, ClientError) as exc:
                raise Problem(HTTPStatus.BAD_GATEWAY, "the stack refused", str(exc)) from None
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
