"""Clocks for the emulation: virtual time for tests and demos, scaled time for `--speed`.

Both serve the handlers (`now()`) and the state machine's waits (`wait()`), so that a Wait state and the
simulated provider agree on what time it is. Every time is timezone-aware UTC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .paths import ensure_functions_importable

ensure_functions_importable()
from chalicelib.clock import ScaledClock as SpeedClock  # noqa: E402  (the handlers' own scaled time)

# How often a blocked wait looks at its stop condition, in real seconds.
_CHECK_INTERVAL = 0.01
# Before an auto-advancing clock jumps past a wait for an event, the event gets this long (real seconds).
_AUTO_ADVANCE_GRACE = 0.05
EPOCH_START = datetime(2026, 1, 1, tzinfo=UTC)


class EmulationClock(Protocol):
    """What the emulation's time runs on (VirtualClock, ScaledClock): the handlers' `now()` and the state
    machine's waits."""

    def now(self) -> Any: ...

    def wait(
        self,
        seconds: float,
        interrupt: threading.Event | None = None,
        still_running: Callable[[], bool] = ...,
    ) -> None: ...

    def sleep(self, seconds: float) -> None: ...

    def to_real(self, moment: Any) -> Any: ...

    def wait_for(
        self, event: threading.Event, seconds: float | None, still_running: Callable[[], bool] = ...
    ) -> bool: ...


def _never_stopped() -> bool:
    return True


class VirtualClock:
    """Time that moves only when something waits (auto-advance) or when a test calls `advance()`.

    With `auto_advance=True` a wait of N seconds moves the clock N seconds forward at once, so an hour of
    polling runs in milliseconds; with `pace=X` it first takes N/X real seconds, so a person can watch
    (time still moves only by waits: the output is the same at any pace). With `auto_advance=False` a wait
    blocks until `advance()` reaches its deadline, so a test can act in the middle of a wait.
    A wait returns early, without moving time, once `still_running()` turns false (a stopped execution).
    """

    def __init__(
        self, start: datetime = EPOCH_START, auto_advance: bool = True, pace: float | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")
        if pace is not None and pace <= 0:
            raise ValueError("pace must be positive")
        self._now = start.astimezone(UTC)
        self.auto_advance = auto_advance
        self.pace = pace
        self._changed = threading.Condition()
        self.waited_seconds = 0.0

    def now(self) -> datetime:
        with self._changed:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and wake the waits whose deadline has come."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._changed:
            self._now += timedelta(seconds=seconds)
            self._changed.notify_all()
            return self._now

    def wait(
        self,
        seconds: float,
        interrupt: threading.Event | None = None,
        still_running: Callable[[], bool] = _never_stopped,
    ) -> None:
        """Wait `seconds` of virtual time; returns early once `still_running()` turns false."""
        if seconds <= 0:
            return
        if self.auto_advance and self.pace:
            _real_wait(seconds / self.pace, interrupt, still_running)
        with self._changed:
            deadline = self._now + timedelta(seconds=seconds)
            self.waited_seconds += seconds
            if self.auto_advance:
                if still_running():
                    self._now = max(self._now, deadline)
                    self._changed.notify_all()
                return
            while self._now < deadline and still_running():
                self._changed.wait(_CHECK_INTERVAL)

    def sleep(self, seconds: float) -> None:
        self.wait(seconds)

    def to_real(self, moment: datetime) -> datetime:
        return moment  # virtual time stands for itself: it is all the time a test has

    def wait_for(
        self,
        event: threading.Event,
        seconds: float | None,
        still_running: Callable[[], bool] = _never_stopped,
    ) -> bool:
        """Wait for `event` up to `seconds` of virtual time; True if it was set.

        Auto-advancing, the clock first gives the event a short real grace period (whatever is about to
        set it, a test or another thread, gets to run), then jumps to the end of the wait.
        """
        if event.is_set():
            return True
        if seconds is None:
            seconds = 365 * 24 * 3600.0
        if self.auto_advance:
            if self.pace:
                _real_wait(seconds / self.pace, event, lambda: still_running() and not event.is_set())
            elif event.wait(_AUTO_ADVANCE_GRACE):
                return True
            if not event.is_set() and still_running():
                self.advance(seconds)
            return event.is_set()
        with self._changed:
            deadline = self._now + timedelta(seconds=seconds)
            while self._now < deadline and still_running() and not event.is_set():
                self._changed.wait(_CHECK_INTERVAL)
        return event.is_set()


def _real_wait(
    seconds: float | None, interrupt: threading.Event | None, still_running: Callable[[], bool]
) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    event = interrupt or threading.Event()
    while still_running():
        left = 0.25 if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return
        event.wait(min(left, 0.25))


class ScaledClock(SpeedClock):
    """Real time running `speed` times faster since `origin`: a wait of N seconds takes N/speed real seconds.

    Its time is the handlers' (`chalicelib.clock.ScaledClock`), so that another process built from the same
    origin and speed (the API under `chalice local`) reads the same time.
    """

    def wait(
        self,
        seconds: float,
        interrupt: threading.Event | None = None,
        still_running: Callable[[], bool] = _never_stopped,
    ) -> None:
        _real_wait(seconds / self.speed, interrupt, still_running)

    def sleep(self, seconds: float) -> None:
        self.wait(seconds)

    def wait_for(
        self,
        event: threading.Event,
        seconds: float | None,
        still_running: Callable[[], bool] = _never_stopped,
    ) -> bool:
        """Wait for `event` up to `seconds` of scaled time; True if it was set."""
        limit = None if seconds is None else seconds / self.speed
        _real_wait(limit, event, lambda: still_running() and not event.is_set())
        return event.is_set()
