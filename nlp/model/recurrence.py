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
    inner = tf.matmul(states[0], recurrent)
    if isinstance(cell, keras.layers.GRUCell):
        return _gru_gates(projected, inner + _weight(cell.bias, projected.dtype)[1], states[0])
    return _lstm_gates(projected + inner, states[1])


def step_with_extra_input(
    cell: keras.layers.Layer,
    projected: tf.Tensor,
    states: Sequence[tf.Tensor],
    extra: tf.Tensor,
    extra_kernel: tf.Tensor,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """`step` for a cell whose input also has a part only known inside the loop (`extra`,
    with its rows of the input kernel): the input feeding vector. For an LSTM the extra
    input and the previous h go through ONE matmul with the stacked kernels; a GRU keeps
    its recurrent product apart (the reset gate multiplies it alone)."""
    if isinstance(cell, keras.layers.GRUCell):
        return step(cell, projected + tf.matmul(extra, extra_kernel), states)
    stacked = tf.concat([extra_kernel, _weight(cell.recurrent_kernel, projected.dtype)], axis=0)
    gates = projected + tf.matmul(tf.concat([extra, states[0]], axis=-1), stacked)
    return _lstm_gates(gates, states[1])


def _lstm_gates(gates: tf.Tensor, c_prev: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Keras LSTMCell arithmetic from x W + h U + b (gate order i, f, c, o)."""
    i, f, c, o = tf.split(gates, 4, axis=-1)
    c_new = tf.sigmoid(f) * c_prev + tf.sigmoid(i) * tf.tanh(c)
    h = tf.sigmoid(o) * tf.tanh(c_new)
    return h, [h, c_new]


def _gru_gates(
    projected: tf.Tensor, inner: tf.Tensor, h_prev: tf.Tensor
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Keras GRUCell arithmetic (reset_after=True) from x W + b_x and h U + b_h (z, r, h)."""
    x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
    r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
    z = tf.sigmoid(x_z + r_z)
    r = tf.sigmoid(x_r + r_r)
    h = z * h_prev + (1.0 - z) * tf.tanh(x_h + r * r_h)
    return h, [h]


def time_major(sequence: tf.Tensor) -> tf.TensorArray:
    """[B,T,...] as a TensorArray of T steps, for reading step t inside a while loop.

    Why not `sequence[:, t]`: the gradient of slicing a tensor captured by a loop is a
    full-size tensor per iteration, summed over all of them (T^2 memory traffic); a
    TensorArray's gradient writes one step per iteration.
    """
    steps = tf.shape(sequence)[1]
    perm = [1, 0, *range(2, sequence.shape.rank)]
    return tf.TensorArray(sequence.dtype, size=steps).unstack(tf.transpose(sequence, perm))


def run(
    cell: keras.layers.Layer, inputs: tf.Tensor, states: Sequence[tf.Tensor]
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The cell over inputs [B,T,in] from `states`: (outputs [B,T,H], final states)."""
    projected = time_major(project_inputs(cell, inputs))
    steps = tf.shape(inputs)[1]
    outputs = tf.TensorArray(inputs.dtype, size=steps)

    def body(t, states, outputs):  # type: ignore[no-untyped-def]
        h, new_states = step(cell, projected.read(t), states)
        return t + 1, new_states, outputs.write(t, h)

    _, final, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), list(states), outputs),
        maximum_iterations=steps,  # lets XLA (train.jit_compile) size the gradient stacks
    )
    return tf.transpose(outputs.stack(), [1, 0, 2]), final


def bidirectional(
    layer: keras.layers.Bidirectional, inputs: tf.Tensor, mask: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A Keras Bidirectional(LSTM|GRU) layer's weights run over right-padded inputs.

    Returns (outputs [B,T,2H], forward final h, backward final h). Both directions run in
    ONE loop as a batch of two (a batched matmul with both recurrent kernels): half the
    per-step operations of two loops, which is what a 2-core CPU is short of. The backward
    direction reads each row's real tokens from the last to the first (`reverse_sequence`
    keeps the padding at the end), so no real position ever sees padding and the loop
    needs no mask; the final states are read at each row's last real step. Outputs at
    padded positions are not meaningful: attention masks them.
    """
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    batch = tf.shape(inputs)[0]
    cells = (layer.forward_layer.cell, layer.backward_layer.cell)
    reversed_inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    projected = tf.stack(
        [project_inputs(cell, x) for cell, x in zip(cells, (inputs, reversed_inputs),
                                                    strict=True)]
    )  # [2,B,T,gates]
    projected = time_major(tf.transpose(projected, [0, 2, 1, 3]))  # T steps of [2,B,gates]
    recurrent = tf.stack([_weight(cell.recurrent_kernel, inputs.dtype) for cell in cells])
    gru = isinstance(cells[0], keras.layers.GRUCell)
    if gru:
        recurrent_bias = tf.stack([_weight(c.bias, inputs.dtype)[1] for c in cells])[:, None, :]
    units = cells[0].units
    zeros = tf.zeros(tf.stack([2, batch, units]), inputs.dtype)
    states = [zeros] if gru else [zeros, zeros]
    steps = tf.shape(inputs)[1]
    outputs = tf.TensorArray(inputs.dtype, size=steps)

    def body(t, states, outputs):  # type: ignore[no-untyped-def]
        inner = tf.matmul(states[0], recurrent)  # [2,B,gates]
        if gru:
            h, new_states = _gru_gates(projected.read(t), inner + recurrent_bias, states[0])
        else:
            h, new_states = _lstm_gates(projected.read(t) + inner, states[1])
        return t + 1, new_states, outputs.write(t, h)

    _, _, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), states, outputs),
        maximum_iterations=steps,
    )
    sequences = tf.transpose(outputs.stack(), [1, 2, 0, 3])  # [2,B,T,H]
    last = tf.maximum(lengths - 1, 0)
    forward_h = tf.gather(sequences[0], last, batch_dims=1)
    backward_h = tf.gather(sequences[1], last, batch_dims=1)
    backward = tf.reverse_sequence(sequences[1], lengths, seq_axis=1, batch_axis=0)
    return tf.concat([sequences[0], backward], axis=-1), forward_h, backward_h
