"""What the ASL decides by name or by rule has one home in Python, and the two agree."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import errors, rules
from chalicelib.errors import ASL_ERROR_NAMES, JobPollError
from chalicelib.job import JobError, JobStatus, PollSettings
from chalicelib.loop_state import failure_name, loop_state
from factories import NOW, make_job
from jobpoll.paths import POLLER_ASL

ASL: dict[str, Any] = json.loads(POLLER_ASL.read_text())


def _error_names(states: dict[str, Any]) -> Iterator[str]:
    for state in states.values():
        for handler in state.get("Retry", []) + state.get("Catch", []):
            yield from handler["ErrorEquals"]
        if "Error" in state.get("Parameters", {}):  # a Pass that names the error it hands to RecordFailure
            yield state["Parameters"]["Error"]


def test_every_jobpoll_error_the_asl_names_is_in_the_set() -> None:
    named = {name for name in _error_names(ASL["States"]) if not name.startswith(("States.", "Lambda."))}
    assert named, "the ASL names no jobpoll error: the search is broken"
    assert named <= ASL_ERROR_NAMES, f"not in errors.ASL_ERROR_NAMES: {sorted(named - ASL_ERROR_NAMES)}"


def test_every_name_in_the_set_is_a_jobpoll_error_class() -> None:
    classes = {
        name for name, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, JobPollError)
    }
    assert classes >= ASL_ERROR_NAMES


def test_every_provider_error_is_a_name_the_asl_sees() -> None:
    # Providers run inside StartJob and GetJobStatus: their named errors reach the state machine.
    provider_errors = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ProviderError)
    }
    assert provider_errors <= ASL_ERROR_NAMES, sorted(provider_errors - ASL_ERROR_NAMES)


def test_a_failed_job_fails_its_execution_with_its_own_error_only_where_the_asl_knows_the_name() -> None:
    assert failure_name(JobError("DeadlineExceeded", "late")) == "DeadlineExceeded"
    assert failure_name(JobError("SimulatedFailure", "told to")) == "ProviderJobFailed"
    assert failure_name(JobError("JobGone", "an API error, not the state machine's")) == "ProviderJobFailed"
    assert failure_name(None) == "ProviderJobFailed"


def _max_tries_choice() -> dict[str, Any]:
    choices = ASL["States"]["CheckJobComplete"]["Choices"]
    (choice,) = [choice for choice in choices if choice["Next"] == "MaxTriesExceeded"]
    return choice  # type: ignore[no-any-return]


def _path(state: dict[str, Any], path: str) -> Any:
    value: Any = state
    for key in path.removeprefix("$.").split("."):
        value = value[key]
    return value


_COMPARISONS = {
    "NumericGreaterThanEqualsPath": lambda a, b: a >= b,
    "NumericGreaterThanPath": lambda a, b: a > b,
    "NumericEqualsPath": lambda a, b: a == b,
    "NumericLessThanPath": lambda a, b: a < b,
    "NumericLessThanEqualsPath": lambda a, b: a <= b,
}


def _asl_says_tries_exhausted(state: dict[str, Any]) -> bool:
    choice = _max_tries_choice()
    (operator,) = [key for key in choice if key in _COMPARISONS]
    return bool(_COMPARISONS[operator](_path(state, choice["Variable"]), _path(state, choice[operator])))


@pytest.mark.parametrize("max_tries", [1, 3, 10])
@pytest.mark.parametrize("try_count", [0, 1, 2, 3, 4, 9, 10, 11])
def test_the_asl_max_tries_choice_mirrors_the_python_rule(try_count: int, max_tries: int) -> None:
    job = make_job(
        status=JobStatus.RUNNING, poll=PollSettings(wait_seconds=10, max_tries=max_tries), try_count=try_count
    )
    assert _asl_says_tries_exhausted(loop_state(job, NOW)) is rules.tries_exhausted(job)
