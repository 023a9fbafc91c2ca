"""The `jobpoll` command: a thin dispatcher over the tooling modules.

A mistake the user can fix (JobpollError) prints one line on stderr and exits 1, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import JobpollError
from .paths import LOCAL_STATE
from .target import Target


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
    from .local import LocalOptions, up

    up(
        LocalOptions(
            api_port=args.api_port,
            aws_port=args.aws_port,
            speed=args.speed,
            region=args.region,
            state_file=args.state_file,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpoll", description="Deploy and run jobpoll.")
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
    up.add_argument("--speed", type=_positive, default=1.0, help="run waits X times faster (default 1)")
    up.add_argument("--region", default="us-east-1", help="region of the emulated stack (default us-east-1)")
    up.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    up.set_defaults(handler=cmd_local_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (JobpollError, BotoCoreError, ClientError) as exc:
        # Missing credentials, an unreachable endpoint, a denied call: the user's to fix, in one line.
        print(f"jobpoll: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
