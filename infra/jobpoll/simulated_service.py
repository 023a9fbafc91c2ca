"""The simulated service's completion events, for the local stack and the in-process emulation.

A real service announces finished work itself (Transcribe and Athena put a state-change event on
EventBridge). The simulated service exists only as its work ids, so this tooling plays that part: it watches
StartJob's invocations and, when the simulated work a job submitted finishes (on the emulation clock), puts a
`Simulated Work State Change` event on the default bus. The template's rule routes it to NotifyJob, as it
routes the real services' events, so a `notify: true` job completes without waiting for its timeout.
This never ships in the deployed bundle.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from .clocks import EmulationClock
from .faults import Invocation
from .paths import ensure_functions_importable
from .persistence import SUBMISSIONS


class SimulatedServiceEvents:
    """An invocation listener that emits each simulated job's completion event when its work finishes."""

    def __init__(self, events: Callable[[], Any], clock: EmulationClock) -> None:
        ensure_functions_importable()
        from chalicelib.providers.simulated import SimulatedProvider

        self._events = events
        self._clock = clock
        self._service = SimulatedProvider(clock)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._announced: set[str] = set()
        self.emitted: list[dict[str, Any]] = []

    def __call__(self, invocation: Invocation) -> None:
        # StartJob's payload (statemachine/poller.asl.json) and its answer, the job's loop state.
        event, result = invocation.event, invocation.result
        if (
            isinstance(event, dict)
            and {"request", "execution_name"} <= set(event)
            and isinstance(result, dict)
        ):
            # Off the invocation's thread: the service's bookkeeping never delays or fails StartJob.
            job_id = str(result.get("job_id"))
            threading.Thread(
                target=self._announce, args=(job_id,), name="simulated-service", daemon=True
            ).start()

    def _announce(self, job_id: str) -> None:
        """Wait until the job's simulated work ends, then put its completion event on the bus."""
        from chalicelib.bootstrap import get_runtime

        job = get_runtime().store.find(job_id)
        if job is None or job.provider != self._service.name or job.work_id is None:
            return
        work_id = job.work_id
        with self._lock:
            if work_id in self._announced:
                return
            self._announced.add(work_id)
        left = (self._service.finishes_at(work_id) - self._clock.now()).total_seconds()
        self._clock.wait(left, self._stopped, lambda: not self._stopped.is_set())
        if self._stopped.is_set():
            return
        detail = {"work_id": work_id, "state": self._service.poll(work_id).state.value}
        self.emitted.append(detail)
        self._events().put_events(
            Entries=[
                {
                    "Source": self._service.event_source,
                    "DetailType": self._service.event_detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )

    def stop(self) -> None:
        self._stopped.set()


class SubmissionLedger:
    """The simulated services count their work, as a real service's bill would: one JSON line under the
    stack's state dir for each simulated submission (keyed by its request, so a soak that tags every job's
    request finds work submitted twice for one job) and each streaming run (`run-start`, and `run-end` when
    the worker's run returned), kept across a SIGKILL of the stack."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / SUBMISSIONS
        self._lock = threading.Lock()

    def record(self, provider: str, event: str, key: str) -> None:
        line = json.dumps({"provider": provider, "event": event, "key": key}, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a") as ledger:
            ledger.write(line)

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """While inside, every simulated submission (the `simulated` provider's and `simulated-engine`'s,
        which submits through it) and every `simulated-stream` run is recorded."""
        ensure_functions_importable()
        from chalicelib.providers.simulated import SimulatedProvider
        from chalicelib.providers.streaming import SimulatedStreamingProvider

        submit, run = SimulatedProvider.submit, SimulatedStreamingProvider.run
        ledger = self

        def counted_submit(self: Any, request: dict[str, Any]) -> str:
            work_id = submit(self, request)
            ledger.record(SimulatedProvider.name, "submit", json.dumps(request, sort_keys=True))
            return work_id

        def counted_run(self: Any, request: dict[str, Any], report: Any) -> Any:
            job_id = str(getattr(report, "job_id", ""))
            ledger.record(SimulatedStreamingProvider.name, "run-start", job_id)
            result = run(self, request, report)
            ledger.record(SimulatedStreamingProvider.name, "run-end", job_id)
            return result

        with (
            mock.patch.object(SimulatedProvider, "submit", counted_submit),
            mock.patch.object(SimulatedStreamingProvider, "run", counted_run),
        ):
            yield


def recorded_submissions(directory: Path) -> list[dict[str, str]]:
    """The ledger's lines (a torn last line is skipped)."""
    try:
        lines = (directory / SUBMISSIONS).read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries
