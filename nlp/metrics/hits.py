"""Hits@1 of K: does the model prefer the true reply to K-1 replies of other posts?

ConvAI2's measure of whether replies fit their messages (Dinan et al. 2019, "The Second
Conversational Intelligence Challenge"): for each post, the model scores its true reply and
K-1 distractors drawn from the replies to other posts; Hits@1 is the share of posts whose
true reply scores highest. Unlike BLEU it asks about fit alone, not about wording, and it
needs no generation. Chance is 1/K.

The score is the length-normalised log-likelihood (mean log-probability per reply token,
end token included), so a short generic distractor does not win by being short. This module
draws the distractors and counts hits; `nlp.evaluation.evaluate.hits_metrics` scores.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nlp.metrics.sampling import sample_rows

DEFAULT_K = 20


@dataclass(frozen=True)
class HitsDraw:
    """Which posts are scored against which candidates: `limit` posts drawn with `seed`
    across conversations (`nlp.metrics.sampling`; 0: every post, in file order), each
    against its true reply and `k`-1 distractors drawn with `seed` from every reply of the
    file. One value, so the command, the benchmarks and the scorer agree on the draw."""

    k: int = DEFAULT_K
    seed: int = 0
    limit: int = 0

    def rows(self, groups: Sequence[str]) -> list[int]:
        """The rows of the posts scored; `groups` are the pairs' conversations."""
        if not self.limit:
            return list(range(len(groups)))
        return sample_rows(groups, self.limit, self.seed)


Key = Callable[[str], str]


def enough_replies(targets: Sequence[str], k: int, key: Key | None = None) -> bool:
    """Whether `targets` has the k replies, different under `key`, a draw of K candidates
    needs."""
    return len(set(_forms(targets, key))) >= k


def distractors(
    targets: Sequence[str], rows: Sequence[int], k: int, seed: int, key: Key | None = None
) -> list[list[int]]:
    """For the target of each of `rows`, k-1 indices of other targets that differ from it
    and from each other under `key` (no index twice), drawn with a generator seeded by `seed`
    and the post's row.

    `key` is how the scored model writes a reply (`TextCodec.as_output`, passed by the
    callers that have a model): for a lowercasing model "Yes" and "yes" are one reply, and
    drawn against each other they would be forced ties, not a choice. Without a key the
    texts are compared as they are."""
    if k < 2:
        raise ValueError(f"Hits@1 of K needs K >= 2, got {k}")
    forms = _forms(targets, key)
    if len(set(forms)) < k:
        raise ValueError(
            f"Hits@1 of {k} needs at least {k} different replies in the file, it has "
            f"{len(set(forms))}"
        )
    drawn: list[list[int]] = []
    for index in rows:
        # each post's own generator: its candidates do not depend on which other posts are
        # scored, nor in which order (a sample of posts, or all of them, agree on it)
        rng = random.Random(f"{seed}:{index}")
        chosen: list[int] = []
        seen = {forms[index]}
        while len(chosen) < k - 1:
            other = rng.randrange(len(targets))
            if forms[other] not in seen:
                seen.add(forms[other])
                chosen.append(other)
        drawn.append(chosen)
    return drawn


def _forms(targets: Sequence[str], key: Key | None) -> list[str]:
    """Each target under `key`, computed once per distinct text."""
    if key is None:
        return list(targets)
    cache: dict[str, str] = {}
    return [cache[t] if t in cache else cache.setdefault(t, key(t)) for t in targets]


def hits_at_1(scores: np.ndarray) -> float:
    """`scores` [posts, K], the true reply's score in column 0. A tie with the best
    distractor counts as a share of a hit (1 / number tied), so a model that scores every
    candidate alike gets 1/K, not 1 or 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2 or not len(scores):
        raise ValueError(f"scores must be [posts, K >= 2], got shape {scores.shape}")
    true = scores[:, :1]
    better = (scores[:, 1:] > true).any(axis=1)
    tied = (scores[:, 1:] == true).sum(axis=1)
    credit = np.where(better, 0.0, 1.0 / (1.0 + tied))
    return float(credit.mean())
