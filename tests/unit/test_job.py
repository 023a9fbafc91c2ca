from datetime import timedelta

import pytest

from chalicelib.errors import IllegalTransition
from chalicelib.job import TERMINAL_STATUSES, JobStatus, can_transition
from factories import NOW, make_job


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("target", list(JobStatus))
def test_a_finished_job_never_changes_again(terminal: JobStatus, target: JobStatus) -> None:
    assert not can_transition(terminal, target)
    with pytest.raises(IllegalTransition):
        make_job(status=terminal).transition(target, NOW)


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
    moved = make_job(status=current).transition(target, later, progress=0.5)
    assert (moved.status, moved.updated_at, moved.progress) == (target, later, 0.5)


@pytest.mark.parametrize(
    ("current", "target"),
    [(JobStatus.RUNNING, JobStatus.PENDING), (JobStatus.RUNNING, JobStatus.QUEUED)],
)
def test_a_running_job_does_not_go_back(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(IllegalTransition, match="RUNNING"):
        make_job(status=current).transition(target, NOW)
