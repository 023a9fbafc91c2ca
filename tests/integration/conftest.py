from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import JobStore
from jobpoll.definition import table_properties


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
