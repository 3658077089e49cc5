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

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
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
    # "random": distractors drawn from the file's replies; "hard": first the other replies of
    # the post's conversation, then the replies a keyword matcher (the model's BM25 index)
    # retrieves for the post, the rest at random (`hard_distractors`)
    kind: str = "random"

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


HARD_SAME_CONVERSATION = 0.5  # at most this share of the distractors from the conversation


def hard_distractors(
    targets: Sequence[str],
    groups: Sequence[str],
    rows: Sequence[int],
    k: int,
    seed: int,
    retrieved: Sequence[Sequence[str]],
    key: Key | None = None,
) -> list[list[str]]:
    """For the target of each of `rows`, k-1 distractor texts that a reader would not
    confuse with it but a ranker that reads keywords or topics may: first other replies of
    the post's own conversation (same speakers, same topic; at most half of the k-1, in a
    seeded order), then `retrieved[n]`, the replies a BM25 index returns for the n-th post
    (best first: what a keyword matcher would send), then replies drawn at random as
    `distractors` draws them. Every distractor differs from the true reply and from the
    others under `key`.

    Why: with 19 random distractors a ranker wins by topic alone, so Hits rewarded keyword
    matches that people rated nonsense ("a few lines" of cocaine answered with pick-up
    lines). A true reply beside its own conversation's other turns and the keyword matches
    asks whether the ranker tells a reply from a reply about the same thing.
    """
    if len(retrieved) != len(rows):
        raise ValueError(f"{len(rows)} posts but {len(retrieved)} retrieved lists")
    forms = _forms(targets, key)
    by_group: dict[str, list[int]] = {}
    for row, group in enumerate(groups):
        if group:
            by_group.setdefault(group, []).append(row)
    random_rows = distractors(targets, rows, k, seed, key)
    same_limit = int((k - 1) * HARD_SAME_CONVERSATION)
    drawn: list[list[str]] = []
    for index, found, fallback in zip(rows, retrieved, random_rows, strict=True):
        rng = random.Random(f"hard:{seed}:{index}")
        same = [row for row in by_group.get(groups[index], []) if row != index]
        rng.shuffle(same)
        offers = itertools.chain(
            ((targets[row], forms[row], True) for row in same),
            ((text, key(text) if key else text, False) for text in found),
            ((targets[row], forms[row], False) for row in fallback),
            # the fallback's own draws may have been taken already: draw on until full
            ((targets[row], forms[row], False) for row in _endless(rng, len(targets))),
        )
        seen, from_conversation = {forms[index]}, 0
        chosen: list[str] = []
        for text, form, conversation in offers:
            if len(chosen) == k - 1:
                break
            if form in seen or (conversation and from_conversation == same_limit):
                continue
            seen.add(form)
            chosen.append(text)
            from_conversation += conversation
        drawn.append(chosen)
    return drawn


def _endless(rng: random.Random, size: int) -> Iterator[int]:
    while True:
        yield rng.randrange(size)


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
