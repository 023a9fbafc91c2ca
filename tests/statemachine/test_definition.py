"""Checks cfn-lint does not make on the ASL: every Next defined and reachable, every placeholder wired."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import errors
from jobpoll.definition import placeholders
from jobpoll.emulation import chalice_lambda_functions
from jobpoll.paths import POLLER_ASL

ASL = json.loads(POLLER_ASL.read_text())
STATES: dict[str, Any] = ASL["States"]


def targets(state: dict[str, Any]) -> set[str]:
    found = {state["Next"]} if "Next" in state else set()
    found |= {choice["Next"] for choice in state.get("Choices", [])}
    found |= {state["Default"]} if "Default" in state else set()
    found |= {catch["Next"] for catch in state.get("Catch", [])}
    return found


def test_every_transition_names_a_defined_state() -> None:
    assert ASL["StartAt"] in STATES
    for name, state in STATES.items():
        assert targets(state) <= set(STATES), f"{name} points at an undefined state"


def test_every_state_is_reachable_from_the_start() -> None:
    seen, frontier = set(), [ASL["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name not in seen:
            seen.add(name)
            frontier.extend(targets(STATES[name]))
    assert seen == set(STATES)


def test_the_seed_states_are_named_as_the_seed_names_them() -> None:
    assert {"StartJob", "Init", "Wait", "GetJobStatus", "CheckJobComplete"} <= set(STATES)
    assert {"JobSucceeded", "JobFailed"} <= set(STATES)
    assert STATES["Wait"]["SecondsPath"] == "$.wait_seconds"


def test_every_placeholder_is_the_arn_of_a_function_of_the_app() -> None:
    expected = {f"{name}FunctionArn" for name in chalice_lambda_functions()}
    assert placeholders(POLLER_ASL.read_text()) <= expected


def test_error_names_in_the_asl_are_jobpoll_errors_or_aws_ones() -> None:
    names = set()
    for state in STATES.values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names.update(rule["ErrorEquals"])
    for name in names:
        assert name.startswith(("Lambda.", "States.")) or issubclass(
            getattr(errors, name, type(None)), errors.JobPollError
        ), name
