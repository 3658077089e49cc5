"""Masked cross-entropy with optional label smoothing, computed from the decoder's logits.

The loss never builds a [B,T,V'] log-probability tensor: it takes log p(target) from the
logits (and, with copying, the attention) via `nlp.model.distribution.target_log_probs`,
the same formula decoding uses. Label smoothing spreads its mass over the vocabulary part
only (the generator's distribution), so it does not depend on source padding.
"""

from __future__ import annotations

import tensorflow as tf

from nlp.model import recurrence
from nlp.model.distribution import DecoderOutputs, mean_negative_log_softmax, target_log_probs
from nlp.tokenizers.specials import PAD_ID


def token_losses(
    outputs: DecoderOutputs, targets: tf.Tensor, vocab_size: int, label_smoothing: float = 0.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-token loss [B,T] (zero on padding) and the padding mask as float [B,T]."""
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    nll = -target_log_probs(outputs, targets, vocab_size)
    if label_smoothing > 0.0:
        smooth = mean_negative_log_softmax(outputs.logits)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll * mask, mask


def coverage_losses(attention: tf.Tensor) -> tf.Tensor:
    """See et al. (2017): sum_i min(a_t,i, c_t,i) per step [B,T], where the coverage c_t is
    the attention paid before step t. Zero when no two steps attend to the same position."""
    attention = tf.cast(attention, tf.float32)
    coverage = tf.cumsum(attention, axis=1, exclusive=True)
    return tf.reduce_sum(tf.minimum(attention, coverage), axis=-1)


def masked_mean_loss(
    outputs: DecoderOutputs,
    targets: tf.Tensor,
    vocab_size: int,
    label_smoothing: float = 0.0,
    coverage_weight: float = 0.0,
    token_weights: tf.Tensor | None = None,
) -> tf.Tensor:
    """Mean training loss per real (non-padding) target token (+ weighted coverage loss);
    `token_weights` [V]: each target token's loss times its word's weight."""
    losses, mask = token_losses(outputs, targets, vocab_size, label_smoothing)
    if token_weights is not None:
        losses = weighted(losses, targets, token_weights)
    if coverage_weight:
        losses += coverage_weight * coverage_losses(outputs.attention) * mask
    return tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(mask), 1.0)


def weighted(losses: tf.Tensor, targets: tf.Tensor, token_weights: tf.Tensor) -> tf.Tensor:
    """Per-token losses [B,T] times the weight [V] of each target token's word."""
    return losses * tf.gather(token_weights, tf.cast(targets, tf.int32))


def log_uniform_log_probs(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """log Q(id) of the log-uniform (Zipfian) distribution over ids 0..V-1:
    Q(k) = ln((k + 2) / (k + 1)) / ln(V + 1), which a vocabulary ordered by frequency (as
    `nlp.tokenizers.vocab` orders it) roughly follows."""
    k = tf.cast(ids, tf.float32)
    return tf.math.log(tf.math.log1p(1.0 / (k + 1.0))) - tf.math.log(
        tf.math.log(float(vocab_size) + 1.0))


def sample_log_uniform(count: int, vocab_size: int, seed: tf.Tensor) -> tf.Tensor:
    """`count` ids drawn with replacement from `log_uniform_log_probs`, by a stateless draw
    (`seed`: shape [2]) so a resumed run draws what the uninterrupted one did. Inverse CDF:
    id = floor(exp(u ln(V + 1))) - 1 for u uniform in [0, 1)."""
    u = tf.random.stateless_uniform([count], seed=seed, dtype=tf.float32)
    ids = tf.cast(tf.floor(tf.exp(u * tf.math.log(float(vocab_size) + 1.0))), tf.int32) - 1
    return tf.clip_by_value(ids, 0, vocab_size - 1)


def sampled_token_losses(
    features: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor,
    targets: tf.Tensor,
    sampled: tf.Tensor,
    products: tf.DType | str | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Sampled softmax (Jean et al. 2015): per-token loss [B,T] (zero on padding) over each
    target and the `sampled` ids [S] (one draw shared by the batch, from
    `sample_log_uniform`), each logit corrected by -ln(S Q(id)) so that the loss's gradient
    approaches the full softmax's as S grows; a sampled id equal to the token's target is
    left out (an "accidental hit"). And the padding mask as float [B,T].

    Why: the output projection onto the whole vocabulary, forward and backward, is the
    largest share of a chat model's training step (10,000 words x 256 units per target
    token); S of them cost S/V of it. Only training uses it: validation, scoring and
    decoding keep the exact softmax (`token_losses`)."""
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    vocab_size = int(kernel.shape[1])
    count = tf.cast(tf.shape(sampled)[0], tf.float32)
    flat = tf.reshape(features, [-1, tf.shape(features)[-1]])  # [N, H]
    labels = tf.reshape(targets, [-1])  # [N]
    operands = tf.as_dtype(products) if products is not None else None
    true_columns = tf.gather(kernel, labels, axis=1)  # [H, N]
    true_logits = tf.reduce_sum(
        tf.cast(flat, tf.float32) * tf.transpose(tf.cast(true_columns, tf.float32)), axis=-1
    ) + tf.gather(tf.cast(bias, tf.float32), labels)  # [N]
    sampled_logits = tf.cast(recurrence.product(
        flat, tf.gather(kernel, sampled, axis=1), operands), tf.float32)
    sampled_logits += tf.gather(tf.cast(bias, tf.float32), sampled)[None, :]  # [N, S]
    true_logits -= tf.math.log(count) + log_uniform_log_probs(labels, vocab_size)
    sampled_logits -= (tf.math.log(count) + log_uniform_log_probs(sampled, vocab_size))[None, :]
    hits = tf.equal(labels[:, None], sampled[None, :])
    sampled_logits = tf.where(hits, tf.constant(-1e9, tf.float32), sampled_logits)
    logits = tf.concat([true_logits[:, None], sampled_logits], axis=-1)
    nll = tf.reduce_logsumexp(logits, axis=-1) - true_logits
    return tf.reshape(nll, tf.shape(targets)) * mask, mask
