"""Deploy and destroy a stack: package, upload, CloudFormation change set, wait with progress.

The same code deploys to an AWS account and into the local emulation (a Target with an endpoint URL);
the emulation has no API Gateway worth the name, so there the API resources are left out and
`chalice local` serves the API.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .errors import DeployError
from .package import Package, chalice_package, cloudformation_template
from .target import Target

Progress = Callable[[str], None]
# CloudFormation takes a template body up to this size; a larger one goes through S3.
_MAX_TEMPLATE_BODY = 51_200
_DONE = ("_COMPLETE", "_FAILED")
_SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}


def default_stack_name(stage: str) -> str:
    return f"jobpoll-{stage}"


@dataclass(frozen=True)
class Deployed:
    """A deployed stack and what its users need from it."""

    stack_name: str
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str | None:
        return self.outputs.get("EndpointURL")

    @property
    def state_machine_arn(self) -> str | None:
        return self.outputs.get("StateMachineArn")


class _Waiter:
    """Polls with growing pauses (fast on the emulation, gentle on AWS) up to a deadline."""

    def __init__(self, timeout: float, first: float = 0.1, longest: float = 5.0) -> None:
        self.deadline = time.monotonic() + timeout
        self.pause = first
        self.longest = longest

    def sleep(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise DeployError(f"gave up waiting for {what}")
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, self.longest)


def _stack(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"cannot use bucket {bucket}: {exc}") from exc
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


class _Events:
    """Prints a stack's new events, oldest first, as progress lines."""

    def __init__(self, cloudformation: Any, stack_name: str, progress: Progress) -> None:
        self.cloudformation = cloudformation
        self.stack_name = stack_name
        self.progress = progress
        self.failures: list[str] = []
        # Events of earlier deployments are not this one's progress.
        self.seen: set[str] = {event["EventId"] for event in self._events()}

    def _events(self) -> list[dict[str, Any]]:
        try:
            events: list[dict[str, Any]] = self.cloudformation.describe_stack_events(
                StackName=self.stack_name
            )["StackEvents"]
        except ClientError:
            return []
        return events

    def show_new(self) -> None:
        for event in reversed(self._events()):
            if event["EventId"] in self.seen:
                continue
            self.seen.add(event["EventId"])
            status = event.get("ResourceStatus", "")
            reason = event.get("ResourceStatusReason") or ""
            if status.endswith("_FAILED") and reason:
                self.failures.append(f"{event['LogicalResourceId']}: {reason}")
            line = f"  {status:<20} {event.get('ResourceType', ''):<36} {event['LogicalResourceId']}"
            self.progress(f"{line}  {reason}".rstrip())


def _wait_for_stack(cloudformation: Any, stack_name: str, events: _Events, timeout: float) -> str:
    waiter = _Waiter(timeout)
    while True:
        stack = _stack(cloudformation, stack_name)
        events.show_new()
        if stack is None:
            return "DELETE_COMPLETE"
        status = str(stack["StackStatus"])
        if status.endswith(_DONE) and not status.endswith("_CLEANUP_COMPLETE"):
            return status
        waiter.sleep(f"stack {stack_name} (still {status})")


def _outputs(stack: Mapping[str, Any] | None) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def describe_stack(target: Target, stack_name: str) -> Deployed:
    """A deployed stack's outputs; DeployError if there is no such stack."""
    stack = _stack(target.client("cloudformation"), stack_name)
    if stack is None:
        raise DeployError(f"there is no stack named {stack_name}")
    return Deployed(stack_name, _outputs(stack))


