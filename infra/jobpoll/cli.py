"""The `jobpoll` command: a thin dispatcher over the tooling modules.

A mistake the user can fix (ToolingError) prints one line on stderr and exits 1, without a traceback.
Console commands (`executions`, `jobs`) act on `--local` (the default) or `--stack NAME`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import render
from .errors import PortInUse, ToolingError
from .paths import LOCAL_STATE
from .target import Target

if TYPE_CHECKING:
    from .console import Console


STATUS_CHOICES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
JOB_STATUS_CHOICES = ("QUEUED", "PENDING", "RUNNING", "COMPLETE", "FAILED", "CANCELED")
DEMO_SPEED = 10.0
DEFAULT_ISSUER_PORT = 8002
AUTH_CHOICES = ("iam", "jwt", "cognito")


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: the profile's, else us-east-1)")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--endpoint-url", help="deploy into an AWS emulation instead (e.g. `jobpoll local up`'s endpoint)"
    )


def _target(args: argparse.Namespace) -> Target:
    return Target(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)


def cmd_deploy(args: argparse.Namespace) -> int:
    from .deploy import deploy

    deployed = deploy(
        args.stage,
        _target(args),
        stack_name=args.stack,
        bucket=args.bucket,
        parameters=dict(args.parameter or []),
        auth=args.auth,
    )
    print(
        f"API URL:        {deployed.api_url or '(none: the app has no routes, or the emulation serves it)'}"
    )
    print(f"State machine:  {deployed.state_machine_arn}")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from .deploy import default_stack_name, destroy

    destroy(_target(args), args.stack or default_stack_name(args.stage))
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    from .local import LocalOptions, read_http_profiles, up

    up(
        LocalOptions(
            api_port=args.api_port,
            aws_port=args.aws_port,
            console_port=args.console_port,
            issuer_port=args.issuer_port,
            speed=args.speed,
            region=args.region,
            state_file=args.state_file,
            http_profiles=read_http_profiles(args.http_profiles) if args.http_profiles else "",
            fresh=args.fresh,
            fault_plan=args.fault_plan,
            profile_dir=args.profile,
        )
    )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token the local stack's issuer signs (its key is made on first use)."""
    from .local import local_issuer

    issuer = local_issuer(args.state_file, args.issuer_port)
    print(issuer.token(args.sub, args.scope.split(), seconds=int(args.ttl)))
    return 0


def _console(args: argparse.Namespace) -> Console:
    from .console import connect

    return connect(args.stack, _target(args), args.state_file, args.token)


def _show(args: argparse.Namespace, value: Any, text: str) -> None:
    print(render.to_json(value) if args.json else text)


def cmd_executions_start(args: argparse.Namespace) -> int:
    from .executions import parse_input

    execution_input = parse_input(args.input)
    executions = _console(args).executions()
    started = executions.start(execution_input, args.name)
    if args.follow:
        return _follow(args, executions, started["executionArn"])
    _show(args, started, f"started execution {started['name']}\n  {started['executionArn']}")
    return 0


def cmd_executions_list(args: argparse.Namespace) -> int:
    found = _console(args).executions().list(args.status, args.limit)
    _show(args, found, render.executions_table(found) if found else "no executions")
    return 0


def cmd_executions_describe(args: argparse.Namespace) -> int:
    described = _console(args).executions().describe(args.id)
    _show(args, described, render.execution_fields(described))
    return 0


def cmd_executions_history(args: argparse.Namespace) -> int:
    events = _console(args).executions().history(args.id)
    _show(args, events, render.events_table(events))
    return 0


def cmd_executions_stop(args: argparse.Namespace) -> int:
    described = _console(args).executions().stop(args.id, args.cause)
    _show(args, described, f"execution {described['name']}: {described['status']}")
    return 0


def cmd_executions_follow(args: argparse.Namespace) -> int:
    return _follow(args, _console(args).executions(), args.id)


def _follow(args: argparse.Namespace, executions: Any, execution: str) -> int:
    def out(line: str) -> None:
        print(line, flush=True)

    followed = executions.follow(execution, out=(lambda _: None) if args.json else out)
    if args.json:
        print(render.to_json({"status": followed.final["status"], "executions": followed.executions}))
    return 0 if followed.succeeded else 1


def _job_body(args: argparse.Namespace) -> Any:
    from .executions import parse_input

    body = parse_input(args.input)
    if args.provider:
        body = {"provider": args.provider, "input": body}
    return body


def cmd_jobs_submit(args: argparse.Namespace) -> int:
    jobs = _console(args).jobs()
    job = jobs.submit(_job_body(args), args.idempotency_key)
    if args.wait:
        return _wait(args, jobs, job["id"])
    _show(args, job, f"submitted job {job['id']}: {job['status']}")
    return 0


