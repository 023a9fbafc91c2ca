"""The soak run, small, with every fault: `benchmarks/soak.py --jobs 40 --faults` as one test.

It starts its own `jobpoll local up`, SIGKILLs it halfway through the submissions and starts it again on the
same state: no child may outlive the kill, the restart restores every stored job, and every job in flight
is resumed and ends as its kind must. Nothing is lost, duplicated or stuck, and the API never answers 5xx.
"""

from __future__ import annotations

from pathlib import Path

from soak import SoakOptions, run

JOBS = 40
SPEED = 100


def test_a_small_soak_with_every_fault_and_a_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report = run(
        SoakOptions(jobs=JOBS, faults=True, speed=SPEED, directory=tmp_path, settle_timeout=60),
        progress=lambda line: None,
    )

    assert report.ok, f"{report.table()}\n{report.details['log']}"
    kill = report.details["kill"]
    assert kill["children_left"] == []  # no child outlived the SIGKILLed local up
    assert kill["state_file_left"]  # the kill left its state file: the restart cleared it
    assert kill["restored"]  # "Restored N jobs": every job the journal held at the kill
    assert kill["in_flight"], "the kill should catch jobs in flight"
    assert report.details["in_flight_not_resumed"] == []
    assert report.details["lost"] == report.details["stuck"] == report.details["wrong"] == []
    assert report.details["duplicated"] == []
    assert sum(report.details["statuses"].values()) == JOBS
    injected = report.details["injected"]
    for fault in ("stack_sigkill", "callback_receiver_down", "dynamodb_throttle", "provider_5xx"):
        assert injected.get(fault), f"no {fault} was injected: {injected}"
