"""A scripted HTTP service on 127.0.0.1 for the http provider's tests.

Each route answers from a script: the answers given to `on()` in turn, the last one again and again. No
timers: what the service says depends only on how often it was asked. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    # Send no Content-Length (the body ends when the connection closes).
    unsized: bool = False
    # Hold the answer until the server stops (a service that never answers), bounded.
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def problem(status: int, title: str, detail: str) -> Answer:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Answer(status, body, {"Content-Type": "application/problem+json"})


class LroServer:
    """`with LroServer() as server:` serves `server.url`; `server.on(method, path, *answers)` scripts it."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], list[Answer]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                answer = server._next(seen)
                if answer.hang:
                    server._stopping.wait(STOP_TIMEOUT)
                    return
                payload = answer.body if isinstance(answer.body, bytes) else b""
                if answer.body is not None and not isinstance(answer.body, bytes):
                    payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if answer.unsized:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that stops reading a huge body resets the connection: expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: `shutdown()` waits for the serving loop to notice (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="lro-server", daemon=True
        )

    def on(self, method: str, path: str, *answers: Answer) -> LroServer:
        with self._lock:
            self._routes[(method, path)] = list(answers)
        return self

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            self.seen.append(seen)
            script = self._routes.get((seen.method, seen.path))
            if not script:
                return problem(404, "Not Found", f"no {seen.method} {seen.path} here")
            return script.pop(0) if len(script) > 1 else script[0]

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if (method in (None, s.method)) and (path in (None, s.path))]

    def __enter__(self) -> LroServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT)
