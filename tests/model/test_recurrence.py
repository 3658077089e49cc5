"""The whole-sequence LSTM/GRU loops against Keras: same outputs, and their written-out
gradients equal TensorFlow's automatic gradients of the Keras cells run step by step."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import recurrence

CELLS = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}


def _cell(kind: str, inputs: int, units: int) -> keras.layers.Layer:
    keras.utils.set_random_seed(3)
    cell = CELLS[kind](units)
    cell.build((None, inputs))
    # non-zero biases, so a wrong bias gradient cannot hide behind zeros
    cell.bias.assign(tf.random.normal(cell.bias.shape, stddev=0.5))
    return cell


def _inputs(kind: str, rng: np.random.Generator, batch: int, steps: int, width: int, units: int):  # type: ignore[no-untyped-def]
    """Random inputs [B,T,width], initial states (h, and c for LSTM) and weights [B,T,units]
    for the outputs in a loss, drawn in that order."""
    inputs = tf.constant(rng.normal(size=(batch, steps, width)), tf.float32)
    states = [
        tf.constant(rng.normal(size=(batch, units)), tf.float32)
        for _ in range(2 if kind == "lstm" else 1)
    ]
    return inputs, states, tf.constant(rng.normal(size=(batch, steps, units)), tf.float32)


def _reference(cell: keras.layers.Layer, inputs: tf.Tensor, states: list[tf.Tensor]):  # type: ignore[no-untyped-def]
    """The Keras cell itself, one Python step at a time (what decode_step runs)."""
    outputs = []
    for t in range(inputs.shape[1]):
        h, states = cell(inputs[:, t], states)
        outputs.append(h)
    return tf.stack(outputs, axis=1), list(states)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_run_equals_the_keras_cell_with_the_same_gradients(kind: str) -> None:
    batch, steps, width, units = 3, 5, 4, 6
    cell = _cell(kind, width, units)
    rng = np.random.default_rng(0)
    # weights on every output, including the final states, so each gradient path is used
    inputs, states, out_weight = _inputs(kind, rng, batch, steps, width, units)
    state_weights = [tf.constant(rng.normal(size=(batch, units)), tf.float32) for _ in states]

    def gradients(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch([inputs, *states])
            outputs, final = function(cell, inputs, states)
            loss = tf.reduce_sum(outputs * out_weight) + sum(
                tf.reduce_sum(s * w) for s, w in zip(final, state_weights, strict=True)
            )
        return outputs, final, tape.gradient(loss, [inputs, *states, *cell.trainable_variables])

    outputs, final, grads = gradients(recurrence.run)
    expected_outputs, expected_final, expected_grads = gradients(_reference)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    for got, want in zip(final, expected_final, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # inputs, initial states, kernel, recurrent kernel, bias
    assert len(grads) == len(expected_grads) == 1 + len(states) + 3
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_matches_keras_on_right_padded_rows(kind: str) -> None:
    """Rows of different lengths: each direction sees only the row's real tokens, and the
    gradients reaching the inputs and weights are Keras' (masked Bidirectional layer)."""
    keras.utils.set_random_seed(5)
    layer_class = keras.layers.LSTM if kind == "lstm" else keras.layers.GRU
    layer = keras.layers.Bidirectional(
        layer_class(4, return_sequences=True, return_state=True)
    )
    layer.build((None, None, 3))
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.normal(size=(3, 6, 3)), tf.float32)
    mask = tf.sequence_mask([6, 4, 2], 6)
    weight = tf.constant(rng.normal(size=(3, 6, 8)), tf.float32) * tf.cast(mask, tf.float32)[
        ..., None
    ]

    def loss_and_grads(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            sequence, forward_h, backward_h = function()
            loss = tf.reduce_sum(sequence * weight) + tf.reduce_sum(forward_h - backward_h)
        grads = tape.gradient(loss, [inputs, *layer.trainable_variables])
        return sequence * tf.cast(mask, tf.float32)[..., None], grads

    def keras_path():  # type: ignore[no-untyped-def]
        sequence, *states = layer(inputs, mask=mask)
        per_direction = len(states) // 2
        return sequence, states[0], states[per_direction]

    got, got_grads = loss_and_grads(lambda: recurrence.bidirectional(layer, inputs, mask))
    want, want_grads = loss_and_grads(keras_path)
    np.testing.assert_allclose(got, want, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)


def _rounded_reference(  # type: ignore[no-untyped-def]
    kind: str, cell: keras.layers.Layer, inputs: tf.Tensor, states: list[tf.Tensor]
):
    """The cell's arithmetic one Python step at a time, every product's operands rounded to
    bfloat16 and its result cast back (what `train.precision=bfloat16` asks of the loops),
    differentiated by TensorFlow through the casts."""
    bf16 = tf.bfloat16
    projected = recurrence.product(inputs, cell.kernel, bf16) + recurrence.input_bias(
        cell, tf.float32
    )
    recurrent = tf.cast(cell.recurrent_kernel, bf16)
    outputs = []
    for t in range(inputs.shape[1]):
        inner = tf.cast(tf.matmul(tf.cast(states[0], bf16), recurrent), tf.float32)
        if kind == "gru":
            h, _ = recurrence.gru_cell_forward(projected[:, t], inner + cell.bias[1], states[0])
            states = [h]
        else:
            h, c, _ = recurrence.lstm_cell_forward(projected[:, t] + inner, states[1])
            states = [h, c]
        outputs.append(h)
    return tf.stack(outputs, axis=1), list(states)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bfloat16_operands_round_only_the_products(kind: str) -> None:
    """With bfloat16 operands the loops' products are rounded (the outputs move off the
    float32 ones) and nothing else is: outputs equal a step-by-step reference that rounds
    the same operands, and the written-out gradients equal TensorFlow's automatic ones of
    that reference up to bfloat16's rounding of the kernels' gradients (the written-out
    ones accumulate them in float32)."""
    batch, steps, width, units = 4, 6, 5, 8
    cell = _cell(kind, width, units)
    inputs, states, out_weight = _inputs(kind, np.random.default_rng(4), batch, steps, width, units)

    def gradients(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch([inputs, *states])
            outputs, final = function()
            loss = tf.reduce_sum(outputs * out_weight) + tf.reduce_sum(final[0])
        return outputs, tape.gradient(loss, [inputs, *states, *cell.trainable_variables])

    outputs, grads = gradients(lambda: recurrence.run(cell, inputs, states, tf.bfloat16))
    float32_outputs, _ = gradients(lambda: recurrence.run(cell, inputs, states))
    want, want_grads = gradients(lambda: _rounded_reference(kind, cell, inputs, states))
    assert np.max(np.abs(outputs - float32_outputs)) > 1e-4  # the products were rounded
    np.testing.assert_allclose(outputs, want, atol=1e-5)
    for got, expected in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-2)


def test_reverse_steps_is_reverse_sequence_with_its_gradient() -> None:
    rng = np.random.default_rng(8)
    sequence = tf.constant(rng.normal(size=(6, 4, 3)), tf.float32)  # time-major
    lengths = tf.constant([6, 4, 1, 0])
    upstream = tf.constant(rng.normal(size=(6, 4, 3)), tf.float32)

    def value_and_gradient(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch(sequence)
            value = function(sequence, lengths)
            loss = tf.reduce_sum(value * upstream)
        return value, tape.gradient(loss, sequence)

    got, got_grad = value_and_gradient(recurrence.reverse_steps)
    want, want_grad = value_and_gradient(
        lambda x, n: tf.reverse_sequence(x, n, seq_axis=0, batch_axis=1)
    )
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(tf.convert_to_tensor(got_grad), want_grad)


def test_kernel_gradient_rounds_its_operands_when_asked() -> None:
    """The loops' kernel gradients after the loop take the loop products' operand dtype
    (`train.precision`), like the input projections' kernel gradients: bfloat16 operands,
    the float32-accumulated result in the dtype of the step gradients."""
    rng = np.random.default_rng(9)
    previous = tf.constant(rng.normal(size=(5, 3, 4)), tf.float32)  # [T,B,H]
    dgates = tf.constant(rng.normal(size=(5, 3, 8)), tf.float32)  # [T,B,G]
    exact = tf.einsum("tbh,tbg->hg", previous, dgates)
    np.testing.assert_allclose(recurrence.kernel_gradient(previous, dgates), exact, atol=1e-5)
    rounded = recurrence.kernel_gradient(previous, dgates, tf.bfloat16)
    assert rounded.dtype == tf.float32
    bf16 = tf.bfloat16
    want = tf.einsum(
        "tbh,tbg->hg", tf.cast(tf.cast(previous, bf16), tf.float32),
        tf.cast(tf.cast(dgates, bf16), tf.float32),
    )
    np.testing.assert_allclose(rounded, want, rtol=1e-2)  # the result's bfloat16 rounding
    assert np.max(np.abs(rounded - exact)) > 1e-3  # the operands were rounded
