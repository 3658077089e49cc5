"""The one contract between the applications and a generator, kept free of TensorFlow.

`TextGenerator` is what the headline job, the chat responder (and through it the bot) and
their test doubles need: `generate(texts, options, seeds)` -> n-best `Generation`s per text,
best first. `nlp.generation.generator.Generator` (a trained bundle through the shared decoder) is
the real one; it imports TensorFlow, so the bot adapter and the batch job see only this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from nlp.decoding import DecodeOptions


@dataclass(frozen=True)
class Generation:
    """One output: text for people, tokens and attention for heatmaps and re-ranking."""

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray  # [len(tokens), len(source_tokens)]
    slots: dict[str, str] = field(default_factory=dict)  # placeholder token -> original string


class TextGenerator(Protocol):
    """Anything that turns a batch of encoder inputs into n-best lists of outputs.

    `seeds` (sampling) gives each text its own seed in place of `options.seed`."""

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> Sequence[Sequence[Generation]]: ...
