"""What the caller asks of the decoder: one plain dataclass, free of TensorFlow.

The bot, the CLI and the headline script build `DecodeOptions` (argparse choices come from
`STRATEGY_NAMES`) without importing TensorFlow, so this module must stay TF-free; the
strategies themselves live in `nlp.decoding.strategies`, which checks that its registry covers
exactly these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STRATEGY_NAMES: tuple[str, ...] = ("greedy", "beam", "sample", "diverse_beam")
# How the n-best list is re-ranked after decoding (`nlp.mmi`, applied by the generator).
RERANK_NAMES: tuple[str, ...] = ("none", "mmi-antilm", "mmi-bidi")


@dataclass
class DecodeOptions:
    """How to decode. Structural fields (strategy, beam_size, n_best, no_repeat_ngram) pick a
    compiled graph; all numeric fields are fed to it as tensors, so changing them is free."""

    strategy: str = "beam"  # greedy | beam | sample | diverse_beam
    beam_size: int = 5  # diverse_beam: all groups together
    beam_groups: int = 1  # diverse_beam: G groups of beam_size / G hypotheses each
    diversity_penalty: float = 0.0  # diverse_beam: lambda per earlier group's use of a token
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1.0 = no nucleus filter
    seed: int | None = None  # None = a fresh random seed per call; else 0 <= seed < 2**31
    max_length: int = 30
    max_length_ratio: float = 0.0  # 0 = absolute only; else min(max_length, ceil(ratio*src_len))
    min_length: int = 0
    length_penalty: float = 0.0  # GNMT alpha
    coverage_penalty: float = 0.0  # GNMT beta
    no_repeat_ngram: int = 0
    suppress_unk: bool = True
    n_best: int = 1
    # Re-ranking of the n-best list (Li et al. 2016; the decoder itself ignores these):
    # mmi-antilm: log p(T|S) - mmi_lambda * log p_lm(first mmi_gamma tokens of T) + bonus*|T|
    # mmi-bidi:   log p(T|S) + mmi_lambda * log p(S|T) / |S| + bonus*|T|
    rerank: str = "none"
    mmi_lambda: float = 0.5
    mmi_gamma: int = 0  # 0 = every token of T
    length_bonus: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (also called again by the decoder, since
        the dataclass is mutable)."""
        if self.strategy not in STRATEGY_NAMES:
            raise ValueError(
                f"unknown decoding strategy {self.strategy!r}; choose one of "
                f"{', '.join(STRATEGY_NAMES)}"
            )
        _check_int("beam_size", self.beam_size, minimum=1)
        _check_int("beam_groups", self.beam_groups, minimum=1)
        _check_int("mmi_gamma", self.mmi_gamma, minimum=0)
        if self.rerank not in RERANK_NAMES:
            raise ValueError(
                f"unknown re-ranking {self.rerank!r}; choose one of {', '.join(RERANK_NAMES)}"
            )
        for name in ("mmi_lambda", "length_bonus"):
            if not _finite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        _check_int("top_k", self.top_k, minimum=0)
        _check_int("max_length", self.max_length, minimum=1)
        _check_int("min_length", self.min_length, minimum=0)
        _check_int("no_repeat_ngram", self.no_repeat_ngram, minimum=0)
        _check_int("n_best", self.n_best, minimum=1)
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0, maximum=2**31 - 1)
        if not _finite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not _finite(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not _finite(self.max_length_ratio) or self.max_length_ratio < 0:
            raise ValueError(f"max_length_ratio must be >= 0, got {self.max_length_ratio!r}")
        for name in ("length_penalty", "coverage_penalty", "diversity_penalty"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})"
            )
        if self.no_repeat_ngram > self.max_length:
            # The decoder's history buffer holds max_length tokens; a longer n-gram cannot
            # occur in it (and its windows would not fit the buffer).
            raise ValueError(
                f"no_repeat_ngram ({self.no_repeat_ngram}) must not exceed max_length "
                f"({self.max_length}): an output that short has no such n-gram to repeat"
            )
        if self.strategy == "greedy" and self.n_best != 1:
            raise ValueError("greedy search yields one hypothesis: n_best must be 1")
        if self.strategy == "diverse_beam" and self.beam_size % self.beam_groups:
            raise ValueError(
                f"beam_size ({self.beam_size}) must be a multiple of beam_groups "
                f"({self.beam_groups})"
            )
        if self.strategy in ("beam", "diverse_beam") and self.n_best > self.beam_size:
            raise ValueError(
                f"n_best ({self.n_best}) must not exceed beam_size ({self.beam_size})"
            )


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
