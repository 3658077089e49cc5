"""LSTM/GRU recurrences over whole sequences, on the weights of Keras cells.

Why not `keras.layers.LSTM`/`GRU` everywhere: on a CPU (no cuDNN) Keras 3 runs its generic
loop, which multiplies each step's input by the input kernel inside the loop: T small matmuls
where one [B*T, in] x [in, gates] matmul does the same work with far less overhead. These
functions hoist that input projection out of the loop, so the loop only does the recurrent
matmul. On a GPU the balance should turn: Keras documents that its LSTM/GRU layers pick
cuDNN's fused kernels there (untested here: no run of this project has had a GPU). So the
choice is the model option `model.recurrence` (`resolve`): "written" runs these loops,
"keras" calls Keras' layers (`keras_bidirectional` for the encoder's own `Bidirectional`
LSTM/GRU layers; `keras_sequence`, a `keras.layers.RNN` over a decoder cell, Keras'
generic loop), and "auto" picks the layers when TensorFlow sees a GPU. Both run the same
variables, so a model trained one way loads and decodes the other way.

The arithmetic is exactly that of `keras.layers.LSTMCell` and `GRUCell` (gate order i, f, c, o
and z, r, h; GRU with `reset_after=True`, the Keras default and what cuDNN computes), applied
to the cells' own variables. `decode_step` keeps calling the cells themselves, and the model
tests check that both paths give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import keras
import tensorflow as tf

RECURRENCES = ("auto", "keras", "written")  # the values of `model.recurrence`


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU, where Keras documents its LSTM/GRU layers run cuDNN."""
    return bool(tf.config.list_physical_devices("GPU"))


def resolve(option: str) -> str:
    """The recurrence a model built now runs: "keras" or "written" (`model.recurrence`).

    "auto" is "keras" on a GPU (where Keras documents cuDNN's fused kernels for the
    encoder's layers; untested here) and "written" otherwise (on a CPU Keras' generic loop
    repeats the input projection at every step, see the module docstring). Decided when
    the model is built, while the config keeps the option: a bundle trained on a CPU runs
    Keras' layers when it is loaded on a GPU, and the other way round.
    """
    if option not in RECURRENCES:
        raise ValueError(f"recurrence must be one of {', '.join(RECURRENCES)}, got {option!r}")
    if option != "auto":
        return option
    return "keras" if gpu_available() else "written"


def keras_sequence(cell: keras.layers.Layer) -> keras.layers.Layer:
    """A `keras.layers.RNN` over `cell` (whole sequences, states returned): Keras' own loop
    on the cell's own variables.

    Why `RNN(cell)`, the way Keras documents to run a given cell, and not its `LSTM`/`GRU`
    layers: those take no cell (they build their own), and putting the model's cell into
    one would rest on Keras' internals. The price: `RNN` runs Keras' generic loop, never
    cuDNN, so on a GPU only the encoder can get cuDNN's kernels. Why a cell the model
    owns rather than a layer: the weights stay where they always were
    (`decoder_cells/i`), so bundles and checkpoints are the same whichever recurrence ran.
    The caller must keep the layer out of the model's tracking, or its weights would be
    reachable, and saved, twice.
    """
    return keras.layers.RNN(
        cell, return_sequences=True, return_state=True, dtype=cell.dtype_policy,
        name=f"{cell.name}_sequence",
    )


