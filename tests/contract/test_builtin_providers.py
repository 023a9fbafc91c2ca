"""Every built-in provider passes the conformance kit's contract (jobpoll.testing), once each."""

from __future__ import annotations

from typing import Any, ClassVar

from chalicelib.providers.registry import load
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.providers.simulated_engine import SimulatedEngine
from chalicelib.providers.streaming import SimulatedStreamingProvider
from jobpoll.testing import CONTRACTS, EngineContract, PollProviderContract, WorkerContract


class TestSimulated(PollProviderContract):
    provider_class = SimulatedProvider


class TestSimulatedEngine(EngineContract):
    provider_class = SimulatedEngine


class TestSimulatedStream(WorkerContract):
    provider_class = SimulatedStreamingProvider
    run_input: ClassVar[dict[str, Any]] = {"tokens": 30, "tokens_per_second": 10}


def test_each_built_in_provider_is_checked_here_as_its_kind() -> None:
    checked = {cls.provider_class: cls for cls in (TestSimulated, TestSimulatedEngine, TestSimulatedStream)}
    for spec in load():
        if spec.cls in checked:
            assert issubclass(checked[spec.cls], CONTRACTS[spec.kind]), spec.name
    assert {SimulatedProvider, SimulatedEngine, SimulatedStreamingProvider} <= {spec.cls for spec in load()}
