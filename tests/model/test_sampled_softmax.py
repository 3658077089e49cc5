"""train.sampled_softmax: the training loss over each target and a few sampled words. Its
gradient approaches the exact softmax's as the draws grow (averaged over draws on a tiny
vocabulary), the draws are the log-uniform distribution's and reproducible, and validation
stays exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.losses import (
    log_uniform_log_probs,
    sample_log_uniform,
    sampled_logits,
    sampled_nll,
    token_losses,
)
from nlp.training.objective import Objective
from nlp.util.config import ExperimentConfig, ModelConfig

VOCAB = 12


def test_the_draws_follow_the_log_uniform_distribution_and_repeat_with_the_seed() -> None:
    seed = tf.constant([3, 7], tf.int64)
    ids = sample_log_uniform(200_000, VOCAB, seed).numpy()
    assert ids.min() >= 0 and ids.max() < VOCAB
    expected = np.exp(log_uniform_log_probs(tf.range(VOCAB), VOCAB).numpy())
    assert expected.sum() == pytest.approx(1.0, abs=1e-5)
    observed = np.bincount(ids, minlength=VOCAB) / len(ids)
    np.testing.assert_allclose(observed, expected, atol=0.005)
    np.testing.assert_array_equal(ids, sample_log_uniform(200_000, VOCAB, seed).numpy())


def test_the_gradient_approaches_the_exact_softmax_gradient() -> None:
    """Averaged over many draws of 64 words of a 12-word vocabulary, the sampled loss's
    gradient with respect to the features, kernel and bias points where the exact one does;
    a single draw of 2 words is far noisier."""
    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(2, 3, 5)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(5, VOCAB)) * 0.5, dtype=tf.float32)
    bias = tf.Variable(rng.normal(size=(VOCAB,)) * 0.1, dtype=tf.float32)
    targets = tf.constant([[4, 5, 0], [7, 11, 2]], tf.int32)
    variables = [kernel, bias]

    def gradient(loss_of) -> np.ndarray:  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch(features)
            losses, mask = loss_of()
            loss = tf.reduce_sum(losses) / tf.reduce_sum(mask)
        grads = tape.gradient(loss, [features, *variables])
        return np.concatenate([tf.convert_to_tensor(g).numpy().ravel() for g in grads])

    def exact() -> tuple[tf.Tensor, tf.Tensor]:
        from nlp.model.distribution import DecoderOutputs

        logits = tf.einsum("bth,hv->btv", features, kernel) + bias
        outputs = DecoderOutputs(logits, tf.zeros([2, 3, 1]), None, tf.zeros([2, 1], tf.int32))
        return token_losses(outputs, targets, VOCAB)

    def sampled(count: int, step: int) -> tuple[tf.Tensor, tf.Tensor]:
        ids = sample_log_uniform(count, VOCAB, tf.constant([1, step], tf.int64))
        return sampled_nll(sampled_logits(features, kernel, bias, targets, ids).corrected, targets)

    full = gradient(exact)
    mean = np.mean([gradient(lambda s=s: sampled(64, s)) for s in range(200)], axis=0)
    single = gradient(lambda: sampled(2, 0))

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert cosine(mean, full) > 0.99
    assert np.linalg.norm(mean - full) < 0.15 * np.linalg.norm(full)
    assert cosine(single, full) < cosine(mean, full)


def _model_and_objective(**train: object) -> tuple[Seq2Seq, Objective]:
    keras.utils.set_random_seed(0)
    config = ExperimentConfig().with_overrides(
        [f"train.{k}={v}" for k, v in train.items()])
    model = Seq2Seq(ModelConfig(vocab_size=40, embedding_dim=8, units=8, dropout=0.0))
    return model, Objective(model, config.train)


def test_training_uses_the_sampled_loss_and_validation_the_exact_one() -> None:
    source = tf.constant([[5, 6, 7, 2]], tf.int32)
    target_in = tf.constant([[1, 8, 9]], tf.int32)
    target_out = tf.constant([[8, 9, 2]], tf.int32)
    _, exact = _model_and_objective()
    _, sampled = _model_and_objective(sampled_softmax=4)
    step = tf.constant(0, tf.int64)
    full = float(exact.loss(source, target_in, target_out, step))
    few = float(sampled.loss(source, target_in, target_out, step))
    assert few != pytest.approx(full)  # over 1 + 4 words, not 40
    assert float(sampled.loss(source, target_in, target_out, step)) == pytest.approx(few)
    total, count = sampled.validation_sums(source, target_in, target_out)
    assert float(total / count) == pytest.approx(full, rel=1e-5)  # validation: exact


def test_settings_a_sampled_softmax_cannot_serve_are_refused() -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        _model_and_objective(sampled_softmax=8, label_smoothing=0.1)
    config = ExperimentConfig().with_overrides(["train.sampled_softmax=8"])
    copying = Seq2Seq(ModelConfig(vocab_size=40, embedding_dim=8, units=8, copy=True))
    with pytest.raises(ValueError, match=r"model\.copy"):
        Objective(copying, config.train)
