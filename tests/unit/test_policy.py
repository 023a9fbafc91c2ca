from datetime import timedelta

import pytest

from chalicelib.errors import InvalidJobInput
from chalicelib.job import Job, JobStatus, PollMode, PollSettings
from chalicelib.policy import (
    clamp_to_deadline,
    next_wait_seconds,
    poll_field_schemas,
    poll_settings_from,
    poll_time,
)
from chalicelib.providers import PollResult, WorkState
from chalicelib.settings import Settings
from factories import NOW, make_job


def job(poll: PollSettings, try_count: int = 1, job_id: str = "j1") -> Job:
    return make_job(
        job_id, status=JobStatus.RUNNING, poll=poll, created_at=NOW, request={}, try_count=try_count
    )


ADAPTIVE = PollSettings(wait_seconds=5, max_tries=50, mode=PollMode.ADAPTIVE, max_wait_seconds=120)
RUNNING = PollResult(WorkState.RUNNING)


def test_fixed_polling_always_waits_the_same() -> None:
    fixed = PollSettings(wait_seconds=10, max_tries=3)
    assert {next_wait_seconds(job(fixed, n), RUNNING) for n in range(1, 10)} == {10}


def test_adaptive_polling_follows_the_providers_hint_within_the_cap() -> None:
    assert next_wait_seconds(job(ADAPTIVE), PollResult(WorkState.RUNNING, retry_after_seconds=42.4)) == 42
    assert next_wait_seconds(job(ADAPTIVE), PollResult(WorkState.RUNNING, retry_after_seconds=1e6)) == 120
    assert next_wait_seconds(job(ADAPTIVE), PollResult(WorkState.RUNNING, retry_after_seconds=0)) == 1


def test_adaptive_polling_without_a_hint_backs_off_exponentially_with_full_jitter() -> None:
    waits = [next_wait_seconds(job(ADAPTIVE, n), RUNNING) for n in range(1, 12)]
    ceilings = [min(120, 5 * 2 ** (n - 1)) for n in range(1, 12)]
    assert all(1 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert sum(waits[6:]) > sum(waits[:5])  # later waits are longer on the whole
    assert len(set(waits[5:])) > 1  # jittered, not a fixed cap
    # The same job and try get the same wait (a retried Lambda agrees with itself); other jobs differ.
    assert waits == [next_wait_seconds(job(ADAPTIVE, n), RUNNING) for n in range(1, 12)]
    others = [next_wait_seconds(job(ADAPTIVE, n, job_id="j2"), RUNNING) for n in range(1, 12)]
    assert others != waits


def test_no_poll_is_scheduled_past_the_deadline() -> None:
    poll = PollSettings(wait_seconds=100, max_tries=5, deadline_seconds=150)
    the_job = job(poll)
    assert poll_time(the_job, NOW + timedelta(seconds=100)) == (NOW + timedelta(seconds=150), True)
    assert poll_time(the_job, NOW) == (NOW + timedelta(seconds=100), False)


def test_a_poll_time_in_the_past_means_now() -> None:
    the_job = job(PollSettings(wait_seconds=10, max_tries=5))
    assert clamp_to_deadline(the_job, NOW - timedelta(hours=1), NOW) == (NOW, False)


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"poll_mode": "psychic"}, "'poll_mode' must be one of fixed, adaptive"),
        ({"wait_seconds": 0}, "'wait_seconds' must be between 1 and 86400"),
        ({"max_tries": 10**9}, "'max_tries' must be between 1 and 100000"),
        ({"deadline_seconds": 0}, "'deadline_seconds' must be between 1"),
        ({"continue_after": "10"}, "'continue_after' must be a whole number"),
    ],
)
def test_bad_poll_settings_are_refused(request_body: dict, reason: str) -> None:
    with pytest.raises(InvalidJobInput, match=reason):
        poll_settings_from(request_body, Settings())


def test_poll_settings_default_from_the_settings() -> None:
    poll = poll_settings_from({}, Settings(default_wait_seconds=7, default_deadline_seconds=99))
    assert (poll.wait_seconds, poll.mode, poll.deadline_seconds) == (7, PollMode.FIXED, 99)


def test_whole_numbers_may_be_written_as_json_numbers_with_a_zero_fraction() -> None:
    poll = poll_settings_from({"wait_seconds": 30.0, "max_tries": 5.0}, Settings())
    assert (poll.wait_seconds, poll.max_tries) == (30, 5)
    with pytest.raises(InvalidJobInput, match="whole number"):
        poll_settings_from({"wait_seconds": 30.5}, Settings())


def test_settings_that_contradict_each_other_are_lifted_not_refused() -> None:
    # No JSON Schema can compare two fields, so the document cannot promise a refusal: the API adapts.
    poll = poll_settings_from(
        {"wait_seconds": 60, "max_wait_seconds": 30, "notify_timeout_seconds": 10, "heartbeat_seconds": 50},
        Settings(),
    )
    assert (poll.max_wait_seconds, poll.heartbeat_seconds) == (60, 9)


def test_an_engines_job_polls_until_its_deadline_not_three_times() -> None:
    assert poll_settings_from({}, Settings()).max_tries == 3
    assert poll_settings_from({}, Settings(), engine=True).max_tries == Settings().max_max_tries
    assert poll_settings_from({"max_tries": 7}, Settings(), engine=True).max_tries == 7


def test_the_poll_fields_validate_by_the_schema_the_document_shows() -> None:
    settings = Settings(max_wait_seconds=120)
    schema = poll_field_schemas(settings)["wait_seconds"]
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (
        1,
        120,
        settings.default_wait_seconds,
    )
    assert poll_settings_from({"wait_seconds": 120}, settings).wait_seconds == 120
    with pytest.raises(InvalidJobInput, match="between 1 and 120"):
        poll_settings_from({"wait_seconds": 121}, settings)
