from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import IllegalTransition
from chalicelib.job import TERMINAL_STATUSES, Job, JobStatus, PollSettings, can_transition

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_job(status: JobStatus) -> Job:
    return Job(
        job_id="j1",
        provider="simulated",
        request={"delay": 1},
        poll=PollSettings(wait_seconds=10, max_tries=3),
        status=status,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("target", list(JobStatus))
def test_a_finished_job_never_changes_again(terminal: JobStatus, target: JobStatus) -> None:
    assert not can_transition(terminal, target)
    with pytest.raises(IllegalTransition):
        make_job(terminal).transition(target, NOW)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.QUEUED, JobStatus.PENDING),
        (JobStatus.PENDING, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.COMPLETE),
        (JobStatus.RUNNING, JobStatus.FAILED),
        (JobStatus.PENDING, JobStatus.CANCELED),
        (JobStatus.QUEUED, JobStatus.FAILED),
    ],
)
def test_the_lifecycle_moves_forward(current: JobStatus, target: JobStatus) -> None:
    later = NOW + timedelta(seconds=5)
    moved = make_job(current).transition(target, later, progress=0.5)
    assert (moved.status, moved.updated_at, moved.progress) == (target, later, 0.5)


@pytest.mark.parametrize(
    ("current", "target"),
    [(JobStatus.RUNNING, JobStatus.PENDING), (JobStatus.RUNNING, JobStatus.QUEUED)],
)
def test_a_running_job_does_not_go_back(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(IllegalTransition, match="RUNNING"):
        make_job(current).transition(target, NOW)
