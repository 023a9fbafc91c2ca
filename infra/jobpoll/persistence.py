"""The local stack's state across restarts, under `.jobpoll/state/`: the job table and the clock.

moto keeps everything in memory, and its backends do not survive a process whole (SQS's hold locks and
cannot be pickled; executions are threads). What a restart needs is the job records: every item moto's
DynamoDB stores in the job table is appended to a journal as it is written (`moto_patches.journaled_puts`),
so a SIGKILL loses nothing written before it. At the next start the last version of each job goes into the
freshly deployed table, and the reconciler resumes the unfinished ones (their executions are gone). The
`--speed` clock keeps its origin, so the stack's time goes on from where it was, never back.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

JOURNAL = "jobs.jsonl"
CLOCK = "clock.json"
# What a stack run with a fault plan counts (faults.FaultLog, simulated_service.SubmissionLedger).
FAULT_LOG = "faults.jsonl"
SUBMISSIONS = "submissions.jsonl"


class TableJournal:
    """An append-only journal of one table's item writes; the last write of a key wins."""

    def __init__(self, directory: Path, key: str) -> None:
        self.path = directory / JOURNAL
        self.key = key
        self.table_name: str | None = None
        self._lock = threading.Lock()

    def record(self, table_name: str, item: dict[str, Any]) -> None:
        """Append `item` if it was written to the journaled table (called inside moto's write lock)."""
        if table_name != self.table_name:
            return
        line = json.dumps(item, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a") as journal:
            journal.write(line)  # the kernel has it once write() returns: a SIGKILL after it loses nothing

    def items(self) -> list[dict[str, Any]]:
        """The last version of each item (a torn last line, from a kill mid-write, is skipped)."""
        latest: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            latest[json.dumps(item[self.key], sort_keys=True)] = item
        return list(latest.values())

    def restore(self, dynamodb: Any, table_name: str) -> int:
        """Put the journal's items into `table_name`, compact the journal, journal that table from now on;
        returns how many items were restored."""
        items = self.items()
        for item in items:
            dynamodb.put_item(TableName=table_name, Item=item)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        compacted = self.path.with_suffix(".tmp")
        compacted.write_text("".join(json.dumps(i, separators=(",", ":")) + "\n" for i in items))
        compacted.replace(self.path)
        self.table_name = table_name
        return len(items)


def clock_origin(directory: Path, speed: float) -> datetime | None:
    """The origin of the stack's clock in an earlier run at the same speed (None: start a new one)."""
    try:
        saved = json.loads((directory / CLOCK).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if saved.get("speed") != speed:
        return None
    return datetime.fromisoformat(saved["origin"])


def save_clock(directory: Path, speed: float, origin: datetime) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLOCK).write_text(json.dumps({"speed": speed, "origin": origin.isoformat()}) + "\n")


def clear(directory: Path) -> None:
    """`--fresh`: forget the saved state."""
    for name in (JOURNAL, CLOCK, FAULT_LOG, SUBMISSIONS):
        (directory / name).unlink(missing_ok=True)
