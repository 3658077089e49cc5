"""A score read as a probability: fitted on (score, label) pairs, applied to any raw score.

Why: a ranker only orders candidates, and the best of a bad lot is still sent; the bot
should know when even its best candidate is unlikely to fit (and say something safe
instead, `DecodeOptions.fallback_threshold`). A score's scale means nothing across rankers
(nats, nats per token, a cosine, a cosine plus scaled BM25), so each is fitted to a
probability on examples whose answer is known: Platt scaling (Platt 1999),
P(positive | score) = sigmoid(slope x score + intercept), with Platt's smoothed targets so
that scores that separate the examples perfectly still get a finite slope. The slope is
never negative: a higher score never means a smaller probability (monotone), so a threshold
on the probability keeps the ranker's order. What the examples are (which candidates, which
positives) is the caller's to say (`nlp.tuning.calibration` for the chat's rankers): the
probability is that of a positive among candidates drawn as the examples were. No model and
no TensorFlow: pairs in, two numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit


@dataclass(frozen=True)
class Calibration:
    """sigmoid(slope x score + intercept), slope >= 0, fitted on `pairs` (score, label)
    pairs of which `positives` were positive."""

    slope: float
    intercept: float
    pairs: int = 0
    positives: int = 0

    def probability(self, scores: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """The probability that a candidate with each of these raw scores is a positive."""
        return np.asarray(expit(self.slope * np.asarray(scores, np.float64) + self.intercept))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibration:
        return cls(float(raw["slope"]), float(raw["intercept"]),
                   int(raw.get("pairs", 0)), int(raw.get("positives", 0)))


def fit_calibration(scores: Sequence[float] | np.ndarray,
                    labels: Sequence[bool | int] | np.ndarray) -> Calibration:
    """Platt scaling of `scores` against their `labels` (true or 1: a positive); pairs whose
    score is not finite are left out. ValueError unless some positive and some negative
    remain."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, np.float64).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"calibration needs one label a score, got {scores.size} scores and "
                         f"{labels.size} labels")
    keep = np.isfinite(scores)
    scores, labels = scores[keep], labels[keep] > 0
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise ValueError(f"calibration needs positives and negatives, got {positives} "
                         f"positive and {negatives} negative scores")
    targets = np.where(labels, (positives + 1) / (positives + 2), 1 / (negatives + 2))
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
    found = minimize(loss, np.array([0.0, prior]), jac=True, method="L-BFGS-B",
                     bounds=[(0.0, None), (None, None)])
    slope, intercept = (float(v) for v in found.x)
    return Calibration(slope / spread, intercept - slope * mean / spread,
                       pairs=len(scores), positives=positives)
