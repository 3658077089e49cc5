"""The inverse token frequency loss (`train.itf_power`): each target token's loss is
weighted by its word's training-target count to the power -p, the weights scaled to mean 1
over the training targets' tokens; validation stays unweighted."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.distribution import DecoderOutputs
from nlp.model.losses import sample_log_uniform, sampled_logits, sampled_nll, token_losses
from nlp.training.objective import Objective, draw_seed, inverse_frequency_weights
from nlp.util.config import ModelConfig, TrainConfig

VOCAB = 12
SOURCE = tf.constant([[5, 6, 7, 2], [8, 9, 2, 0]], tf.int32)
TARGET_IN = tf.constant([[1, 4, 4, 9], [1, 10, 0, 0]], tf.int32)
TARGET_OUT = tf.constant([[4, 4, 9, 2], [10, 2, 0, 0]], tf.int32)


def test_the_weights_fall_with_a_words_count_and_average_one_over_the_targets() -> None:
    weights = inverse_frequency_weights([[3, 3, 4]], vocab_size=5, power=1.0)
    # counts 0, 0, 0, 2, 1: raw weights 1, 1, 1, 1/3, 1/2, whose mean over the three
    # target tokens is (2/3 + 1/2) / 3 = 7/18; each is divided by it
    assert weights == pytest.approx([18 / 7, 18 / 7, 18 / 7, 6 / 7, 9 / 7])
    assert (2 * weights[3] + weights[4]) / 3 == pytest.approx(1.0)
    assert inverse_frequency_weights([[3, 3, 4]], 5, power=0.0) == pytest.approx([1.0] * 5)


def _objective(power: float, sampled: int = 0) -> Objective:
    keras.utils.set_random_seed(0)
    model = Seq2Seq(ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8, dropout=0.0))
    weights = inverse_frequency_weights(
        [[4, 4, 9, 2], [10, 2]], VOCAB, power) if power > 0 else None
    config = TrainConfig(itf_power=power, sampled_softmax=sampled)
    return Objective(model, config, token_weights=weights)


@pytest.mark.parametrize("sampled", [0, 6])
def test_the_training_loss_is_the_weighted_mean_of_the_token_losses(sampled: int) -> None:
    step = tf.constant(0, tf.int64)
    plain = _objective(0.0, sampled)
    weighted = _objective(0.5, sampled)
    # the same model (same seed) without weights gives each token's loss
    if sampled:
        features, _, _ = plain.model.teacher_forcing_features(
            *plain.model.encode(SOURCE), TARGET_IN)
        ids = sample_log_uniform(sampled, VOCAB, draw_seed(plain.config.seed, step,
                                                            "sampled_words"))
        kernel, bias = plain.model.output_parameters()
        losses, mask = sampled_nll(
            sampled_logits(features, kernel, bias, TARGET_OUT, ids).corrected, TARGET_OUT)
    else:
        outputs: DecoderOutputs = plain.model.teacher_forcing(SOURCE, TARGET_IN)
        losses, mask = token_losses(outputs, TARGET_OUT, VOCAB)
    w = tf.gather(weighted.token_weights, TARGET_OUT)
    expected = float(tf.reduce_sum(losses * w) / tf.reduce_sum(mask))
    assert float(plain.loss(SOURCE, TARGET_IN, TARGET_OUT, step)) == pytest.approx(
        float(tf.reduce_sum(losses) / tf.reduce_sum(mask)), rel=1e-5)
    assert float(weighted.loss(SOURCE, TARGET_IN, TARGET_OUT, step)) == pytest.approx(
        expected, rel=1e-5)
    assert expected != pytest.approx(float(tf.reduce_sum(losses) / tf.reduce_sum(mask)))


def test_validation_stays_unweighted() -> None:
    plain, weighted = _objective(0.0), _objective(0.5)
    assert [float(x) for x in weighted.validation_sums(SOURCE, TARGET_IN, TARGET_OUT)] == (
        pytest.approx([float(x) for x in plain.validation_sums(SOURCE, TARGET_IN, TARGET_OUT)]))


def test_a_negative_power_or_missing_weights_are_refused() -> None:
    model = Seq2Seq(ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8))
    with pytest.raises(ValueError, match="itf_power must be >= 0"):
        Objective(model, TrainConfig(itf_power=-0.1))
    with pytest.raises(ValueError, match="token weights"):
        Objective(model, TrainConfig(itf_power=0.4))
    assert np.all(np.isfinite(inverse_frequency_weights([], VOCAB, 0.4)))
