"""The polling-efficiency benchmark's model: schedules from the policy, transitions from the ASL's paths."""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest

import polling_efficiency as bench
from polling_efficiency import STRATEGIES, Comparison, ModelMismatch, Outcome, Strategy

FIXED_10, FIXED_60, ADAPTIVE, ADAPTIVE_ETA = STRATEGIES


def test_fixed_10_s_polls_a_25_s_job_three_times_and_sees_it_done_5_s_late() -> None:
    outcome = bench.model_outcome("job", 25.0, FIXED_10)
    assert outcome.polls == 3  # at 10, 20 and 30 s
    assert outcome.lag_seconds == 5.0
    assert outcome.transitions == 3 + 3 * 3 + 1
    assert outcome.lambda_invocations == 4  # StartJob and three GetJobStatus


def test_fixed_60_s_polls_a_25_s_job_once_and_sees_it_done_35_s_late() -> None:
    outcome = bench.model_outcome("job", 25.0, FIXED_60)
    assert (outcome.polls, outcome.lag_seconds) == (1, 35.0)
    assert outcome.relative_lag == pytest.approx(35 / 25)


def test_a_poll_exactly_at_completion_finds_the_job_done_with_no_lag() -> None:
    outcome = bench.model_outcome("job", 30.0, FIXED_10)
    assert (outcome.polls, outcome.lag_seconds) == (3, 0.0)


def test_the_eta_hint_sends_the_second_poll_to_the_completion() -> None:
    # The same case as the state machine test of adaptive polling: +10 s says 240 s left.
    assert bench.poll_schedule("eta", 250.0, ADAPTIVE_ETA) == [10.0, 250.0]


def test_adaptive_backoff_polls_a_long_job_far_less_than_fixed_and_within_the_cap() -> None:
    adaptive = bench.poll_schedule("long", 3600.0, ADAPTIVE)
    fixed = bench.poll_schedule("long", 3600.0, FIXED_10)
    assert len(fixed) == 360
    assert len(adaptive) < 40
    assert max(b - a for a, b in itertools.pairwise(adaptive)) <= 300
    assert adaptive[-1] - 3600.0 <= 300


def test_adaptive_jitter_follows_the_job_id_so_the_model_must_use_the_runs_id() -> None:
    schedules = {tuple(bench.poll_schedule(f"job-{n}", 3600.0, ADAPTIVE)) for n in range(5)}
    assert len(schedules) > 1
    assert bench.poll_schedule("same", 3600.0, ADAPTIVE) == bench.poll_schedule("same", 3600.0, ADAPTIVE)


def test_a_job_that_outlives_its_tries_is_a_model_error_not_a_figure() -> None:
    few = Strategy("few", {"wait_seconds": 10, "max_tries": 3})
    with pytest.raises(ModelMismatch):
        bench.poll_schedule("job", 100.0, few)


def test_strategies_take_the_shipped_defaults_for_fields_they_do_not_set() -> None:
    assert FIXED_10.poll.continue_after == bench.Settings().default_continue_after
    assert FIXED_10.execution_input(12.5) == {
        "provider": "simulated",
        "input": {"delay": 12.5},
        "wait_seconds": 10,
        "max_tries": bench._ENOUGH_TRIES,
    }
    assert ADAPTIVE_ETA.execution_input(1.0)["input"]["report_eta"] is True


def test_continuations_happen_every_continue_after_polls_unless_that_poll_finds_the_job_done() -> None:
    assert bench.continuations_for(polls=10, continue_after=3) == 3  # after polls 3, 6 and 9
    assert bench.continuations_for(polls=9, continue_after=3) == 2  # poll 9 found it done
    assert bench.continuations_for(polls=1, continue_after=1000) == 0
    assert bench.transitions_for(10, 3) == 3 + 30 + 1 + 3 * 5


def test_the_models_paths_are_paths_of_the_poller_asl() -> None:
    definition = bench.load_definition()
    bench.check_paths(definition)  # raises ModelMismatch otherwise
    assert bench.POLL_LOOP == ("Wait", "GetJobStatus", "CheckJobComplete")


def test_a_state_added_to_the_poll_loop_breaks_the_model_loudly() -> None:
    definition = copy.deepcopy(bench.load_definition())
    states = definition["States"]
    states["Audit"] = {"Type": "Pass", "Next": "GetJobStatus"}
    states["Wait"]["Next"] = "Audit"
    with pytest.raises(ModelMismatch, match="'Wait' to 'GetJobStatus'"):
        bench.check_paths(definition)


def test_the_callback_row_follows_the_notification_path_of_the_asl() -> None:
    definition = copy.deepcopy(bench.load_definition())
    assert bench.CALLBACK_STATE in definition["States"]
    bench.check_path(definition, bench.CALLBACK_PATH)
    outcome = bench.callback_outcome(600.0)
    assert (outcome.polls, outcome.lag_seconds, outcome.transitions) == (0, 0.0, 6)
    assert outcome.lambda_invocations == 3

    del definition["States"]["WaitForNotification"]["Next"]
    with pytest.raises(ModelMismatch):
        bench.check_path(definition, bench.CALLBACK_PATH)


def test_the_job_mix_is_fixed_by_its_seed_and_log_uniform_between_10_s_and_2_h() -> None:
    lengths = bench.job_lengths(2000, seed=6)
    assert lengths == bench.job_lengths(2000, seed=6)
    assert lengths != bench.job_lengths(2000, seed=7)
    assert min(lengths) >= 10 and max(lengths) <= 7200
    # Log-uniform: the median is near the geometric mean of the bounds (~268 s), not the middle (~3600 s).
    assert 200 < bench.percentile(lengths, 0.5) < 350


