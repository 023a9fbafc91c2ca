"""Errors the jobpoll tooling reports to its user as one line (the CLI prints them without a traceback)."""

from __future__ import annotations


class ToolingError(Exception):
    """Something the user can fix: the message says what and, where it can, how."""


class PackageError(ToolingError):
    """`chalice package` failed, or its output does not fit infra/template.json."""


class DeployError(ToolingError):
    """CloudFormation refused or rolled back the stack."""


class PortInUse(ToolingError):
    """A port the local stack needs is bound already."""

    def __init__(self, port: int, purpose: str) -> None:
        super().__init__(f"port {port} ({purpose}) is already in use; pick another with --{purpose}-port")
        self.port = port


class StackNotRunning(ToolingError):
    """The local stack a command acts on is not running (the message says how to start it)."""


class UnknownExecution(ToolingError):
    """No execution of that name or ARN."""
