"""The one contract between the applications and a generator, kept free of TensorFlow.

`TextGenerator` is what the headline job, the chat responder (and through it the bot) and
their test doubles need: `generate(texts, options, seeds)` -> n-best `Generation`s per text,
best first, and `check(options)`, which refuses what `generate` would.
`nlp.generation.generator.Generator` (a trained bundle through the shared decoder) is the real
one; it imports TensorFlow, so the bot adapter and the batch job see only this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from nlp.decoding import DecodeOptions

Provenance = Literal["generated", "refined", "retrieved", "fallback"]
# Replies the model did not write but can score: their attention is not their own
UNWRITTEN: frozenset[str] = frozenset({"retrieved"})


@dataclass(frozen=True)
class Generation:
    """One output: text for people, tokens and attention for heatmaps and re-ranking."""

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray  # [len(tokens), len(source_tokens)]
    slots: dict[str, str] = field(default_factory=dict)  # placeholder token -> original string
    # Where the reply came from: the decoder alone ("generated"), the decoder reading a
    # retrieved reply beside the message ("refined", retrieve-and-refine models), or a
    # training reply sent in its own words ("retrieved", spaced and cased as the model
    # writes text); `pair` names the training pair ("file:line") of a retrieved or refined
    # reply. People read another person's words, so `/why` and the API say so. "fallback":
    # no candidate was likely to fit, and the chat sent one of its own safe lines
    # (`nlp.chat.messages`).
    provenance: Provenance = "generated"
    pair: str = ""
    # The training post a retrieved reply answered (`pair`'s source; "" for any other reply):
    # rerank="retrieval" ranks by how well it matches the message
    post: str = ""
    # The ranker's score calibrated as the probability that this is the fitting reply
    # (`nlp.generation.confidence`; NaN where the ranker has none that holds for the options)
    confidence: float = math.nan
    # A retrieved reply's share of its and the model's own reply's expected ratings, from how
    # well its post matches the message (`nlp.generation.retrieved_fit`; NaN elsewhere)
    fit: float = math.nan

    @property
    def unwritten(self) -> bool:
        """A reply the model did not write (retrieved) but can score: its `attention` is
        zeros until `TextGenerator.with_attention` gives it the model's while scoring it."""
        return self.provenance in UNWRITTEN


class TextGenerator(Protocol):
    """Anything that turns a batch of encoder inputs into n-best lists of outputs.

    `seeds` (sampling) gives each text its own seed in place of `options.seed`.
    `with_attention`: one of its outputs with the attention to draw: a retrieved reply has
    none of its own (no decoder wrote it), so it gets the model's attention while the model
    reads its input and is fed the reply's tokens (teacher forcing, as when it scores it);
    any other output is returned as it is."""

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> Sequence[Sequence[Generation]]: ...

    def with_attention(self, output: Generation) -> Generation: ...

    def check(self, options: DecodeOptions) -> None:
        """Raise `nlp.decoding.options.OptionError` where `generate` would refuse `options`,
        without generating: a chat setting that would make every later message fail is
        refused when it is set."""


class GuardedGenerator:
    """A generator whose every call runs inside `around(batch_size)`, a context manager: the
    API's lock (one network call at a time across threads) and the server's batch-size
    metric are both this, one wrapper with a hook rather than one class each."""

    def __init__(
        self, inner: TextGenerator, around: Callable[[int], AbstractContextManager[object]]
    ) -> None:
        self.inner = inner
        self.around = around

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> Sequence[Sequence[Generation]]:
        with self.around(len(texts)):
            return self.inner.generate(texts, options, seeds)

    def with_attention(self, output: Generation) -> Generation:
        with self.around(1):
            return self.inner.with_attention(output)

    def check(self, options: DecodeOptions) -> None:
        self.inner.check(options)
