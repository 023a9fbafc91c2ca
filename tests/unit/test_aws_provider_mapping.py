"""The AWS job-service providers against stubbed boto3 clients: input checks, state mapping, error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.errors import InvalidJobInput, ProviderError, ProviderUnavailable
from chalicelib.job import JobError
from chalicelib.providers import NotifiesByEvent, WorkState
from chalicelib.providers.aws_athena import AthenaProvider
from chalicelib.providers.aws_transcribe import TranscribeProvider


@pytest.fixture
def transcribe() -> Iterator[tuple[TranscribeProvider, Stubber]]:
    client = boto3.client("transcribe", region_name="us-east-1")
    with Stubber(client) as stub:
        yield TranscribeProvider(client), stub
        stub.assert_no_pending_responses()


@pytest.fixture
def athena() -> Iterator[tuple[AthenaProvider, Stubber]]:
    client = boto3.client("athena", region_name="us-east-1")
    with Stubber(client) as stub:
        yield AthenaProvider(client), stub
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("provider", [TranscribeProvider, AthenaProvider])
def test_each_provider_declares_a_schema_whose_examples_it_accepts(provider: Any) -> None:
    instance = provider(client=None)
    schema = provider.input_schema
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    assert provider.examples
    for example in provider.examples:
        assert instance.validate(example) == example
    assert isinstance(instance, NotifiesByEvent)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({}, "'media_uri'"),
        ({"media_uri": "/tmp/a.mp3"}, "'media_uri' must match"),
        ({"media_uri": "s3://b/a.mp3", "media_format": "avi"}, "'media_format' must be one of"),
        ({"media_uri": "s3://b/a.mp3", "speakers": 2}, "unknown aws-transcribe input field(s): speakers"),
        ({"media_uri": "s3://b/a.mp3", "output_key": "x.json"}, "'output_key' needs 'output_bucket'"),
        ({"media_uri": 7}, "'media_uri' must be a non-empty string"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_transcribe_input_is_refused_naming_the_field(request_body: Any, field: str) -> None:
    with pytest.raises(InvalidJobInput) as refused:
        TranscribeProvider(client=None).validate(request_body)
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"database": "x"}, "'query'"),
        ({"query": "SELECT 1", "output_location": "https://x"}, "'output_location' must match"),
        ({"query": "SELECT 1", "parameters": [1]}, "'parameters' must be a list of strings"),
        ({"query": "  "}, "'query' must be a non-empty string"),
    ],
)
def test_bad_athena_input_is_refused_naming_the_field(request_body: Any, field: str) -> None:
    with pytest.raises(InvalidJobInput) as refused:
        AthenaProvider(client=None).validate(request_body)
    assert field in str(refused.value)


def test_a_transcription_is_started_under_a_jobpoll_name_and_its_language_identified_when_not_given(
    transcribe: tuple[TranscribeProvider, Stubber],
) -> None:
    provider, stub = transcribe
    stub.add_response(
        "start_transcription_job",
        {"TranscriptionJob": {"TranscriptionJobStatus": "QUEUED"}},
        {
            "TranscriptionJobName": ANY,
            "Media": {"MediaFileUri": "s3://b/a.mp3"},
            "IdentifyLanguage": True,
        },
    )
    work_id = provider.submit({"media_uri": "s3://b/a.mp3"})
    assert work_id.startswith("jobpoll-")
    assert provider.work_id_of_event({"detail": {"TranscriptionJobName": work_id}}) == work_id
    assert provider.work_id_of_event({"detail": {"TranscriptionJobName": "someone-elses"}}) is None


def test_a_failed_transcription_fails_with_the_services_reason(
    transcribe: tuple[TranscribeProvider, Stubber],
) -> None:
    provider, stub = transcribe
    reason = "The media format provided does not match the detected media format."
    stub.add_response(
        "get_transcription_job",
        {"TranscriptionJob": {"TranscriptionJobStatus": "FAILED", "FailureReason": reason}},
        {"TranscriptionJobName": "jobpoll-1"},
    )
    polled = provider.poll("jobpoll-1")
    assert polled.state is WorkState.FAILED
    assert polled.error == JobError("TranscriptionFailed", reason)
    assert polled.provider_status == "FAILED"


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("ThrottlingException", 400, ProviderUnavailable),
        ("TooManyRequestsException", 429, ProviderUnavailable),
        ("InternalServerException", 500, ProviderUnavailable),
        ("ServiceUnavailable", 503, ProviderUnavailable),
        ("InvalidRequestException", 400, InvalidJobInput),
        ("AccessDeniedException", 403, ProviderError),
    ],
)
def test_service_errors_map_to_transient_invalid_or_provider_errors(
    athena: tuple[AthenaProvider, Stubber], code: str, status: int, raised: type[Exception]
) -> None:
    provider, stub = athena
    stub.add_client_error(
        "start_query_execution", code, "Line 1:8: mismatched input 'FORM'", http_status_code=status
    )
    with pytest.raises(raised) as caught:
        provider.submit({"query": "SELECT * FORM t"})
    assert type(caught.value) is raised
    if raised is InvalidJobInput:
        assert "mismatched input 'FORM'" in str(caught.value)  # the service's words name what is wrong


def test_a_query_is_started_with_its_context_and_output_and_reports_statistics(
    athena: tuple[AthenaProvider, Stubber],
) -> None:
    provider, stub = athena
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {
            "QueryString": "SELECT 1",
            "QueryExecutionContext": {"Database": "shop"},
            "ResultConfiguration": {"OutputLocation": "s3://r/"},
            "ExecutionParameters": ["'x'"],
        },
    )
    stub.add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": "q-1",
                "ResultConfiguration": {"OutputLocation": "s3://r/q-1.csv"},
                "Status": {"State": "SUCCEEDED"},
                "Statistics": {"DataScannedInBytes": 42, "TotalExecutionTimeInMillis": 900},
            }
        },
        {"QueryExecutionId": "q-1"},
    )
    request = {"query": "SELECT 1", "database": "shop", "output_location": "s3://r/", "parameters": ["'x'"]}
    assert provider.submit(request) == "q-1"
    polled = provider.poll("q-1")
    assert polled.state is WorkState.SUCCEEDED
    assert polled.result == {
        "query_execution_id": "q-1",
        "output_location": "s3://r/q-1.csv",
        "statistics": {"DataScannedInBytes": 42, "TotalExecutionTimeInMillis": 900},
    }
    assert provider.work_id_of_event({"detail": {"queryExecutionId": "q-1"}}) == "q-1"


@pytest.mark.parametrize(
    ("state", "work", "code"),
    [
        ("QUEUED", WorkState.PENDING, None),
        ("RUNNING", WorkState.RUNNING, None),
        ("CANCELLED", WorkState.FAILED, "QueryCancelled"),
    ],
)
def test_athena_states_map_to_work_states(
    athena: tuple[AthenaProvider, Stubber], state: str, work: WorkState, code: str | None
) -> None:
    provider, stub = athena
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": state}}}, {"QueryExecutionId": "q"}
    )
    polled = provider.poll("q")
    assert (polled.state, polled.provider_status) == (work, state)
    assert (polled.error.code if polled.error else None) == code


def test_canceling_work_that_is_gone_already_is_no_error_but_a_failing_cancel_is_reported(
    transcribe: tuple[TranscribeProvider, Stubber], athena: tuple[AthenaProvider, Stubber]
) -> None:
    provider, stub = transcribe
    stub.add_client_error(
        "delete_transcription_job",
        "BadRequestException",
        "The requested job couldn't be found. Check the job name and try your request again.",
    )
    provider.cancel("jobpoll-1")
    queries, query_stub = athena
    query_stub.add_client_error(
        "stop_query_execution", "InternalServerException", "boom", http_status_code=500
    )
    with pytest.raises(ProviderUnavailable):
        queries.cancel("q-1")
