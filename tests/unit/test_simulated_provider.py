from datetime import timedelta

import pytest

from chalicelib.errors import InvalidJobInput, ProviderError
from chalicelib.providers import WorkState
from chalicelib.providers.simulated import SimulatedProvider
from jobpoll.clocks import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(auto_advance=False)


def test_work_completes_delay_seconds_after_submission(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({"delay": 20}))

    clock.advance(5)
    early = provider.poll(work_id)
    assert early.state is WorkState.RUNNING
    assert early.progress == pytest.approx(0.25)
    assert early.retry_after_seconds is None  # no hint unless asked for

    clock.advance(15)
    done = provider.poll(work_id)
    assert done.state is WorkState.SUCCEEDED
    assert done.progress == 1.0
    assert done.result["output"] == {"message": "simulated work done", "delay": 20}
    assert done.result["completed_at"] == "2026-01-01T00:00:20.000Z"


def test_polls_are_deterministic_for_the_same_time(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({"delay": 3, "result": {"answer": 42}}))
    clock.advance(10)
    assert provider.poll(work_id) == provider.poll(work_id)
    assert provider.poll(work_id).result["output"] == {"answer": 42}


def test_work_told_to_fail_fails_with_a_named_error(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({"delay": 1, "fail": True}))
    clock.advance(1)
    failed = provider.poll(work_id)
    assert failed.state is WorkState.FAILED
    assert failed.error is not None and failed.error.code == "SimulatedFailure"


def test_zero_delay_is_done_at_once(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    assert provider.poll(provider.submit(provider.validate({"delay": 0}))).state is WorkState.SUCCEEDED


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"delay": -1}, "between 0 and"),
        ({"delay": "20"}, "must be a number"),
        ({"delay": None}, "must be a number"),
        ({"delay": True}, "must be a number"),
        ({"delay": float("inf")}, "between 0 and"),
        ({"delay": 10**9}, "between 0 and"),
        ({"delay": 1, "fail": "yes"}, "'fail' must be true or false"),
        ({"delay": 1, "colour": "red"}, "unknown simulated input field"),
        ([20], "must be a JSON object"),
        ("delay=20", "must be a JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_clear_reason(
    clock: VirtualClock, request_body: object, message: str
) -> None:
    with pytest.raises(InvalidJobInput, match=message):
        SimulatedProvider(clock).validate(request_body)


@pytest.mark.parametrize("work_id", ["", "other-123", "sim-", "sim-!!!!", "sim-eyJ4IjoxfQ"])
def test_a_foreign_or_damaged_work_id_is_a_provider_error(clock: VirtualClock, work_id: str) -> None:
    with pytest.raises(ProviderError):
        SimulatedProvider(clock).poll(work_id)


def test_progress_never_exceeds_one_before_completion(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({"delay": 7}))
    seen = []
    for _ in range(7):
        seen.append(provider.poll(work_id).progress)
        clock.advance(timedelta(seconds=1).total_seconds())
    assert seen == sorted(seen)
    assert all(0 <= p < 1 for p in seen)


def test_work_asked_to_report_its_eta_hints_the_time_left(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({"delay": 20, "report_eta": True}))
    clock.advance(5)
    assert provider.poll(work_id).retry_after_seconds == pytest.approx(15)


def test_work_without_a_delay_takes_60_seconds_as_the_seeds_does(clock: VirtualClock) -> None:
    provider = SimulatedProvider(clock)
    work_id = provider.submit(provider.validate({}))
    clock.advance(59.9)
    assert provider.poll(work_id).state is WorkState.RUNNING
    clock.advance(0.1)
    assert provider.poll(work_id).state is WorkState.SUCCEEDED
