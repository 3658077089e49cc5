"""The decoder's result type (TF-free, so applications can type against it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Hypothesis:
    """One output sequence.

    `score` is the value hypotheses were ranked by: the sum of token log-probabilities (the end
    token included when the hypothesis ended with it), divided by the GNMT length penalty and
    plus the GNMT coverage penalty when those are enabled. `attention` holds one row per token
    in `ids` over the real (unpadded) source positions.
    """

    ids: list[int]  # without BOS/EOS
    score: float
    attention: np.ndarray  # [len(ids), source_len]
