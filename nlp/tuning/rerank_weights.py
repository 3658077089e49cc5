"""Choosing the MMI re-ranking's weights by Hits@1 of K on validation posts (`s2s tune-decoding`).

Why Hits and not the chat objective: the weights decide which candidate a re-ranking prefers,
and Hits asks exactly that of a score, whether it prefers the reply people gave to replies
given to other posts, without generating anything. So one scoring pass of the validation
posts (`nlp.generation.reply_scores`) tries every weight below in arithmetic, and the
re-ranking configurations the chat objective then compares use the weights that pick fitting
replies best. Scores are per reply token, as re-ranking with these weights then ranks
(`DecodeOptions.mmi_per_token`).

TensorFlow-free: it sees a `table(options) -> [posts, K] scores` function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp.decoding.options import DecodeOptions
from nlp.generation.decode_settings import DEFAULT_RERANK_WEIGHTS
from nlp.metrics.hits import hits_at_1


def _grid(
    rerank: str, lambdas: Sequence[float], gammas: Sequence[int]
) -> tuple[dict[str, Any], ...]:
    """The re-ranking's default weights first (so a tie keeps them), then every other
    combination."""
    default = DEFAULT_RERANK_WEIGHTS[rerank]
    others = [{"mmi_lambda": lam, "mmi_gamma": gamma} for gamma in gammas for lam in lambdas]
    return (default, *(weights for weights in others if weights != default))


# Weights tried per re-ranking, on the per-token score (`nlp.generation.mmi`: each term a
# mean over the tokens it covers). Anti-LM: lambda 1 on every token is pointwise mutual
# information per token; smaller lambdas keep more of the model's own preference. Bidi:
# lambda 1 weighs the backward mean over the message as much as the forward mean over the
# reply.
RERANK_GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "mmi-antilm": _grid("mmi-antilm", (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5), (5, 3, 0)),
    "mmi-bidi": _grid("mmi-bidi", (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0), (0,)),
    # BM25 (scaled to the best candidate's) beside the dual encoder's cosine: from a nudge
    # that breaks the encoder's near-ties to BM25 leading
    "dual-encoder+bm25": (
        DEFAULT_RERANK_WEIGHTS["dual-encoder+bm25"],
        *({"bm25_weight": w} for w in (0.25, 0.5, 0.75, 1.5, 2.0, 3.0)),
    ),
}
# Validation posts scored (each with K-1 distractors): scoring needs no decoding, so many
# more posts than the decoded sample fit the budget, and Hits of 1,000 posts moves by about
# 0.01 (one standard error) where 200 would move by 0.03.
HITS_POSTS = 1000


@dataclass(frozen=True)
class WeightTrial:
    rerank: str
    weights: dict[str, Any]
    hits: float


def choose_rerank_weights(
    table: Callable[[DecodeOptions], np.ndarray], reranks: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], list[WeightTrial]]:
    """Per re-ranking in `reranks`, the grid's weights with the highest Hits@1 (the first
    of equals), and every trial in order."""
    chosen: dict[str, dict[str, Any]] = {}
    trials: list[WeightTrial] = []
    for rerank in reranks:
        best: WeightTrial | None = None
        for weights in RERANK_GRIDS[rerank]:
            options = DecodeOptions(rerank=rerank, mmi_per_token=True, **weights)
            trial = WeightTrial(rerank, dict(weights), hits_at_1(table(options)))
            trials.append(trial)
            if best is None or trial.hits > best.hits + 1e-12:
                best = trial
        assert best is not None  # every grid has weights
        chosen[rerank] = best.weights
    return chosen, trials
