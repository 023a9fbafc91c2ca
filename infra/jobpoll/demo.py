"""The README demo: the seed scenario and the failing one, run through the real state machine.

Runs in-process on the moto emulation (no AWS account, no Docker) and prints each poll as it happens.
Waits run `--speed` times faster than real time, on a virtual clock: the output is the same at any speed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from .clocks import VirtualClock
from .emulation import Emulation, isolate_from_aws
from .moto_patches import Invocation

SCENARIOS: list[tuple[str, dict[str, Any], str]] = [
    ("seed", {"delay": 20}, "a 20 s job polled every 10 s: running, then complete"),
    ("too-long", {"delay": 60, "max_tries": 3}, "a 60 s job with 3 polls allowed: tries exhausted"),
]


class PollPrinter:
    """Prints one line per Lambda invocation of the poll loop, with the emulated time since its start."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.started: datetime = clock.now()

    def __call__(self, invocation: Invocation) -> None:
        elapsed = (self.clock.now() - self.started).total_seconds()
        function = invocation.function.rsplit("-", 1)[-1]
        if invocation.error:
            detail = f"error {invocation.error['errorType']}: {invocation.error['errorMessage']}"
        else:
            result = invocation.result or {}
            detail = f"{result.get('status', '?'):<9}"
            if "try_count" in result:
                detail += f" try {result['try_count']}/{result['poll']['max_tries']}"
                detail += f"  progress {result.get('progress', 0):>4.0%}"
            if "error" in result:
                detail += f"  {result['error']}: {result.get('cause', '')}"
        print(f"  +{elapsed:5.1f}s  {function:<16} {detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobpoll.demo", description=__doc__)
    parser.add_argument("--speed", type=float, default=20.0, help="run waits this many times faster")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")

    isolate_from_aws()
    os.environ.setdefault("JOBPOLL_LOG_LEVEL", "ERROR")  # the app's JSON logs would drown the story
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    clock = VirtualClock(start=datetime.now(UTC), pace=args.speed)
    print(f"jobpoll demo: the poller state machine on a local AWS emulation, waits at {args.speed:g}x")
    outcome = 0
    with Emulation(clock=clock) as emulation:
        printer = PollPrinter(clock)
        emulation.listeners.append(printer)
        for name, execution_input, description in SCENARIOS:
            print(f"\n{name}: {description}\n  input {execution_input}")
            printer.started = clock.now()
            execution = emulation.run(execution_input, name=name, timeout=600)
            job = emulation.runtime.store.get(name)
            line = f"  => execution {execution['status']}, job {job.status.value} after {job.try_count} polls"
            if execution["status"] == "FAILED":
                line += f" ({execution.get('error')}: {execution.get('cause')})"
            print(line)
            expected = "SUCCEEDED" if name == "seed" else "FAILED"
            outcome |= execution["status"] != expected
    return outcome


if __name__ == "__main__":
    sys.exit(main())
