"""How the console shows things: aligned tables, JSON for scripts, a live progress line."""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from .executions import state_detail

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=_jsonable, sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as an aligned text table with a header line (no trailing spaces)."""
    cells = [[h for h, _ in columns]] + [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def fields(record: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    """One `key: value` line per field."""
    keys = list(keys) if keys is not None else list(record)
    width = max((len(k) for k in keys), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {cell(record.get(k))}" for k in keys if k in record)


def bar(fraction: float, width: int = 24) -> str:
    fraction = min(1.0, max(0.0, fraction))
    done = round(fraction * width)
    return "[" + "#" * done + "-" * (width - done) + f"] {fraction:4.0%}"


class JobProgress:
    """Shows a job while it runs: on a terminal one line redrawn in place (bar, status, tries, the end of
    the partial output); elsewhere a line per change, with the partial output's new text."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._last: tuple[Any, ...] | None = None
        self._output = ""
        self._job: dict[str, Any] = {}

    def __call__(self, job: dict[str, Any]) -> None:
        self._job = job
        status = job.get("status", "?")
        progress = job.get("progress") or 0.0
        partial = job.get("partial_output") or ""
        head = self._head(job)
        if self.live:
            self._draw(head, partial.replace("\n", " "))
            if status in ("COMPLETE", "FAILED", "CANCELED"):
                self.stream.write("\n")
                self.stream.flush()
            return
        state = (status, round(progress, 1), job.get("try_count"), len(partial), job.get("provider_status"))
        if state == self._last:
            return
        self._last = state
        new = partial[len(self._output) :] if partial.startswith(self._output) else partial
        self._output = partial
        self.stream.write(head + (f"  + {new.strip()!r}" if new.strip() else "") + "\n")
        self.stream.flush()

    def waiting(self, seconds_left: float) -> None:
        """Between looks at the job: on a terminal, redraw the line with when the next look comes."""
        if self.live and self._job:
            head = f"{self._head(self._job)}  next look in {math.ceil(seconds_left)} s"
            self._draw(head, (self._job.get("partial_output") or "").replace("\n", " "))

    @staticmethod
    def _head(job: dict[str, Any]) -> str:
        tries = f"tries {job.get('try_count', 0)}/{job.get('max_tries', '?')}"
        head = f"{bar(job.get('progress') or 0.0)}  {job.get('status', '?'):<8} {tries}"
        if job.get("provider_status"):  # the service's own word for it, e.g. Transcribe's IN_PROGRESS
            head += f"  ({job['provider_status']})"
        return head

    def _draw(self, head: str, tail: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        tail = tail[-max(0, width - len(head) - 4) :] if tail else ""
        line = head + (f"  {tail}" if tail else "")
        self.stream.write("\r\033[K" + line[: width - 1])
        self.stream.flush()


# What the console shows of executions, their events and jobs.
_EXECUTION_COLUMNS: list[Column] = [
    ("NAME", lambda e: e["name"]),
    ("STATUS", lambda e: e["status"]),
    ("STARTED (UTC)", lambda e: e.get("startDate")),
    ("STOPPED (UTC)", lambda e: e.get("stopDate")),
]
_EVENT_COLUMNS: list[Column] = [
    ("ID", lambda e: e["id"]),
    ("TIME (UTC)", lambda e: e["timestamp"].strftime("%H:%M:%S.%f")[:-3]),
    ("TYPE", lambda e: e["type"]),
    ("STATE / DETAIL", lambda e: _event_detail(e)),
]
_JOB_COLUMNS: list[Column] = [
    ("ID", lambda j: j["id"]),
    ("STATUS", lambda j: j["status"]),
    ("PROVIDER", lambda j: j.get("provider")),
    ("TRIES", lambda j: j.get("try_count")),
    ("PROGRESS", lambda j: f"{j.get('progress') or 0:.0%}"),
    ("CREATED (UTC)", lambda j: j.get("created_at")),
]
_JOB_FIELDS = (
    "id", "status", "provider_status", "provider", "input", "progress", "try_count", "max_tries",
    "resumes", "created_at", "updated_at", "next_poll_at", "error", "result_available", "partial_output",
)  # fmt: skip
_PROVIDER_COLUMNS: list[Column] = [
    ("NAME", lambda p: p["name"]),
    ("KIND", lambda p: p["kind"]),
    ("NOTIFY", lambda p: "yes" if p.get("can_notify") else "no"),
    ("EXAMPLE INPUT", lambda p: (p.get("examples") or [None])[0]),
]
_EXECUTION_FIELDS = (
    "name",
    "status",
    "startDate",
    "stopDate",
    "input",
    "output",
    "error",
    "cause",
    "executionArn",
)


def _event_detail(event: dict[str, Any]) -> str:
    """The state an event concerns, and what the handler left on the job (or the error)."""
    details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
    name = details.get("name", "")
    if "output" in details and name:
        try:
            return f"{name}  {state_detail(name, json.loads(details['output']))}".rstrip()
        except ValueError:
            return name
    if "error" in details:
        return f"{details['error']}: {details.get('cause', '')}"[:100]
    return str(name)


def executions_table(executions: Sequence[dict[str, Any]]) -> str:
    return table(executions, _EXECUTION_COLUMNS)


def events_table(events: Sequence[dict[str, Any]]) -> str:
    return table(events, _EVENT_COLUMNS)


def jobs_table(jobs: Sequence[dict[str, Any]]) -> str:
    return table(jobs, _JOB_COLUMNS)


def execution_fields(described: dict[str, Any]) -> str:
    return fields(described, _EXECUTION_FIELDS)


def job_fields(job: dict[str, Any]) -> str:
    return fields(job, _JOB_FIELDS)


def providers_table(providers: Sequence[dict[str, Any]]) -> str:
    return table(providers, _PROVIDER_COLUMNS)


def provider_fields(provider: dict[str, Any]) -> str:
    """A provider's name, kind and description, then its input schema and examples as indented JSON."""
    head = fields(provider, ("name", "kind", "can_notify", "description"))
    schema = json.dumps(provider.get("input_schema", {}), indent=2)
    examples = "\n".join(json.dumps(example) for example in provider.get("examples", []))
    return f"{head}\ninput schema:\n{schema}\nexamples:\n{examples}"


def job_summary(job: dict[str, Any]) -> str:
    """One line: how a job ended."""
    line = f"=> job {job['id']} {job['status']} after {job.get('try_count', 0)} tries"
    error = job.get("error")
    if isinstance(error, dict):
        line += f" ({error.get('code') or error.get('error')}: {error.get('message') or error.get('cause')})"
    return line
