"""Conditional training on the reply's specificity (See, Roller, Kiela & Weston 2019, "What
makes a good conversation?", section 5: CT on normalised inverse document frequency).

Why: a chat model trained on likelihood alone answers almost every post with the replies
every post gets ("I don't know.", "是的"); they are sensible and say nothing. Here each
training reply's specificity, the mean NIDF of its tokens over the training replies, puts it
in one of B equal-sized buckets (quantiles), and its source ends with that bucket's marker
token (`marker`), so the model learns what a reply of each specificity looks like given the
message. At run time the marker is the one the decode option `specificity` asks for
(`wanted_bucket`): the model is told to write as specifically as the replies of that quantile
of the training corpus.

Why a marker token at the source's end and not a control embedding fed to each decoder step
(See et al.): the marker is text, so it reaches the model through every path a source takes
(training, teacher-forced scores, decoding, export) with no new weights or graph inputs
(source-side control tokens: Sennrich, Haddow & Birch 2016); at the end because a chat
source longer than the model reads keeps its last tokens (`nlp.generation.codec`).

Why document frequency counted here and not the vocabulary's rank (`rare_word_weight`'s
rarity, `nlp.decoding.constraints`): training has every reply at hand, and See et al.'s NIDF
counts the replies a word occurs in, which a word repeated within a reply does not inflate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp.util.config import DataConfig

TokenPair = tuple[list[str], list[str]]  # a tokenized (source, reply)

# "__spec7__": a reserved marker, one token in every tokenizer (`nlp.tokenizers.words`)
MARKER_FORMAT = "__spec{}__"


def marker(bucket: int) -> str:
    """The marker token of specificity bucket `bucket` (0: the most generic replies)."""
    return MARKER_FORMAT.format(bucket)


def controlled_source(source: str, bucket: int) -> str:
    """The encoder input of a model trained with specificity buckets: the source, then the
    bucket's marker."""
    return f"{source} {marker(bucket)}"


def wanted_bucket(specificity: float, buckets: int) -> int:
    """The bucket a reply of quantile `specificity` (in [0, 1]) of the training replies'
    specificity falls in, of `buckets` equal-sized ones: 0.0 the most generic, 1.0 the most
    specific. A share rather than a bucket number, so one decode option means the same for
    models trained with different bucket counts."""
    return min(buckets - 1, int(specificity * buckets))


@dataclass(frozen=True)
class SpecificityBuckets:
    """Each token's NIDF over a corpus's replies, and the boundaries between B equal-sized
    buckets of the replies' mean NIDF (a reply above `boundaries[i]` is in bucket i+1 or
    higher; one at a boundary stays below it, so the many equal generic replies at a
    quantile share the lower bucket)."""

    nidf: dict[str, float]
    boundaries: tuple[float, ...]

    @classmethod
    def fit(cls, replies: Sequence[Sequence[str]], buckets: int) -> SpecificityBuckets:
        """The NIDF of every token of `replies` (token lists) and the quantile boundaries of
        their mean NIDF. NIDF(w) = (IDF(w) - min IDF) / (max IDF - min IDF), IDF(w) =
        log(R / replies holding w), R the number of replies (See et al. 2019)."""
        if buckets < 2:
            raise ValueError(f"specificity buckets must be at least 2, got {buckets}")
        held = Counter(token for reply in replies for token in set(reply))
        total = max(1, len(replies))
        idf = {token: math.log(total / count) for token, count in held.items()}
        low, high = min(idf.values(), default=0.0), max(idf.values(), default=0.0)
        span = high - low
        nidf = {token: (value - low) / span if span > 0 else 0.0 for token, value in idf.items()}
        fitted = cls(nidf, ())
        means = np.asarray([fitted.specificity(reply) for reply in replies], np.float64)
        if not len(means):
            return cls(nidf, tuple(0.0 for _ in range(buckets - 1)))
        cuts = np.quantile(means, np.arange(1, buckets) / buckets)
        return cls(nidf, tuple(float(cut) for cut in cuts))

    @property
    def buckets(self) -> int:
        return len(self.boundaries) + 1

    def specificity(self, reply: Sequence[str]) -> float:
        """The mean NIDF of a reply's tokens; a token no training reply held counts as the
        rarest (1.0); an empty reply is 0.0."""
        if not reply:
            return 0.0
        return sum(self.nidf.get(token, 1.0) for token in reply) / len(reply)

    def bucket(self, reply: Sequence[str]) -> int:
        """The bucket of a reply (token list): how many boundaries its mean NIDF exceeds."""
        return int(np.searchsorted(self.boundaries, self.specificity(reply), side="left"))

    def record(self) -> dict[str, object]:
        """What the bundle's training metadata keeps: the bucket count and boundaries."""
        return {"buckets": self.buckets,
                "boundaries": [round(cut, 4) for cut in self.boundaries]}


def with_markers(fitted: SpecificityBuckets, pairs: Sequence[TokenPair]) -> list[TokenPair]:
    """Tokenized (source, reply) pairs with each source ending with its reply's bucket
    marker: what a model trained with specificity buckets learns from."""
    return [([*source, marker(fitted.bucket(reply))], reply) for source, reply in pairs]


def marked_groups(
    data: DataConfig, replies: Sequence[Sequence[str]], groups: Sequence[Sequence[TokenPair]]
) -> tuple[SpecificityBuckets | None, list[Sequence[TokenPair]]]:
    """Groups of tokenized pairs as a model with `data` learns from them: for one trained on
    specificity buckets (`DataConfig.controls_specificity`), the buckets fitted on `replies`
    (those it trains on) and every group's sources ending with their markers; else None and
    the groups as they are. The one step `s2s train` and `s2s retrain` share."""
    if not data.controls_specificity:
        return None, list(groups)
    fitted = SpecificityBuckets.fit(replies, data.specificity_buckets)
    return fitted, [with_markers(fitted, group) for group in groups]
