"""A ranker's score read as the probability that a candidate is the reply people gave.

Why: a ranker only orders candidates, and the best of a bad lot is still sent; the bot
should know when even its best candidate is unlikely to fit (and say something safe
instead, `DecodeOptions.fallback_threshold`). A score's scale means nothing across rankers
(nats per token, a cosine, a cosine plus scaled BM25), so `s2s tune-decoding` fits each
ranker's score to a probability on the Hits tables it already computes on validation posts
(`nlp.generation.reply_scores`: per post the true reply in column 0 and K-1 replies of other
posts): Platt scaling (Platt 1999), P(true reply | score) = sigmoid(slope x score +
intercept), with Platt's smoothed targets so that a ranker that separates the validation
posts perfectly still gets a finite slope. The probability is that of a candidate among K
of which one is the true reply (prior 1/K): a threshold on it compares candidates of every
ranker on one scale. No model and no TensorFlow: tables in, two numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit


@dataclass(frozen=True)
class Calibration:
    """sigmoid(slope x score + intercept), fitted on `posts` validation posts of `k`
    candidates each."""

    slope: float
    intercept: float
    posts: int = 0
    k: int = 0

    def probability(self, scores: np.ndarray | list[float]) -> np.ndarray:
        """The probability that each candidate with these scores is the true reply."""
        return np.asarray(expit(self.slope * np.asarray(scores, np.float64) + self.intercept))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibration:
        return cls(float(raw["slope"]), float(raw["intercept"]),
                   int(raw.get("posts", 0)), int(raw.get("k", 0)))


def fit_labelled(scores: np.ndarray | list[float], labels: np.ndarray | list[float]) -> Calibration:
    """Platt scaling of scores with their 0/1 labels (e.g. a rater's "sensible" for each
    reply scored): P(label 1 | score). ValueError without both labels among the scores."""
    values, marks = np.asarray(scores, np.float64), np.asarray(labels, np.float64)
    keep = np.isfinite(values)
    values, marks = values[keep], marks[keep]
    if len(values) == 0 or marks.min() == marks.max():
        raise ValueError("calibration needs scores labelled both 0 and 1")
    return _platt(values, marks, posts=len(values), k=0)


def fit_calibration(table: np.ndarray) -> Calibration:
    """Platt scaling of a [posts, K] score table whose column 0 holds each post's true reply
    (the others are distractors); cells that are not finite are left out. ValueError when
    there is nothing to fit (no post, or K < 2)."""
    table = np.asarray(table, np.float64)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] < 2:
        raise ValueError(f"calibration needs a [posts, K >= 2] table, got shape {table.shape}")
    labels = np.zeros_like(table)
    labels[:, 0] = 1.0
    keep = np.isfinite(table)
    return _platt(table[keep], labels[keep], posts=table.shape[0], k=table.shape[1])


def _platt(scores: np.ndarray, labels: np.ndarray, posts: int, k: int) -> Calibration:
    """sigmoid(slope x score + intercept) fitted to 0/1 `labels` with Platt's targets."""
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    targets = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    # fitted on standardised scores (well conditioned whatever the ranker's scale), then
    # mapped back to the raw score's slope and intercept
    mean, spread = float(scores.mean()), float(scores.std()) or 1.0
    z = (scores - mean) / spread

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        logits = params[0] * z + params[1]
        # cross-entropy of sigmoid(logits) against the targets, and its gradient
        value = float(np.sum(np.logaddexp(0.0, logits) - targets * logits))
        residual = expit(logits) - targets
        return value, np.array([float(residual @ z), float(residual.sum())])

    prior = float(np.log((positives + 1) / (negatives + 1)))
    found = minimize(loss, np.array([0.0, prior]), jac=True, method="L-BFGS-B")
    slope, intercept = (float(v) for v in found.x)
    return Calibration(slope / spread, intercept - slope * mean / spread, posts=posts, k=k)
