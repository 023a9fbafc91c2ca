"""`jobpoll local up --profile DIR`: where the local stack's processes spend their time.

cProfile follows one thread only; the stack's work happens on many (a thread per HTTP request in both
servers, one per state machine execution in moto). `profiling()` gives every thread started in its block a
profiler of its own, timed by that thread's CPU time (a thread waiting on a lock, a socket or the clock costs
nothing, so the figures say where the CPU goes), and writes them all, merged, as one pstats file when the
block ends.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import marshal
import pstats
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any


@contextlib.contextmanager
def profiling(path: Path | None) -> Iterator[None]:
    """Profile this thread and every thread started in the block; the merged stats go to `path` at the end
    (None: no profiling)."""
    if path is None:
        yield
        return
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profile_new_thread(frame: FrameType, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    own = cProfile.Profile(time.thread_time)
    profiles.append(own)
    threading.setprofile(profile_new_thread)
    own.enable()
    try:
        yield
    finally:
        own.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        with lock:
            taken = list(profiles)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(marshal.dumps(merged(taken)))


Key = tuple[str, int, str]
# pstats' record of a function: primitive calls, calls, own time, cumulative time, callers (left empty here).
Record = tuple[int, int, float, float, dict[Key, Any]]


def merged(profiles: list[cProfile.Profile]) -> dict[Key, Record]:
    """The profiles' figures added per function, as pstats reads them (`pstats.Stats(path)`).

    Callers are left out: adding them is what makes `pstats.Stats.add` too slow for thousands of threads."""
    totals: dict[Key, list[float]] = {}
    for profile in profiles:
        for entry in profile.getstats():
            key = cProfile.label(entry.code)
            figures = totals.setdefault(key, [0, 0, 0.0, 0.0])
            figures[0] += entry.callcount - entry.reccallcount
            figures[1] += entry.callcount
            figures[2] += entry.inlinetime
            figures[3] += entry.totaltime
    return {key: (int(cc), int(nc), tt, ct, {}) for key, (cc, nc, tt, ct) in totals.items()}


def top_functions(path: Path, count: int = 25, sort: str = "tottime") -> str:
    """The `count` functions of the stats in `path` that took the most time (`sort`: a pstats key)."""
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats(sort).print_stats(count)
    return out.getvalue()
