"""`chalice local` as the local stack runs it: every method reaches the app, gateway errors are problems."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from chalice.config import Config

from app import app
from jobpoll.local_api import serve, serving_in_thread


@pytest.fixture
def local_api() -> Iterator[int]:
    """The app behind the local stack's request handler on 127.0.0.1 (a free port); yields the port."""
    with serving_in_thread(serve(app, Config(chalice_stage="dev"), "127.0.0.1", 0)) as url:
        yield int(url.rsplit(":", 1)[1])


def call(port: int, method: str, path: str) -> tuple[int, dict[str, str], dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "OPTIONS", "PUT"])
def test_a_method_the_api_does_not_serve_answers_405_problem_json_with_allow(
    local_api: int, method: str
) -> None:
    status, headers, body = call(local_api, method, "/jobs/abc")
    assert status == 405
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Allow"] == "DELETE, GET"
    assert body["status"] == 405 and body["title"] == "Method Not Allowed"


def test_a_path_below_every_route_is_the_gateways_403_as_a_problem(local_api: int) -> None:
    status, headers, body = call(local_api, "TRACE", "/a/b/c/d/e/f/g/h")
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert body == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Missing Authentication Token",
    }


def test_many_clients_connecting_at_once_are_all_let_in_while_the_server_is_busy() -> None:
    import socket

    server = serve(app, Config(chalice_stage="dev"), "127.0.0.1", 0)  # listening, not yet accepting
    port = server.server.server_address[1]
    clients = [socket.socket() for _ in range(64)]
    try:
        for client in clients:
            client.settimeout(2)
            client.connect(("127.0.0.1", port))  # the kernel queues it: a short queue would refuse it
        with serving_in_thread(server):
            for client in clients:
                client.sendall(b"GET /openapi.json HTTP/1.0\r\n\r\n")
            status_lines = [client.makefile("rb").readline().split()[1] for client in clients]
            assert status_lines == [b"200"] * len(clients)
    finally:
        for client in clients:
            client.close()
