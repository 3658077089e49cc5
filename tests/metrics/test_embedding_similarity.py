"""Embedding average, greedy matching and vector extrema on vectors small enough to compute
by hand."""

import math

import numpy as np
import pytest

from nlp.metrics.embedding_similarity import embedding_similarities, table_lookup

VECTORS = {
    "yes": np.array([1.0, 0.0]),
    "sure": np.array([0.0, 1.0]),
    "ok": np.array([1.0, 1.0]),
    "no": np.array([-2.0, 0.5]),
}
lookup = table_lookup(VECTORS)


def test_identical_replies_score_one_everywhere() -> None:
    scores = embedding_similarities([["yes", "ok"]], [["yes", "ok"]], lookup)
    assert scores["embedding_average"] == pytest.approx(1.0)
    assert scores["embedding_greedy"] == pytest.approx(1.0)
    assert scores["embedding_extrema"] == pytest.approx(1.0)


def test_hand_computed_values() -> None:
    # reply "yes sure" vs reference "ok no"
    scores = embedding_similarities([["yes", "sure"]], [["ok", "no"]], lookup)
    # average: (0.5, 0.5) vs (-0.5, 0.75): cos = (-0.25 + 0.375) / (0.7071 * 0.9014)
    assert scores["embedding_average"] == pytest.approx(
        0.125 / (math.sqrt(0.5) * math.sqrt(0.8125)))
    # greedy: yes->ok 0.7071, sure->ok 0.7071 (mean 0.7071); ok->yes 0.7071,
    # no->max(cos(no,yes) = -2/2.0616, cos(no,sure) = 0.5/2.0616) = 0.2425 (mean 0.4748)
    no_norm = math.sqrt(4.25)
    expected = (math.sqrt(0.5) + (math.sqrt(0.5) + 0.5 / no_norm) / 2) / 2
    assert scores["embedding_greedy"] == pytest.approx(expected)
    # extrema: reply (1, 1); reference: dim 0 max 1 vs min -2 -> -2; dim 1 max 1 -> 1
    assert scores["embedding_extrema"] == pytest.approx(
        (-2 + 1) / (math.sqrt(2) * math.sqrt(5)))


def test_a_reply_without_vectors_scores_zero() -> None:
    """An empty or out-of-vocabulary reply says nothing like the reference: left out, it would
    raise the mean of a configuration that sends such replies."""
    scores = embedding_similarities([["zzz"], [], ["yes"]], [["yes"], ["ok"], ["Yes"]], lookup)
    assert scores["embedding_scored"] == 3  # "Yes" is looked up lowercased
    for measure in ("embedding_average", "embedding_greedy", "embedding_extrema"):
        assert scores[measure] == pytest.approx(1 / 3)


def test_pairs_whose_reference_has_no_vectors_are_not_scored() -> None:
    scores = embedding_similarities([["yes"], ["yes"]], [["zzz"], ["yes"]], lookup)
    assert scores["embedding_scored"] == 1
    assert scores["embedding_average"] == pytest.approx(1.0)
