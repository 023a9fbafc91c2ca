"""Fixtures for integration tests: a moto job store, the packaged stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import JobStore
from jobpoll.definition import table_properties
from jobpoll.package import Package, chalice_package, cloudformation_template

REGION = "us-east-1"
BUNDLE_BUCKET = "jobpoll-artifacts-123456789012-us-east-1"
BUNDLE_KEY = "jobpoll-dev/deployment.zip"


@pytest.fixture
def job_store() -> Iterator[JobStore]:
    """A JobStore on a moto DynamoDB table created from infra/template.json."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        properties = table_properties()
        properties.pop("TimeToLiveSpecification")
        properties.pop("PointInTimeRecoverySpecification")
        dynamodb.create_table(TableName="jobs", **properties)
        yield JobStore("jobs", dynamodb)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """`chalice package --merge-template` of functions/ + infra/template.json (stage dev), run once."""
    return chalice_package("dev", Path(tmp_path_factory.mktemp("package")), REGION)


@pytest.fixture(scope="session")
def transformed(packaged: Package) -> dict[str, Any]:
    """The packaged SAM template after the SAM transform, as it is deployed to AWS."""
    return cloudformation_template(packaged, REGION, BUNDLE_BUCKET, BUNDLE_KEY)
