"""The input-feeding decoder loop with its written-out gradient (`nlp.model.feeding_loop`)
against TensorFlow's automatic gradient of the generic loop, on whole models: the same
log-probabilities and the same gradient for every weight, with padded sources (masked
attention) and every output of the loop in use (copy reads the attention weights and the
context vectors)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.config import ModelConfig
from nlp.model import Seq2Seq
from nlp.model.losses import masked_mean_loss

VOCAB = 30


def _model(**settings: object) -> Seq2Seq:
    tf.keras.utils.set_random_seed(7)
    config = ModelConfig(vocab_size=VOCAB, embedding_dim=6, units=8, dropout=0.0, **settings)
    return Seq2Seq(config)  # type: ignore[arg-type]


def _batch() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    rng = np.random.default_rng(2)
    source = rng.integers(4, VOCAB + 5, size=(3, 7))  # ids >= VOCAB: copied words
    source[1, 5:] = 0  # padded rows: attention must ignore the padding
    source[2, 3:] = 0
    target = rng.integers(4, VOCAB + 3, size=(3, 6))
    target[2, 4:] = 0
    target_in = np.concatenate([np.full((3, 1), 2), target[:, :-1]], axis=1)
    return (tf.constant(source, tf.int32), tf.constant(np.minimum(target_in, VOCAB - 1)),
            tf.constant(target, tf.int32))


def _loss_and_gradients(model: Seq2Seq, written_out: bool):  # type: ignore[no-untyped-def]
    model._has_written_out_loop = lambda: written_out  # type: ignore[method-assign]
    source, target_in, target_out = _batch()
    with tf.GradientTape() as tape:
        outputs = model.teacher_forcing(source, target_in, training=True)
        loss = masked_mean_loss(outputs, target_out, VOCAB, label_smoothing=0.1)
        # the attention weights also reach the loss directly, as coverage-style terms would
        loss += 0.3 * tf.reduce_sum(outputs.attention * outputs.attention)
    return loss, tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("attention", ["general", "dot"])
@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("peek", [False, True])
def test_written_out_gradient_equals_automatic(attention: str, copy: bool, peek: bool) -> None:
    model = _model(attention=attention, copy=copy, peek=peek)
    assert model._has_written_out_loop()
    loss, grads = _loss_and_gradients(model, written_out=True)
    expected_loss, expected = _loss_and_gradients(model, written_out=False)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    names = [v.path for v in model.trainable_variables]
    assert all(g is not None for g in expected)
    for name, got, want in zip(names, grads, expected, strict=True):
        got, want = tf.convert_to_tensor(got), tf.convert_to_tensor(want)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize(
    "settings",
    [{"cell": "gru"}, {"attention": "bahdanau"}, {"decoder_layers": 2}, {"coverage": True},
     {"input_feeding": False}, {"attention": "none"}],
)
def test_other_decoders_keep_the_automatic_gradient(settings: dict[str, object]) -> None:
    assert not _model(**settings)._has_written_out_loop()
