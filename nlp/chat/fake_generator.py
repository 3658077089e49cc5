"""A deterministic stand-in for `nlp.generator.Generator`, for tests, benchmarks and demos.

It answers without a trained model and without TensorFlow, with replies derived from the last
turn of the input, so a test can tell which message a reply belongs to, and with an optional
cost model (a fixed cost per call plus a cost per sentence, slept on the calling thread) so the
bot benchmark exercises batching the way a real model would reward it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nlp.chat.loading import LoadedModel
from nlp.config import DataConfig
from nlp.decoding import DecodeOptions
from nlp.generation import Generation

DEFAULT_SEPARATOR = " __eot__ "


@dataclass(frozen=True)
class CostModel:
    """Seconds one `generate` call takes: per_call + per_item * batch size."""

    per_call: float = 0.0
    per_item: float = 0.0

    def seconds(self, items: int) -> float:
        return self.per_call + self.per_item * items


def reply_for(message: str) -> str:
    """The top candidate for `message`: unique per message and sharing none of its words."""
    return "reply-" + hashlib.sha1(message.encode()).hexdigest()[:10]


def default_candidates(message: str) -> list[str]:
    """Five candidates, best first: a unique reply, two generic lines, an echo, a short one."""
    return [reply_for(message), "i see .", "tell me more .", message, "ok ."]


def _attention(rows: int, cols: int) -> np.ndarray:
    """A soft diagonal, each row summing to 1, like a monotonic alignment."""
    positions = np.arange(cols)[None, :] - np.linspace(0, cols - 1, rows)[:, None]
    weights = np.exp(-np.abs(positions))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class ScriptedGenerator:
    """Candidates come from `candidates(last_turn)`; scores fall by 0.5 per rank from -1."""

    candidates: Callable[[str], list[str]] = default_candidates
    cost: CostModel = field(default_factory=CostModel)
    separator: str = DEFAULT_SEPARATOR
    calls: list[tuple[list[str], DecodeOptions]] = field(default_factory=list)
    seeds: list[list[int | None]] = field(default_factory=list)  # per call, per text
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        with self._lock:  # like a real model: one call at a time
            self.calls.append((list(texts), options))
            self.seeds.append(list(seeds) if seeds is not None else [None] * len(texts))
            delay = self.cost.seconds(len(texts))
            if delay:
                time.sleep(delay)
            return [self._nbest(text, options.n_best) for text in texts]

    def _nbest(self, text: str, n_best: int) -> list[Generation]:
        last = text.split(self.separator.strip())[-1].strip()
        source = text.split()
        results = []
        for rank, reply in enumerate(self.candidates(last)[:n_best]):
            tokens = reply.split()
            results.append(
                Generation(
                    reply, -1.0 - 0.5 * rank, tokens, source, _attention(len(tokens), len(source))
                )
            )
        return results


def fake_model(
    generator: ScriptedGenerator | None = None, *, context_turns: int = 0
) -> LoadedModel:
    """A `LoadedModel` around a scripted generator, as `load_model` would return a real one."""
    generator = generator or ScriptedGenerator()
    data = DataConfig(context_turns=context_turns, turn_separator=generator.separator)
    return LoadedModel(generator, data)