def keras_bidirectional(
    layer: keras.layers.Bidirectional, inputs: tf.Tensor, mask: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`bidirectional` by the Keras layer itself (cuDNN on a GPU, as Keras documents;
    untested here): (outputs [B,T,2H], forward final h, backward final h).

    Outputs at padded positions differ from `bidirectional`'s; attention masks them. A row
    without any real token gets its first step counted as real: cuDNN refuses a fully
    masked row, and `bidirectional` reads such a row's final states at its first step too,
    so the states agree on every row. (Such a row's attention covers the padding, where
    the two differ; it never reaches the model: every source holds at least the end token,
    and the decoder refuses empty ones.)
    """
    first = tf.equal(tf.range(tf.shape(mask)[1]), 0)[None, :]
    outputs, *states = layer(inputs, mask=tf.logical_or(mask, first))
    return outputs, states[0], states[len(states) // 2]


def _weight(variable: keras.Variable, dtype: tf.DType) -> tf.Tensor:
    """A cell variable as a tensor of the compute dtype (float16 under mixed precision)."""
    return tf.cast(tf.convert_to_tensor(variable), dtype)


def input_bias(cell: keras.layers.Layer, dtype: tf.DType) -> tf.Tensor:
    """The bias added to the input projection (GRU keeps a second one for the recurrence)."""
    bias = _weight(cell.bias, dtype)
    return bias[0] if isinstance(cell, keras.layers.GRUCell) else bias


def product(inputs: tf.Tensor, kernel: tf.Tensor, operands: tf.DType | None = None) -> tf.Tensor:
    """inputs [..., k] x kernel [k, n] -> [..., n] in the dtype of `inputs`, the operands
    rounded to `operands` (bfloat16: `train.precision`, see `nlp.training.precision`) when
    given; its gradients then run in that dtype too."""
    return _rounded(lambda x, w: tf.tensordot(x, w, axes=1), inputs, kernel, operands)


def _rounded(multiply, a: tf.Tensor, b: tf.Tensor, operands: tf.DType | None) -> tf.Tensor:  # type: ignore[no-untyped-def]
    """multiply(a, b) in the dtype of `a`, both operands rounded to `operands` when given
    (the result, accumulated in float32 by oneDNN, cast back): the one definition behind
    `product` and `kernel_gradient`."""
    if operands is None or operands == a.dtype:
        return multiply(a, tf.cast(b, a.dtype))
    return tf.cast(multiply(tf.cast(a, operands), tf.cast(b, operands)), a.dtype)


def loop_kernel(kernel: tf.Tensor, operands: tf.DType | None) -> tf.Tensor:
    """A kernel a loop multiplies by at every step, rounded once, before the loop, to the
    loop products' operand dtype (`operands`, see `loop_product`; None: as it is)."""
    return kernel if operands is None else tf.cast(kernel, operands)


def loop_product(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """One step's x [B,k] x kernel [k,n] (from `loop_kernel`), in the dtype of `x`.

    With a bfloat16 kernel (`train.precision`), x is rounded to bfloat16 for the product and
    the float32-accumulated result cast back: the state, the gates and everything carried
    from step to step stay float32; only the operands of the product are rounded. Why:
    on a CPU with bfloat16 instructions the per-step product is the loop's largest cost,
    and rounding only its operands makes it cheaper without letting the carried state
    drift in low precision (`benchmarks/train_throughput.py` measures the effect)."""
    if kernel.dtype == x.dtype:
        return tf.matmul(x, kernel)
    return tf.cast(tf.matmul(tf.cast(x, kernel.dtype), kernel), x.dtype)


def project_inputs(
    cell: keras.layers.Layer,
    inputs: tf.Tensor,
    rows: slice | None = None,
    operands: tf.DType | None = None,
) -> tf.Tensor:
    """inputs [..., in] x the cell's input kernel (+ input bias): [..., gates].

    `rows` selects part of the kernel when the cell's input is a concatenation and only
    that part is known ahead of the loop (the embeddings, under input feeding); the bias is
    added with it. `operands`: see `product`.
    """
    kernel = tf.convert_to_tensor(cell.kernel)
    if rows is not None:
        kernel = kernel[rows]
    return product(inputs, kernel, operands) + input_bias(cell, inputs.dtype)


def feed_kernel(cell: keras.layers.Layer, rows: slice, dtype: tf.DType) -> tf.Tensor:
    """The kernel applied inside the loop to the input columns only known there (`rows` of
    the input kernel, the input feeding vector): for an LSTM stacked on the recurrent kernel,
    so `step_with_extra_input` does one matmul; built once, before the loop."""
    rows_kernel = _weight(cell.kernel, dtype)[rows]
    if isinstance(cell, keras.layers.GRUCell):
        return rows_kernel
    return tf.concat([rows_kernel, _weight(cell.recurrent_kernel, dtype)], axis=0)


def recurrent_weights(
    cell: keras.layers.Layer, dtype: tf.DType
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The cell's recurrent kernel U and, for a GRU, the bias b_h added to h U (a GRU with
    reset_after keeps it apart from the input bias; None for an LSTM)."""
    recurrent = _weight(cell.recurrent_kernel, dtype)
    if isinstance(cell, keras.layers.GRUCell):
        return recurrent, _weight(cell.bias, dtype)[1]
    return recurrent, None


def step(
    cell: keras.layers.Layer, projected: tf.Tensor, states: Sequence[tf.Tensor]
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """One step from the already projected input: (output h, new states)."""
    recurrent, recurrent_bias = recurrent_weights(cell, projected.dtype)
    inner = tf.matmul(states[0], recurrent)
    if recurrent_bias is not None:  # GRU
        h, _ = gru_cell_forward(projected, inner + recurrent_bias, states[0])
        return h, [h]
    h, c, _ = lstm_cell_forward(projected + inner, states[1])
    return h, [h, c]


def step_with_extra_input(
    cell: keras.layers.Layer,
    projected: tf.Tensor,
    states: Sequence[tf.Tensor],
    extra: tf.Tensor,
    kernel: tf.Tensor,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """`step` for a cell whose input also has a part only known inside the loop (`extra`,
    the input feeding vector; `kernel` from `feed_kernel`). For an LSTM the extra input and
    the previous h go through ONE matmul with the stacked kernels; a GRU keeps its
    recurrent product apart (the reset gate multiplies it alone)."""
    if isinstance(cell, keras.layers.GRUCell):
        return step(cell, projected + tf.matmul(extra, kernel), states)
    gates = projected + tf.matmul(tf.concat([extra, states[0]], axis=-1), kernel)
    h, c, _ = lstm_cell_forward(gates, states[1])
    return h, [h, c]


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
    cell: keras.layers.Layer,
    inputs: tf.Tensor,
    states: Sequence[tf.Tensor],
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The cell over inputs [B,T,in] from `states`: (outputs [B,T,H], final states).

    The input projection is one matmul before the loop; the loop itself is `lstm_sequence`
    or `gru_sequence`, whose gradients are written out (see there). `operands`: the operand
    dtype of the input projection (`product`), the loop's per-step products
    (`loop_product`) and the recurrent kernel's gradient (`kernel_gradient`)."""
    outputs, final = run_time_major(cell, tf.transpose(inputs, [1, 0, 2]), states, operands)
    return tf.transpose(outputs, [1, 0, 2]), final


def run_time_major(
    cell: keras.layers.Layer,
    inputs: tf.Tensor,
    states: Sequence[tf.Tensor],
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """`run` on time-major inputs [T,B,in]: (outputs [T,B,H], final states). The loops run
    time-major, so callers transpose the inputs, which are narrower than the projection
    (`in` against 4H or 3H columns), rather than the projection."""
    dtype = inputs.dtype
    projected = project_inputs(cell, inputs, operands=operands)
    recurrent, recurrent_bias = recurrent_weights(cell, dtype)
    if recurrent_bias is not None:  # GRU
        outputs, h = gru_sequence(projected, recurrent, recurrent_bias, states[0], operands)
        final = [h]
    else:
        outputs, h, c = lstm_sequence(projected, recurrent, states[0], states[1], operands)
        final = [h, c]
    return outputs, final


def bidirectional(
    layer: keras.layers.Bidirectional,
    inputs: tf.Tensor,
    mask: tf.Tensor,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A Keras Bidirectional(LSTM|GRU) layer's weights run over right-padded inputs.

    Returns (outputs [B,T,2H], forward final h, backward final h). The two directions are
    two independent loops, which TensorFlow can run at the same time on two cores (one loop
    over a batch of both directions would serialise them). The backward direction reads
    each row's real tokens from the last to the first (`reverse_steps` keeps the padding at
    the end), so no real position ever sees padding and the loop needs no mask; the final
    states are read at each row's last real step. Outputs at padded positions are not
    meaningful: attention masks them. `operands`: the operand dtype of the input
    projections (`product`), of the loops' per-step products (`loop_product`) and of the
    recurrent kernels' gradients (`kernel_gradient`).
    """
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    forward_cell, backward_cell = layer.forward_layer.cell, layer.backward_layer.cell
    zeros = tf.zeros(tf.stack([tf.shape(inputs)[0], forward_cell.units]), inputs.dtype)
    states = [zeros] if isinstance(forward_cell, keras.layers.GRUCell) else [zeros, zeros]
    time_major = tf.transpose(inputs, [1, 0, 2])  # once, for both directions
    forward, _ = run_time_major(forward_cell, time_major, states, operands)
    backward_reversed, _ = run_time_major(
        backward_cell, reverse_steps(time_major, lengths), states, operands
    )
    last = tf.maximum(lengths - 1, 0)
    at_last = tf.stack([last, tf.range(tf.shape(last)[0])], axis=-1)  # (step, row)
    forward_h = tf.gather_nd(forward, at_last)
    backward_h = tf.gather_nd(backward_reversed, at_last)
    backward = reverse_steps(backward_reversed, lengths)
    return (
        tf.transpose(tf.concat([forward, backward], axis=-1), [1, 0, 2]), forward_h, backward_h
    )


def reverse_steps(sequence: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Time-major sequence [T,B,F] with each row's first `lengths` steps reversed and its
    padding left in place: `tf.reverse_sequence(sequence, lengths, seq_axis=0,
    batch_axis=1)`.

    Why not `reverse_sequence` itself: its CPU kernel is slower than one gather of the same
    rows, and the encoder runs four reversals a step (two forward, two for the gradient).
    The reversal is its own inverse, so the gradient is the same gather (TensorFlow's own
    gradient of a gather would scatter-add)."""
    shape = tf.shape(sequence)
    steps, rows = shape[0], shape[1]
    t = tf.range(steps)[:, None]
    n = lengths[None, :]
    source_step = tf.where(t < n, n - 1 - t, t)  # [T,B]
    flat_rows = tf.reshape(source_step * rows + tf.range(rows)[None, :], [-1])
    flat = tf.reshape(sequence, tf.stack([steps * rows, -1]))
    return tf.reshape(_gather_involution(flat, flat_rows), shape)


@tf.custom_gradient
def _gather_involution(rows, index):  # type: ignore[no-untyped-def]
    """tf.gather(rows, index) for an index that is its own inverse permutation; its
    gradient is the same gather."""

    def grad(upstream):  # type: ignore[no-untyped-def]
        return tf.gather(upstream, index), None

    return tf.gather(rows, index), grad


# --- whole-sequence recurrences with written-out gradients ----------------------------------
#
# Why not let TensorFlow differentiate the loop: the automatic gradient of a while loop adds,
# at every step, the recurrent kernel's gradient h_(t-1)^T x dgates_t (a small matmul and an
# accumulation into a [H, gates] buffer) and pushes and pops every intermediate through
# TensorList stacks. Backpropagation through time only needs dgates_t @ U^T inside the loop:
# the kernel's gradient is ONE [H, T*B] x [T*B, gates] matmul after it, and the input
# projection's gradient is the stacked dgates, so each backward step does one small matmul
# and one accumulation less, and no intermediate goes through the automatic gradient's
# stacks. The tests compare both gradients with TensorFlow's own.


def loop(steps: tf.Tensor, body, carried: tuple, backward: bool = False) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """`tf.while_loop` over t = 0..T-1 (or T-1..0): body(t, *carried) -> carried."""
    def call(i, *values):  # type: ignore[no-untyped-def]
        t = steps - 1 - i if backward else i
        return (i + 1, *body(t, *values))

    result = tf.while_loop(
        lambda i, *_: i < steps, call, (tf.constant(0), *carried),
        maximum_iterations=steps,  # lets XLA (train.jit_compile) bound the loop
    )
    return tuple(result[1:])


def _stacked(arrays: Sequence[tf.TensorArray]) -> list[tf.Tensor]:
    return [a.stack() for a in arrays]


def _arrays(dtype: tf.DType, steps: tf.Tensor, count: int) -> list[tf.TensorArray]:
    return [tf.TensorArray(dtype, size=steps) for _ in range(count)]


def previous_steps(outputs: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
    """[h_0 (the initial state), h_1 .. h_(T-1)]: each step's incoming state, [T,B,H]."""
    return tf.concat([first[None], outputs[:-1]], axis=0)


def lstm_cell_forward(gates: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One LSTM step from x W + h U + b (gate order i, f, c, o): (h, c, the activations
    [i, f, g, o] that `lstm_cell_backward` needs)."""
    i, f, g, o = tf.split(gates, 4, axis=-1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c + i * g
    return o * tf.tanh(c), c, tf.concat([i, f, g, o], -1)


def lstm_cell_backward(
    activations: tf.Tensor, c: tf.Tensor, c_previous: tf.Tensor, dh: tf.Tensor, dc: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The gradient of one `lstm_cell_forward` step: from dL/dh and the dL/dc carried back,
    (dL/dgates, dL/dc_previous)."""
    i, f, g, o = tf.split(activations, 4, axis=-1)
    tanh_c = tf.tanh(c)
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    d_gates = tf.concat(
        [dc * g * i * (1.0 - i), dc * c_previous * f * (1.0 - f),
         dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)],
        axis=-1,
    )
    return d_gates, dc * f


def gru_cell_forward(
    x: tf.Tensor, inner: tf.Tensor, h: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """One GRU step (Keras reset_after=True, gate order z, r, h) from x W + b_x and
    h U + b_h: (h, the activations [z, r, candidate, (h U + b_h)_h] that
    `gru_cell_backward` needs)."""
    x_z, x_r, x_h = tf.split(x, 3, axis=-1)
    r_z, r_r, r_h = tf.split(inner, 3, axis=-1)
    z = tf.sigmoid(x_z + r_z)
    r = tf.sigmoid(x_r + r_r)
    candidate = tf.tanh(x_h + r * r_h)
    return z * h + (1.0 - z) * candidate, tf.concat([z, r, candidate, r_h], -1)


def gru_cell_backward(
    activations: tf.Tensor, h_previous: tf.Tensor, dh: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The gradient of one `gru_cell_forward` step from dL/dh: (dL/d(x W + b_x),
    dL/d(h U + b_h), the part of dL/dh_previous that does not go through U)."""
    z, r, candidate, r_h = tf.split(activations, 4, axis=-1)
    d_candidate = dh * (1.0 - z) * (1.0 - candidate * candidate)
    dz = dh * (h_previous - candidate) * z * (1.0 - z)
    dr = d_candidate * r_h * r * (1.0 - r)
    d_inner = tf.concat([dz, dr, d_candidate * r], axis=-1)
    d_x = tf.concat([dz, dr, d_candidate], axis=-1)
    return d_x, d_inner, dh * z


def lstm_sequence(
    projected: tf.Tensor,
    recurrent: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """An LSTM over time-major projected inputs x W + b [T,B,4H] with recurrent kernel
    U [H,4H] (Keras gate order i, f, c, o): (outputs [T,B,H], final h, final c).
    `operands`: the operand dtype of the per-step products (`loop_product`) and of the
    kernel's gradient after the loop (`kernel_gradient`)."""
    return _lstm_sequence(operands)(projected, recurrent, h0, c0)


@cache
def _lstm_sequence(operands: tf.DType | None):  # type: ignore[no-untyped-def]
    """`lstm_sequence` with its gradient, for one operand dtype (closed over: not a tensor)."""

    @tf.custom_gradient
    def sequence(projected, recurrent, h0, c0):  # type: ignore[no-untyped-def]
        steps = tf.shape(projected)[0]
        kernel = loop_kernel(recurrent, operands)

        def body(t, h, c, hs, cs, acts):  # type: ignore[no-untyped-def]
            h, c, activations = lstm_cell_forward(projected[t] + loop_product(h, kernel), c)
            return h, c, hs.write(t, h), cs.write(t, c), acts.write(t, activations)

        h, c, *arrays = loop(steps, body, (h0, c0, *_arrays(projected.dtype, steps, 3)))
        outputs, cells, activations = _stacked(arrays)

        def grad(d_outputs, d_h, d_c):  # type: ignore[no-untyped-def]
            previous_c = previous_steps(cells, c0)
            kernel_t = loop_kernel(transposed(recurrent), operands)

            def back(t, dh, dc, dgates):  # type: ignore[no-untyped-def]
                d, dc = lstm_cell_backward(
                    activations[t], cells[t], previous_c[t], dh + d_outputs[t], dc
                )
                return loop_product(d, kernel_t), dc, dgates.write(t, d)

            dh0, dc0, dgates = loop(
                steps, back, (d_h, d_c, tf.TensorArray(projected.dtype, size=steps)),
                backward=True,
            )
            dgates = dgates.stack()
            return dgates, kernel_gradient(previous_steps(outputs, h0), dgates, operands), dh0, dc0

        return (outputs, h, c), grad

    return sequence


def gru_sequence(
    projected: tf.Tensor,
    recurrent: tf.Tensor,
    recurrent_bias: tf.Tensor,
    h0: tf.Tensor,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """A GRU (Keras reset_after=True, gate order z, r, h) over time-major projected inputs
    x W + b_x [T,B,3H], recurrent kernel U [H,3H] and bias b_h [3H]: (outputs [T,B,H],
    final h). `operands`: the operand dtype of the per-step products (`loop_product`) and
    of the kernel's gradient after the loop (`kernel_gradient`)."""
    return _gru_sequence(operands)(projected, recurrent, recurrent_bias, h0)


@cache
def _gru_sequence(operands: tf.DType | None):  # type: ignore[no-untyped-def]
    """`gru_sequence` with its gradient, for one operand dtype (closed over: not a tensor)."""

    @tf.custom_gradient
    def sequence(projected, recurrent, recurrent_bias, h0):  # type: ignore[no-untyped-def]
        steps = tf.shape(projected)[0]
        kernel = loop_kernel(recurrent, operands)

        def body(t, h, hs, acts):  # type: ignore[no-untyped-def]
            h, activations = gru_cell_forward(
                projected[t], loop_product(h, kernel) + recurrent_bias, h
            )
            return h, hs.write(t, h), acts.write(t, activations)

        h, *arrays = loop(steps, body, (h0, *_arrays(projected.dtype, steps, 2)))
        outputs, activations = _stacked(arrays)

        def grad(d_outputs, d_h):  # type: ignore[no-untyped-def]
            previous = previous_steps(outputs, h0)
            kernel_t = loop_kernel(transposed(recurrent), operands)

            def back(t, dh, dinner):  # type: ignore[no-untyped-def]
                d_projected, d_inner, dh_direct = gru_cell_backward(
                    activations[t], previous[t], dh + d_outputs[t]
                )
                dh_previous = dh_direct + loop_product(d_inner, kernel_t)
                return dh_previous, dinner.write(t, tf.concat([d_inner, d_projected], -1))

            dh0, d = loop(
                steps, back, (d_h, tf.TensorArray(projected.dtype, size=steps)), backward=True
            )
            d_inner, d_projected = tf.split(d.stack(), 2, axis=-1)
            return (
                d_projected,
                kernel_gradient(previous, d_inner, operands),
                tf.reduce_sum(d_inner, axis=[0, 1]),
                dh0,
            )

        return (outputs, h), grad

    return sequence


def transposed(kernel: tf.Tensor) -> tf.Tensor:
    """A kernel transposed once, before a backward loop multiplies by it at every step.

    Why not `matmul(x, kernel, transpose_b=True)` inside the loop: on CPU TensorFlow runs a
    product with a transposed operand markedly slower than the same product with the kernel
    transposed in memory, and transposing once, before the loop, costs one copy."""
    return tf.transpose(kernel)


def kernel_gradient(
    previous: tf.Tensor, dgates: tf.Tensor, operands: tf.DType | None = None
) -> tf.Tensor:
    """sum over t and batch of h_(t-1)^T dgates_t: one matmul over all steps, its operands
    rounded to `operands` when given (as `product` does for the input projections' kernel
    gradients), the result in the dtype of `previous` and `dgates`."""
    units, gates = tf.shape(previous)[-1], tf.shape(dgates)[-1]
    return _rounded(
        lambda a, b: tf.matmul(a, b, transpose_a=True),
        tf.reshape(previous, [-1, units]), tf.reshape(dgates, [-1, gates]), operands,
    )
