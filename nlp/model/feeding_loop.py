"""The input-feeding decoder loop (LSTM, Luong dot/general attention) with its gradient
written out.

Why not let TensorFlow differentiate the loop, as it does for the other decoder variants:
the automatic gradient of a while loop adds, at every step, the gradient of each
loop-invariant tensor it reads. Attention reads the keys and the memory ([B,S,H] each) at
every step, so the automatic backward pass builds and sums two [B,S,H] tensors per target
step, plus a [2H,4H] and a [2H,H] kernel gradient per step. Backpropagation through time
only needs per-step vectors: here the loop collects the per-step gradients of the scores,
the context vectors, the gates and the attentional layer's input, and the gradients of the
keys, the memory and both kernels are each ONE batched matmul after the loop (as in
`recurrence.lstm_sequence`). The arithmetic of the forward pass is that of
`Seq2Seq.decode_step` (Keras LSTMCell gates i, f, c, o; masked softmax attention;
attentional vector tanh(W [context; h])), and `tests/test_feeding_loop.py` compares every
output and gradient with TensorFlow's automatic ones.
"""

from __future__ import annotations

import tensorflow as tf

from nlp.model.recurrence import (
    kernel_gradient,
    loop,
    loop_kernel,
    loop_product,
    lstm_cell_backward,
    lstm_cell_forward,
    previous_steps,
    transposed,
)


def lstm_attention_loop(
    projected: tf.Tensor,
    kernel: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    feed0: tf.Tensor,
    keys: tf.Tensor,
    memory: tf.Tensor,
    attentional_kernel: tf.Tensor,
    mask: tf.Tensor,
    operands: tf.DType | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Teacher forcing of one input-feeding LSTM layer with dot-product attention.

    projected [T,B,4H]: each step's embedding times its kernel rows, plus the bias;
    kernel [2H,4H]: the feed rows of the input kernel stacked on the recurrent kernel
    (`recurrence.feed_kernel`); keys and memory [B,S,H]; attentional_kernel [2H,H];
    mask [B,S] (bool, real source tokens); `operands`: the operand dtype of the steps'
    products with `kernel` and `attentional_kernel` (`recurrence.loop_product`) and of those
    kernels' gradients after the loop (`recurrence.kernel_gradient`); attention's products
    stay in the dtype of `keys`: rounding them gained nothing measurable.
    Returns time-major attentional vectors, context vectors, LSTM outputs [T,B,H] and
    attention weights [T,B,S].
    """
    return _loop_with_gradient(mask, operands)(
        projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel
    )


def _loop_with_gradient(mask: tf.Tensor, operands: tf.DType | None):  # type: ignore[no-untyped-def]
    """The loop as a custom-gradient function; the mask (no gradient) and the operand dtype
    are closed over."""

    @tf.custom_gradient
    def fed_loop(projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel):  # type: ignore[no-untyped-def]
        steps = tf.shape(projected)[0]
        dtype = projected.dtype
        lowest = tf.fill(tf.shape(mask), dtype.min)
        step_kernel = loop_kernel(kernel, operands)
        step_attentional_kernel = loop_kernel(attentional_kernel, operands)

        def body(t, h, c, feed, *arrays):  # type: ignore[no-untyped-def]
            gates = projected[t] + loop_product(tf.concat([feed, h], axis=-1), step_kernel)
            h, c, activations = lstm_cell_forward(gates, c)
            scores = tf.matmul(h[:, None, :], keys, transpose_b=True)[:, 0]
            weights = tf.nn.softmax(tf.where(mask, scores, lowest), axis=-1)
            context = tf.matmul(weights[:, None, :], memory)[:, 0]
            attentional = tf.tanh(
                loop_product(tf.concat([context, h], -1), step_attentional_kernel)
            )
            values = (attentional, context, h, weights, c, activations)
            return h, c, attentional, *(a.write(t, v) for a, v in zip(arrays, values, strict=True))

        _, _, _, *arrays = loop(
            steps, body, (h0, c0, feed0, *[tf.TensorArray(dtype, size=steps) for _ in range(6)])
        )
        attentional, contexts, outputs, weights, cells, activations = (a.stack() for a in arrays)

        def grad(*upstream):  # type: ignore[no-untyped-def]
            d_attentional, d_contexts, d_outputs, d_weights = (
                tf.zeros_like(value) if d is None else d
                for d, value in zip(upstream, (attentional, contexts, outputs, weights),
                                    strict=True)
            )
            # The input of each step's matmul with `kernel`: [feed_(t-1); h_(t-1)].
            previous = tf.concat(
                [previous_steps(attentional, feed0), previous_steps(outputs, h0)], axis=-1
            )
            previous_c = previous_steps(cells, c0)
            kernel_t = loop_kernel(transposed(kernel), operands)
            attentional_kernel_t = loop_kernel(transposed(attentional_kernel), operands)

            def back(t, d_feed, dh, dc, *arrays):  # type: ignore[no-untyped-def]
                # attentional = tanh([context; h] Wc)
                d_pre = (d_attentional[t] + d_feed) * (1.0 - attentional[t] * attentional[t])
                d_context, d_h = tf.split(
                    loop_product(d_pre, attentional_kernel_t), 2, axis=-1
                )
                d_context += d_contexts[t]
                # context = weights . memory; weights = softmax(scores) (zero where masked)
                w = weights[t]
                d_w = tf.matmul(d_context[:, None, :], memory, transpose_b=True)[:, 0]
                d_w += d_weights[t]
                d_scores = w * (d_w - tf.reduce_sum(w * d_w, axis=-1, keepdims=True))
                dh = dh + d_outputs[t] + d_h
                dh += tf.matmul(d_scores[:, None, :], keys)[:, 0]
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
            joined = tf.concat([contexts, outputs], axis=-1)  # [T,B,2H]
            batch_major = [1, 0, 2]
            d_keys = tf.matmul(  # sum over t of d_scores_t^T h_t, per row: [B,S,H]
                tf.transpose(d_scores, batch_major), tf.transpose(outputs, batch_major),
                transpose_a=True,
            )
            d_memory = tf.matmul(
                tf.transpose(weights, batch_major), tf.transpose(d_context, batch_major),
                transpose_a=True,
            )
            return (
                d_gates,
                kernel_gradient(previous, d_gates, operands),
                dh0,
                dc0,
                d_feed0,
                d_keys,
                d_memory,
                kernel_gradient(joined, d_pre, operands),
            )

        return (attentional, contexts, outputs, weights), grad

    return fed_loop

