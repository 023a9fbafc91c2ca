"""Time comes from a Clock so that tests and the local emulation can replace it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .settings import Settings


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (work that paces itself, like a streaming worker)."""
        ...

    def to_real(self, moment: datetime) -> datetime:
        """The real moment that `moment` on this clock stands for: what to tell a real client."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def to_real(self, moment: datetime) -> datetime:
        return moment


class ScaledClock:
    """Real time running `speed` times faster since `origin` (a real moment, when both read the same).

    The local stack's `--speed`: its emulation and the API under `chalice local` build one from the same
    origin and speed, so they read the same time in different processes. Never on in a deployed stack.
    """

    def __init__(
        self, speed: float, origin: datetime | None = None, wall: Callable[[], float] = time.time
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = wall
        self.origin = (origin or datetime.fromtimestamp(wall(), UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self.emulated(datetime.fromtimestamp(self._wall(), UTC))

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)

    def emulated(self, real: datetime) -> datetime:
        """The time on this clock at the real moment `real`."""
        return self.origin + (real - self.origin) * self.speed

    def to_real(self, moment: datetime) -> datetime:
        return self.origin + (moment - self.origin) / self.speed


def clock_from_settings(settings: Settings) -> Clock:
    """The clock the settings ask for: scaled under the local stack's `--speed`, else the system's."""
    if settings.clock_speed == 1:
        return SystemClock()
    origin = from_iso(settings.clock_origin) if settings.clock_origin else None
    return ScaledClock(settings.clock_speed, origin)


def real_seconds(clock: Clock, seconds: float) -> float:
    """How long `seconds` on `clock` last in real time (what a real client waits), to the millisecond."""
    start = clock.now()
    real = clock.to_real(start + timedelta(seconds=seconds)) - clock.to_real(start)
    return round(real.total_seconds(), 3)


def to_iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """Parse what `to_iso` writes (any ISO-8601 with an offset or Z); returns UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {text!r}")
    return parsed.astimezone(UTC)


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)
