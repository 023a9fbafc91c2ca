"""The local stack's handlers wait for their runtime instead of running on defaults."""

from __future__ import annotations

import threading

import pytest

from jobpoll.errors import ToolingError
from jobpoll.local import HandlersAfterRuntime


def test_a_handler_resolved_before_the_runtime_is_installed_waits_for_it() -> None:
    handlers = HandlersAfterRuntime(timeout=5)
    resolved: list[object] = []
    worker = threading.Thread(target=lambda: resolved.append(handlers("app.start_job")))
    worker.start()
    worker.join(0.2)
    assert resolved == []  # still waiting
    handlers.ready.set()
    worker.join(5)
    assert callable(resolved[0])


def test_a_runtime_that_never_comes_fails_the_invocation_with_a_clear_error() -> None:
    with pytest.raises(ToolingError, match="never configured"):
        HandlersAfterRuntime(timeout=0.01)("app.start_job")
