"""Vocabulary unlikelihood (`train.unlikelihood_weight`, Li et al. 2020): the words the
batch's predictions over-use, relative to its replies, are made less likely where the reply
holds another word; validation stays the exact likelihood."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.losses import overused_unlikelihood, sampled_logits, sampled_nll
from nlp.training.objective import Objective
from nlp.util.config import ModelConfig, TrainConfig

VOCAB = 12
SOURCE = tf.constant([[5, 6, 7, 2], [8, 9, 2, 0]], tf.int32)
TARGET_IN = tf.constant([[1, 4, 4, 9], [1, 10, 0, 0]], tf.int32)
TARGET_OUT = tf.constant([[4, 4, 9, 2], [10, 2, 0, 0]], tf.int32)


def _logits(rows: list[list[float]]) -> tf.Tensor:
    return tf.constant(rows, tf.float32)


def test_an_over_predicted_word_is_penalised_where_the_reply_says_another() -> None:
    # four real positions (targets 3, 3, 4, 5) and one of padding; every prediction is 3
    targets = tf.constant([[3, 3, 4, 5, 0]], tf.int32)
    row = [0.0, 0.0, 0.0, math.log(3.0), 0.0, 0.0]  # p(3) = 3 / 8 over six words
    logits = _logits([row] * 5)
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=6)
    # p_model(3) = 4/4, p_human(3) = 2/4: beta = 1 * ln 2; positions 3 and 4 (targets 4, 5)
    # are penalised, each -ln(1 - 3/8); the padding position is not
    assert float(count) == 2.0
    assert float(penalty) == pytest.approx(2 * math.log(2.0) * -math.log(5 / 8), rel=1e-5)


def test_no_penalty_when_the_predictions_use_words_as_the_replies_do() -> None:
    targets = tf.constant([[3, 4]], tf.int32)
    logits = _logits([[0.0, 0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0, 2.0]])
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=5)
    assert float(count) == 0.0 and float(penalty) == 0.0


def test_a_word_no_reply_holds_counts_as_half_an_occurrence() -> None:
    targets = tf.constant([[3, 4]], tf.int32)
    logits = _logits([[0.0, 0.0, 2.0, 0.0, 0.0]] * 2)  # both predict 2, which no reply holds
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=5)
    beta = 1.0 * math.log(1.0 / 0.25)  # p_model 2/2, p_human 0.5/2
    p = math.exp(2.0) / (math.exp(2.0) + 4.0)
    assert float(count) == 2.0
    assert float(penalty) == pytest.approx(2 * beta * -math.log(1 - p), rel=1e-5)


def test_the_sampled_softmax_penalises_the_word_the_model_predicts() -> None:
    """The argmax reads the model's own logits, not the corrected ones (which favour the
    rare ids drawn), and the predicted word's probability sums its repeated draws."""
    vocab = 1000
    # two positions, targets 5 and 6; the draw repeats word 0 and holds a rare word, 900
    sampled = tf.constant([0, 0, 0, 900])
    kernel = np.zeros((2, vocab), np.float32)
    kernel[0, 0] = 2.0  # the model's argmax everywhere: word 0
    kernel[0, 900] = 1.0  # below word 0, but above it once corrected (rarely drawn)
    features = tf.constant([[[1.0, 0.0], [1.0, 0.0]]], tf.float32)
    bias = tf.zeros([vocab], tf.float32)
    targets = tf.constant([[5, 6]], tf.int32)
    logits = sampled_logits(features, tf.constant(kernel), bias, targets, sampled)
    assert logits.ids.numpy().tolist() == [[5, 0, 0, 0, 900], [6, 0, 0, 0, 900]]
    corrected = logits.corrected.numpy()
    assert corrected[0, 4] > corrected[0, 1]  # corrected, the rare word would win
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=vocab)
    probs = tf.nn.softmax(logits.corrected, axis=-1).numpy()
    p_word0 = probs[:, 1:4].sum(axis=1)  # its three draws together
    beta = 1.0 * math.log(1.0 / 0.25)  # p_model(0) 2/2, p_human 0.5/2
    assert float(count) == 2.0
    assert float(penalty) == pytest.approx(float(np.sum(beta * -np.log(1 - p_word0))),
                                           rel=1e-5)
    losses, mask = sampled_nll(logits.corrected, targets)
    assert losses.shape == (1, 2) and float(tf.reduce_sum(mask)) == 2.0


def test_pick_sampled_penalises_the_sampled_softmaxs_own_argmax() -> None:
    """`pick="sampled"`: the argmax over the corrected logits, at two positions the rare
    word drawn once and at the third the frequent word drawn three times (which the model
    is sure of there), each with its winning column's own probability under the corrected
    softmax: the frequent word's first column, not its three together."""
    vocab = 1000
    sampled = tf.constant([0, 0, 0, 900])
    kernel = np.zeros((2, vocab), np.float32)
    kernel[0, 0], kernel[0, 900] = 2.0, 1.0
    kernel[1, 0] = 20.0
    features = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], tf.float32)
    targets = tf.constant([[5, 6, 7]], tf.int32)
    logits = sampled_logits(features, tf.constant(kernel), tf.zeros([vocab]), targets, sampled)
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=vocab, pick="sampled")
    probs = tf.nn.softmax(logits.corrected, axis=-1).numpy()
    assert probs[2, 1:4].sum() > 0.99  # the three columns of word 0 together: nearly sure
    beta_rare = 2 / 3 * math.log((2 / 3) / (0.5 / 3))  # word 900 predicted at 2 of 3
    beta_word0 = 1 / 3 * math.log((1 / 3) / (0.5 / 3))  # word 0 at 1 of 3
    expected = (beta_rare * -np.log(1 - probs[0, 4]) + beta_rare * -np.log(1 - probs[1, 4])
                + beta_word0 * -np.log(1 - probs[2, 1]))
    assert float(count) == 3.0
    assert float(penalty) == pytest.approx(float(expected), rel=1e-5)
    model_penalty, _ = overused_unlikelihood(logits, targets, vocab_size=vocab)
    assert float(model_penalty) != pytest.approx(float(penalty))
    with pytest.raises(ValueError, match="pick must be one of model, sampled"):
        overused_unlikelihood(logits, targets, vocab_size=vocab, pick="corrected")


