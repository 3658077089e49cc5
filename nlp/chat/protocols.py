"""The two shapes the responder needs from a generator, as structural types.

Why a Protocol and not `nlp.generator.Generator` itself: the real generator pulls in
TensorFlow, while the bot adapter must stay TF-free and tests want a deterministic fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from nlp.decoding import DecodeOptions


class GenerationLike(Protocol):
    """One decoded reply (`nlp.generator.Generation` satisfies this)."""

    @property
    def text(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def tokens(self) -> list[str]: ...

    @property
    def source_tokens(self) -> list[str]: ...

    @property
    def attention(self) -> np.ndarray: ...


class TextGenerator(Protocol):
    """Anything that turns a batch of encoder inputs into n-best lists of replies."""

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> Sequence[Sequence[GenerationLike]]: ...
