"""Per-caller limits: API requests per second and jobs in flight, so one tenant cannot starve the others.

Requests are counted per owner and second in a conditional counter (an item of the job table that no listing
sees: it has no `owner`, and DynamoDB's TTL removes it); the write that would pass the limit fails its
condition and the request is refused. API Gateway usage plans do not fit: they meter API keys, not the
callers an authorizer names. Jobs in flight are counted on the owner index at submission.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from .errors import TooManyRequests
from .store import KEY, OWNER_INDEX, TTL_ATTRIBUTE

COUNTER_PREFIX = "limit#"
UNFINISHED = ("QUEUED", "PENDING", "RUNNING")
# A counter outlives its second by this much before DynamoDB's TTL may remove it.
COUNTER_TTL_SECONDS = 120


class CallerLimits:
    """Raises TooManyRequests (with the seconds to wait) when a caller is over a limit; 0 turns one off."""

    def __init__(
        self,
        table_name: str,
        dynamodb: Any,
        requests_per_second: int,
        jobs_in_flight: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self.dynamodb = dynamodb
        self.requests_per_second = requests_per_second
        self.jobs_in_flight = jobs_in_flight
        self._now = now

    @classmethod
    def off(cls) -> CallerLimits:
        """No limits (a runtime built without a table)."""
        return cls("", None, 0, 0)

    def count_request(self, owner: str) -> None:
        """Count one request of `owner` in the current second; TooManyRequests past the limit."""
        if self.requests_per_second <= 0:
            return
        second = int(self._now())
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={KEY: {"S": f"{COUNTER_PREFIX}rate#{second}#{owner}"}},
                UpdateExpression="ADD #count :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self.requests_per_second)},
                    ":ttl": {"N": str(second + COUNTER_TTL_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise TooManyRequests(
                f"more than {self.requests_per_second} requests in one second", retry_after=1
            ) from None

    def check_jobs_in_flight(self, owner: str) -> None:
        """TooManyRequests when `owner` has as many unfinished jobs as it may have."""
        if self.jobs_in_flight <= 0:
            return
        names = {"#owner": "owner", "#status": "status"}
        values: dict[str, Any] = {":owner": {"S": owner}}
        values.update({f":s{index}": {"S": status} for index, status in enumerate(UNFINISHED)})
        statuses = ", ".join(f":s{index}" for index in range(len(UNFINISHED)))
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "FilterExpression": f"#status IN ({statuses})",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Select": "COUNT",
        }
        in_flight = 0
        while True:
            page = self.dynamodb.query(**query)
            in_flight += int(page.get("Count", 0))
            if in_flight >= self.jobs_in_flight:
                raise TooManyRequests(
                    f"{in_flight} jobs are not finished yet; at most {self.jobs_in_flight} may run at once",
                    retry_after=5,
                )
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