def deploy(
    stage: str,
    target: Target,
    stack_name: str | None = None,
    bucket: str | None = None,
    parameters: Mapping[str, str] | None = None,
    with_api: bool | None = None,
    progress: Progress = print,
    timeout: float = 1800.0,
    package: Package | None = None,
    auth: str = "iam",
) -> Deployed:
    """Package the app, upload the bundle, create or update the stack through a change set, wait.

    `auth`: the API's auth mode, fixed when the app is packaged (iam, jwt with the JwtIssuer and
    JwtAudience parameters, cognito).
    `with_api` defaults to True on AWS and False on the emulation (where `chalice local` serves the API).
    `package`: a `chalice package` output of this stage to deploy instead of packaging afresh.
    """
    stack_name = stack_name or default_stack_name(stage)
    with_api = (not target.is_emulation) if with_api is None else with_api
    region = target.region_name
    cloudformation, s3 = target.client("cloudformation"), target.client("s3")
    account = target.client("sts").get_caller_identity()["Account"]
    bucket = bucket or f"jobpoll-artifacts-{account}-{region}"

    with tempfile.TemporaryDirectory(prefix="jobpoll-package-") as scratch:
        if package is None:
            progress(f"Packaging stage {stage} ...")
            package = chalice_package(stage, Path(scratch), region, auth)
        digest = hashlib.sha256(package.deployment_zip.read_bytes()).hexdigest()[:20]
        bundle_key = f"{stack_name}/deployment-{digest}.zip"
        template = cloudformation_template(package, region, bucket, bundle_key, with_api=with_api)
        _ensure_bucket(s3, bucket, region)
        progress(f"Uploading the bundle to s3://{bucket}/{bundle_key}")
        s3.upload_file(str(package.deployment_zip), bucket, bundle_key)

    body = json.dumps(template, separators=(",", ":"))
    template_source: dict[str, str]
    if len(body) <= _MAX_TEMPLATE_BODY:
        template_source = {"TemplateBody": body}
    else:
        template_key = f"{stack_name}/template-{hashlib.sha256(body.encode()).hexdigest()[:20]}.json"
        s3.put_object(Bucket=bucket, Key=template_key, Body=body.encode())
        template_source = {"TemplateURL": f"https://{bucket}.s3.amazonaws.com/{template_key}"}

    existing = _stack(cloudformation, stack_name)
    status = existing["StackStatus"] if existing else None
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        raise DeployError(f"stack {stack_name} is {status}: remove it with `jobpoll destroy` first")
    change_set_type = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    change_set_name = f"jobpoll-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    progress(f"Creating change set {change_set_name} ({change_set_type}) for stack {stack_name}")
    change_set = cloudformation.create_change_set(
        StackName=stack_name,
        ChangeSetName=change_set_name,
        ChangeSetType=change_set_type,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": "jobpoll:stage", "Value": stage}],
        **template_source,
    )
    waiter = _Waiter(timeout)
    while True:
        described = cloudformation.describe_change_set(ChangeSetName=change_set["Id"], StackName=stack_name)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        waiter.sleep(f"change set {change_set_name}")
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cloudformation.delete_change_set(ChangeSetName=change_set["Id"], StackName=stack_name)
            progress("No changes to deploy.")
            return Deployed(stack_name, _outputs(_stack(cloudformation, stack_name)))
        raise DeployError(f"change set {change_set_name} failed: {reason}")

    events = _Events(cloudformation, stack_name, progress)
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"], StackName=stack_name)
    final = _wait_for_stack(cloudformation, stack_name, events, timeout)
    if final not in _SUCCEEDED:
        detail = "; ".join(events.failures[:3]) or final
        raise DeployError(f"stack {stack_name} ended {final}: {detail}")
    deployed = Deployed(stack_name, _outputs(_stack(cloudformation, stack_name)))
    progress(f"Stack {stack_name}: {final}")
    return deployed


def destroy(target: Target, stack_name: str, progress: Progress = print, timeout: float = 1800.0) -> None:
    """Empty the stack's results bucket (CloudFormation deletes only an empty bucket), delete the stack and
    wait until it is gone."""
    cloudformation = target.client("cloudformation")
    stack = _stack(cloudformation, stack_name)
    if stack is None:
        raise DeployError(f"there is no stack named {stack_name}")
    bucket = _outputs(stack).get("ResultsBucketName")
    if bucket:
        _empty_bucket(target.client("s3"), bucket, progress)
    events = _Events(cloudformation, stack_name, progress)
    progress(f"Deleting stack {stack_name} ...")
    cloudformation.delete_stack(StackName=stack_name)
    final = _wait_for_stack(cloudformation, stack_name, events, timeout)
    if final != "DELETE_COMPLETE":
        detail = "; ".join(events.failures[:3]) or final
        raise DeployError(f"stack {stack_name} ended {final}: {detail}")
    progress(f"Stack {stack_name}: DELETE_COMPLETE")


def _empty_bucket(s3: Any, bucket: str, progress: Progress) -> None:
    removed = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            removed += len(keys)
    if removed:
        progress(f"Removed {removed} result object(s) from {bucket}")
