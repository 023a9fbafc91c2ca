"""`jobpoll deploy`'s code puts the packaged template into moto's CloudFormation, and the seed scenario runs
through the state machine that stack created, with the handlers configured by the deployed environment."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobpoll.clocks import VirtualClock
from jobpoll.deploy import Deployed, deploy, destroy
from jobpoll.emulation import MOTO_CONFIG, resolve_handler
from jobpoll.errors import DeployError
from jobpoll.local import install_handler_runtime
from jobpoll.moto_patches import emulation_patches
from jobpoll.package import Package
from jobpoll.target import Target

REGION = "us-east-1"
STACK = "jobpoll-dev"


@pytest.fixture
def moto_target(virtual_clock: VirtualClock) -> Iterator[Target]:
    """moto in-process with the emulation patches; a Target that reaches it (no endpoint URL)."""
    from chalicelib.bootstrap import set_runtime

    with mock_aws(config=MOTO_CONFIG), emulation_patches(virtual_clock, resolve_handler):  # type: ignore[call-overload]
        yield Target(region=REGION)
        set_runtime(None)


@pytest.fixture
def deploy_dev(moto_target: Target, packaged: Package) -> Callable[..., Deployed]:
    """Deploy the packaged stage dev (packaged once) as stack jobpoll-dev into moto; progress to a list."""

    def run(progress: list[str], **kwargs: Any) -> Deployed:
        return deploy(
            "dev",
            moto_target,
            stack_name=STACK,
            with_api=False,
            progress=progress.append,
            package=packaged,
            **kwargs,
        )

    return run


def _wait(sfn: Any, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.01)


def test_the_seed_scenario_completes_through_the_deployed_state_machine(
    moto_target: Target, virtual_clock: VirtualClock, deploy_dev: Callable[..., Deployed]
) -> None:
    progress: list[str] = []
    deployed = deploy_dev(progress)
    assert any("CREATE_COMPLETE" in line for line in progress)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    (machine,) = sfn.list_state_machines()["stateMachines"]
    assert deployed.state_machine_arn == machine["stateMachineArn"]
    described = sfn.describe_state_machine(stateMachineArn=deployed.state_machine_arn)
    assert described["tracingConfiguration"] == {"enabled": True}  # the template's options, as AWS would
    assert described["loggingConfiguration"]["level"] == "ERROR"
    assert "${" not in described["definition"]  # every substitution made

    environment = install_handler_runtime(moto_target, STACK, virtual_clock)
    assert environment["JOBPOLL_TABLE"] == deployed.outputs["JobsTableName"] == f"{STACK}-jobs"
    bucket = environment["JOBPOLL_RESULTS_BUCKET"]
    assert bucket == deployed.outputs["ResultsBucketName"]
    assert "EnqueueWork" in _api_role_policies()  # simulated-stream (queue mode) is enabled by default
    # moto's CloudFormation applies a bucket's encryption (not its lifecycle or public access block: the
    # packaged template's tests check those).
    encryption = boto3.client("s3", region_name=REGION).get_bucket_encryption(Bucket=bucket)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert environment["JOBPOLL_STATE_MACHINE_ARN"] == deployed.state_machine_arn

    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="seed-job", input=json.dumps({"delay": 20})
    )
    described = _wait(sfn, execution["executionArn"])
    assert described["status"] == "SUCCEEDED", described
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=deployed.outputs["JobsTableName"], Key={"job_id": {"S": "seed-job"}}
    )["Item"]
    assert item["status"]["S"] == "COMPLETE"
    assert item["try_count"]["N"] == "2"  # polled at 10 s (running) and 20 s (complete)


def test_redeploying_unchanged_is_a_no_op_and_a_parameter_change_updates(
    deploy_dev: Callable[..., Deployed],
) -> None:
    deploy_dev([])
    again: list[str] = []
    deploy_dev(again)
    assert "No changes to deploy." in again

    updated: list[str] = []
    deploy_dev(updated, parameters={"DefaultMaxTries": "5"})
    assert any("UPDATE_COMPLETE" in line for line in updated)
    functions = boto3.client("lambda", region_name=REGION).list_functions()["Functions"]
    assert {str(f["Environment"]["Variables"]["JOBPOLL_MAX_TRIES"]) for f in functions} == {"5"}


def _api_role_policies() -> set[str]:
    role = boto3.client("cloudformation", region_name=REGION).describe_stack_resource(
        StackName=STACK, LogicalResourceId="DefaultRole"
    )["StackResourceDetail"]["PhysicalResourceId"]
    return set(boto3.client("iam", region_name=REGION).list_role_policies(RoleName=role)["PolicyNames"])


def test_the_api_may_enqueue_work_only_while_a_queue_mode_provider_is_enabled(
    deploy_dev: Callable[..., Deployed],
) -> None:
    deploy_dev([], parameters={"EnabledProviders": "simulated,simulated-engine"})
    assert "EnqueueWork" not in _api_role_policies()
    functions = boto3.client("lambda", region_name=REGION).list_functions()["Functions"]
    assert {f["Environment"]["Variables"]["JOBPOLL_ENABLED_PROVIDERS"] for f in functions} == {
        "simulated,simulated-engine"
    }


def test_destroy_removes_the_stack_and_its_resources(
    moto_target: Target, deploy_dev: Callable[..., Deployed]
) -> None:
    deployed = deploy_dev([], parameters={"AlarmErrorThreshold": "3"})
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    (get_job_status,) = [a for a in alarms if a["AlarmDescription"].startswith("GetJobStatus:")]
    assert get_job_status["Threshold"] == 3  # the stack's alarms, with its parameters (moto_patches)
    assert {q["Id"] for q in get_job_status["Metrics"]} == {"errors", "throttles", "failures"}
    (topic,) = boto3.client("sns", region_name=REGION).list_topics()["Topics"]
    assert {tuple(a["AlarmActions"]) for a in alarms} == {(topic["TopicArn"],)}
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=deployed.outputs["ResultsBucketName"], Key="results/j/r.json", Body=b"{}")
    progress: list[str] = []
    destroy(moto_target, STACK, progress=progress.append)
    assert f"Removed 1 result object(s) from {deployed.outputs['ResultsBucketName']}" in progress
    assert progress[-1] == f"Stack {STACK}: DELETE_COMPLETE"
    assert boto3.client("stepfunctions", region_name=REGION).list_state_machines()["stateMachines"] == []
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert s3.list_buckets()["Buckets"] == [] or all(
        b["Name"] != deployed.outputs["ResultsBucketName"] for b in s3.list_buckets()["Buckets"]
    )
    with pytest.raises(DeployError, match="no stack named"):
        destroy(moto_target, STACK, progress=progress.append)