def test_the_exact_softmax_penalty_reads_the_argmax_probability() -> None:
    targets = tf.constant([[1, 2]], tf.int32)
    logits = _logits([[0.5, 0.0, 0.0, 3.0], [0.0, 1.0, 0.0, 3.0]])
    penalty, count = overused_unlikelihood(logits, targets, vocab_size=4)
    p = tf.nn.softmax(logits, axis=-1).numpy()[:, 3]
    beta = 1.0 * math.log(1.0 / 0.25)
    assert float(count) == 2.0
    assert float(penalty) == pytest.approx(float(np.sum(beta * -np.log(1 - p))), rel=1e-5)


def test_the_word_counts_are_summed_over_replicas() -> None:
    """`total` adds the other replicas' counts: here a stand-in that doubles them, as if
    another replica held the same half-batch."""
    targets = tf.constant([[3, 4]], tf.int32)
    logits = _logits([[0.0, 0.0, 0.0, 2.0, 0.0]] * 2)  # both predict 3; one target is 3
    alone, _ = overused_unlikelihood(logits, targets, vocab_size=5)
    doubled, _ = overused_unlikelihood(logits, targets, vocab_size=5, total=lambda x: 2 * x)
    # the shares are the same, so beta and the penalty are
    assert float(doubled) == pytest.approx(float(alone))


def _objective(weight: float, sampled: int = 0, pick: str = "model") -> Objective:
    keras.utils.set_random_seed(0)
    model = Seq2Seq(ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8, dropout=0.0))
    return Objective(model, TrainConfig(
        unlikelihood_weight=weight, sampled_softmax=sampled, unlikelihood_pick=pick))


@pytest.mark.parametrize(("sampled", "pick"), [(0, "model"), (6, "model"), (6, "sampled")])
def test_the_training_loss_adds_the_weighted_mean_penalty(sampled: int, pick: str) -> None:
    step = tf.constant(0, tf.int64)
    plain, penalised = _objective(0.0, sampled), _objective(10.0, sampled, pick)
    state, context = plain.model.encode(SOURCE)
    terms = plain.token_terms(state, context, TARGET_IN, TARGET_OUT, step)
    penalty, count = overused_unlikelihood(terms.logits, TARGET_OUT, VOCAB, pick=pick)
    if pick != "model":  # else the loss below could not tell whether the pick reached it
        other, _ = overused_unlikelihood(terms.logits, TARGET_OUT, VOCAB)
        assert float(other) != pytest.approx(float(penalty))
    assert float(count) > 0  # the untrained model's argmax over-uses a word
    base = float(plain.loss(SOURCE, TARGET_IN, TARGET_OUT, step))
    expected = base + 10.0 * float(penalty) / max(float(count), 1.0)
    assert float(penalised.loss(SOURCE, TARGET_IN, TARGET_OUT, step)) == pytest.approx(
        expected, rel=1e-5)
    # validation is the exact likelihood, with or without the penalty
    assert [float(x) for x in penalised.validation_sums(SOURCE, TARGET_IN, TARGET_OUT)] == \
        pytest.approx([float(x) for x in plain.validation_sums(SOURCE, TARGET_IN, TARGET_OUT)])


def test_a_training_step_lowers_an_over_predicted_words_probability() -> None:
    """Gradient descent on the penalty alone moves mass off the over-used word."""
    targets = tf.constant([[3, 4, 5, 6]], tf.int32)
    logits = tf.Variable(tf.tile(tf.constant([[0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0]]), [4, 1]))
    before = float(tf.nn.softmax(logits)[1, 3])
    for _ in range(5):
        with tf.GradientTape() as tape:
            penalty, count = overused_unlikelihood(logits, targets, vocab_size=7)
            loss = penalty / count
        logits.assign_sub(0.5 * tape.gradient(loss, logits))
    assert float(tf.nn.softmax(logits)[1, 3]) < before


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unlikelihood_weight must be >= 0"):
        _objective(-1.0)
    with pytest.raises(ValueError, match="unlikelihood_pick must be one of model, sampled"):
        _objective(1.0, pick="raw")
    with pytest.raises(ValueError, match=r"pick=sampled needs train\.sampled_softmax > 0"):
        _objective(1.0, sampled=0, pick="sampled")
    model = Seq2Seq(ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8, copy=True))
    with pytest.raises(ValueError, match=r"needs model\.copy=false"):
        Objective(model, TrainConfig(unlikelihood_weight=1.0))
