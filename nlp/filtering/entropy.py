"""Entropy-based data filtering (Csáky, Purgai & Recski 2019, "Improving Neural
Conversational Models with Entropy-Based Data Filtering", the IDENTITY variant).

Why: a model trained on likelihood learns to answer every post with the replies that follow
every post ("Yeah.", "I don't know.", "是的"): sensible and saying nothing. Such a reply is
recognisable in the corpus itself: the posts it follows are many and unlike each other. Its
entropy, over the distribution of the (distinct) posts it follows,

    H(reply) = - sum over posts p of P(p | reply) log2 P(p | reply),

is high; a reply written for one post has entropy 0. Leaving out the pairs whose reply's
entropy exceeds a threshold takes those answers-to-anything out of what the model learns
from, and nothing else. The post side is the same with the roles swapped: a post that many
different replies follow ("Hi") teaches the model that anything fits.

Why utterances are grouped by identity (the paper's IDENTITY) and not by clusters of
sentence vectors (its AVG-EMBEDDING, SENT2VEC): identity needs no model, no clustering's
settings and no time, and the generic replies a chat model learns are the ones repeated word
for word. Why the identity key is the casefolded words alone (`identity_key`): corpora write
the same reply with different spacing and punctuation ("Sure ." in DailyDialog, "sure" in
chitchat); for the question "does this reply follow any post" they are one reply.

Only the model's training pairs are filtered (`nlp.training.run`): the retrieval index, the
rankers and validation keep every pair, so validation still measures the corpus as people
write it.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nlp.corpus.records import Pair
from nlp.util.config import DataConfig

_WORD = re.compile(r"\w+")


def identity_key(text: str) -> str:
    """What makes two utterances the same one: their casefolded words, in order."""
    return " ".join(_WORD.findall(text.casefold()))


def utterance_entropies(keys: Sequence[str], partners: Sequence[str]) -> dict[str, float]:
    """Each key's entropy in bits over the distribution of the partners it occurs with
    (`keys[i]` occurs with `partners[i]`)."""
    if len(keys) != len(partners):
        raise ValueError(f"{len(keys)} utterances but {len(partners)} partners")
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for key, partner in zip(keys, partners, strict=True):
        seen[key][partner] += 1
    return {key: _entropy(counts.values()) for key, counts in seen.items()}


def _entropy(counts: Iterable[int]) -> float:
    counts = list(counts)
    total = sum(counts)
    return max(0.0, -sum(c / total * math.log2(c / total) for c in counts))


@dataclass
class EntropyFilter:
    """`data.entropy_filter` on a set of training pairs: `kept` are the pairs to train on
    (`mask`: which of the pairs given they are); `dropped` counts the pairs left out, `top`
    the utterances that left out the most (for the run's report and the bundle's metadata)."""

    side: str
    max_bits: float
    kept: list[Pair]
    mask: list[bool]
    top: list[tuple[str, int]] = field(default_factory=list)

    @property
    def on(self) -> bool:
        """Whether a filter was asked for (what a bundle's metadata then records)."""
        return self.side != "off"

    @property
    def dropped(self) -> int:
        """How many pairs the filter left out."""
        return len(self.mask) - len(self.kept)

    @classmethod
    def apply(cls, pairs: Sequence[Pair], data: DataConfig, top: int = 10) -> EntropyFilter:
        """The pairs `data.entropy_filter` keeps (every pair when it is "off"): a pair is
        left out when its reply's (`reply`), its post's (`post`) or either's (`both`)
        entropy is above `data.entropy_max_bits`, the entropies counted over `pairs`."""
        side, max_bits = data.entropy_filter, data.entropy_max_bits
        if side == "off" or not pairs:
            return cls(side, max_bits, list(pairs), [True] * len(pairs))
        posts = [identity_key(pair.source) for pair in pairs]
        replies = [identity_key(pair.target) for pair in pairs]
        checks: list[tuple[list[str], dict[str, float]]] = []
        if side in ("reply", "both"):
            checks.append((replies, utterance_entropies(replies, posts)))
        if side in ("post", "both"):
            checks.append((posts, utterance_entropies(posts, replies)))
        mask: list[bool] = []
        culprits: Counter[str] = Counter()
        for i in range(len(pairs)):
            high = [keys[i] for keys, entropy in checks if entropy[keys[i]] > max_bits]
            if high:
                culprits[high[0]] += 1
            mask.append(not high)
        kept = [pair for pair, keep in zip(pairs, mask, strict=True) if keep]
        return cls(side, max_bits, kept, mask, culprits.most_common(top))

    def record(self) -> dict[str, object]:
        """What the bundle's metadata says of the filter."""
        return {"side": self.side, "max_bits": self.max_bits, "dropped": self.dropped,
                "kept": len(self.kept), "most_dropped": [list(t) for t in self.top]}

    def summary(self) -> str:
        """One line for the run's output."""
        total = self.dropped + len(self.kept)
        shown = ", ".join(f"{key!r} {count}" for key, count in self.top[:5])
        return (f"entropy filter ({self.side} above {self.max_bits:g} bits): left out "
                f"{self.dropped} of {total} training pairs" + (f" ({shown}, ...)" if shown else ""))
