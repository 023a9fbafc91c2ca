"""`jobpoll local up`: the whole stack on this machine, from the same packaged template as AWS.

In this process: moto's server on 127.0.0.1 (in a thread) with state machines executing and the Lambda
handlers run in-process (`moto_patches.emulation_patches`, time on a `ScaledClock`); what runs here calls
moto in-process too (`mock_aws`: the server's own backends, no HTTP). The packaged template is
deployed into it with `jobpoll deploy`'s code. Then `chalice local` serves the API in a child process (its own
process group) against that endpoint. Everything stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from . import persistence
from .clocks import ScaledClock
from .console import local_console
from .deploy import Deployed, default_stack_name, deploy
from .emulation import MOTO_CONFIG, resolve_handler
from .errors import PortInUse, ToolingError
from .faults import FaultLog, FaultPlan, FaultRates, Invocation
from .issuer import JWKS_PATH, TENANT_SCOPES, LocalIssuer
from .issuer import serving as serving_issuer
from .paths import FUNCTIONS_DIR, LOCAL_STATE, ensure_functions_importable
from .profiling import profiling
from .queues import QueueDelivery, idle_wait_seconds, take_over_mappings
from .sandbox import HandlerClock
from .schedules import ScheduleRunner, deployed_schedules
from .target import LocalState, Target
from .web_console import ConsoleServer, Stack

HOST = "127.0.0.1"
STAGE = "local"
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_STARTUP_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
POLL_LOOP_FUNCTION = "StartJob"
JOB_KEY = "job_id"  # the job table's key (infra/template.json)
# The subject of the token written to the state file (`api_token`), which the console and the demo use.
LOCAL_SUBJECT = "local"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocalOptions:
    api_port: int = 8000
    aws_port: int = 5000
    console_port: int = 8001  # 0: any free port
    # The local token issuer (OpenID configuration and JWKS) listens here; its URL is the tokens' `iss`.
    issuer_port: int = 8002
    speed: float = 1.0
    region: str = "us-east-1"
    state_file: Path = LOCAL_STATE
    # The http provider's profiles (JSON, checked), handed to the handlers and the API as local settings.
    http_profiles: str = field(default="", repr=False)
    # Start empty instead of from the jobs (and the clock) an earlier run left in `state_dir`.
    fresh: bool = False
    # Faults to inject at seeded rates (faults.FaultRates, JSON), logged under `state_dir`; with a plan the
    # simulated services also record their submissions there (simulated_service.SubmissionLedger).
    fault_plan: Path | None = None
    # Profile every thread of the stack's processes; their stats go here when it stops (see `profile`).
    profile_dir: Path | None = None

    def profile(self, process: str) -> Path | None:
        """Where `process` ("local-up" or "api") writes its profile, when profiling."""
        return self.profile_dir / f"{process}.pstats" if self.profile_dir is not None else None

    @property
    def state_dir(self) -> Path:
        return self.state_file.parent / "state"

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def issuer_url(self) -> str:
        return issuer_url(self.issuer_port)


def issuer_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def local_issuer(state_file: Path, port: int) -> LocalIssuer:
    """The local stack's token issuer: its key (and URL) kept beside the state file, so that tokens survive
    a restart, made on first use with the URL of `port`."""
    return LocalIssuer.load_or_create(state_file.parent / "issuer-key.pem", issuer_url(port))


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop everything."""


class MotoServer:
    """moto's server app on 127.0.0.1:port in a thread, like moto's ThreadedMotoServer, except that binding
    happens in the caller (a taken port raises at once instead of hanging) and `stop()` closes the socket."""

    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        try:
            self._server = make_server(
                HOST,
                port,
                DomainDispatcherApplication(create_backend_app),
                threaded=True,
                request_handler=MotoRequestHandler,
            )
        except (OSError, SystemExit):  # werkzeug exits when the port is taken
            raise PortInUse(port, "aws") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_STOP_TIMEOUT)


