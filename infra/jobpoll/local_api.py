"""`chalice local` with the edges API Gateway has: every method reaches the app, gateway errors are problems.

Chalice's local server (chalice.local.ChaliceRequestHandler, chalice 1.3x) is a BaseHTTPRequestHandler with
`do_GET` ... `do_OPTIONS` only: any other method (TRACE, CONNECT, an unknown one) is answered by the standard
library with `501` and an HTML page before the app sees it. Here those methods go through the same local
gateway as the others, so the app answers them (`405` problem+json with `Allow`), and the gateway's own
errors (no route: `403 Missing Authentication Token`) are problem documents, as the deployed gateway
responses in infra/template.json make them on AWS. Development tooling only: the deployed bundle is unchanged.

Run as `python -m jobpoll.local_api --host 127.0.0.1 --port 8000 --stage dev` from functions/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import chalice.local
from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGatewayAuthorizer,
    LocalGatewayException,
    NotAuthorizedError,
    ThreadedHTTPServer,
)

from .paths import FUNCTIONS_DIR
from .profiling import profiling

PROBLEM_CONTENT_TYPE = "application/problem+json"


class AnyMethodRequestHandler(ChaliceRequestHandler):
    """Chalice's local handler, answering every method through the app and gateway errors as problems."""

    # Headers and body go out in two writes: without TCP_NODELAY a keep-alive client waits out its delayed
    # ACK (~40 ms) on every response.
    disable_nagle_algorithm = True

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler looks up `do_<METHOD>` and answers 501 when there is none.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        status = error.CODE
        try:
            detail = str(json.loads(error.body or b"{}").get("message") or "")
        except (ValueError, AttributeError):
            detail = ""
        body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
        if detail:
            body["detail"] = detail
        headers = {**error.headers, "Content-Type": PROBLEM_CONTENT_TYPE}
        self._send_http_response(status, headers, json.dumps(body))


class ManyClientsServer(ThreadedHTTPServer):
    """Chalice's threaded server with a listen backlog for many clients at once: its default (5, from
    socketserver) makes the kernel refuse connections (ECONNRESET) while the accepting thread waits for
    the GIL behind busy request threads."""

    request_queue_size = 1024


# RFC 6750: a 401 names the scheme the client must use.
CHALLENGE = 'Bearer realm="jobpoll"'


class RefusingLocalAuthorizer(LocalGatewayAuthorizer):
    """Chalice's local authorizer runner (chalice 1.3x), refusing as API Gateway does.

    A Lambda authorizer that raises `Unauthorized` makes API Gateway answer 401 (the UNAUTHORIZED gateway
    response in infra/template.json: problem+json with `WWW-Authenticate`); chalice's runner would let the
    exception escape (a 500), and its own 401 for a missing Authorization header has no challenge.
    """

    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return super().authorize(raw_path, lambda_event, lambda_context)
        except NotAuthorizedError:
            raise _unauthorized(lambda_context) from None
        except Exception as exc:
            if str(exc) != "Unauthorized":
                raise
            raise _unauthorized(lambda_context) from None


def _unauthorized(lambda_context: Any) -> NotAuthorizedError:
    body = {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "Unauthorized"}
    headers = {
        "x-amzn-RequestId": lambda_context.aws_request_id,
        "x-amzn-ErrorType": "UnauthorizedException",
        "Content-Type": PROBLEM_CONTENT_TYPE,
        "WWW-Authenticate": CHALLENGE,
    }
    return NotAuthorizedError(headers, json.dumps(body).encode())


def install_refusing_authorizer() -> None:
    """Make every LocalGateway (`chalice local`, chalice.test.Client) refuse tokens as API Gateway does.

    Patches the module attribute chalice.local.LocalGateway.__init__ reads (chalice 1.3x); a test fails
    when chalice moves it."""
    chalice.local.LocalGatewayAuthorizer = RefusingLocalAuthorizer  # type: ignore[misc]


def serve(app_obj: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
    """A local server for `app_obj` on host:port (0: a free port), as chalice.local.create_local_server
    makes it (the app's current request kept per thread), with AnyMethodRequestHandler."""
    install_refusing_authorizer()
    if not isinstance(app_obj, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(
        app_obj, config, host, port, handler_cls=AnyMethodRequestHandler, server_cls=ManyClientsServer
    )


@contextlib.contextmanager
def serving_in_thread(server: LocalDevServer) -> Iterator[str]:
    """Serve on a thread of this process while in the block; yields the server's base URL."""
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)


def local_server(host: str, port: int, stage: str) -> LocalDevServer:
    """The app of functions/ on host:port, as `chalice local --stage STAGE` loads it."""
    from chalice.cli import factory as cli_factory
    from chalice.deploy.validate import validate_routes

    # As the `chalice` CLI does: the stage's environment variables are applied to this process's own.
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    factory = cli_factory.CLIFactory(str(FUNCTIONS_DIR), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    validate_routes(config.chalice_app.routes)
    return serve(config.chalice_app, config, host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobpoll.local_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--profile", type=Path, help="profile every thread; the stats go here on SIGTERM")
    args = parser.parse_args(argv)
    # As `chalice local` does: the app's log lines on stdout, as in Lambda.
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    os.chdir(FUNCTIONS_DIR)
    server = local_server(args.host, args.port, args.stage)
    if args.profile is not None:  # SIGTERM (how `local up` stops it) ends the block: the stats are written
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with profiling(args.profile):
        server.serve_forever()  # prints "Serving on http://HOST:PORT"
    return 0


if __name__ == "__main__":
    sys.exit(main())