def cmd_jobs_get(args: argparse.Namespace) -> int:
    job = _console(args).jobs().get(args.id)
    _show(args, job, render.job_fields(job))
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    found = _console(args).jobs().list(args.status, args.limit)
    _show(args, found, render.jobs_table(found) if found else "no jobs")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    job = _console(args).jobs().cancel(args.id)
    if job is None:
        _show(args, {"id": args.id, "deleted": True}, f"job {args.id} had finished: its output is deleted")
    else:
        _show(args, job, f"job {job['id']}: {job['status']}")
    return 0


def cmd_jobs_result(args: argparse.Namespace) -> int:
    print(render.to_json(_console(args).jobs().result(args.id)))
    return 0


def cmd_jobs_share(args: argparse.Namespace) -> int:
    link = _console(args).jobs().share(args.id, args.expires_in)
    _show(args, link, f"{link['url']}\n(share id {link['id']}, expires {link['expires_at']})")
    return 0


def cmd_jobs_unshare(args: argparse.Namespace) -> int:
    _console(args).jobs().unshare(args.id, args.share_id)
    _show(args, {"id": args.share_id, "revoked": True}, f"share link {args.share_id} revoked")
    return 0


def cmd_jobs_wait(args: argparse.Namespace) -> int:
    return _wait(args, _console(args).jobs(), args.id)


def _wait(args: argparse.Namespace, jobs: Any, job_id: str) -> int:
    if args.json:
        job = jobs.wait(job_id, lambda _: None, args.timeout)
    else:
        progress = render.JobProgress()
        job = jobs.wait(job_id, progress, args.timeout, on_pause=progress.waiting)
    if args.json:
        print(render.to_json(job))
    else:
        print(render.job_summary(job))
    return 0 if job["status"] == "COMPLETE" else 1


def cmd_console(args: argparse.Namespace) -> int:
    from .console import START_LOCAL, connect
    from .web_console import ConsoleServer, Stack

    hint = f"deploy it with: jobpoll deploy --stage STAGE --stack {args.stack}" if args.stack else START_LOCAL
    target = _target(args)
    served_by = "jobpoll console" + (f" --stack {args.stack}" if args.stack else "")
    stack = Stack(lambda: connect(args.stack, target, args.state_file), hint, served_by)
    try:
        server = ConsoleServer(args.port, stack)
    except PortInUse:
        raise ToolingError(f"port {args.port} is already in use; pick another with --port") from None
    print(f"Web console:    {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_new_provider(args: argparse.Namespace) -> int:
    from .paths import ROOT
    from .scaffold import new_provider

    written = new_provider(args.name, args.kind)
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"next: python -m pytest -q -k {args.name.replace('-', '_')}")
    return 0


def cmd_providers_list(args: argparse.Namespace) -> int:
    found = _console(args).jobs().providers()
    _show(args, found, render.providers_table(found))
    return 0


def cmd_providers_describe(args: argparse.Namespace) -> int:
    provider = _console(args).jobs().provider(args.name)
    _show(args, provider, render.provider_fields(provider))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.speed, main)


