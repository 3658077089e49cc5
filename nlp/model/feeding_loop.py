"""The input-feeding decoder loops (LSTM or GRU, Luong dot/general attention) with their
gradients written out.

Why not let TensorFlow differentiate the loop, as it does for the other decoder variants:
the automatic gradient of a while loop adds, at every step, the gradient of each
loop-invariant tensor it reads. Attention reads the keys and the memory ([B,S,H] each) at
every step, so the automatic backward pass builds and sums two [B,S,H] tensors per target
step, plus a [2H,4H] and a [2H,H] kernel gradient per step. Backpropagation through time
only needs per-step vectors: here the loop collects the per-step gradients of the scores,
the context vectors, the gates and the attentional layer's input, and the gradients of the
keys, the memory and both kernels are each ONE batched matmul after the loop (as in
`recurrence.lstm_sequence`). The arithmetic of the forward pass is that of
`Seq2Seq.decode_step` (Keras LSTMCell gates i, f, c, o, or GRUCell z, r, h with
reset_after; masked softmax attention; attentional vector tanh(W [context; h])), and
`tests/model/test_feeding_loop.py` compares every output and gradient with TensorFlow's automatic
ones. The attention half of each step is shared by both cells (`_Attention`).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from nlp.model.recurrence import (
    gru_cell_backward,
    gru_cell_forward,
    kernel_gradient,
    loop,
    loop_kernel,
    loop_product,
    lstm_cell_backward,
    lstm_cell_forward,
    previous_steps,
    transposed,
)


class AttentionInputs(NamedTuple):
    """What the loops' attention reads: keys and memory [B,S,H], the attentional layer's
    kernel [2H,H] and the source mask [B,S] (bool, True at real tokens)."""

    keys: tf.Tensor
    memory: tf.Tensor
    kernel: tf.Tensor
    mask: tf.Tensor


def lstm_attention_loop(
    projected: tf.Tensor,
    kernel: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    feed0: tf.Tensor,
    attention: AttentionInputs,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Teacher forcing of one input-feeding LSTM layer with dot-product attention.

    projected [T,B,4H]: each step's embedding times its kernel rows, plus the bias;
    kernel [2H,4H]: the feed rows of the input kernel stacked on the recurrent kernel
    (`recurrence.feed_kernel`); `operands`: the operand dtype of the steps' products with
    `kernel` and the attentional kernel (`recurrence.loop_product`) and of those kernels'
    gradients after the loop (`recurrence.kernel_gradient`); attention's products stay in
    the dtype of the keys: rounding them gained nothing measurable.
    Returns time-major attentional vectors, context vectors, LSTM outputs [T,B,H] and
    attention weights [T,B,S].
    """
    keys, memory, attentional_kernel, mask = attention
    return _lstm_loop(mask, operands)(
        projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel
    )


