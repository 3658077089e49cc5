"""Training the dual encoder: it memorises a small set of pairs, a seed fixes the result,
the time budget and the epochs both stop it, and duplicates in a batch are no negatives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from nlp.ranking import DualEncoderConfig, train_dual_encoder
from nlp.ranking.dual_encoder import DualEncoderNetwork
from nlp.ranking.training import _EXCLUDED, _logits

pytestmark = pytest.mark.slow  # trains models

PAIRS = 60


def _pairs() -> tuple[list[list[int]], list[list[int]]]:
    """Post "a_i b_i c_i" -> reply "x_i y_i", every id its own: a set to memorise."""
    posts = [[10 + 3 * i, 11 + 3 * i, 12 + 3 * i] for i in range(PAIRS)]
    replies = [[300 + 2 * i, 301 + 2 * i] for i in range(PAIRS)]
    return posts, replies


def _config(**overrides: Any) -> DualEncoderConfig:
    settings: dict[str, Any] = dict(
        vocab_size=500, embedding_dim=32, hidden=32, batch_size=16, epochs=30, minutes=1.0)
    return DualEncoderConfig(**{**settings, **overrides})


def test_memorised_pairs_rank_their_true_reply_first(capsys: pytest.CaptureFixture[str]) -> None:
    posts, replies = _pairs()
    encoder = train_dual_encoder(posts, replies, _config(), valid=(posts[:20], replies[:20]))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 30 and all("loss" in line and "Hits@1" in line for line in lines)
    rng = np.random.default_rng(0)
    candidates = []
    for index in range(PAIRS):
        others = rng.choice(np.delete(np.arange(PAIRS), index), 19, replace=False)
        candidates.append([replies[index]] + [replies[j] for j in others])
    scores = encoder.scores(posts, candidates)
    hits = float(np.mean([np.argmax(row) == 0 for row in scores]))
    assert hits >= 0.9


def test_same_seed_same_weights_and_another_seed_others() -> None:
    posts, replies = _pairs()
    config = _config(epochs=2)
    first = train_dual_encoder(posts, replies, config, verbose=0).post_vectors(posts)
    again = train_dual_encoder(posts, replies, config, verbose=0).post_vectors(posts)
    other = train_dual_encoder(posts, replies, _config(epochs=2, seed=99), verbose=0)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other.post_vectors(posts))


def test_the_time_budget_stops_training_before_the_epochs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    posts, replies = _pairs()
    train_dual_encoder(posts, replies, _config(epochs=1000, minutes=1e-6))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "time budget" in lines[0]


def test_mismatched_or_too_few_pairs_are_refused() -> None:
    posts, replies = _pairs()
    with pytest.raises(ValueError, match="must pair up"):
        train_dual_encoder(posts, replies[:-1], _config(), verbose=0)
    with pytest.raises(ValueError, match="at least 2"):
        train_dual_encoder(posts[:1], replies[:1], _config(), verbose=0)


def test_duplicates_of_the_true_reply_or_post_are_left_out_of_the_softmax() -> None:
    network = DualEncoderNetwork(_config())
    posts = tf.constant([[10, 11], [12, 13], [10, 11], [14, 15]])
    replies = tf.constant([[30], [31], [32], [31]])
    post_keys = tf.constant([0, 1, 0, 2])
    reply_keys = tf.constant([0, 1, 2, 1])
    logits = _logits(network, posts, replies, post_keys, reply_keys, 20.0).numpy()
    excluded = logits == _EXCLUDED
    expected = np.zeros((4, 4), dtype=bool)
    expected[0, 2] = expected[2, 0] = True  # the same post
    expected[1, 3] = expected[3, 1] = True  # the same reply
    np.testing.assert_array_equal(excluded, expected)
    assert np.all(np.abs(logits[~excluded]) <= 20.0 + 1e-4)
