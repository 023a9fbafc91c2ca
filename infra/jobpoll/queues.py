"""Queue delivery as Lambda's SQS event source mapping does it, for the local emulation.

moto delivers an SQS message to a mapped function synchronously inside `SendMessage` (so a worker would run
inside the API request that enqueued the job), and it drops partial batch failures. AWS instead polls the
queue from its own fleet: the sender returns at once, the function gets batches, messages it reports in
`batchItemFailures` (or all of them, when it fails) become visible again after the visibility timeout, and
the redrive policy moves a message received too often to the dead-letter queue. `QueueDelivery` does that on
a thread of its own, with its idle waits on the emulation clock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .clocks import EmulationClock

# How long an idle poller waits before looking again (emulation seconds; SQS long polls for up to 20 s).
IDLE_WAIT_SECONDS = 1.0
# ... and at least this many real seconds on a scaled clock: at --speed 100 a pass per emulated second is
# 100 receives a second against the moto server, a third of a core spent on empty queues.
IDLE_WAIT_REAL_SECONDS = 0.1


def idle_wait_seconds(speed: float) -> float:
    """The idle poller's wait on a clock `speed` times faster than real time (emulation seconds)."""
    return max(IDLE_WAIT_SECONDS, IDLE_WAIT_REAL_SECONDS * speed)


# While batches run, the poller looks again after this many real seconds without moving the emulation
# clock: on a virtual clock the running workers move time as they wait, and the poller's idle waits must
# not add to their run time (which their Lambda timeout measures).
BUSY_WAIT_SECONDS = 0.05


@dataclass(frozen=True)
class EventSourceMapping:
    """One event source mapping: a queue and the function it feeds."""

    queue_url: str
    queue_arn: str
    function_name: str
    batch_size: int = 1


def take_over_mappings(lambda_client: Any, sqs_client: Any) -> list[EventSourceMapping]:
    """The deployed SQS event source mappings, switched off in moto (which would deliver synchronously
    inside SendMessage) so that a `QueueDelivery` delivers them as Lambda does."""
    mappings = []
    paginator = lambda_client.get_paginator("list_event_source_mappings")
    for page in paginator.paginate():
        for esm in page["EventSourceMappings"]:
            arn = esm.get("EventSourceArn", "")
            if not arn.startswith("arn:aws:sqs:"):
                continue
            queue_name = arn.rsplit(":", 1)[-1]
            queue_url = sqs_client.get_queue_url(QueueName=queue_name)["QueueUrl"]
            lambda_client.update_event_source_mapping(UUID=esm["UUID"], Enabled=False)
            mappings.append(
                EventSourceMapping(queue_url, arn, esm["FunctionArn"], int(esm.get("BatchSize", 1)))
            )
    return mappings


def sqs_event(messages: list[dict[str, Any]], mapping: EventSourceMapping, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": mapping.queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueueDelivery:
    """Polls each mapped queue and invokes its function with batches, until stopped."""

    def __init__(
        self,
        client: Callable[[str], Any],
        mappings: list[EventSourceMapping],
        clock: EmulationClock,
        region: str,
        on_error: Callable[[EventSourceMapping, BaseException], None] | None = None,
        concurrency: int = 4,
        duplicate: Callable[[str], bool] | None = None,
        idle_wait: float = IDLE_WAIT_SECONDS,
    ) -> None:
        self._sqs = client("sqs")
        self._lambda = client("lambda")
        self.mappings = mappings
        self.clock = clock
        self.region = region
        self.on_error = on_error
        # Whether a batch received from a queue (its url) is handed to two workers at once (an injected
        # fault: SQS delivers at least once, and a message can reach two consumers).
        self.duplicate = duplicate
        self.idle_wait = idle_wait
        self.deliveries = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        # Like Lambda, batches of one queue run concurrently (up to `concurrency` at a time).
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="queue-worker")
        self._running: set[Future[None]] = set()

    def deliver_once(self, wait: bool = False) -> int:
        """One pass over every queue; returns how many messages were handed to functions.

        Each batch runs on a worker thread; `wait=True` returns only when they have finished.
        """
        handed = 0
        for mapping in self.mappings:
            if not self._slots.acquire(blocking=False):
                break  # every slot is busy: look again on the next pass
            received = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=mapping.batch_size,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not received:
                self._slots.release()
                continue
            handed += len(received)
            batches = 1
            if self.duplicate is not None and self._slots.acquire(blocking=False):
                if self.duplicate(mapping.queue_url):
                    batches = 2
                else:
                    self._slots.release()
            for _ in range(batches):
                self.deliveries += 1
                future = self._pool.submit(self._invoke, mapping, received)
                self._running.add(future)
                future.add_done_callback(self._running.discard)
        if wait:
            for future in list(self._running):
                future.result()
        return handed

    def _invoke(self, mapping: EventSourceMapping, received: list[dict[str, Any]]) -> None:
        try:
            response = self._lambda.invoke(
                FunctionName=mapping.function_name,
                Payload=json.dumps(sqs_event(received, mapping, self.region)).encode(),
            )
            payload = json.loads(response["Payload"].read() or b"null")
            if "FunctionError" in response:
                return  # the whole batch becomes visible again after its visibility timeout
            failed = {
                item.get("itemIdentifier")
                for item in (payload or {}).get("batchItemFailures", [])
                if isinstance(item, dict)
            }
            for message in received:
                if message["MessageId"] not in failed:
                    self._sqs.delete_message(
                        QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        except Exception as exc:
            if self.on_error is not None:
                self.on_error(mapping, exc)
        finally:
            self._slots.release()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                handed = self.deliver_once()
            except Exception as exc:  # keep delivering; the owner decides what an error means
                handed = 0
                if self.on_error is not None:
                    self.on_error(self.mappings[0], exc)
            if handed:
                continue
            if self._running:
                self._stopped.wait(BUSY_WAIT_SECONDS)
            else:
                self.clock.wait(self.idle_wait, self._stopped, lambda: not self._stopped.is_set())
                self._stopped.wait(0.002)  # let the rest of the emulation run between idle passes

    def start(self) -> QueueDelivery:
        self._thread = threading.Thread(target=self._run, name="queue-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
