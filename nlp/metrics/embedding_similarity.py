"""Embedding-based similarity of a reply to the reference reply (Liu et al. 2016, "How NOT
To Evaluate Your Dialogue System"): embedding average, greedy matching and vector extrema.

Why beside BLEU: a reply can fit the message without sharing its reference's words ("sure,
see you at six" for "ok, six it is"); word vectors credit related words, and Liu et al.
found these measures at least as related to people's judgements as word overlap. The
vectors are fixed word vectors that no compared model trained (GloVe for English, given by
the caller), so every model is measured with the same ruler.

- average: cosine of the mean word vectors of reply and reference;
- greedy: each word of one side matched to its most similar word of the other (cosine),
  averaged over the words, in both directions, and the two directions averaged;
- extrema: per dimension, the value of largest magnitude over the words; the cosine of the
  two extrema vectors.

Words without a vector are left out. A reply with none (empty, or only out-of-vocabulary
words) scores 0: it says nothing like the reference, and left out it would lift the mean of
whatever sends such replies. A pair whose reference has none is not scored (nothing to
compare with), and `scored` says how many pairs were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# tokens -> their vectors [n, d] (the tokens that have one)
Lookup = Callable[[Sequence[str]], np.ndarray]
MEASURES = ("embedding_average", "embedding_greedy", "embedding_extrema")


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def average(reply: np.ndarray, reference: np.ndarray) -> float:
    return _cosine(reply.mean(axis=0), reference.mean(axis=0))


def greedy(reply: np.ndarray, reference: np.ndarray) -> float:
    similarities = _unit(reply) @ _unit(reference).T  # [reply words, reference words]
    return float((similarities.max(axis=1).mean() + similarities.max(axis=0).mean()) / 2)


def extrema(reply: np.ndarray, reference: np.ndarray) -> float:
    def extreme(rows: np.ndarray) -> np.ndarray:
        return np.where(rows.max(axis=0) >= -rows.min(axis=0), rows.max(axis=0), rows.min(axis=0))

    return _cosine(extreme(reply), extreme(reference))


def embedding_similarities(
    replies: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    lookup: Lookup,
) -> dict[str, float]:
    """The three measures' means over the (reply, reference) pairs, as token lists, with
    `scored`: how many pairs had a vector in the reference (a reply without one scores 0)."""
    if len(replies) != len(references):
        raise ValueError(f"{len(references)} references for {len(replies)} replies")
    totals = dict.fromkeys(MEASURES, 0.0)
    scored = 0
    for reply_tokens, reference_tokens in zip(replies, references, strict=True):
        reply, reference = lookup(reply_tokens), lookup(reference_tokens)
        if not len(reference):
            continue
        scored += 1
        if not len(reply):
            continue  # scores 0
        totals["embedding_average"] += average(reply, reference)
        totals["embedding_greedy"] += greedy(reply, reference)
        totals["embedding_extrema"] += extrema(reply, reference)
    means = {name: total / scored if scored else 0.0 for name, total in totals.items()}
    return {**means, "embedding_scored": float(scored)}


def table_lookup(vectors: dict[str, np.ndarray]) -> Lookup:
    """A `Lookup` over a word -> vector table (words looked up as given, then lowercased)."""

    def lookup(tokens: Sequence[str]) -> np.ndarray:
        rows = [vectors.get(t, vectors.get(t.lower())) for t in tokens]
        found = [row for row in rows if row is not None]
        return np.stack(found) if found else np.zeros((0, 0))

    return lookup
