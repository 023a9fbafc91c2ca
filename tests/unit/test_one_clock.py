"""One clock under `--speed`: the functions' scaled clock, built from settings, and what real clients are
told in real time (Retry-After, callback signatures); the console waits as Retry-After says."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.callbacks import SIGNATURE_HEADER, CallbackSettings, deliver
from chalicelib.clock import ScaledClock, SystemClock, clock_from_settings, real_seconds, to_iso
from chalicelib.job_request import new_job, parse_job_request
from chalicelib.jobs_api import retry_after
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.providers.streaming import SimulatedStreamingProvider
from chalicelib.settings import Settings
from jobpoll.clocks import VirtualClock
from jobpoll.jobs_client import Answer, JobsClient, bearer
from jobpoll.render import JobProgress

ORIGIN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Wall:
    """Real time that a test moves (epoch seconds)."""

    def __init__(self, start: datetime = ORIGIN) -> None:
        self.epoch = start.timestamp()

    def __call__(self) -> float:
        return self.epoch


def test_a_scaled_clock_runs_speed_times_faster_than_real_time_since_its_origin() -> None:
    wall = Wall()
    clock = ScaledClock(10, ORIGIN, wall=wall)
    assert clock.now() == ORIGIN
    wall.epoch += 3  # three real seconds
    assert clock.now() == ORIGIN + timedelta(seconds=30)
    assert clock.to_real(clock.now()) == ORIGIN + timedelta(seconds=3)
    assert real_seconds(clock, 10) == 1.0


def test_two_processes_with_the_same_origin_and_speed_read_the_same_time() -> None:
    wall = Wall(ORIGIN + timedelta(seconds=7))
    settings = Settings(mode="local", clock_speed=10, clock_origin=to_iso(ORIGIN))
    built = clock_from_settings(settings)
    assert isinstance(built, ScaledClock)
    assert ScaledClock(built.speed, built.origin, wall=wall).now() == ScaledClock(10, ORIGIN, wall).now()
    assert isinstance(clock_from_settings(Settings()), SystemClock)


def test_clock_speed_comes_from_the_environment_and_only_in_local_mode() -> None:
    local = Settings.from_env(
        {"JOBPOLL_MODE": "local", "JOBPOLL_CLOCK_SPEED": "10", "JOBPOLL_CLOCK_ORIGIN": to_iso(ORIGIN)}
    )
    assert (local.clock_speed, local.clock_origin) == (10.0, "2026-03-01T12:00:00.000Z")
    with pytest.raises(ValueError, match="only with JOBPOLL_MODE=local"):
        Settings.from_env({"JOBPOLL_CLOCK_SPEED": "10"})
    with pytest.raises(ValueError, match="must be positive"):
        Settings(mode="local", clock_speed=0)
    with pytest.raises(ValueError, match="JOBPOLL_CLOCK_SPEED must be a number"):
        Settings.from_env({"JOBPOLL_MODE": "local", "JOBPOLL_CLOCK_SPEED": "fast"})


def _job(clock: Any, provider: str = "simulated", wait_seconds: int = 10) -> Any:
    providers = {"simulated": SimulatedProvider(clock), "simulated-stream": SimulatedStreamingProvider(clock)}
    work = {"delay": 60} if provider == "simulated" else {"tokens": 10}
    body = {"provider": provider, "input": work, "wait_seconds": wait_seconds}
    request = parse_job_request(body, providers, Settings())
    job = new_job("job-1", request, clock, Settings())
    return job.amend(clock.now(), next_poll_at=clock.now() + timedelta(seconds=wait_seconds)), providers


@pytest.mark.parametrize(("speed", "wait_seconds", "expected"), [(10, 10, 1), (10, 15, 2), (100, 60, 1)])
def test_retry_after_is_in_real_seconds_under_speed(speed: float, wait_seconds: int, expected: int) -> None:
    clock = ScaledClock(speed, ORIGIN, wall=Wall())
    job, providers = _job(clock, wait_seconds=wait_seconds)
    assert retry_after(job, clock, providers, Settings()) == expected


def test_retry_after_at_real_time_is_the_seconds_until_the_next_poll_and_never_below_one() -> None:
    clock = VirtualClock(ORIGIN)
    job, providers = _job(clock, wait_seconds=10)
    assert retry_after(job, clock, providers, Settings()) == 10
    queued, providers = _job(clock, provider="simulated-stream")
    assert retry_after(queued, clock, providers, Settings()) == 2  # queue mode: every 2 s
    fast = ScaledClock(1000, ORIGIN, Wall())
    assert retry_after(queued, fast, providers, Settings()) == 1


def test_a_callback_is_signed_with_real_time_whatever_the_clocks_speed() -> None:
    wall = Wall(ORIGIN + timedelta(seconds=60))
    clock = ScaledClock(100, ORIGIN, wall=wall)  # an hour and a half ahead of real time
    sent: list[dict[str, str]] = []

    def sender(url: str, body: bytes, headers: Any, timeout: float) -> int:
        sent.append(dict(headers))
        return 204

    config = CallbackSettings("key", 1, 1, 5, allow_loopback=True)
    deliver("http://127.0.0.1:9/hook", b"{}", config=config, clock=clock, sleep=lambda s: None, sender=sender)
    assert sent[0][SIGNATURE_HEADER].startswith(f"t={int(wall.epoch)},")


class ScriptedApi(JobsClient):
    """The jobs API answering GET /jobs/{id} from a script; sleeping only records."""

    def __init__(self, answers: list[Answer]) -> None:
        self.slept: list[float] = []
        super().__init__("http://127.0.0.1:9", bearer("t"), sleep=self.slept.append)
        self.answers = answers
        self.gets = 0

    def request(self, method: str, path: str, body: Any = None, headers: Any = None) -> Answer:
        self.gets += 1
        return self.answers.pop(0)


def _running(retry_after: str | None) -> Answer:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Answer(202, headers, {"status": "RUNNING", "progress": 0.5, "try_count": 1, "max_tries": 3})


def test_jobs_wait_looks_again_when_retry_after_says_and_keeps_the_bar_live_meanwhile() -> None:
    api = ScriptedApi([_running("3"), _running("1"), _running(None), Answer(303, {}, {"status": "COMPLETE"})])
    stream = io.StringIO()
    progress = JobProgress(stream, live=True)
    final = api.wait("job-1", progress, on_pause=progress.waiting)
    assert final["status"] == "COMPLETE"
    assert api.gets == 4  # one look per Retry-After, never more
    assert sum(api.slept) == pytest.approx(3 + 1 + 1)  # no Retry-After: a second
    assert max(api.slept) <= 0.5  # redrawn at least every half second
    assert "next look in 3 s" in stream.getvalue()
    assert "next look in 1 s" in stream.getvalue()


def test_jobs_wait_gives_up_at_its_timeout_even_when_retry_after_is_longer() -> None:
    api = ScriptedApi([_running("3600"), _running("3600")])
    with pytest.raises(Exception, match="still RUNNING"):
        api.wait("job-1", lambda job: None, timeout=0)
    assert api.slept == []
