"""The model's own replies ordered by pointwise mutual information with the message.

Why: a chat model's most probable replies are the ones that answer anything ("I don't know.",
"是的"): raters found them sensible but never specific. MMI (Li et al. 2016) prefers replies
likely for THIS message and not for every message, log p(T|S) - lambda log p(T), but needs a
language model of replies trained beside the chat model (`nlp.generation.mmi`). Here p(T) is
the chat model's own: its mean probability of T over a fixed sample of training posts, a
Monte Carlo estimate of sum_S p(T|S) p(S). It costs no training, reads the same tokens as
the model, and a reply that follows every post alike (the generic one) has p(T|S) close to
this mean, so its PMI is near 0 while a reply written for the message scores above it.

The score per reply token (end token included), as Hits@1 and `mmi_per_token` score:

    (log p(T|S) - lambda * log mean_k p(T|S_k)) / |T|

The posts come from the bundle's retrieval index (its training posts), drawn once with a
fixed seed, so a reply's marginal is a fixed function of its text: the same message gets
the same order everywhere, and the marginals of replies seen before are kept
(`MarginalScorer`, bounded), which the generic ones, written again and again, mostly are.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from nlp.corpus.records import Pair

# How many training posts p(T) averages over: 16 posts keep the teacher-forced rows per
# message (n-best x 16) within one batch of the compiled scorer, and the log of a mean of
# probabilities is dominated by the posts a reply fits best, so more posts move it little.
MARGINAL_POSTS = 16
# Replies whose marginal is kept: the generic replies recur across chats, and a bot's
# latency should not pay for "I don't know." again on every message.
KEPT_MARGINALS = 4096
SAMPLE_SEED = 0  # which posts: fixed, so that every process orders a reply alike


class TokenScorer(Protocol):
    """Teacher-forced log-probabilities of each pair's target (`CompanionScorer`)."""

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]: ...


def marginal_posts(posts: Sequence[str], count: int = MARGINAL_POSTS) -> list[str]:
    """The posts p(T) averages over: `count` distinct non-empty ones, drawn with a fixed
    seed (all of them when there are fewer)."""
    distinct = sorted({post for post in posts if post.strip()})
    if not distinct:
        raise ValueError("PMI needs training posts to average over; the index holds none")
    return random.Random(SAMPLE_SEED).sample(distinct, min(count, len(distinct)))


class MarginalScorer:
    """log p(T) of reply texts under the chat model: log mean_k p(T | post_k)."""

    def __init__(self, scorer: TokenScorer, posts: Sequence[str]) -> None:
        self.scorer = scorer
        self.posts = list(posts)
        self._kept: OrderedDict[str, float] = OrderedDict()

    def log_marginals(self, replies: Sequence[str]) -> list[float]:
        found = {reply: self._kept[reply] for reply in replies if reply in self._kept}
        missing = list(dict.fromkeys(r for r in replies if r not in found))
        k = len(self.posts)
        scores = self.scorer.token_log_probs(
            [Pair(post, reply) for reply in missing for post in self.posts])
        for i, reply in enumerate(missing):
            sums = [float(np.sum(row)) for row in scores[i * k:(i + 1) * k]]
            found[reply] = float(logsumexp(sums) - np.log(k))
        for reply, value in found.items():
            self._kept[reply] = value
            self._kept.move_to_end(reply)
        while len(self._kept) > KEPT_MARGINALS:
            self._kept.popitem(last=False)
        return [found[reply] for reply in replies]


def pmi_scores(
    forward: Sequence[np.ndarray], marginals: Sequence[float], weight: float
) -> list[float]:
    """Each reply's PMI score per token (the module docstring's formula): `forward` its
    per-token log p(t | S, earlier tokens), end token included; `marginals` its log p(T)."""
    return [(float(np.sum(row)) - weight * marginal) / max(len(row), 1)
            for row, marginal in zip(forward, marginals, strict=True)]
