"""Training the dual encoder: it memorises a small set of pairs, a seed fixes the result,
the time budget and the epochs both stop it, and duplicates in a batch are no negatives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from nlp.ranking import DualEncoderConfig, train_dual_encoder
from nlp.ranking.dual_encoder import DualEncoderNetwork
from nlp.ranking.training import _EXCLUDED, _hard_rows, _logits, drop_tokens
from nlp.tokenizers.specials import PAD_ID, UNK_ID

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


NOUNS = 6
VERB = 50


def _ordered_pairs() -> tuple[list[list[int]], list[list[int]], list[int]]:
    """"noun_i bites noun_j" -> "(who bit) i (who was bitten) j", for every ordered pair of
    distinct nouns, and for each row the row of its swapped post ("man bites dog" beside
    "dog bites man"): the same bag of words wanting another reply."""
    order = [(i, j) for i in range(NOUNS) for j in range(NOUNS) if i != j]
    posts = [[10 + i, VERB, 10 + j] for i, j in order]
    replies = [[100 + i, 200 + j] for i, j in order]
    swapped = [order.index((j, i)) for i, j in order]
    return posts, replies, swapped


def _order_hits(encoder: Any, posts: list[list[int]], replies: list[list[int]],
                swapped: list[int]) -> float:
    """Share of posts that rank their own reply above their swapped post's."""
    scores = encoder.scores(posts, [[replies[row], replies[swapped[row]]]
                                    for row in range(len(posts))])
    return float(np.mean([row[0] > row[1] for row in scores]))


def test_a_recurrent_encoder_learns_word_order_that_a_bag_cannot_read() -> None:
    posts, replies, swapped = _ordered_pairs()
    hard = lambda rows: [[swapped[row]] for row in rows]  # noqa: E731
    settings = dict(batch_size=8, epochs=15, recurrent_units=16, hard_negatives=1)
    recurrent = train_dual_encoder(
        posts, replies, _config(encoder="recurrent", **settings), verbose=0, hard=hard)
    assert _order_hits(recurrent, posts, replies, swapped) >= 0.9
    # A bag gives "i bites j" and "j bites i" one vector, so of each swapped couple at most
    # one ranks its own reply first, however it is trained.
    bag = train_dual_encoder(
        posts, replies, _config(encoder="bag", **settings), verbose=0, hard=hard)
    assert _order_hits(bag, posts, replies, swapped) <= 0.5


def test_hard_negatives_join_every_post_s_softmax_and_duplicates_stay_out() -> None:
    network = DualEncoderNetwork(_config())
    posts = tf.constant([[10, 11], [12, 13]])
    # the batch's replies, then two hard negatives: another pair's reply, and a pair whose
    # reply is a copy of post 0's own reply
    replies = tf.constant([[30], [31], [32], [30]])
    post_keys = tf.constant([0, 1, 2, 3])
    reply_keys = tf.constant([0, 1, 2, 0])
    logits = _logits(network, posts, replies, post_keys, reply_keys, 20.0).numpy()
    assert logits.shape == (2, 4)
    expected = np.zeros((2, 4), dtype=bool)
    expected[0, 3] = True  # the same reply as post 0's: no negative for it
    np.testing.assert_array_equal(logits == _EXCLUDED, expected)


def test_hard_rows_are_drawn_from_what_is_offered_never_the_row_itself() -> None:
    offered = {0: [0, 3, 4, 5], 1: [1], 2: []}
    drawn = _hard_rows(np.array([0, 1, 2]), lambda rows: [offered[r] for r in rows], 2,
                       np.random.default_rng(0))
    assert len(drawn) == 2 and set(drawn.tolist()) <= {3, 4, 5}
    everything = _hard_rows(np.array([0]), lambda rows: [offered[r] for r in rows], 9,
                            np.random.default_rng(0))
    assert sorted(everything.tolist()) == [3, 4, 5]


def test_word_dropout_reads_words_as_unknown_never_padding() -> None:
    ids = np.tile(np.array([[5, 6, 7, 8, 9, PAD_ID, PAD_ID, PAD_ID]], np.int32), (500, 1))
    dropped = drop_tokens(ids, 0.25, np.random.default_rng(0))
    assert (dropped[:, 5:] == PAD_ID).all()
    words = dropped[:, :5]
    assert set(np.unique(words)) <= {5, 6, 7, 8, 9, UNK_ID}
    assert 0.22 < float(np.mean(words == UNK_ID)) < 0.28
    again = drop_tokens(ids, 0.25, np.random.default_rng(0))
    np.testing.assert_array_equal(dropped, again)


def test_word_dropout_changes_training_and_is_seeded() -> None:
    posts, replies = _pairs()
    plain = train_dual_encoder(posts, replies, _config(epochs=2, token_dropout=0.0), verbose=0)
    drop = _config(epochs=2, token_dropout=0.3)
    first = train_dual_encoder(posts, replies, drop, verbose=0).post_vectors(posts)
    again = train_dual_encoder(posts, replies, drop, verbose=0).post_vectors(posts)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, plain.post_vectors(posts))
    with pytest.raises(ValueError, match=r"token_dropout must be in \[0, 1\), got 1.0"):
        _config(token_dropout=1.0).check()
