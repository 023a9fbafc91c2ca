"""Structured logs: one JSON line per event, carrying the job id where there is one.

A line is a JSON object and nothing else (no prefix), so CloudWatch Logs Insights finds its fields
(`event`, `job_id`, `level`, ...) without parsing. The job's lifecycle events (started, polled, finished,
resumed, its callback delivered or failed) are the metrics' documents (chalicelib/metrics.py), one line each.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with `fields` as one JSON object on one line."""
    if logger.isEnabledFor(level):
        line = {"event": event, "level": logging.getLevelName(level), **fields}
        logger.log(level, json.dumps(line, default=str, sort_keys=True))


def json_lines(logger: logging.Logger) -> logging.Logger:
    """`logger` writing each message alone on its line to standard output (Lambda's log), not propagated."""
    if not any(getattr(handler, "_jobpoll_json_lines", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._jobpoll_json_lines = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
    return logger