def ensure_port_free(port: int, purpose: str) -> None:
    """Raise PortInUse if something listens on 127.0.0.1:port (binds as the servers will)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise PortInUse(port, purpose) from None


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Stopped in the main thread; a second signal during cleanup is ignored."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# Transcribe jobs and Athena queries move one state on per describe (moto's default jumps to the end), so a
# job on the local stack shows each of the service's states.
SERVICE_PROGRESSION = {
    "transcribe::transcriptionjob": {"progression": "manual", "times": 1},
    "athena::execution": {"progression": "manual", "times": 1},
}


def _configure_moto(endpoint_url: str) -> None:
    """Turn on state machine execution and in-process Lambda in the moto server; set how the emulated job
    services move on."""
    settings: list[tuple[str, Any]] = [("config", MOTO_CONFIG)]
    settings += [
        ("state-manager/set-transition", {"model_name": model, "transition": transition})
        for model, transition in SERVICE_PROGRESSION.items()
    ]
    for path, body in settings:
        request = urllib.request.Request(
            f"{endpoint_url}/moto-api/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def function_environment(target: Target, stack_name: str, logical_id: str) -> dict[str, str]:
    """The environment variables a deployed function of the stack runs with."""
    cloudformation = target.client("cloudformation")
    physical_id = cloudformation.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    configuration = target.client("lambda").get_function_configuration(FunctionName=physical_id)
    variables = configuration.get("Environment", {}).get("Variables", {})
    return {name: str(value) for name, value in variables.items()}


def read_http_profiles(path: Path) -> str:
    """The http profiles file's text, checked as the provider will read it; ToolingError in one line."""
    ensure_functions_importable()
    from chalicelib.providers.http import parse_profiles

    try:
        text = path.read_text()
        parse_profiles(text)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ToolingError(f"--http-profiles {path}: {exc}") from None
    return text


def local_environment(clock: ScaledClock, http_profiles: str = "") -> dict[str, str]:
    """What makes the functions' settings the local stack's: local mode (callbacks and `http` jobs may
    reach loopback, where the services a developer runs live), the emulation's clock, which the API under
    `chalice local` rebuilds from these, and the http profiles."""
    environment = {
        "JOBPOLL_MODE": "local",
        "JOBPOLL_CLOCK_SPEED": str(clock.speed),
        "JOBPOLL_CLOCK_ORIGIN": clock.origin.isoformat(),
    }
    if http_profiles:
        environment["JOBPOLL_HTTP_PROFILES"] = http_profiles
    return environment


def install_handler_runtime(
    target: Target,
    stack_name: str,
    clock: Any,
    overrides: Mapping[str, str] | None = None,
    clients: Target | None = None,
) -> dict[str, str]:
    """Point the in-process handlers at the emulation: settings from the deployed function's environment
    (so the template's wiring is what runs) with `overrides`, every AWS client from `clients` (default:
    `target`, the endpoint), time on `clock` (which ends an invocation at its function's Timeout). Returns
    the environment the settings came from."""
    ensure_functions_importable()
    from chalicelib.bootstrap import build_runtime, set_runtime
    from chalicelib.settings import Settings

    environment = {**function_environment(target, stack_name, POLL_LOOP_FUNCTION), **(overrides or {})}
    clients = clients or target
    set_runtime(
        build_runtime(
            Settings.from_env(environment),
            HandlerClock(clock),
            dynamodb=clients.client("dynamodb"),
            sfn=clients.client("stepfunctions"),
            sqs=clients.client("sqs"),
            ssm=clients.client("ssm"),
            lambda_client=clients.client("lambda"),
            clients=clients.client,
        )
    )
    return environment


def every_provider() -> list[str]:
    """The name of every provider the functions' code has."""
    ensure_functions_importable()
    from chalicelib.providers import registry

    return [spec.name for spec in registry.load()]


def store_secret_parameter(target: Target, name: str, env_var: str) -> str:
    """A key (`env_var`'s value, or a new one) as the SSM SecureString parameter `name`, as on AWS, where the
    stack's functions read it; returns the key."""
    secret = os.environ.get(env_var) or secrets.token_hex(32)
    target.client("ssm").put_parameter(Name=name, Value=secret, Type="SecureString", Overwrite=True)
    return secret


