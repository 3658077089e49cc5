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

from nlp.model.recurrence import transposed


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
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Teacher forcing of one input-feeding LSTM layer with dot-product attention.

    projected [T,B,4H]: each step's embedding times its kernel rows, plus the bias;
    kernel [2H,4H]: the feed rows of the input kernel stacked on the recurrent kernel
    (`recurrence.feed_kernel`); keys and memory [B,S,H]; attentional_kernel [2H,H];
    mask [B,S] (bool, real source tokens).
    Returns time-major attentional vectors, context vectors, LSTM outputs [T,B,H] and
    attention weights [T,B,S].
    """
    return _loop_with_gradient(mask)(
        projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel
    )


def _loop_with_gradient(mask: tf.Tensor):  # type: ignore[no-untyped-def]
    """The loop as a custom-gradient function; the mask (no gradient) is closed over."""

    @tf.custom_gradient
    def loop(projected, kernel, h0, c0, feed0, keys, memory, attentional_kernel):  # type: ignore[no-untyped-def]
        steps = tf.shape(projected)[0]
        dtype = projected.dtype
        lowest = tf.fill(tf.shape(mask), dtype.min)

        def body(t, h, c, feed, arrays):  # type: ignore[no-untyped-def]
            gates = projected[t] + tf.matmul(tf.concat([feed, h], axis=-1), kernel)
            i, f, g, o = tf.split(gates, 4, axis=-1)
            i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
            c = f * c + i * g
            h = o * tf.tanh(c)
            scores = tf.matmul(h[:, None, :], keys, transpose_b=True)[:, 0]
            weights = tf.nn.softmax(tf.where(mask, scores, lowest), axis=-1)
            context = tf.matmul(weights[:, None, :], memory)[:, 0]
            attentional = tf.tanh(tf.matmul(tf.concat([context, h], -1), attentional_kernel))
            values = (attentional, context, h, weights, c, tf.concat([i, f, g, o], -1))
            arrays = [a.write(t, v) for a, v in zip(arrays, values, strict=True)]
            return t + 1, h, c, attentional, arrays

        arrays = [tf.TensorArray(dtype, size=steps) for _ in range(6)]
        *_, arrays = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), h0, c0, feed0, arrays),
            maximum_iterations=steps,
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
                [
                    tf.concat([feed0[None], attentional[:-1]], axis=0),
                    tf.concat([h0[None], outputs[:-1]], axis=0),
                ],
                axis=-1,
            )
            previous_c = tf.concat([c0[None], cells[:-1]], axis=0)
            kernel_t, attentional_kernel_t = transposed(kernel), transposed(attentional_kernel)

            def back(t, d_feed, dh, dc, arrays):  # type: ignore[no-untyped-def]
                # attentional = tanh([context; h] Wc)
                d_pre = (d_attentional[t] + d_feed) * (1.0 - attentional[t] * attentional[t])
                d_context, d_h = tf.split(
                    tf.matmul(d_pre, attentional_kernel_t), 2, axis=-1
                )
                d_context += d_contexts[t]
                # context = weights . memory; weights = softmax(scores) (zero where masked)
                w = weights[t]
                d_w = tf.matmul(d_context[:, None, :], memory, transpose_b=True)[:, 0]
                d_w += d_weights[t]
                d_scores = w * (d_w - tf.reduce_sum(w * d_w, axis=-1, keepdims=True))
                dh = dh + d_outputs[t] + d_h
                dh += tf.matmul(d_scores[:, None, :], keys)[:, 0]
                # the LSTM cell
                i, f, g, o = tf.split(activations[t], 4, axis=-1)
                tanh_c = tf.tanh(cells[t])
                dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
                d_gates = tf.concat(
                    [dc * g * i * (1.0 - i), dc * previous_c[t] * f * (1.0 - f),
                     dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)],
                    axis=-1,
                )
                d_feed, dh = tf.split(tf.matmul(d_gates, kernel_t), 2, axis=-1)
                values = (d_gates, d_pre, d_scores, d_context)
                arrays = [a.write(t, v) for a, v in zip(arrays, values, strict=True)]
                return t - 1, d_feed, dh, dc * f, arrays

            zeros = tf.zeros_like(h0)
            arrays = [tf.TensorArray(dtype, size=steps) for _ in range(4)]
            _, d_feed0, dh0, dc0, arrays = tf.while_loop(
                lambda t, *_: t >= 0, back, (steps - 1, zeros, zeros, zeros, arrays),
                maximum_iterations=steps,
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
                _summed_outer(previous, d_gates),
                dh0,
                dc0,
                d_feed0,
                d_keys,
                d_memory,
                _summed_outer(joined, d_pre),
            )

        return (attentional, contexts, outputs, weights), grad

    return loop


def _summed_outer(inputs: tf.Tensor, d_outputs: tf.Tensor) -> tf.Tensor:
    """A kernel's gradient over all steps and rows: [T*B, in]^T x [T*B, out], one matmul."""
    return tf.matmul(
        tf.reshape(inputs, [-1, tf.shape(inputs)[-1]]),
        tf.reshape(d_outputs, [-1, tf.shape(d_outputs)[-1]]),
        transpose_a=True,
    )
