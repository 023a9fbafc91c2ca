import pytest

from chalicelib.bootstrap import DYNAMODB_MAX_ATTEMPTS, build_runtime
from chalicelib.errors import InvalidJobInput, InvalidRequest
from chalicelib.job import PollSettings
from chalicelib.job_request import parse_job_request
from chalicelib.jobs_api import parse_limit
from chalicelib.providers.simulated import SimulatedProvider
from chalicelib.settings import Settings
from jobpoll.clocks import VirtualClock

PROVIDERS = {"simulated": SimulatedProvider(VirtualClock())}
SETTINGS = Settings()


def test_the_seed_shorthand_is_the_simulated_providers_input_with_default_polling() -> None:
    request = parse_job_request({"delay": 20}, PROVIDERS, SETTINGS)
    assert request.provider == "simulated"
    assert request.provider_input == {"delay": 20, "fail": False}
    assert request.poll == PollSettings(wait_seconds=10, max_tries=3)
    assert request.job_id is None


def test_the_full_form_names_provider_input_and_poll_settings() -> None:
    request = parse_job_request(
        {
            "provider": "simulated",
            "input": {"delay": 5},
            "wait_seconds": 2,
            "max_tries": 9,
            "job_id": "job-1",
        },
        PROVIDERS,
        SETTINGS,
    )
    assert (request.provider_input["delay"], request.poll, request.job_id) == (
        5,
        PollSettings(2, 9),
        "job-1",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "must be a JSON object"),
        ({"provider": "nope", "input": {}}, "unknown provider 'nope' \\(known: simulated\\)"),
        ({"provider": 3, "input": {}}, "'provider' must be a string"),
        ({"delay": 1, "wait_seconds": 0}, "'wait_seconds' must be between 1 and"),
        ({"delay": 1, "wait_seconds": 1.5}, "'wait_seconds' must be a whole number"),
        ({"delay": 1, "max_tries": "3"}, "'max_tries' must be a whole number"),
        ({"delay": 1, "job_id": "has space"}, "'job_id' must be"),
        ({"delay": 1, "job_id": "x" * 81}, "'job_id' must be"),
        ({"input": {"delay": 1}, "extra": 1}, "unknown field"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_reason(body: object, message: str) -> None:
    with pytest.raises(InvalidJobInput, match=message):
        parse_job_request(body, PROVIDERS, SETTINGS)


def test_settings_read_the_environment_once_with_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {"JOBPOLL_TABLE": "t", "JOBPOLL_WAIT_SECONDS": "30", "JOBPOLL_LOG_LEVEL": "debug"}
    )
    assert (settings.table_name, settings.default_wait_seconds, settings.log_level) == ("t", 30, "DEBUG")


def test_a_malformed_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match="JOBPOLL_MAX_TRIES must be an integer"):
        Settings.from_env({"JOBPOLL_MAX_TRIES": "three"})


def test_the_queue_workers_timeout_lease_and_visibility_follow_from_the_longest_job() -> None:
    settings = Settings.from_env({"JOBPOLL_QUEUE_JOB_MAX_SECONDS": "300"})
    assert settings.queue_job_max_seconds == 300
    assert settings.worker_timeout_seconds == 330  # a tenth more for the worker's own last writes
    assert settings.lease_seconds == settings.worker_timeout_seconds
    assert settings.work_queue_visibility_timeout_seconds == 6 * 330
    assert Settings(queue_job_max_seconds=5).worker_timeout_seconds == 7  # at least 2 s more


@pytest.mark.parametrize("seconds", ["0", "820"])
def test_a_longest_queue_job_lambda_cannot_run_is_refused(seconds: str) -> None:
    with pytest.raises(ValueError, match="JOBPOLL_QUEUE_JOB_MAX_SECONDS must be from 1 to 819"):
        Settings.from_env({"JOBPOLL_QUEUE_JOB_MAX_SECONDS": seconds})


def test_the_functions_dynamodb_client_retries_throttling_more_than_boto3s_standard_three_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under the soak's fault plan 1% of DynamoDB calls are throttled: 3 attempts let one in a million through.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    runtime = build_runtime(Settings(table_name="jobs"), VirtualClock(), sfn=object(), sqs=object())
    retries = runtime.store.dynamodb.meta.config.retries  # type: ignore[attr-defined]
    assert retries == {"mode": "standard", "total_max_attempts": DYNAMODB_MAX_ATTEMPTS}
    assert DYNAMODB_MAX_ATTEMPTS >= 10


@pytest.mark.parametrize("limit", ["²", "٣", "0", "-1", "1.5", ""])
def test_a_limit_that_is_not_ascii_digits_in_range_is_a_bad_request_not_a_crash(limit: str) -> None:
    with pytest.raises(InvalidRequest):  # '²'.isdigit() is True, int('²') raises
        parse_limit(limit)