def _console_options() -> argparse.ArgumentParser:
    """Options every console command takes: where it acts, and how it answers."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("target (default: --local)")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument("--local", action="store_true", help="the stack `jobpoll local up` runs")
    choice.add_argument("--stack", metavar="NAME", help="a deployed stack, e.g. jobpoll-dev")
    where.add_argument("--region", help="--stack: AWS region (default: the profile's, else us-east-1)")
    where.add_argument("--profile", help="--stack: AWS named profile")
    where.add_argument("--endpoint-url", help="--stack: a stack in an AWS emulation")
    where.add_argument(
        "--token",
        default=os.environ.get("JOBPOLL_TOKEN"),
        help="--stack: a bearer token for a jwt or cognito stack (default $JOBPOLL_TOKEN; none: SigV4)",
    )
    where.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    options.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of text")
    return options


def _add_console_commands(commands: Any) -> None:
    common = _console_options()

    def add(group: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        parser.set_defaults(handler=handler)
        return parser

    executions = commands.add_parser("executions", help="the poller state machine's executions")
    group = executions.add_subparsers(dest="executions_command", required=True, metavar="COMMAND")
    start = add(group, "start", cmd_executions_start, "start an execution")
    start.add_argument("--input", required=True, help="the execution input, JSON, e.g. '{\"delay\": 20}'")
    start.add_argument("--name", help="the execution's name, which is the job id (default: generated)")
    start.add_argument("--follow", action="store_true", help="then follow it (as `executions follow`)")
    listing = add(group, "list", cmd_executions_list, "list executions, newest first")
    listing.add_argument("--status", type=str.upper, choices=STATUS_CHOICES, help="only these")
    listing.add_argument("--limit", type=int, help="at most this many")
    add(group, "describe", cmd_executions_describe, "an execution's status, input and output").add_argument(
        "id", help="execution name (job id) or ARN"
    )
    add(group, "history", cmd_executions_history, "an execution's events").add_argument(
        "id", help="execution name (job id) or ARN"
    )
    stop = add(group, "stop", cmd_executions_stop, "stop a running execution")
    stop.add_argument("id", help="execution name (job id) or ARN")
    stop.add_argument("--cause", help="why (recorded on the execution)")
    add(
        group,
        "follow",
        cmd_executions_follow,
        "print each state transition as it happens, through continued executions; exit 0 on SUCCEEDED",
    ).add_argument("id", help="execution name (job id) or ARN")

    jobs = commands.add_parser("jobs", help="jobs, through the REST API")
    group = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    submit = add(group, "submit", cmd_jobs_submit, "submit a job (POST /jobs)")
    submit.add_argument(
        "--input", required=True, help="the job request or, with --provider, its input (JSON)"
    )
    submit.add_argument("--provider", help="the provider, e.g. simulated-stream; --input is then its input")
    submit.add_argument("--idempotency-key", help="the same key and body return the same job")
    submit.add_argument("--wait", action="store_true", help="then wait for it (as `jobs wait`)")
    submit.add_argument("--timeout", type=_positive, help=argparse.SUPPRESS)
    add(group, "get", cmd_jobs_get, "a job (GET /jobs/ID)").add_argument("id", help="job id")
    listing = add(group, "list", cmd_jobs_list, "your jobs, newest first (GET /jobs)")
    listing.add_argument("--status", type=str.upper, choices=JOB_STATUS_CHOICES, help="only these")
    listing.add_argument("--limit", type=int, help="at most this many")
    add(
        group, "cancel", cmd_jobs_cancel, "cancel a running job; a finished one's output is deleted"
    ).add_argument("id", help="job id")
    add(group, "result", cmd_jobs_result, "a finished job's result (GET /jobs/ID/result)").add_argument(
        "id", help="job id"
    )
    share = add(
        group, "share", cmd_jobs_share, "a link anyone can read the result with (POST /jobs/ID/shares)"
    )
    share.add_argument("id", help="job id")
    share.add_argument("--expires-in", type=int, metavar="SECONDS", help="the link's lifetime (default 3600)")
    unshare = add(group, "unshare", cmd_jobs_unshare, "revoke a share link (DELETE /jobs/ID/shares/SHARE_ID)")
    unshare.add_argument("id", help="job id")
    unshare.add_argument("share_id", help="the share id `jobs share` printed")
    wait = add(group, "wait", cmd_jobs_wait, "show a job's progress until it ends; exit 0 when it completes")
    wait.add_argument("id", help="job id")
    wait.add_argument("--timeout", type=_positive, help="give up after this many seconds (exit 1)")

    console = commands.add_parser(
        "console",
        help="serve the web console for the local stack or a deployed one (--stack NAME)",
        description="Serve the web console on 127.0.0.1: executions on their state graph, jobs, live.",
        parents=[common],
    )
    console.add_argument("--port", type=int, default=8001, help="its port (default 8001; 0: any free one)")
    console.set_defaults(handler=cmd_console)

    providers = commands.add_parser("providers", help="the providers a job can name (GET /providers)")
    group = providers.add_subparsers(dest="providers_command", required=True, metavar="COMMAND")
    add(group, "list", cmd_providers_list, "every provider: kind, whether it can notify, an example")
    add(
        group, "describe", cmd_providers_describe, "one provider: its input schema and examples"
    ).add_argument("name", help="provider name")

    demo = commands.add_parser(
        "demo",
        help="the README demo: a local stack, the seed and a failing execution, a streaming job",
        description="Start a local stack on free ports, run the scenarios through the console, stop it.",
    )
    demo.add_argument(
        "--speed",
        type=_positive,
        default=DEMO_SPEED,
        help=f"waits run X times faster (default {DEMO_SPEED:g})",
    )
    demo.set_defaults(handler=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpoll", description="Deploy, run and watch jobpoll.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deploy = commands.add_parser("deploy", help="package and deploy a stage to AWS (or an emulation)")
    deploy.add_argument("--stage", required=True, help="chalice stage, e.g. dev")
    deploy.add_argument("--stack", help="CloudFormation stack name (default: jobpoll-STAGE)")
    deploy.add_argument(
        "--bucket", help="S3 bucket for the bundle (default: jobpoll-artifacts-ACCOUNT-REGION)"
    )
    deploy.add_argument(
        "--parameter",
        action="append",
        type=_parameter,
        metavar="KEY=VALUE",
        help="stack parameter, repeatable (TableName, DefaultWaitSeconds, DefaultMaxTries, JobTtlSeconds)",
    )
    deploy.add_argument(
        "--auth",
        choices=AUTH_CHOICES,
        default="iam",
        help="who may call the API: iam (SigV4, default), jwt (an OIDC issuer's bearer tokens: "
        "--parameter JwtIssuer=URL --parameter JwtAudience=AUD), cognito (a user pool's access tokens)",
    )
    _target_options(deploy)
    deploy.set_defaults(handler=cmd_deploy)

    destroy = commands.add_parser("destroy", help="delete a stage's stack")
    destroy.add_argument("--stage", default="dev", help="stage whose stack to delete (default: dev)")
    destroy.add_argument("--stack", help="CloudFormation stack name (default: jobpoll-STAGE)")
    _target_options(destroy)
    destroy.set_defaults(handler=cmd_destroy)

    local = commands.add_parser("local", help="the local emulation")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser("up", help="run the stack locally (moto + chalice local) until Ctrl-C")
    up.add_argument("--api-port", type=int, default=8000, help="chalice local's port (default 8000)")
    up.add_argument("--aws-port", type=int, default=5000, help="the AWS emulation's port (default 5000)")
    up.add_argument(
        "--console-port",
        type=int,
        default=8001,
        help="the web console's port (default 8001; 0: any free one)",
    )
    up.add_argument(
        "--issuer-port",
        type=int,
        default=DEFAULT_ISSUER_PORT,
        help=f"the local token issuer's port (default {DEFAULT_ISSUER_PORT}): its URL is the tokens' iss",
    )
    up.add_argument("--speed", type=_positive, default=1.0, help="run waits X times faster (default 1)")
    up.add_argument("--region", default="us-east-1", help="region of the emulated stack (default us-east-1)")
    up.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    up.add_argument(
        "--fresh",
        action="store_true",
        help="start with no jobs (default: the jobs an earlier run left under .jobpoll/state/ are restored)",
    )
    up.add_argument(
        "--http-profiles",
        type=Path,
        metavar="FILE",
        help='the http provider\'s profiles, JSON: {"NAME": {"base_url": ..., "headers": {...}}}',
    )
    up.add_argument(
        "--fault-plan",
        type=Path,
        metavar="FILE",
        help='inject faults at seeded rates, JSON: {"seed": 7, "dynamodb_throttle": 0.01, ...} '
        "(README: Soak); counted under .jobpoll/state/",
    )
    up.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile the stack's processes (every thread); their stats go to DIR/*.pstats when it stops",
    )
    up.set_defaults(handler=cmd_local_up)

    token = commands.add_parser(
        "token",
        help="print a bearer token signed by the local stack's issuer",
        description="Print a bearer token the local stack accepts (its issuer's key is kept with its state).",
    )
    token.add_argument("--sub", required=True, help="the caller (the token's subject), e.g. alice")
    token.add_argument(
        "--scope",
        default="jobs:submit jobs:read jobs:cancel",
        help="space-separated scopes (default: 'jobs:submit jobs:read jobs:cancel'; also jobs:operator)",
    )
    token.add_argument(
        "--ttl", type=_positive, default=3600, help="seconds the token is valid (default 3600)"
    )
    token.add_argument(
        "--issuer-port",
        type=int,
        default=DEFAULT_ISSUER_PORT,
        help=f"where the issuer is, if its key is yet to be made (default {DEFAULT_ISSUER_PORT})",
    )
    token.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    token.set_defaults(handler=cmd_token)

    new = commands.add_parser("new", help="scaffold a part of your own")
    new_commands = new.add_subparsers(dest="new_command", required=True, metavar="COMMAND")
    provider = new_commands.add_parser(
        "provider",
        help="a working provider, its tests (the conformance kit), and its line in the registry",
        description="Write functions/chalicelib/providers/NAME.py and tests/providers/test_NAME_provider.py, "
        "and register NAME in functions/chalicelib/providers.json.",
    )
    provider.add_argument("name", help="lowercase letters and digits, words joined by '-', e.g. acme")
    provider.add_argument(
        "--kind",
        choices=("poll", "engine", "worker"),
        default="poll",
        help="the provider's kind (default poll)",
    )
    provider.set_defaults(handler=cmd_new_provider)
    _add_console_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except NoCredentialsError:
        print(
            "jobpoll: AWS credentials not found: configure them (aws configure, AWS_PROFILE, or --profile)",
            file=sys.stderr,
        )
        return 1
    except (ToolingError, BotoCoreError, ClientError) as exc:
        # Missing credentials, an unreachable endpoint, a denied call: the user's to fix, in one line.
        print(f"jobpoll: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `jobpoll ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes it at exit)
        return 1


if __name__ == "__main__":
    sys.exit(main())
