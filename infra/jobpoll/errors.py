"""Errors the jobpoll tooling reports to its user as one line (the CLI prints them without a traceback)."""

from __future__ import annotations


class JobpollError(Exception):
    """Something the user can fix: the message says what and, where it can, how."""


class PackageError(JobpollError):
    """`chalice package` failed, or its output does not fit infra/template.json."""


class DeployError(JobpollError):
    """CloudFormation refused or rolled back the stack."""


class PortInUse(JobpollError):
    """A port the local stack needs is bound already."""

    def __init__(self, port: int, purpose: str) -> None:
        super().__init__(f"port {port} ({purpose}) is already in use; pick another with --{purpose}-port")
        self.port = port


class StackNotRunning(JobpollError):
    """The local stack a command acts on is not running (the message says how to start it)."""


class UnknownExecution(JobpollError):
    """No execution of that name or ARN."""
