"""The benchmark's model against the real state machine: the same polls, transitions and lag."""

from __future__ import annotations

import pytest

import polling_efficiency as bench
from jobpoll.emulation import Emulation

FIXED_10, FIXED_60, ADAPTIVE, ADAPTIVE_ETA = bench.STRATEGIES


def test_the_seed_job_enters_the_states_the_model_counts(emulation: Emulation) -> None:
    outcome = bench.measure(emulation, FIXED_10, "seed", 25.0)
    assert outcome == bench.model_outcome("seed", 25.0, FIXED_10)
    assert (outcome.polls, outcome.lag_seconds, outcome.transitions) == (3, 5.0, 13)


@pytest.mark.parametrize("strategy", [FIXED_60, ADAPTIVE, ADAPTIVE_ETA], ids=lambda s: s.name)
def test_each_strategy_polls_when_the_model_says(emulation: Emulation, strategy: bench.Strategy) -> None:
    name = bench.job_id(strategy, 1)
    assert bench.measure(emulation, strategy, name, 130.5) == bench.model_outcome(name, 130.5, strategy)


def test_continuing_in_new_executions_costs_what_the_model_counts(emulation: Emulation) -> None:
    strategy = bench.CONTINUATION_CHECK
    outcome = bench.measure(emulation, strategy, "marathon", 95.0)
    assert outcome.continuations == 3
    assert outcome == bench.model_outcome("marathon", 95.0, strategy)