def gru_attention_loop(
    projected: tf.Tensor,
    feed_kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    recurrent_bias: tf.Tensor,
    h0: tf.Tensor,
    feed0: tf.Tensor,
    attention: AttentionInputs,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """`lstm_attention_loop` for a GRU layer (Keras reset_after=True, gates z, r, h).

    projected [T,B,3H]: each step's embedding times its kernel rows, plus the input bias;
    feed_kernel [H,3H]: the feed rows of the input kernel (`recurrence.feed_kernel`);
    recurrent_kernel [H,3H] and recurrent_bias [3H]: kept apart from the feed rows, since
    the reset gate multiplies the recurrent product alone. The rest as there.
    """
    keys, memory, attentional_kernel, mask = attention
    return _gru_loop(mask, operands)(
        projected, feed_kernel, recurrent_kernel, recurrent_bias, h0, feed0, keys, memory,
        attentional_kernel,
    )


class _Attention:
    """The attention half of an input-feeding step, shared by both cells: scores, masked
    softmax, context and the attentional vector tanh(W [context; h]) forward; their
    gradient step by step; and the gradients of the keys, the memory and W, each one
    product over all steps after the loop."""

    def __init__(
        self, keys: tf.Tensor, memory: tf.Tensor, attentional_kernel: tf.Tensor,
        mask: tf.Tensor, operands: tf.DType | None,
    ) -> None:
        self.keys, self.memory, self.mask, self.operands = keys, memory, mask, operands
        self.attentional_kernel = attentional_kernel
        self.lowest = tf.fill(tf.shape(mask), keys.dtype.min)
        self.step_kernel = loop_kernel(attentional_kernel, operands)

    def step(self, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(attentional vector, context vector, weights) of one step's output h."""
        scores = tf.matmul(h[:, None, :], self.keys, transpose_b=True)[:, 0]
        weights = tf.nn.softmax(tf.where(self.mask, scores, self.lowest), axis=-1)
        context = tf.matmul(weights[:, None, :], self.memory)[:, 0]
        attentional = tf.tanh(loop_product(tf.concat([context, h], -1), self.step_kernel))
        return attentional, context, weights


class _AttentionBackward:
    """The backward pass of `_Attention`: its kernel transposed once, before the loop."""

    def __init__(self, attention: _Attention) -> None:
        self.attention = attention
        self.kernel_t = loop_kernel(transposed(attention.attentional_kernel), attention.operands)

    def step(
        self, d_attentional: tf.Tensor, attentional: tf.Tensor, weights: tf.Tensor,
        d_context_out: tf.Tensor, d_weights_out: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """From dL/d(attentional vector) (what the loss and the next step's feed send back)
        and the upstream gradients of the step's context vector and weights: (dL/dh through
        attention, dL/d(attentional pre-activation), dL/dscores, dL/dcontext)."""
        # attentional = tanh([context; h] Wc)
        d_pre = d_attentional * (1.0 - attentional * attentional)
        d_context, d_h = tf.split(loop_product(d_pre, self.kernel_t), 2, axis=-1)
        d_context += d_context_out
        # context = weights . memory; weights = softmax(scores) (zero where masked)
        d_w = tf.matmul(d_context[:, None, :], self.attention.memory, transpose_b=True)[:, 0]
        d_w += d_weights_out
        d_scores = weights * (d_w - tf.reduce_sum(weights * d_w, axis=-1, keepdims=True))
        d_h += tf.matmul(d_scores[:, None, :], self.attention.keys)[:, 0]
        return d_h, d_pre, d_scores, d_context

    def gradients(
        self, d_scores: tf.Tensor, d_context: tf.Tensor, d_pre: tf.Tensor,
        contexts: tf.Tensor, outputs: tf.Tensor, weights: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """After the loop, from the stacked [T,B,.] step values: the gradients of the keys,
        the memory and the attentional kernel."""
        batch_major = [1, 0, 2]
        d_keys = tf.matmul(  # sum over t of d_scores_t^T h_t, per row: [B,S,H]
            tf.transpose(d_scores, batch_major), tf.transpose(outputs, batch_major),
            transpose_a=True,
        )
        d_memory = tf.matmul(
            tf.transpose(weights, batch_major), tf.transpose(d_context, batch_major),
            transpose_a=True,
        )
        joined = tf.concat([contexts, outputs], axis=-1)  # [T,B,2H]
        return d_keys, d_memory, kernel_gradient(joined, d_pre, self.attention.operands)


def _upstream(upstream, values):  # type: ignore[no-untyped-def]
    """The loop outputs' upstream gradients, zeros for those that got none."""
    return [tf.zeros_like(v) if d is None else d for d, v in zip(upstream, values, strict=True)]


def _lstm_loop(mask: tf.Tensor, operands: tf.DType | None):  # type: ignore[no-untyped-def]
    """The LSTM loop as a custom-gradient function; the mask (no gradient) and the operand
    dtype are closed over."""

    @tf.custom_gradient
    def fed_loop(projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel):  # type: ignore[no-untyped-def]
        steps = tf.shape(projected)[0]
        dtype = projected.dtype
        attention = _Attention(keys, memory, attentional_kernel, mask, operands)
        step_kernel = loop_kernel(kernel, operands)

        def body(t, h, c, feed, *arrays):  # type: ignore[no-untyped-def]
            gates = projected[t] + loop_product(tf.concat([feed, h], axis=-1), step_kernel)
            h, c, activations = lstm_cell_forward(gates, c)
            attentional, context, weights = attention.step(h)
            values = (attentional, context, h, weights, c, activations)
            return h, c, attentional, *(a.write(t, v) for a, v in zip(arrays, values, strict=True))

        _, _, _, *arrays = loop(
            steps, body, (h0, c0, feed0, *[tf.TensorArray(dtype, size=steps) for _ in range(6)])
        )
        attentional, contexts, outputs, weights, cells, activations = (a.stack() for a in arrays)

        def grad(*upstream):  # type: ignore[no-untyped-def]
            d_attentional, d_contexts, d_outputs, d_weights = _upstream(
                upstream, (attentional, contexts, outputs, weights)
            )
            # The input of each step's matmul with `kernel`: [feed_(t-1); h_(t-1)].
            previous = tf.concat(
                [previous_steps(attentional, feed0), previous_steps(outputs, h0)], axis=-1
            )
            previous_c = previous_steps(cells, c0)
            kernel_t = loop_kernel(transposed(kernel), operands)
            back_attention = _AttentionBackward(attention)

            def back(t, d_feed, dh, dc, *arrays):  # type: ignore[no-untyped-def]
                d_h, d_pre, d_scores, d_context = back_attention.step(
                    d_attentional[t] + d_feed, attentional[t], weights[t], d_contexts[t],
                    d_weights[t],
                )
                dh = dh + d_outputs[t] + d_h
                d_gates, dc = lstm_cell_backward(activations[t], cells[t], previous_c[t], dh, dc)
                d_feed, dh = tf.split(loop_product(d_gates, kernel_t), 2, axis=-1)
                values = (d_gates, d_pre, d_scores, d_context)
                return d_feed, dh, dc, *(a.write(t, v) for a, v in zip(arrays, values, strict=True))

            zeros = tf.zeros_like(h0)
            d_feed0, dh0, dc0, *arrays = loop(
                steps, back,
                (zeros, zeros, zeros, *[tf.TensorArray(dtype, size=steps) for _ in range(4)]),
                backward=True,
            )
            d_gates, d_pre, d_scores, d_context = (a.stack() for a in arrays)
            d_keys, d_memory, d_attentional_kernel = back_attention.gradients(
                d_scores, d_context, d_pre, contexts, outputs, weights
            )
            return (
                d_gates, kernel_gradient(previous, d_gates, operands), dh0, dc0, d_feed0,
                d_keys, d_memory, d_attentional_kernel,
            )

        return (attentional, contexts, outputs, weights), grad

    return fed_loop


def _gru_loop(mask: tf.Tensor, operands: tf.DType | None):  # type: ignore[no-untyped-def]
    """The GRU loop as a custom-gradient function (see `_lstm_loop`)."""

    @tf.custom_gradient
    def fed_loop(  # type: ignore[no-untyped-def]
        projected, feed_kernel, recurrent, recurrent_bias, h0, feed0, keys, memory,
        attentional_kernel,
    ):
        steps = tf.shape(projected)[0]
        dtype = projected.dtype
        attention = _Attention(keys, memory, attentional_kernel, mask, operands)
        step_feed_kernel = loop_kernel(feed_kernel, operands)
        step_recurrent = loop_kernel(recurrent, operands)

        def body(t, h, feed, *arrays):  # type: ignore[no-untyped-def]
            x = projected[t] + loop_product(feed, step_feed_kernel)
            inner = loop_product(h, step_recurrent) + recurrent_bias
            h, activations = gru_cell_forward(x, inner, h)
            attentional, context, weights = attention.step(h)
            values = (attentional, context, h, weights, activations)
            return h, attentional, *(a.write(t, v) for a, v in zip(arrays, values, strict=True))

        _, _, *arrays = loop(
            steps, body, (h0, feed0, *[tf.TensorArray(dtype, size=steps) for _ in range(5)])
        )
        attentional, contexts, outputs, weights, activations = (a.stack() for a in arrays)

        def grad(*upstream):  # type: ignore[no-untyped-def]
            d_attentional, d_contexts, d_outputs, d_weights = _upstream(
                upstream, (attentional, contexts, outputs, weights)
            )
            previous_feed = previous_steps(attentional, feed0)
            previous_h = previous_steps(outputs, h0)
            feed_kernel_t = loop_kernel(transposed(feed_kernel), operands)
            recurrent_t = loop_kernel(transposed(recurrent), operands)
            back_attention = _AttentionBackward(attention)

            def back(t, d_feed, dh, *arrays):  # type: ignore[no-untyped-def]
                d_h, d_pre, d_scores, d_context = back_attention.step(
                    d_attentional[t] + d_feed, attentional[t], weights[t], d_contexts[t],
                    d_weights[t],
                )
                dh = dh + d_outputs[t] + d_h
                d_x, d_inner, dh_direct = gru_cell_backward(activations[t], previous_h[t], dh)
                dh = dh_direct + loop_product(d_inner, recurrent_t)
                d_feed = loop_product(d_x, feed_kernel_t)
                values = (d_x, d_inner, d_pre, d_scores, d_context)
                return d_feed, dh, *(a.write(t, v) for a, v in zip(arrays, values, strict=True))

            zeros = tf.zeros_like(h0)
            d_feed0, dh0, *arrays = loop(
                steps, back,
                (zeros, zeros, *[tf.TensorArray(dtype, size=steps) for _ in range(5)]),
                backward=True,
            )
            d_x, d_inner, d_pre, d_scores, d_context = (a.stack() for a in arrays)
            d_keys, d_memory, d_attentional_kernel = back_attention.gradients(
                d_scores, d_context, d_pre, contexts, outputs, weights
            )
            return (
                d_x,
                kernel_gradient(previous_feed, d_x, operands),
                kernel_gradient(previous_h, d_inner, operands),
                tf.reduce_sum(d_inner, axis=[0, 1]),
                dh0, d_feed0, d_keys, d_memory, d_attentional_kernel,
            )

        return (attentional, contexts, outputs, weights), grad

    return fed_loop
