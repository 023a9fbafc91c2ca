"""The fault plan `jobpoll local up --fault-plan` reads: checked, drawn from its seed, logged by class, and
injected where AWS would fail (Lambda, DynamoDB, SQS); a killed worker's job and a doubly delivered one
still complete once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_harness import make_api
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.job import JobStatus
from jobpoll import cli
from jobpoll.clocks import VirtualClock
from jobpoll.emulation import Emulation
from jobpoll.errors import ToolingError
from jobpoll.faults import SERVICE_EXCEPTION, FaultLog, FaultPlan, FaultRates, KillMidRun, injected_faults
from jobpoll.moto_patches import injected_dynamodb_faults
from jobpoll.simulated_service import SubmissionLedger, recorded_submissions

STREAM = {"provider": "simulated-stream", "input": {"tokens": 6, "tokens_per_second": 1}}


def test_a_fault_plan_is_checked_and_a_bad_one_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = FaultRates.from_json('{"seed": 7, "dynamodb_throttle": 0.5, "lambda_functions": ["StartJob"]}')
    assert (rates.seed, rates.dynamodb_throttle, rates.lambda_functions) == (7, 0.5, ("StartJob",))
    for text, reason in (
        ('{"disk_on_fire": 0.1}', "unknown fault classes"),
        ('{"dynamodb_throttle": 2}', "rate from 0 to 1"),
        ("[0.1]", "JSON object"),
    ):
        with pytest.raises(ToolingError, match=reason):
            FaultRates.from_json(text)
    plan = tmp_path / "plan.json"
    plan.write_text('{"worker_kiled": 0.1}')
    # `local up` refuses it before it starts anything.
    argv = ["local", "up", "--fault-plan", str(plan), "--state-file", str(tmp_path / "local.json")]
    assert cli.main(argv) == 1
    assert "unknown fault classes ['worker_kiled']" in capsys.readouterr().err


def test_faults_are_drawn_from_the_seed_for_the_named_functions_and_logged_by_class(tmp_path: Path) -> None:
    rates = FaultRates(seed=3, lambda_service_exception=0.5, worker_killed=0.5)

    def draws(directory: Path) -> list[object]:
        plan = FaultPlan(rates, FaultLog(directory))
        names = ["jobpoll-local-GetJobStatus-1A2B3C", "jobpoll-dev-RunQueuedJob", "jobpoll-dev-NotifyJob"]
        return [plan.take(name) for name in names * 20]

    first, again = draws(tmp_path / "a"), draws(tmp_path / "b")
    assert first == again  # the seed decides
    assert first[0::3].count(SERVICE_EXCEPTION) > 0 and KillMidRun(2.0) in first[1::3]
    assert set(first[2::3]) == {None}  # NotifyJob is not a function the plan names
    counts = injected_faults(tmp_path / "a")
    assert counts == {
        "lambda_service_exception": first.count(SERVICE_EXCEPTION),
        "worker_killed": first.count(KillMidRun(2.0)),
    }
    plan = FaultPlan(rates)
    assert plan.take("jobpoll-dev-StartJob", asynchronous=True) in (None, KillMidRun(2.0))


def test_dynamodb_throttling_and_lost_conditions_come_from_the_backend_as_from_aws() -> None:
    plan = FaultPlan(FaultRates(dynamodb_throttle=1.0))
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=config)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {"k": {"S": "a"}, "version": {"N": "1"}}
        dynamodb.put_item(TableName="t", Item=item)
        with injected_dynamodb_faults(plan), pytest.raises(ClientError) as throttled:
            dynamodb.get_item(TableName="t", Key={"k": {"S": "a"}})
        assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"

        plan = FaultPlan(FaultRates(dynamodb_conflict=1.0))
        with injected_dynamodb_faults(plan):
            dynamodb.put_item(TableName="t", Item={"k": {"S": "b"}})  # not conditional on a version
            with pytest.raises(ClientError) as lost:
                dynamodb.put_item(
                    TableName="t",
                    Item={**item, "version": {"N": "2"}},
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": "1"}},
                )
        assert lost.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert dynamodb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["version"] == {"N": "1"}


def _recorded_worker_invocations(emulation: Emulation, at_least: int) -> list[Any]:
    """The queue worker's invocations, once `at_least` are recorded (bounded): the worker that completed a
    job is recorded when its invocation returns, after the job is COMPLETE."""
    deadline = time.monotonic() + 30
    while len(runs := [i for i in emulation.invocations if i.function.endswith("RunQueuedJob")]) < at_least:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return runs


def test_a_worker_killed_mid_job_loses_its_lease_to_the_next_delivery_and_the_job_completes() -> None:
    # Short jobs: the killed worker's message comes back after the queue's visibility timeout (72 s).
    with Emulation(clock=VirtualClock(), queue_delivery=True, queue_job_max_seconds=10) as emulation:
        emulation.faults.kill_mid_run("jobpoll-dev-RunQueuedJob", after_seconds=2)
        api = make_api(emulation)
        job_id = api.post(STREAM).json_body["id"]

        job = api.wait_status(job_id, JobStatus.COMPLETE, timeout=90)
        runs = _recorded_worker_invocations(emulation, at_least=2)

    assert runs[0].error is not None and runs[0].error["errorType"] == "Runtime.ExitError"
    assert job.result["tokens"] == 6 and len(runs) >= 2


def test_a_batch_delivered_to_two_workers_at_once_runs_the_job_once(tmp_path: Path) -> None:
    emulation = Emulation(clock=VirtualClock(), queue_delivery=True)
    emulation.faults = FaultPlan(FaultRates(duplicate_sqs_delivery=1.0))
    with SubmissionLedger(tmp_path).counting(), emulation:
        api = make_api(emulation)
        job_id = api.post(STREAM).json_body["id"]
        api.wait_status(job_id, JobStatus.COMPLETE, timeout=90)
        deliveries = _recorded_worker_invocations(emulation, at_least=2)

    assert len(deliveries) >= 2
    ended = [e for e in recorded_submissions(tmp_path) if e["event"] == "run-end"]
    assert [json.dumps(e["key"]) for e in ended] == [json.dumps(job_id)]
