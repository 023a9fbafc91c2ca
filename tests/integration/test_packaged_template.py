"""The packaged template: lint-clean before and after the SAM transform, least privilege, wiring."""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from chalicelib.settings import Settings
from jobpoll.emulation import DEAD_LETTER_QUEUE, WORK_QUEUE, Emulation
from jobpoll.local import every_provider
from jobpoll.package import Package, _references

REGIONS = ["us-east-1"]
# The functions the state machine invokes (one `${<Name>FunctionArn}` placeholder each).
POLL_LOOP_FUNCTIONS = ("StartJob", "GetJobStatus", "AwaitNotification", "RecordJobFailure")


def _lint(template: dict[str, Any]) -> list[str]:
    return [str(match) for match in lint(json.dumps(template, indent=1), config=ManualArgs(regions=REGIONS))]


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of a role's inline policies and of the policies (AWS::IAM::Policy) attached to it."""
    resources = template["Resources"]
    policies = list(resources[role]["Properties"]["Policies"])
    policies += [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


_PSEUDO = {"AWS::StackName": "jobpoll-dev", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}
_NO_VALUE = object()


def rendered(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The template as CloudFormation makes it for these parameters (others take their defaults): each
    condition decided, resources whose condition is false dropped, every Fn::If chosen, AWS::NoValue gone."""
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    values.update({**_PSEUDO, **parameters})

    def value(node: Any) -> Any:  # the intrinsic functions CloudFormation allows in Conditions
        if not isinstance(node, dict):
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            return values[argument]
        if function == "Condition":
            return decided(argument)
        if function == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], argument)
        if function == "Fn::Join":
            return argument[0].join(value(argument[1]))
        if function == "Fn::Split":
            return value(argument[1]).split(value(argument[0]))
        if function == "Fn::Equals":
            return value(argument[0]) == value(argument[1])
        if function == "Fn::Not":
            return not value(argument[0])
        if function == "Fn::And":
            return all(value(a) for a in argument)
        if function == "Fn::Or":
            return any(value(a) for a in argument)
        raise AssertionError(f"{function} in a condition")

    def decided(name: str) -> bool:
        return bool(value(template["Conditions"][name]))

    def chosen(node: Any) -> Any:
        if isinstance(node, list):
            return [c for c in (chosen(item) for item in node) if c is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if set(node) == {"Fn::If"}:
            condition, if_true, if_false = node["Fn::If"]
            return chosen(if_true if decided(condition) else if_false)
        return {k: c for k, c in ((k, chosen(v)) for k, v in node.items()) if c is not _NO_VALUE}

    result = chosen({k: v for k, v in template.items() if k not in ("Resources", "Conditions")})
    result["Conditions"] = {name: decided(name) for name in template.get("Conditions", {})}
    result["Resources"] = {
        name: chosen(resource)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or decided(resource["Condition"])
    }
    return dict(result)


def _parameter_reads(template: dict[str, Any], role: str, condition: str) -> list[dict[str, Any]]:
    """The role's ssm:GetParameter statements on the parameter that `condition` says is configured."""
    return [
        s
        for s in _statements(template, role)
        if s["Action"] == "ssm:GetParameter" and s["Resource"]["Fn::If"][0] == condition
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def test_the_packaged_sam_template_is_cfn_lint_clean(packaged: Package) -> None:
    assert _lint(packaged.template()) == []


def test_the_template_after_the_sam_transform_is_cfn_lint_clean(transformed: dict[str, Any]) -> None:
    assert "Transform" not in transformed
    assert _lint(transformed) == []


def test_cfn_lint_does_validate_the_inlined_definition(transformed: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(transformed))
    broken["Resources"]["PollerStateMachine"]["Properties"]["Definition"]["States"]["Wait"]["Type"] = "Sleep"
    assert any("E3601" in problem for problem in _lint(broken))


def test_the_state_machine_definition_is_the_asl_with_substitutions(packaged: Package) -> None:
    machine = packaged.template()["Resources"]["PollerStateMachine"]["Properties"]
    assert machine["Definition"]["StartAt"] == "StartJob"
    assert machine["DefinitionSubstitutions"]["StartJobFunctionArn"] == {"Fn::GetAtt": ["StartJob", "Arn"]}
    assert machine["TracingConfiguration"] == {"Enabled": {"Fn::If": ["TracingOn", True, False]}}
    assert machine["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"] == {
        "LogGroupArn": {"Fn::GetAtt": ["PollerLogGroup", "Arn"]}
    }


def test_the_poll_loop_functions_run_with_their_own_role_not_chalices(transformed: dict[str, Any]) -> None:
    for name in POLL_LOOP_FUNCTIONS:
        role = transformed["Resources"][name]["Properties"]["Role"]
        assert role == {"Fn::GetAtt": ["PollLoopFunctionRole", "Arn"]}


def test_the_poll_loop_role_reads_and_writes_job_items_and_nothing_else(transformed: dict[str, Any]) -> None:
    statements = _statements(transformed, "PollLoopFunctionRole")
    assert _actions(statements) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "ssm:GetParameter",  # the callback signing key, below
        "lambda:InvokeFunction",  # hands finished jobs' callbacks to DeliverCallback, below
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "s3:PutObject",  # large results, below
        "s3:DeleteObject",
        *PROVIDER_JOB_ACTIONS,  # start, read and cancel the AWS job services' work, below
    }
    (dynamodb,) = [s for s in statements if s["Action"][0].startswith("dynamodb:")]
    assert dynamodb["Resource"] == {"Fn::GetAtt": ["JobsTable", "Arn"]}
    assert not any("states:" in a for a in _actions(statements))


def test_functions_that_finish_jobs_may_read_the_callback_signing_key_and_no_other_parameter(
    transformed: dict[str, Any],
) -> None:
    for role in (
        "PollLoopFunctionRole",
        "NotifyJobRole",
        "RunQueuedJobRole",
        "FailDeadLetteredJobRole",
        "DeliverCallbackRole",
        "DefaultRole",
    ):
        (read,) = _parameter_reads(transformed, role, "HasCallbackSecret")
        configured, unset = read["Resource"]["Fn::If"][1:]
        assert configured["Fn::Sub"].endswith(":parameter${CallbackSecretParameter}")
        assert unset["Fn::Sub"].endswith(":parameter/${AWS::StackName}/no-callback-secret")
    for name in ("GetJobStatus", "NotifyJob", "RunQueuedJob", "APIHandler"):
        variables = transformed["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["JOBPOLL_CALLBACK_SECRET_PARAMETER"] == {"Ref": "CallbackSecretParameter"}, name


def test_only_the_functions_that_call_http_services_may_read_the_http_profiles(
    transformed: dict[str, Any],
) -> None:
    for role in ("PollLoopFunctionRole", "DefaultRole"):  # submit and poll; validate and cancel (the API)
        (read,) = _parameter_reads(transformed, role, "HasHttpProfiles")
        configured, unset = read["Resource"]["Fn::If"][1:]
        assert configured["Fn::Sub"].endswith(":parameter${HttpProfilesParameter}")
        assert unset["Fn::Sub"].endswith(":parameter/${AWS::StackName}/no-http-profiles")
    for role in ("NotifyJobRole", "RunQueuedJobRole", "FailDeadLetteredJobRole"):
        assert _parameter_reads(transformed, role, "HasHttpProfiles") == []
    for name in ("StartJob", "GetJobStatus", "RecordJobFailure", "APIHandler"):
        variables = transformed["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["JOBPOLL_HTTP_PROFILES_PARAMETER"] == {"Ref": "HttpProfilesParameter"}, name


def test_the_state_machine_may_invoke_exactly_the_poll_loop_functions(transformed: dict[str, Any]) -> None:
    statements = _statements(transformed, "PollerStateMachineRole")
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    targets = {json.dumps(r) for r in invoke["Resource"]}
    for name in POLL_LOOP_FUNCTIONS:
        assert json.dumps({"Fn::GetAtt": [name, "Arn"]}) in targets
    assert len(targets) == 2 * len(POLL_LOOP_FUNCTIONS)  # each function and its versions
    assert not any(a.startswith("dynamodb:") for a in _actions(statements))


def test_the_api_role_may_start_stop_and_describe_poller_executions_only(transformed: dict[str, Any]) -> None:
    statements = _statements(transformed, "DefaultRole")
    states = [s for s in statements if "states:" in json.dumps(s["Action"])]
    assert _actions(states) == {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"}
    assert "*" not in json.dumps([s["Resource"] for s in states]).replace(":*", "")
    dynamodb = [s for s in statements if "dynamodb:" in json.dumps(s["Action"])]
    assert {"Fn::Sub": "${JobsTable.Arn}/index/*"} in dynamodb[0]["Resource"]


def test_every_function_gets_the_table_and_the_state_machine_arn(transformed: dict[str, Any]) -> None:
    functions = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) >= 3
    for function in functions:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["JOBPOLL_TABLE"] == {"Ref": "JobsTable"}
        assert "stateMachine:${AWS::StackName}-poller" in variables["JOBPOLL_STATE_MACHINE_ARN"]["Fn::Sub"]
        assert variables["JOBPOLL_WAIT_SECONDS"] == {"Ref": "DefaultWaitSeconds"}
        assert variables["JOBPOLL_JOB_TTL_SECONDS"] == {"Ref": "JobTtlSeconds"}


def test_the_table_is_on_demand_with_ttl_recovery_and_its_indexes(transformed: dict[str, Any]) -> None:
    table = transformed["Resources"]["JobsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert list(indexes) == ["by-owner", "by-work-id", "by-unfinished"]
    assert indexes["by-work-id"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}  # the event's job id
    # The reconciler's sparse index: unfinished jobs by last update, keys only.
    unfinished = indexes["by-unfinished"]
    assert [key["AttributeName"] for key in unfinished["KeySchema"]] == ["open_shard", "updated_at"]
    assert unfinished["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_reconciler_runs_every_minute_and_may_only_resume_or_fail_jobs(
    transformed: dict[str, Any],
) -> None:
    resources = transformed["Resources"]
    rules = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in resource["Properties"]
    ]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(1 minute)"]
    assert rules[0]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Reconcile", "Arn"]}
    actions = _actions(_statements(transformed, "ReconcileRole"))  # its provider and queue actions: below
    assert {
        "dynamodb:Query",
        "states:StartExecution",
        "states:DescribeExecution",
        "sqs:SendMessage",
    } <= actions
    assert not {"states:StopExecution", "dynamodb:DeleteItem", "dynamodb:Scan"} & actions


PROVIDER_JOB_ACTIONS = {
    "transcribe:StartTranscriptionJob",
    "transcribe:GetTranscriptionJob",
    "transcribe:DeleteTranscriptionJob",
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:StopQueryExecution",
}


def test_each_role_gets_only_the_provider_actions_its_functions_call(transformed: dict[str, Any]) -> None:
    def provider_statements(role: str) -> list[dict[str, Any]]:
        return [s for s in _statements(transformed, role) if set(_actions([s])) & PROVIDER_JOB_ACTIONS]

    expected = {
        "PollLoopFunctionRole": PROVIDER_JOB_ACTIONS,  # submit, poll, cancel on a recorded failure
        "DefaultRole": {"transcribe:DeleteTranscriptionJob", "athena:StopQueryExecution"},  # DELETE /jobs
        "NotifyJobRole": {"transcribe:GetTranscriptionJob", "athena:GetQueryExecution"},  # the event's job
        "ReconcileRole": PROVIDER_JOB_ACTIONS,  # resumes (submits) or fails (cancels) stale jobs
        "RunQueuedJobRole": set(),
        "FailDeadLetteredJobRole": set(),
    }
    for role, actions in expected.items():
        statements = provider_statements(role)
        assert _actions(statements) == actions, role
        for statement in statements:
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                arn = resource["Fn::Sub"]
                assert arn.endswith(("transcription-job/jobpoll-*", "workgroup/*")), (role, arn)


def test_service_state_change_events_reach_notify_job(transformed: dict[str, Any]) -> None:
    rules = [
        r["Properties"]
        for r in transformed["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    ]
    sources = {(rule["EventPattern"]["source"][0], rule["EventPattern"]["detail-type"][0]) for rule in rules}
    from chalicelib.bootstrap import build_runtime
    from chalicelib.providers import NotifiesByEvent

    runtime = build_runtime(dynamodb=object(), sfn=object(), sqs=object())
    announced = {
        (p.event_source, p.event_detail_type)
        for p in runtime.providers.values()
        if isinstance(p, NotifiesByEvent)
    }
    assert (
        sources
        == announced
        == {
            ("aws.transcribe", "Transcribe Job State Change"),
            ("aws.athena", "Athena Query State Change"),
            ("jobpoll.simulated", "Simulated Work State Change"),
        }
    )
    for rule in rules:
        assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["NotifyJob", "Arn"]}]
    permissions = [
        r["Properties"] for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    notify_job = {"Fn::GetAtt": ["NotifyJob", "Arn"]}, {"Ref": "NotifyJob"}
    invoked_by_events = [
        p for p in permissions if p["Principal"] == "events.amazonaws.com" and p["FunctionName"] in notify_job
    ]
    assert len(invoked_by_events) == len(rules)
    index = [s for s in _statements(transformed, "NotifyJobRole") if s["Action"] == "dynamodb:Query"]
    assert [s["Resource"] for s in index] == [{"Fn::Sub": "${JobsTable.Arn}/index/by-work-id"}]


def test_the_state_machine_may_start_only_executions_of_itself(transformed: dict[str, Any]) -> None:
    statements = _statements(transformed, "PollerStateMachineRole")
    (start,) = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert start["Resource"]["Fn::Sub"].endswith(":stateMachine:${AWS::StackName}-poller")
    machine = transformed["Resources"]["PollerStateMachine"]["Properties"]
    assert machine["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-poller"}


def test_each_queue_function_consumes_only_its_own_queue(transformed: dict[str, Any]) -> None:
    for function, queue in (("RunQueuedJob", "WorkQueue"), ("FailDeadLetteredJob", "DeadLetterQueue")):
        role = transformed["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
        sqs = [s for s in _statements(transformed, role) if "sqs:" in json.dumps(s["Action"])]
        assert [s["Resource"] for s in sqs] == [{"Fn::GetAtt": [queue, "Arn"]}]
        (mapping,) = [
            r
            for r in transformed["Resources"].values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert mapping["Properties"]["EventSourceArn"] == {"Fn::Sub": f"${{{queue}.Arn}}"}


def test_only_notify_job_may_complete_a_task_token(transformed: dict[str, Any]) -> None:
    roles = [n for n, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    holders = {
        role
        for role in roles
        for s in _statements(transformed, role)
        if "states:SendTaskSuccess" in json.dumps(s["Action"])
    }
    assert holders == {"NotifyJobRole"}
    assert transformed["Resources"]["NotifyJob"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["NotifyJobRole", "Arn"]
    }


def test_the_api_role_reads_writes_and_lists_jobs_but_never_deletes_them(transformed: dict[str, Any]) -> None:
    statements = _statements(transformed, "DefaultRole")
    actions = _actions([s for s in statements if "Condition" not in s])
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    assert "sqs:SendMessage" in actions  # while a queue-mode provider is enabled (below)
    # The per-caller limits' counters: items keyed `limit#...` only, never a job.
    (counters,) = [s for s in statements if "Condition" in s]
    assert counters["Action"] == "dynamodb:UpdateItem"
    assert counters["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["limit#*"]}}


def test_only_the_api_may_read_the_share_key(transformed: dict[str, Any]) -> None:
    roles = [n for n, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    readers = {
        role: s
        for role in roles
        for s in _statements(transformed, role)
        if "no-share-key" in json.dumps(s.get("Resource"))
    }
    assert set(readers) == {"DefaultRole"}
    configured, _ = readers["DefaultRole"]["Resource"]["Fn::If"][1:]
    assert configured["Fn::Sub"].endswith(":parameter${ShareKeyParameter}")
    variables = transformed["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["JOBPOLL_SHARE_KEY_PARAMETER"] == {"Ref": "ShareKeyParameter"}


def test_the_results_bucket_is_encrypted_private_and_expires_what_is_left(
    transformed: dict[str, Any],
) -> None:
    bucket = transformed["Resources"]["ResultsBucket"]["Properties"]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"], rule["ExpirationInDays"]) == (
        "Enabled",
        "results/",
        {"Ref": "ResultRetentionDays"},
    )
    parameters = transformed["Parameters"]
    ttl_days = -(-parameters["JobTtlSeconds"]["Default"] // 86400)
    assert parameters["ResultRetentionDays"]["Default"] > ttl_days  # a backstop: after the job's expiry


def test_result_objects_are_written_by_the_finishers_and_read_by_the_api_only(
    transformed: dict[str, Any],
) -> None:
    objects = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ResultsBucket}/results/*"}
    roles = [n for n, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    access = {
        role: _actions([s for s in _statements(transformed, role) if "s3:" in json.dumps(s["Action"])])
        for role in roles
    }
    finishers = {"PollLoopFunctionRole", "NotifyJobRole", "RunQueuedJobRole"}
    assert {r for r, actions in access.items() if actions} == finishers | {"DefaultRole"}
    for role in finishers:
        assert access[role] == {"s3:PutObject", "s3:DeleteObject"}, role
    assert access["DefaultRole"] == {"s3:GetObject", "s3:DeleteObject"}
    for role in finishers | {"DefaultRole"}:
        assert [
            s["Resource"] for s in _statements(transformed, role) if "s3:" in json.dumps(s["Action"])
        ] == [objects]


@pytest.mark.parametrize(
    ("enabled", "may_enqueue"),
    [
        (None, True),  # the default: every simulated provider
        ("simulated,simulated-stream", True),
        ("simulated-stream", True),
        ("simulated,simulated-engine", False),
        ("simulated-streaming,x-simulated-stream", False),  # names match whole, not in part
    ],
)
def test_the_api_may_enqueue_work_only_while_a_queue_mode_provider_is_enabled(
    transformed: dict[str, Any], enabled: str | None, may_enqueue: bool
) -> None:
    template = rendered(transformed, **({"EnabledProviders": enabled} if enabled else {}))
    assert ("sqs:SendMessage" in _actions(_statements(template, "DefaultRole"))) is may_enqueue
    assert "Fn::If" not in json.dumps(template["Resources"]["DefaultRole"])


def test_every_provider_condition_names_a_provider_the_functions_register(
    transformed: dict[str, Any],
) -> None:
    """`<Name>Enabled` conditions (one per provider with AWS permissions) test whole names in the list."""
    registered = set(every_provider())
    conditions = {n: c for n, c in transformed["Conditions"].items() if n.endswith("Enabled")}
    assert conditions
    for name, condition in conditions.items():
        (provider,) = [p for p in registered if condition == _membership(p)] or [None]
        assert provider is not None, f"{name} is not the membership test of a registered provider"
        others = ",".join(sorted(registered - {provider}))
        assert rendered(transformed, EnabledProviders=provider)["Conditions"][name] is True
        assert rendered(transformed, EnabledProviders=others)["Conditions"][name] is False


@pytest.mark.parametrize(
    ("enabled", "absent"),
    [
        ("simulated", PROVIDER_JOB_ACTIONS | {"sqs:SendMessage", "http-profiles"}),
        (
            "simulated,http,aws-athena",
            {a for a in PROVIDER_JOB_ACTIONS if a.startswith("transcribe:")} | {"sqs:SendMessage"},
        ),
        (
            "simulated-stream,aws-transcribe",
            {a for a in PROVIDER_JOB_ACTIONS if a.startswith("athena:")} | {"http-profiles"},
        ),
    ],
)
def test_roles_get_no_actions_of_the_providers_a_stack_does_not_enable(
    transformed: dict[str, Any], enabled: str, absent: set[str]
) -> None:
    everything = rendered(transformed)
    template = rendered(transformed, EnabledProviders=enabled)
    roles = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]

    callback_dead_letters = {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}  # sent to whatever is enabled

    def granted(rendered_template: dict[str, Any]) -> set[str]:
        statements = [
            s
            for role in roles
            for s in _statements(rendered_template, role)
            if s["Resource"] != callback_dead_letters
        ]
        found = _actions(statements)
        if any("no-http-profiles" in json.dumps(s["Resource"]) for s in statements):
            found.add("http-profiles")
        return found

    assert absent <= granted(everything)  # all of them when every provider is enabled (the default)
    assert not absent & granted(template)
    assert granted(everything) - absent == granted(template)  # nothing else changes


def _membership(provider: str) -> dict[str, Any]:
    """The condition "`provider` is in EnabledProviders" (CloudFormation has no list membership: splitting
    ",<list>," at ",<provider>," changes it exactly when the provider is listed)."""
    listed = {"Fn::Sub": ",${EnabledProviders},"}
    return {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Fn::Split": [f",{provider},", listed]}]}, listed]}]
    }


def test_callbacks_are_delivered_by_their_own_function_that_the_finishers_may_only_invoke(
    transformed: dict[str, Any],
) -> None:
    deliver = transformed["Resources"]["DeliverCallback"]["Properties"]
    assert deliver["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-DeliverCallback"}
    assert deliver["Role"] == {"Fn::GetAtt": ["DeliverCallbackRole", "Arn"]}
    statements = _statements(transformed, "DeliverCallbackRole")
    assert _actions(statements) == {
        "dynamodb:GetItem",  # the job, and its callback's outcome
        "dynamodb:PutItem",
        "ssm:GetParameter",  # the callback signing key
        "sqs:SendMessage",  # a failed invocation, to the callback dead-letter queue (Lambda's DLQ)
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    (dead_letters,) = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    dead_letter_queue = {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}
    assert dead_letters["Resource"] == dead_letter_queue == deliver["DeadLetterConfig"]["TargetArn"]
    for role in (
        "PollLoopFunctionRole",
        "NotifyJobRole",
        "RunQueuedJobRole",
        "FailDeadLetteredJobRole",
        "DefaultRole",
    ):
        (invoke,) = [s for s in _statements(transformed, role) if s["Action"] == "lambda:InvokeFunction"]
        assert invoke["Resource"]["Fn::Sub"].endswith(":function:${AWS::StackName}-DeliverCallback"), role
    for name in ("GetJobStatus", "NotifyJob", "RunQueuedJob", "APIHandler"):
        variables = transformed["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["JOBPOLL_CALLBACK_FUNCTION"] == deliver["FunctionName"], name


def test_the_queue_workers_limits_in_the_packaged_template_follow_from_one_setting(
    transformed: dict[str, Any],
) -> None:
    settings = Settings()  # what packaging read: nothing set, the defaults
    worker = transformed["Resources"]["RunQueuedJob"]["Properties"]
    queue = transformed["Resources"]["WorkQueue"]["Properties"]
    assert (
        worker["Environment"]["Variables"]["JOBPOLL_QUEUE_JOB_MAX_SECONDS"] == settings.queue_job_max_seconds
    )
    assert worker["Timeout"] == settings.worker_timeout_seconds <= 900  # Lambda's longest
    assert queue["VisibilityTimeout"] == 6 * worker["Timeout"] <= 12 * 3600  # AWS's advice; SQS's longest
    assert settings.queue_job_max_seconds < worker["Timeout"]  # the worker stops a job before Lambda would
    assert (
        settings.lease_seconds <= queue["VisibilityTimeout"]
    )  # a redelivery finds a dead worker's lease lapsed
    assert settings.queue_job_max_seconds >= 90  # a job of a minute and a half fits (the measure)


def test_the_emulation_creates_its_resources_with_the_packaged_templates_settings(
    transformed: dict[str, Any], emulation: Emulation
) -> None:
    resources = transformed["Resources"]
    lambda_client = emulation.client("lambda")
    for name, arn in emulation.deployment.function_arns.items():
        timeout = lambda_client.get_function_configuration(FunctionName=arn)["Timeout"]
        assert timeout == resources[name]["Properties"]["Timeout"], name
    sqs = emulation.client("sqs")
    assert set(emulation.deployment.queues) == {
        name for name, resource in resources.items() if resource["Type"] == "AWS::SQS::Queue"
    }
    for name, (url, _) in emulation.deployment.queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        declared = resources[name]["Properties"]
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in declared:
                assert attributes[key] == str(declared[key]), (name, key)
    redrive = json.loads(
        sqs.get_queue_attributes(
            QueueUrl=emulation.deployment.queue_url(WORK_QUEUE), AttributeNames=["RedrivePolicy"]
        )["Attributes"]["RedrivePolicy"]
    )
    assert redrive["maxReceiveCount"] == transformed["Parameters"]["MaxReceiveCount"]["Default"] == 5
    assert redrive["deadLetterTargetArn"] == emulation.deployment.queues[DEAD_LETTER_QUEUE][1]
    table = emulation.client("dynamodb").describe_table(TableName=emulation.deployment.table_name)["Table"]
    declared_table = resources["JobsTable"]["Properties"]
    assert table["KeySchema"] == declared_table["KeySchema"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [
        i["IndexName"] for i in declared_table["GlobalSecondaryIndexes"]
    ]


def test_the_bundle_ships_the_provider_registry_and_every_provider_it_lists(packaged: Package) -> None:
    from chalicelib.providers.registry import REGISTRY_FILE, read_entries

    with zipfile.ZipFile(packaged.deployment_zip) as bundle:
        names = set(bundle.namelist())
        assert "chalicelib/providers.json" in names
        shipped = json.loads(bundle.read("chalicelib/providers.json"))["providers"]
    assert shipped == read_entries(REGISTRY_FILE)
    for target in shipped.values():
        assert target.partition(":")[0].replace(".", "/") + ".py" in names


def test_every_security_scanner_finding_left_is_skipped_with_its_reason(transformed: dict[str, Any]) -> None:
    """`make scan` (checkov) reports no failed check: the rest are skipped in infra/template.json, each
    with the reason it does not apply."""
    skips = [
        (name, skip)
        for name, resource in transformed["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV_AWS_"), name
        assert len(skip.get("comment", "")) > 40, f"{name} skips {skip['id']} without a reason"
    assert transformed["Resources"]["WorkQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _watched(alarm: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, metric, dimensions) of each metric an alarm reads (itself or in its metric math)."""
    if "Metrics" not in alarm:
        return [(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", []))]
    return [
        (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Metric"]["Dimensions"],
        )
        for q in alarm["Metrics"]
        if "MetricStat" in q
    ]


def test_the_alarms_watch_the_stacks_own_resources_and_notify_its_topic(transformed: dict[str, Any]) -> None:
    from chalicelib.metrics import JOBS_RESUMED

    resources = transformed["Resources"]
    alarms = _alarms(transformed)
    for name, alarm in alarms.items():
        known = set(resources) | set(transformed["Parameters"]) | {"AWS::StackName", "AWS::NoValue"}
        assert set(_references(alarm)) <= known, name
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert len(alarm["AlarmDescription"]) > 30, name
    watched = [metric for alarm in alarms.values() for metric in _watched(alarm)]

    # Every function: its errors and its throttles.
    functions = {n for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    for metric in ("Errors", "Throttles"):
        read = {d[0]["Value"]["Ref"] for ns, name, d in watched if (ns, name) == ("AWS/Lambda", metric)}
        assert read == functions, metric
    # Both dead-letter queues, the poller's failed and timed-out executions.
    queues = {(name, d[0]["Value"]["Fn::GetAtt"][0]) for ns, name, d in watched if ns == "AWS/SQS"}
    assert queues == {
        ("NumberOfMessagesReceived", "DeadLetterQueue"),  # drained at once by FailDeadLetteredJob
        ("ApproximateNumberOfMessagesVisible", "CallbackDeadLetterQueue"),
    }
    executions = {name for ns, name, d in watched if ns == "AWS/States"}
    assert executions == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert all(
        d == [{"Name": "StateMachineArn", "Value": {"Ref": "PollerStateMachine"}}]
        for ns, _, d in watched
        if ns == "AWS/States"
    )
    # The reconciler's resumes, in the namespace the functions write their metrics to, all providers.
    (resumes,) = [(ns, d) for ns, name, d in watched if name == JOBS_RESUMED]
    variables = resources["Reconcile"]["Properties"]["Environment"]["Variables"]
    assert resumes == (variables["JOBPOLL_METRICS_NAMESPACE"], [])


def test_alarms_are_mailed_only_where_an_address_is_given(transformed: dict[str, Any]) -> None:
    topic = rendered(transformed)["Resources"]["AlarmTopic"]["Properties"]
    assert "Subscription" not in topic
    mailed = rendered(transformed, AlarmEmail="ops@example.test")["Resources"]["AlarmTopic"]["Properties"]
    assert mailed["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]


def test_the_queue_worker_reserves_the_concurrency_its_event_source_may_use(
    transformed: dict[str, Any],
) -> None:
    def worker(**parameters: str) -> tuple[Any, Any]:
        resources = rendered(transformed, **parameters)["Resources"]
        (mapping,) = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"]["FunctionName"] == {"Ref": "RunQueuedJob"}
        ]
        reserved = resources["RunQueuedJob"]["Properties"].get("ReservedConcurrentExecutions")
        return reserved, mapping.get("ScalingConfig")

    concurrency = {"Ref": "WorkerConcurrency"}
    assert transformed["Parameters"]["WorkerConcurrency"]["Default"] == 10
    assert worker() == (concurrency, {"MaximumConcurrency": concurrency})
    assert worker(WorkerConcurrency="0") == (None, None)  # unreserved, Lambda's own scaling


def test_a_failed_callback_invocation_goes_to_the_callback_dead_letter_queue(
    transformed: dict[str, Any],
) -> None:
    deliver = transformed["Resources"]["DeliverCallback"]
    assert deliver["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["CallbackDeadLetterQueue", "Arn"]}
    }
    skipped = {skip["id"] for skip in deliver["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_116" not in skipped  # the dead-letter queue is there: nothing to skip
    worker = transformed["Resources"]["RunQueuedJob"]
    assert "CKV_AWS_115" not in {skip["id"] for skip in worker["Metadata"]["checkov"]["skip"]}
