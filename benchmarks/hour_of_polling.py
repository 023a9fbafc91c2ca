"""An hour of polling on the virtual clock: how long it takes in real (wall-clock) time.

    python benchmarks/hour_of_polling.py [--runs N] [--json]

A job of 3600 s polled every 60 s (60 polls, one execution) runs on the in-process emulation (moto executing
statemachine/poller.asl.json with the real handlers, auto-advancing virtual clock), after one short warm-up
execution (first-execution imports are not the loop's cost). Prints the wall time of each run and the best,
and per poll. The tests assert the behaviour (60 polls, no real sleeping); this script measures the cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation
from polling_efficiency import quiet_logs

HOUR_OF_POLLING = {"delay": 3600, "wait_seconds": 60, "max_tries": 100}
POLLS = 60


def measure(runs: int) -> list[float]:
    """Wall seconds of each of `runs` hour-long jobs; fails if a job does not succeed after 60 polls."""
    timings = []
    with quiet_logs(), Emulation(clock=VirtualClock()) as emulation:
        emulation.run({"delay": 1}, name="warm-up")
        for run in range(runs):
            started = time.perf_counter()
            execution = emulation.run(HOUR_OF_POLLING, name=f"hour-{run}")
            timings.append(time.perf_counter() - started)
            polls = emulation.runtime.store.get(f"hour-{run}").try_count
            if execution["status"] != "SUCCEEDED" or polls != POLLS:
                raise SystemExit(f"hour-{run}: {execution['status']} after {polls} polls, expected 60 polls")
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="hour-long jobs to time (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    timings = measure(args.runs)
    best = min(timings)
    if args.json:
        print(json.dumps({"polls": POLLS, "wall_seconds": timings, "best": best, "per_poll": best / POLLS}))
    else:
        print(f"an hour of polling ({POLLS} polls at 60 s) on the virtual clock, {args.runs} runs:")
        print("  wall time: " + ", ".join(f"{t:.3f} s" for t in timings))
        print(f"  best {best:.3f} s, {1000 * best / POLLS:.1f} ms per poll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
