import threading
from datetime import UTC, datetime

import pytest

from jobpoll import clocks
from jobpoll.clocks import ScaledClock, VirtualClock


def test_an_auto_advancing_clock_jumps_to_the_end_of_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    real_waits: list[float | None] = []
    monkeypatch.setattr(clocks, "_real_wait", lambda seconds, *_: real_waits.append(seconds))
    clock = VirtualClock(start=datetime(2026, 1, 1, tzinfo=UTC))
    clock.wait(3600)
    assert clock.now() == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert real_waits == []


def test_a_manual_clock_blocks_a_wait_until_advanced() -> None:
    clock = VirtualClock(auto_advance=False)
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (clock.wait(10), done.set()))
    waiter.start()
    clock.advance(5)
    assert not done.wait(0.05)
    clock.advance(5)
    assert done.wait(2)
    waiter.join(2)


def test_a_stopped_wait_returns_without_moving_time() -> None:
    clock = VirtualClock(auto_advance=False)
    running = threading.Event()
    running.set()
    finished = threading.Event()
    before = clock.now()

    def wait() -> None:
        clock.wait(100, still_running=running.is_set)
        finished.set()

    threading.Thread(target=wait).start()
    running.clear()
    assert finished.wait(2)
    assert clock.now() == before


def test_time_does_not_go_backwards() -> None:
    with pytest.raises(ValueError):
        VirtualClock().advance(-1)


def test_a_scaled_clock_runs_faster_than_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    real_waits: list[float | None] = []
    monkeypatch.setattr(clocks, "_real_wait", lambda seconds, *_: real_waits.append(seconds))
    clock = ScaledClock(speed=1000)
    clock.wait(50)
    assert real_waits == [0.05]  # 50 s of scaled time is 0.05 s real


def test_a_scaled_clock_reads_real_time_times_its_speed() -> None:
    real = [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    clock = ScaledClock(speed=1000, wall=lambda: real[0])
    before = clock.now()
    real[0] += 0.05
    assert (clock.now() - before).total_seconds() == pytest.approx(50)
