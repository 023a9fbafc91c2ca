"""A simulated worker-side provider whose output grows at a steady rate, like a chat model streaming tokens.

The request is `{"tokens": 200, "tokens_per_second": 20, "fail_after": null}`: the worker emits `tokens`
words at `tokens_per_second`, reporting the text so far after each one (the reporter decides how often that
reaches the store), and returns the whole text. `fail_after: N` fails the work after N tokens.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..clock import Clock
from ..errors import InvalidJobInput, ProviderError
from .base import Report, integral, json_object

_TEXT = (
    "the quick brown fox jumps over the lazy dog while the long running job keeps polling "
    "and every token arrives at a steady pace until the answer is complete"
)
_WORDS = _TEXT.split()
MAX_TOKENS = 100_000


class StreamingFailure(ProviderError):
    """The simulated stream was told to fail."""


class SimulatedStreamingProvider:
    """A simulated worker whose output grows word by word at a steady rate, like a model streaming tokens."""

    name = "simulated-stream"
    kind = "worker"
    can_notify = False
    examples: ClassVar[list[dict[str, Any]]] = [
        {"tokens": 200, "tokens_per_second": 20},
        {"tokens": 10, "fail_after": 5},
    ]
    # What `validate` accepts, as the OpenAPI document shows it.
    input_schema: dict[str, Any] = {  # noqa: RUF012 (read only)
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tokens": {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS, "default": 100},
            "tokens_per_second": {"type": "number", "exclusiveMinimum": 0, "maximum": 10_000, "default": 20},
            "fail_after": {"type": ["integer", "null"], "minimum": 0, "description": "Fail after N tokens"},
        },
    }

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def validate(self, request: Any) -> dict[str, Any]:
        request = json_object(
            request, {"tokens", "tokens_per_second", "fail_after"}, "simulated-stream input"
        )
        tokens = integral(request.get("tokens", 100))
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_TOKENS:
            raise InvalidJobInput(f"'tokens' must be a whole number from 1 to {MAX_TOKENS}")
        rate = request.get("tokens_per_second", 20)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10_000:
            raise InvalidJobInput(
                f"'tokens_per_second' must be above 0 and at most 10000, got {json.dumps(rate)}"
            )
        fail_after = integral(request.get("fail_after"))
        if fail_after is not None and (
            isinstance(fail_after, bool) or not isinstance(fail_after, int) or fail_after < 0
        ):
            raise InvalidJobInput("'fail_after' must be a whole number of tokens")
        return {"tokens": tokens, "tokens_per_second": rate, "fail_after": fail_after}

    def run(self, request: dict[str, Any], report: Report) -> Any:
        tokens, pause = request["tokens"], 1.0 / request["tokens_per_second"]
        words: list[str] = []
        for index in range(tokens):
            if request.get("fail_after") is not None and index >= request["fail_after"]:
                raise StreamingFailure(f"the simulated stream was told to fail after {index} tokens")
            self._clock.sleep(pause)
            words.append(_WORDS[index % len(_WORDS)])
            report(" ".join(words), (index + 1) / tokens)
        return {"text": " ".join(words), "tokens": tokens}