class HandlersAfterRuntime:
    """Resolves handlers only once their runtime is installed: the stack's state machine exists (and may be
    started) a moment before the handlers know its table, and they must not fall back to defaults."""

    def __init__(self, timeout: float = _STARTUP_TIMEOUT) -> None:
        self.ready = threading.Event()
        self.timeout = timeout

    def __call__(self, handler: str) -> Callable[[Any, Any], Any]:
        if not self.ready.wait(self.timeout):
            raise ToolingError("the local stack's handlers were never configured")
        return resolve_handler(handler)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before it runs (a `preexec_fn`): the kernel SIGKILLs it when its parent dies, however the
    parent dies (SIGKILL included), so no child outlives `local up`. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_chalice_local(options: LocalOptions, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """`chalice local` (jobpoll.local_api: every method reaches the app) on 127.0.0.1:api_port in its own
    process group (see `wait_until_serving`), killed by the kernel if this process dies."""
    profile = options.profile("api")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobpoll.local_api",
            "--host",
            HOST,
            "--port",
            str(options.api_port),
            "--stage",
            STAGE,
            *(["--profile", str(profile)] if profile is not None else []),
        ],
        cwd=FUNCTIONS_DIR,
        env=environment,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> None:
    """Return once `chalice local` listens; ToolingError if it exits or takes too long."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not _listening(port):
        if process.poll() is not None:
            raise ToolingError(
                f"chalice local exited (code {process.returncode}) before serving on port {port}"
            )
        if time.monotonic() > deadline:
            raise ToolingError(f"chalice local did not listen on port {port} in time")
        time.sleep(0.1)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after a few seconds."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, _STOP_TIMEOUT), (signal.SIGKILL, _STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def alive(pid: int, command_part: str) -> bool:
    """Whether process `pid` runs and its command line contains `command_part` (not a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return command_part in command


def clear_crashed_run(state_file: Path, progress: Progress = print) -> None:
    """Before a start: a state file whose stack still runs is refused (ToolingError); one a crashed run
    left is removed, after its orphaned API server (if it still runs) is killed."""
    if not state_file.exists():
        return
    try:
        left = LocalState.read(state_file)
    except (ToolingError, TypeError, ValueError):
        left = None
    if left is not None and left.pid != os.getpid() and alive(left.pid, "jobpoll"):
        raise ToolingError(f"a local stack is running already (pid {left.pid}): stop it first")
    if left is not None and left.api_pid and alive(left.api_pid, "jobpoll.local_api"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(left.api_pid, signal.SIGKILL)
        progress(f"Stopped the API server (pid {left.api_pid}) a crashed run left behind")
    state_file.unlink(missing_ok=True)
    progress(f"Removed {state_file}, left by a run that did not stop cleanly")


def _prepare_process_environment(options: LocalOptions) -> None:
    for name, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_DEFAULT_REGION"] = options.region
    os.environ["MOTO_PORT"] = str(options.aws_port)  # moto's Step Functions calls Lambda there
    os.environ["TZ"] = "UTC"
    time.tzset()
    for leaking in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(leaking, None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per moto request


def _summary(options: LocalOptions, deployed: Deployed, console_url: str) -> list[str]:
    speed = "real time" if options.speed == 1 else f"{options.speed:g}x real time (API, handlers and waits)"
    return [
        f"API:            {options.api_url}",
        f"Web console:    {console_url}",
        f"AWS endpoint:   {options.aws_endpoint_url}  (region {options.region})",
        f"State machine:  {deployed.state_machine_arn}",
        f"Job table:      {deployed.outputs.get('JobsTableName')}",
        f"Speed:          {speed}",
        f"Token issuer:   {options.issuer_url}  (tokens: jobpoll token --sub NAME --scope 'jobs:submit ...')",
        f"State file:     {options.state_file}  (API token, callback signing key: callback_secret)",
        "Try: aws stepfunctions list-executions --endpoint-url "
        f"{options.aws_endpoint_url} --state-machine-arn {deployed.state_machine_arn}",
        "Ctrl-C stops everything.",
    ]


def up(options: LocalOptions, progress: Progress = print) -> None:
    """Run the local stack in the foreground until SIGINT/SIGTERM; cleans up whatever it started."""
    from .simulated_service import SimulatedServiceEvents, SubmissionLedger

    rates = FaultRates.load(options.fault_plan) if options.fault_plan is not None else None
    ports = (options.api_port, options.aws_port, options.issuer_port)
    if len(set(ports)) < len(ports):
        raise ToolingError(f"--api-port, --aws-port and --issuer-port must differ, got {ports}")
    clear_crashed_run(options.state_file, progress)
    ensure_port_free(options.aws_port, "aws")
    ensure_port_free(options.api_port, "api")
    ensure_port_free(options.issuer_port, "issuer")
    if options.console_port in ports:
        raise ToolingError(
            f"--console-port {options.console_port} is the API's, the AWS endpoint's or the issuer's"
        )
    console = ConsoleServer(options.console_port, Stack(lambda: local_console(options.state_file)))
    from moto import mock_aws  # moto: imported once the options are known to be good

    from .moto_patches import emulation_patches, injected_dynamodb_faults, journaled_puts

    with _stop_on_signals(), profiling(options.profile("local-up")), contextlib.ExitStack() as cleanup:
        cleanup.callback(console.server_close)
        try:
            _prepare_process_environment(options)
            if options.fresh:
                persistence.clear(options.state_dir)
            plan = FaultPlan(rates, FaultLog(options.state_dir)) if rates is not None else None
            if plan is not None:
                cleanup.enter_context(SubmissionLedger(options.state_dir).counting())
                progress(f"Injecting faults at {rates}; counted in {options.state_dir}")
            clock = ScaledClock(options.speed, persistence.clock_origin(options.state_dir, options.speed))
            persistence.save_clock(options.state_dir, clock.speed, clock.origin)
            handlers = HandlersAfterRuntime()
            listeners: list[Callable[[Invocation], None]] = []
            # moto in this process as well as behind its server: what runs here (the handlers, the state
            # machines' tasks, the services the stack plays) calls it in-process, the same backends the
            # server serves, with no HTTP in between (most of the CPU a job cost).
            cleanup.enter_context(mock_aws(config=MOTO_CONFIG))  # type: ignore[call-overload]
            cleanup.enter_context(emulation_patches(clock, handlers, plan, listeners))
            server = MotoServer(options.aws_port)
            cleanup.callback(server.stop)
            _configure_moto(options.aws_endpoint_url)
            target = Target(region=options.region, endpoint_url=options.aws_endpoint_url)
            here = Target(region=options.region)  # no endpoint: moto's in-process mock answers
            # The simulated service announces finished work on the bus, as Transcribe or Athena do.
            simulated_service = SimulatedServiceEvents(functools.partial(here.client, "events"), clock)
            listeners.append(simulated_service)
            cleanup.callback(simulated_service.stop)
            stack_name = default_stack_name(STAGE)
            callback_parameter = f"/{stack_name}/callback-key"
            callback_secret = store_secret_parameter(target, callback_parameter, "JOBPOLL_CALLBACK_SECRET")
            share_key_parameter = f"/{stack_name}/share-key"
            store_secret_parameter(target, share_key_parameter, "JOBPOLL_SHARE_KEY")
            # The API takes the local issuer's bearer tokens: the stack is a `jwt` stack, as deployed.
            issuer = local_issuer(options.state_file, options.issuer_port)
            cleanup.enter_context(serving_issuer(issuer, options.issuer_port))
            deployed = deploy(
                STAGE,
                target,
                stack_name=stack_name,
                parameters={
                    "CallbackSecretParameter": callback_parameter,
                    "JwtIssuer": issuer.url,
                    "JwtAudience": issuer.audience,
                    "JwtJwksUrl": options.issuer_url + JWKS_PATH,
                    "ShareKeyParameter": share_key_parameter,
                    # The local stack runs every provider the code has (a deployed stack: its choice).
                    "EnabledProviders": ",".join(every_provider()),
                },
                progress=progress,
                auth="jwt",
            )
            journal = persistence.TableJournal(options.state_dir, key=JOB_KEY)
            restored = journal.restore(target.client("dynamodb"), deployed.outputs["JobsTableName"])
            cleanup.enter_context(journaled_puts(journal.record))
            if restored:
                progress(f"Restored {restored} jobs from {journal.path}; unfinished ones will be resumed")
            if plan is not None:  # after the deploy and the restore: faults hit the running stack only
                cleanup.enter_context(injected_dynamodb_faults(plan))
            function_env = install_handler_runtime(
                target, stack_name, clock, local_environment(clock, options.http_profiles), clients=here
            )
            handlers.ready.set()
            mappings = take_over_mappings(here.client("lambda"), here.client("sqs"))
            delivery = QueueDelivery(
                here.client,
                mappings,
                clock,
                options.region,
                duplicate=plan.duplicate_delivery if plan is not None else None,
                idle_wait=idle_wait_seconds(clock.speed),
            ).start()
            cleanup.callback(delivery.stop)
            schedules = deployed_schedules(here.client("events"))
            runner = ScheduleRunner(here.client, schedules, clock, options.region).start()
            cleanup.callback(runner.stop)
            api_env = {
                **os.environ,
                **function_env,  # auth mode jwt: chalice local runs the authorizer as API Gateway does
                "AWS_ENDPOINT_URL": options.aws_endpoint_url,
                "JOBPOLL_STATE_MACHINE_ARN": deployed.state_machine_arn or "",
            }
            chalice = start_chalice_local(options, api_env)
            cleanup.callback(stop_process_group, chalice)  # registered before anything can interrupt
            wait_until_serving(chalice, options.api_port)
            console.start()
            cleanup.callback(console.stop)
            cleanup.callback(options.state_file.unlink, missing_ok=True)
            LocalState(
                api_url=options.api_url,
                aws_endpoint_url=options.aws_endpoint_url,
                region=options.region,
                stack_name=stack_name,
                outputs=deployed.outputs,
                pid=os.getpid(),
                api_token=issuer.token(LOCAL_SUBJECT, TENANT_SCOPES),
                issuer_url=options.issuer_url,
                callback_secret=callback_secret,
                clock_speed=clock.speed,
                clock_origin=clock.origin.isoformat(),
                console_url=console.url,
                api_pid=chalice.pid,
            ).write(options.state_file)
            for line in _summary(options, deployed, console.url):
                progress(line)
            idle = threading.Event()
            while chalice.poll() is None:
                idle.wait(0.2)
            raise ToolingError(f"chalice local exited with code {chalice.returncode}")
        except Stopped:
            progress("Stopping ...")
