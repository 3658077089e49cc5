"""What a generator returns, kept free of TensorFlow so the bot, the headline job and their
test doubles can use the type without loading a model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Generation:
    """One output: text for people, tokens and attention for heatmaps and re-ranking."""

    text: str
    score: float
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray  # [len(tokens), len(source_tokens)]
    slots: dict[str, str] = field(default_factory=dict)  # placeholder token -> original string
