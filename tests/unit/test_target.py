"""What `jobpoll local up` leaves for clients, and how a command finds its target."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobpoll.errors import ToolingError
from jobpoll.target import LocalState, Target


def test_the_local_state_file_round_trips_and_names_the_emulation_target(tmp_path: Path) -> None:
    state = LocalState(
        api_url="http://127.0.0.1:8000",
        aws_endpoint_url="http://127.0.0.1:5000",
        region="us-east-1",
        stack_name="jobpoll-local",
        outputs={
            "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:jobpoll-local-poller"
        },
        pid=42,
    )
    path = tmp_path / ".jobpoll" / "local.json"
    state.write(path)
    assert LocalState.read(path) == state
    assert state.target() == Target(region="us-east-1", endpoint_url="http://127.0.0.1:5000")
    assert state.target().is_emulation


def test_no_state_file_means_no_local_stack_and_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(ToolingError, match="jobpoll local up"):
        LocalState.read(tmp_path / "local.json")


def test_an_emulation_target_signs_with_dummy_credentials_when_none_are_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    session = Target(region="eu-west-1", endpoint_url="http://127.0.0.1:5000").session()
    assert session.get_credentials() is not None
    assert session.region_name == "eu-west-1"
