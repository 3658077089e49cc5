"""The input-feeding decoder loops with their written-out gradients (`nlp.model.feeding_loop`,
LSTM and GRU) against TensorFlow's automatic gradient of the generic loop, on whole models: the same
log-probabilities and the same gradient for every weight, with padded sources (masked
attention) and every output of the loop in use (copy reads the attention weights and the
context vectors)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.feeding_loop import AttentionInputs, gru_attention_loop, lstm_attention_loop
from nlp.model.losses import masked_mean_loss
from nlp.model.recurrence import gru_cell_forward, lstm_cell_forward
from nlp.util.config import ModelConfig

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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention", ["general", "dot"])
@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("peek", [False, True])
def test_written_out_gradient_equals_automatic(
    cell: str, attention: str, copy: bool, peek: bool
) -> None:
    model = _model(cell=cell, attention=attention, copy=copy, peek=peek)
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
    [{"attention": "bahdanau"}, {"decoder_layers": 2}, {"coverage": True},
     {"input_feeding": False}, {"attention": "none"}],
)
def test_other_decoders_keep_the_automatic_gradient(settings: dict[str, object]) -> None:
    assert not _model(**settings)._has_written_out_loop()


def _rounded(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.matmul(tf.cast(x, tf.bfloat16), tf.cast(kernel, tf.bfloat16)), x.dtype)


def _attend(h, keys, memory, attentional_kernel, mask):  # type: ignore[no-untyped-def]
    scores = tf.matmul(h[:, None, :], keys, transpose_b=True)[:, 0]
    weights = tf.nn.softmax(tf.where(mask, scores, tf.float32.min), axis=-1)
    context = tf.matmul(weights[:, None, :], memory)[:, 0]
    return tf.tanh(_rounded(tf.concat([context, h], -1), attentional_kernel)), context, weights


def _rounded_lstm_reference(projected, kernel, h, c, feed, keys, memory, attentional_kernel, mask):  # type: ignore[no-untyped-def]
    """The LSTM loop's forward arithmetic one Python step at a time, its kernel products'
    operands rounded to bfloat16, differentiated by TensorFlow."""
    collected = []
    for t in range(projected.shape[0]):
        h, c, _ = lstm_cell_forward(projected[t] + _rounded(tf.concat([feed, h], -1), kernel), c)
        feed, context, weights = _attend(h, keys, memory, attentional_kernel, mask)
        collected.append((feed, context, h, weights))
    return [tf.stack(values) for values in zip(*collected, strict=True)]


def _rounded_gru_reference(  # type: ignore[no-untyped-def]
    projected, feed_kernel, recurrent, bias, h, feed, keys, memory, attentional_kernel, mask
):
    """The same for the GRU loop."""
    collected = []
    for t in range(projected.shape[0]):
        x = projected[t] + _rounded(feed, feed_kernel)
        h, _ = gru_cell_forward(x, _rounded(h, recurrent) + bias, h)
        feed, context, weights = _attend(h, keys, memory, attentional_kernel, mask)
        collected.append((feed, context, h, weights))
    return [tf.stack(values) for values in zip(*collected, strict=True)]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bfloat16_operands_round_the_kernel_products_only(cell: str) -> None:
    """`operands=bfloat16` rounds the steps' products with the kernels (the outputs move
    off float32's) and nothing else: outputs equal a reference that rounds the same
    operands, gradients its automatic ones up to bfloat16's rounding of the kernels'
    gradients (taken once over all steps after the loop, from bfloat16 operands)."""
    rng = np.random.default_rng(6)
    steps, batch, source, units = 5, 3, 7, 8
    gates = 4 if cell == "lstm" else 3

    def normal(*shape: int, scale: float = 1.0) -> tf.Tensor:
        return tf.constant(rng.normal(size=shape) * scale, tf.float32)

    if cell == "lstm":  # stacked kernel, h, c
        cell_inputs = [normal(2 * units, 4 * units, scale=0.3), normal(batch, units),
                       normal(batch, units)]
        loop, reference = lstm_attention_loop, _rounded_lstm_reference
    else:  # feed kernel, recurrent kernel, recurrent bias, h
        cell_inputs = [normal(units, 3 * units, scale=0.3), normal(units, 3 * units, scale=0.3),
                       normal(3 * units, scale=0.3), normal(batch, units)]
        loop, reference = gru_attention_loop, _rounded_gru_reference
    inputs = [
        normal(steps, batch, gates * units), *cell_inputs, normal(batch, units),
        normal(batch, source, units), normal(batch, source, units),
        normal(2 * units, units, scale=0.3),
    ]
    mask = tf.sequence_mask([7, 5, 2], source)
    weights = [normal(steps, batch, units), normal(steps, batch, units),
               normal(steps, batch, units), normal(steps, batch, source)]

    def run(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = function(*inputs, mask)
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outputs, weights, strict=True))
        return outputs, tape.gradient(loss, inputs)

    def written_out(*args, operands=None):  # type: ignore[no-untyped-def]
        *cell_args, keys, memory, attentional_kernel, mask = args
        attention = AttentionInputs(keys, memory, attentional_kernel, mask)
        return loop(*cell_args, attention, operands=operands)

    outputs, grads = run(lambda *a: written_out(*a, operands=tf.bfloat16))
    float32_outputs, _ = run(written_out)
    want, want_grads = run(reference)
    assert np.max(np.abs(outputs[0] - float32_outputs[0])) > 1e-4  # the products were rounded
    for got, expected in zip(outputs, want, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    for got, expected in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-2)
