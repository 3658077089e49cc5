"""LSTM/GRU recurrences over whole sequences, on the weights of Keras cells.

Why not `keras.layers.LSTM`/`GRU` here: on a CPU (no cuDNN) Keras 3 runs its generic loop,
which multiplies each step's input by the input kernel inside the loop: T small matmuls where
one [B*T, in] x [in, gates] matmul does the same work several times faster. These functions
hoist that input projection out of the loop, so the loop only does the recurrent matmul.

The arithmetic is exactly that of `keras.layers.LSTMCell` and `GRUCell` (gate order i, f, c, o
and z, r, h; GRU with `reset_after=True`, the Keras default), applied to the cells' own
variables. `decode_step` keeps calling the cells themselves, and the model tests check that
both paths give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


def _weight(variable: keras.Variable, dtype: tf.DType) -> tf.Tensor:
    """A cell variable as a tensor of the compute dtype (float16 under mixed precision)."""
    return tf.cast(tf.convert_to_tensor(variable), dtype)


def input_bias(cell: keras.layers.Layer, dtype: tf.DType) -> tf.Tensor:
    """The bias added to the input projection (GRU keeps a second one for the recurrence)."""
    bias = _weight(cell.bias, dtype)
    return bias[0] if isinstance(cell, keras.layers.GRUCell) else bias


def project_inputs(
    cell: keras.layers.Layer, inputs: tf.Tensor, rows: slice | None = None
) -> tf.Tensor:
    """inputs [..., in] x the cell's input kernel (+ input bias): [..., gates].

    `rows` selects part of the kernel when the cell's input is a concatenation and only
    that part is known ahead of the loop (the embeddings, under input feeding); the bias is
    added with it.
    """
    kernel = _weight(cell.kernel, inputs.dtype)
    if rows is not None:
        kernel = kernel[rows]
    return tf.tensordot(inputs, kernel, axes=1) + input_bias(cell, inputs.dtype)


def kernel_rows(cell: keras.layers.Layer, rows: slice, dtype: tf.DType) -> tf.Tensor:
    """Part of the input kernel, for the input columns that are only known inside the loop."""
    return _weight(cell.kernel, dtype)[rows]


def step(
    cell: keras.layers.Layer, projected: tf.Tensor, states: Sequence[tf.Tensor]
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """One step from the already projected input: (output h, new states)."""
    recurrent = _weight(cell.recurrent_kernel, projected.dtype)
    if isinstance(cell, keras.layers.GRUCell):
        (h_prev,) = states
        x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
        inner = tf.matmul(h_prev, recurrent) + _weight(cell.bias, projected.dtype)[1]
        r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        r = tf.sigmoid(x_r + r_r)
        h = z * h_prev + (1.0 - z) * tf.tanh(x_h + r * r_h)
        return h, [h]
    h_prev, c_prev = states
    gates = projected + tf.matmul(h_prev, recurrent)
    i, f, c, o = tf.split(gates, 4, axis=-1)
    c_new = tf.sigmoid(f) * c_prev + tf.sigmoid(i) * tf.tanh(c)
    h = tf.sigmoid(o) * tf.tanh(c_new)
    return h, [h, c_new]


def run(
    cell: keras.layers.Layer,
    inputs: tf.Tensor,
    states: Sequence[tf.Tensor],
    mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The cell over inputs [B,T,in] from `states`: (outputs [B,T,H], final states).

    With a mask [B,T], masked steps keep the previous state and output zeros, so the final
    states are those after each row's last real step (right padding).
    """
    projected = tf.transpose(project_inputs(cell, inputs), [1, 0, 2])  # [T,B,gates]
    steps = tf.shape(projected)[0]
    step_mask = None if mask is None else tf.transpose(mask)[:, :, None]  # [T,B,1]
    outputs = tf.TensorArray(inputs.dtype, size=steps)

    def body(t, states, outputs):  # type: ignore[no-untyped-def]
        h, new_states = step(cell, projected[t], states)
        if step_mask is not None:
            keep = step_mask[t]
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states, strict=True)]
            h = tf.where(keep, h, tf.zeros_like(h))
        return t + 1, new_states, outputs.write(t, h)

    _, final, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), list(states), outputs),
        maximum_iterations=steps,  # lets XLA (train.jit_compile) size the gradient stacks
    )
    return tf.transpose(outputs.stack(), [1, 0, 2]), final


def zero_states(cell: keras.layers.Layer, batch: tf.Tensor, dtype: tf.DType) -> list[tf.Tensor]:
    count = 1 if isinstance(cell, keras.layers.GRUCell) else 2
    return [tf.zeros(tf.stack([batch, cell.units]), dtype) for _ in range(count)]


def bidirectional(
    layer: keras.layers.Bidirectional, inputs: tf.Tensor, mask: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A Keras Bidirectional(LSTM|GRU) layer's weights run over right-padded inputs.

    Returns (outputs [B,T,2H] with zeros on padding, forward final h, backward final h).
    The backward direction reads each row's real tokens from the last one to the first
    (the padding stays at the end), so padding never reaches a state.
    """
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    batch = tf.shape(inputs)[0]
    forward_cell, backward_cell = layer.forward_layer.cell, layer.backward_layer.cell
    forward, forward_states = run(
        forward_cell, inputs, zero_states(forward_cell, batch, inputs.dtype), mask
    )
    reversed_inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    backward, backward_states = run(
        backward_cell, reversed_inputs, zero_states(backward_cell, batch, inputs.dtype), mask
    )
    backward = tf.reverse_sequence(backward, lengths, seq_axis=1, batch_axis=0)
    return tf.concat([forward, backward], axis=-1), forward_states[0], backward_states[0]