def test_the_sample_spreads_over_the_lengths_up_to_its_limit() -> None:
    lengths = [10.0, 5000.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0]
    picked = [lengths[i] for i in bench.sample_indices(lengths, 4, longest=1800.0)]
    assert picked == sorted(picked)
    assert max(picked) <= 1800 and min(picked) <= 40 and max(picked) >= 640
    assert bench.sample_indices(lengths, 0) == []


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert bench.percentile(values, 0.5) == 50
    assert bench.percentile(values, 0.95) == 95
    assert bench.percentile([7.0], 0.95) == 7.0


def test_dollars_per_1000_jobs_price_each_transition_at_the_standard_rate() -> None:
    outcomes = [Outcome(25.0, 3, 5.0, 0, 13, 4), Outcome(30.0, 3, 0.0, 0, 13, 4)]
    row = bench.summarise("fixed", "model", outcomes)
    assert row.usd_per_1000_jobs == pytest.approx(13 * 0.025)  # 13,000 transitions at $0.025 per 1,000
    assert row.lambda_request_usd_per_1000_jobs == pytest.approx(4000 * 0.20 / 1_000_000)
    assert row.lag_median_s == 0.0 and row.lag_p95_s == 5.0
    assert row.lag_p95_pct == pytest.approx(20.0)


def test_a_measured_run_that_differs_from_the_model_is_reported_as_a_mismatch() -> None:
    model = Outcome(25.0, 3, 5.0, 0, 13, 4)
    assert Comparison("fixed", "j", 25.0, model, model).agrees
    extra_state = Outcome(25.0, 3, 5.0, 0, 16, 4)
    assert not Comparison("fixed", "j", 25.0, model, extra_state).agrees
    later = Outcome(25.0, 3, 6.0, 0, 13, 4)
    assert not Comparison("fixed", "j", 25.0, model, later).agrees


def test_the_benchmark_prints_json_rows_for_every_strategy_and_the_callback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.main(["--jobs", "50", "--sample", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["strategy"] for row in report["rows"]] == [*(s.name for s in STRATEGIES), "callback"]
    assert report["sample"] == [] and report["all_agree"] is True
    fixed_10 = report["rows"][0]
    assert math.isclose(fixed_10["usd_per_1000_jobs"], fixed_10["transitions_per_job"] * 0.025)


def test_the_benchmark_exits_non_zero_when_the_model_no_longer_fits_the_asl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "POLL_LOOP", ("Wait", "CheckJobComplete"))
    assert bench.main(["--jobs", "10", "--sample", "0"]) == 1
    assert "MODEL MISMATCH" in capsys.readouterr().err


def test_the_benchmark_exits_non_zero_and_says_so_when_a_sampled_run_disagrees(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = Outcome(25.0, 3, 5.0, 0, 13, 4)
    retried = Outcome(25.0, 3, 5.0, 0, 14, 5)

    def fake_sample(*_: object) -> list[Comparison]:
        return [Comparison("fixed 10 s", "fixed-10-s-00000", 25.0, model, retried)]

    monkeypatch.setattr(bench, "compare_on_state_machine", fake_sample)
    monkeypatch.setattr(bench, "compare_callback_on_state_machine", lambda *_: [])  # no emulation here
    assert bench.main(["--jobs", "10", "--sample", "1"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and "NOT CONFIRMED" in captured.out
    assert "MODEL MISMATCH" in captured.err


def test_a_durable_poll_loop_costs_two_setup_operations_and_one_per_further_check() -> None:
    outcome = bench.model_outcome("job", 25.0, FIXED_10)  # three polls
    cost = bench.durable_cost(outcome)
    assert (cost.operations, cost.invocations) == (2 + 2, 1 + 3)
    assert bench.durable_cost(outcome, callback=True) == bench.DurableCost(2, 2)


def test_a_durable_loop_past_the_operation_limit_continues_in_a_new_execution() -> None:
    limit = bench.DURABLE_OPERATIONS_PER_EXECUTION
    polls = 2 * limit
    cost = bench.durable_cost(Outcome(1.0, polls, 0.0, 0, 0, 0))
    executions = 3  # each execution holds limit - 2 checks
    assert cost.invocations == executions + polls
    assert cost.operations == executions * 2 + polls - executions


def test_the_durable_column_prices_operations_at_the_given_price_plus_lambda_requests() -> None:
    outcomes = [Outcome(25.0, 3, 5.0, 0, 13, 4)]
    cheap = bench.summarise("fixed", "model", outcomes, durable_operation_price=8.0 / 1_000_000)
    dear = bench.summarise("fixed", "model", outcomes, durable_operation_price=80.0 / 1_000_000)
    assert cheap.durable_usd_per_1000_jobs == pytest.approx(1000 * (4 * 8.0 + 4 * 0.20) / 1_000_000)
    assert dear.durable_usd_per_1000_jobs > cheap.step_functions_total_usd_per_1000_jobs / 2
    assert cheap.step_functions_total_usd_per_1000_jobs == pytest.approx(13 * 0.025 + 4000 * 0.20 / 1_000_000)


def test_the_benchmark_takes_the_durable_price_as_a_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--jobs", "20", "--sample", "0", "--json", "--durable-operation-price", "75"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["prices_usd"]["durable_operation"] == pytest.approx(75 / 1_000_000)
    assert all(row["durable_usd_per_1000_jobs"] > 0 for row in report["rows"])
