"""Amazon Athena queries: StartQueryExecution, then GetQueryExecution until the query ends.

The work id is the query execution id. The result is where Athena wrote the output and the query's
statistics; `cancel` stops the query. Athena announces state changes on EventBridge (`Athena Query State
Change`), which infra/template.json routes to NotifyJob, so a job submitted with `notify: true` completes
without being polled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ProviderError
from ..job import JobError
from .aws_service import NON_BLANK, call, cancel_call, checked_object, json_safe
from .base import PollResult, WorkState

_STATES = {
    "QUEUED": WorkState.PENDING,
    "RUNNING": WorkState.RUNNING,
    "SUCCEEDED": WorkState.SUCCEEDED,
    "FAILED": WorkState.FAILED,
    "CANCELLED": WorkState.FAILED,  # stopped by someone else: jobpoll's own cancel marks the job first
}
_SERVICE = "Amazon Athena"


class AthenaProvider:
    """Amazon Athena: a SQL query, run by StartQueryExecution and polled with GetQueryExecution."""

    name = "aws-athena"
    kind = "poll"
    aws_service = "athena"  # the registry gives the constructor this service's client
    can_notify = True
    # The service's state-change event on EventBridge (its documented source and detail-type).
    event_source = "aws.athena"
    event_detail_type = "Athena Query State Change"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["query"],
        "additionalProperties": False,
        "properties": {
            "query": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 262144,
                "description": "the SQL statement to run",
            },
            "database": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 255,
                "description": "the database it runs in",
            },
            "catalog": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 256,
                "description": "the data catalog (AwsDataCatalog)",
            },
            "workgroup": {
                "type": "string",
                "pattern": NON_BLANK,
                "maxLength": 128,
                "description": "the workgroup (primary)",
            },
            "output_location": {
                "type": "string",
                "pattern": "^s3://",
                "maxLength": 1024,
                "description": "where Athena writes the result (s3://bucket/prefix/); else the workgroup's",
            },
            "parameters": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 100,
                "description": "values for the query's ? placeholders, in order",
            },
        },
    }
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "query": "SELECT status, count(*) FROM logs.requests GROUP BY status",
            "output_location": "s3://my-athena-results/jobpoll/",
        },
        {"query": "SELECT * FROM sales WHERE region = ?", "database": "shop", "parameters": ["'emea'"]},
    ]

    def __init__(self, client: Any) -> None:
        self._client = client

    def validate(self, request: Any) -> dict[str, Any]:
        return checked_object(request, self.name, self.input_schema)

    def submit(self, request: dict[str, Any]) -> str:
        parameters: dict[str, Any] = {"QueryString": request["query"]}
        context = {
            key: request[field]
            for field, key in (("database", "Database"), ("catalog", "Catalog"))
            if field in request
        }
        if context:
            parameters["QueryExecutionContext"] = context
        if "output_location" in request:
            parameters["ResultConfiguration"] = {"OutputLocation": request["output_location"]}
        if "workgroup" in request:
            parameters["WorkGroup"] = request["workgroup"]
        if "parameters" in request:
            parameters["ExecutionParameters"] = request["parameters"]
        started = call(_SERVICE, self._client.start_query_execution, **parameters)
        return str(started["QueryExecutionId"])

    def poll(self, work_id: str) -> PollResult:
        execution = call(_SERVICE, self._client.get_query_execution, QueryExecutionId=work_id)[
            "QueryExecution"
        ]
        status = execution.get("Status", {})
        state_name = str(status.get("State", ""))
        state = _STATES.get(state_name)
        if state is None:
            raise ProviderError(f"{_SERVICE} answered an unknown query state {state_name!r}")
        if state is WorkState.SUCCEEDED:
            result = {
                "query_execution_id": work_id,
                "output_location": execution.get("ResultConfiguration", {}).get("OutputLocation"),
                "statistics": json_safe(execution.get("Statistics", {})),
            }
            return PollResult(state, progress=1.0, result=result, provider_status=state_name)
        if state is WorkState.FAILED:
            reason = (
                status.get("StateChangeReason")
                or status.get("AthenaError", {}).get("ErrorMessage")
                or f"Amazon Athena reported the query {state_name}"
            )
            code = "QueryCancelled" if state_name == "CANCELLED" else "QueryFailed"
            return PollResult(state, error=JobError(code, reason), provider_status=state_name)
        return PollResult(state, provider_status=state_name)

    def cancel(self, work_id: str) -> None:
        cancel_call(_SERVICE, self._client.stop_query_execution, "not found", QueryExecutionId=work_id)

    def work_id_of_event(self, event: dict[str, Any]) -> str | None:
        """The work id an `Athena Query State Change` event is about."""
        execution_id = (event.get("detail") or {}).get("queryExecutionId")
        return execution_id if isinstance(execution_id, str) and execution_id else None
