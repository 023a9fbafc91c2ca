"""Every built-in provider passes the conformance kit's contract (jobpoll.testing), once each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from moto.moto_api import state_manager

from chalicelib.providers.aws_athena import AthenaProvider
from chalicelib.providers.aws_transcribe import TranscribeProvider
from chalicelib.providers.http import HttpProvider, Profile
from chalicelib.providers.registry import load
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.providers.simulated_engine import SimulatedEngine
from chalicelib.providers.streaming import SimulatedStreamingProvider
from jobpoll.emulation import Emulation
from jobpoll.testing import CONTRACTS, EngineContract, PollProviderContract, WorkerContract
from lro_server import Answer, LroServer

MONITOR = "/v1/operations/1"


class TestSimulated(PollProviderContract):
    provider_class = SimulatedProvider


class TestSimulatedEngine(EngineContract):
    provider_class = SimulatedEngine


class TestSimulatedStream(WorkerContract):
    provider_class = SimulatedStreamingProvider
    run_input: ClassVar[dict[str, Any]] = {"tokens": 30, "tokens_per_second": 10}


MODELS = ("transcribe::transcriptionjob", "athena::execution")


class OnMotoServices:
    """The AWS providers on moto's services: each describe moves a job one state on, the media to
    transcribe and the bucket for query results are in S3."""

    @pytest.fixture(autouse=True)
    def services(self, jobpoll_emulation: Emulation) -> Iterator[None]:
        for model in MODELS:
            state_manager.set_transition(model, {"progression": "manual", "times": 1})
        s3 = jobpoll_emulation.client("s3")
        for bucket in ("media", "results"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="media", Key="talk.mp3", Body=b"ID3 not really audio")
        yield
        for model in MODELS:
            state_manager.unset_transition(model)


class TestTranscribe(OnMotoServices, PollProviderContract):
    provider_class = TranscribeProvider
    run_input: ClassVar[dict[str, Any]] = {"media_uri": "s3://media/talk.mp3", "language_code": "en-US"}


class TestAthena(OnMotoServices, PollProviderContract):
    provider_class = AthenaProvider
    run_input: ClassVar[dict[str, Any]] = {"query": "SELECT 1", "output_location": "s3://results/jobpoll/"}


class TestHttp(PollProviderContract):
    """http against a scripted Azure-style long-running operation on 127.0.0.1 (its example's profile)."""

    provider_class = HttpProvider

    @pytest.fixture(autouse=True)
    def server(self) -> Iterator[LroServer]:
        with LroServer() as running:
            running.on(
                "POST", "/v1/analyze", Answer(202, {"status": "NotStarted"}, {"Operation-Location": MONITOR})
            )
            running.on(
                "GET",
                MONITOR,
                Answer(200, {"status": "Running", "percentComplete": 40}),
                Answer(200, {"status": "Succeeded", "result": {"transcript": "hello"}}),
            )
            running.on("DELETE", MONITOR, Answer(204, None))
            yield running

    @pytest.fixture
    def direct_provider(self, server: LroServer, direct_clock: Any) -> HttpProvider:
        profiles = {"speech": Profile("speech", server.url)}
        return HttpProvider(direct_clock, lambda: profiles, allow_loopback=True)

    @pytest.fixture
    def provider(self, server: LroServer, jobpoll_emulation: Emulation) -> HttpProvider:
        profiles = {"speech": Profile("speech", server.url)}
        return HttpProvider(jobpoll_emulation.clock, lambda: profiles, allow_loopback=True)


def test_every_registered_provider_is_checked_here_as_its_kind() -> None:
    checked = {cls.provider_class: cls for cls in (TestSimulated, TestSimulatedEngine, TestSimulatedStream)}
    checked |= {cls.provider_class: cls for cls in (TestTranscribe, TestAthena, TestHttp)}
    for spec in load():
        assert spec.cls in checked, f"{spec.name} has no contract class in tests/contract"
        assert issubclass(checked[spec.cls], CONTRACTS[spec.kind]), spec.name
