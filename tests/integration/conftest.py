from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from api_harness import Api, make_api
from moto import mock_aws

from chalicelib.store import JobStore
from jobpoll.definition import table_properties
from jobpoll.emulation import Emulation


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


@pytest.fixture
def api(emulation: Emulation) -> Api:
    """The REST API in local mode (callers alice and bob) on the emulation, auto-advancing virtual time."""
    return make_api(emulation)
