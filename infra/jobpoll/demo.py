"""`jobpoll demo`, the README's first command: the local stack, driven through the console.

Starts `jobpoll local up --speed N` on free ports in the background (its own process group, its own state
file, so a developer's `.jobpoll/local.json` is left alone), runs the seed scenario and the failing one with
`jobpoll executions start ... --follow` and a streaming job with `jobpoll jobs submit ... --wait`, printing
each command as a user would type it, then stops the stack (SIGTERM) even on Ctrl-C or failure.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from .errors import ToolingError
from .paths import ROOT

_STARTUP_TIMEOUT = 90.0
_STOP_TIMEOUT = 15.0
_INTERRUPTED = 130

# (what it shows, the console command, the exit code it should end with)
SCENARIOS: list[tuple[str, list[str], int]] = [
    (
        "the seed: a 20 s job polled every 10 s, two polls (running, then success)",
        ["executions", "start", "--input", '{"delay": 20}', "--name", "seed", "--follow"],
        0,
    ),
    (
        "a 60 s job with 3 polls allowed: tries exhausted, the execution fails",
        ["executions", "start", "--input", '{"delay": 60, "max_tries": 3}', "--name", "too-long", "--follow"],
        1,
    ),
    (
        "notify: the execution waits for the simulated service's completion event instead of polling",
        [
            "executions",
            "start",
            "--input",
            '{"delay": 20, "notify": true, "notify_timeout_seconds": 120}',
            "--name",
            "notified",
            "--follow",
        ],
        0,
    ),
    (
        "queue mode: a worker streams its output, the console shows it grow",
        [
            "jobs",
            "submit",
            "--provider",
            "simulated-stream",
            "--input",
            '{"tokens": 80, "tokens_per_second": 4}',  # 20 s: a few looks a Retry-After apart
            "--wait",
        ],
        0,
    ),
]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 (a local stack's API, AWS endpoint and token issuer)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in ports:
            ports.append(port)
    return ports


def _environment() -> dict[str, str]:
    """The stack runs on the emulation only: no AWS settings of the user's leak into it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return env


@contextlib.contextmanager
def local_stack(
    speed: float,
    directory: Path,
    options: Sequence[str] = (),
    stop_timeout: float = _STOP_TIMEOUT,
    interrupts: Interrupts | None = None,
) -> Iterator[Path]:
    """`jobpoll local up` (with `options`) in the background until the block ends; yields its state file.
    It is given `stop_timeout` seconds to stop before it is killed."""
    interrupts = interrupts or Interrupts()
    state_file = directory / "local.json"
    log_path = directory / "local-up.log"
    api_port, aws_port, issuer_port = free_ports(3)
    command = [sys.executable, "-m", "jobpoll.cli", "local", "up", "--speed", f"{speed:g}"]
    command += ["--api-port", str(api_port), "--aws-port", str(aws_port), "--issuer-port", str(issuer_port)]
    command += ["--console-port", "0"]
    command += ["--state-file", str(state_file), *options]
    process = None
    try:
        # Ctrl-C while Popen runs would leave the stack started but unknown here (in its own session, the
        # terminal's Ctrl-C does not reach it): it is held until `process` is set, then acted on.
        with log_path.open("wb") as log, interrupts.held():
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not state_file.exists():
            interrupts.check()
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise ToolingError(f"the local stack did not start:\n{tail}")
            time.sleep(0.1)
        yield state_file
    finally:
        if process is not None:
            _stop(process, stop_timeout)


class Interrupts:
    """The demo's Ctrl-C (SIGINT): raised as KeyboardInterrupt where it lands, and remembered, so that the
    demo also ends at its next step if that KeyboardInterrupt was swallowed on its way up (by code that
    catches everything, or because it landed in a finalizer). Held (raised when the hold ends) while the
    stack's process is being spawned."""

    def __init__(self) -> None:
        self.received = False
        self._holding = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if not self._holding:
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C came, wherever it landed."""
        if self.received:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """The handler of SIGINT while inside (SIGINT unblocked: a parent may have started the demo with it
        blocked, and a blocked Ctrl-C would wait for the demo's end)."""
        previous = signal.signal(signal.SIGINT, self)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A Ctrl-C inside the block is raised when the block ends."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self.check()


def _stop(process: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> None:
    """SIGTERM (local up stops what it started), SIGKILL its process group if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run(speed: float, console: Callable[[list[str]], int]) -> int:
    """The demo; 0 when every scenario ends as expected. `console` runs one jobpoll command (cli.main)."""
    began = time.monotonic()
    print(f"jobpoll demo: the local stack (moto + chalice local), waits {speed:g}x faster", flush=True)
    print(f"$ jobpoll local up --speed {speed:g} &", flush=True)
    outcome = 0
    with (
        Interrupts().installed() as interrupts,
        tempfile.TemporaryDirectory(prefix="jobpoll-demo-") as directory,
    ):
        # Ctrl-C: the stack (its own session) is stopped by local_stack's cleanup.
        with local_stack(speed, Path(directory), interrupts=interrupts) as state_file:
            print(f"  up in {time.monotonic() - began:.1f} s", flush=True)
            for description, command, expected in SCENARIOS:
                interrupts.check()
                print(f"\n# {description}\n$ jobpoll {shlex.join(command)}", flush=True)
                code = console([*command, "--state-file", str(state_file)])
                interrupts.check()
                if code == _INTERRUPTED:  # Ctrl-C in a command: stop the stack, end the demo
                    raise KeyboardInterrupt
                if code != expected:
                    print(f"  (expected exit code {expected}, got {code})", flush=True)
                    outcome = 1
        print(f"\n$ kill %1   # the local stack stopped; the demo took {time.monotonic() - began:.1f} s")
    return outcome
