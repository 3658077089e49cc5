"""Masked cross-entropy with optional label smoothing, computed from the decoder's logits.

The loss never builds a [B,T,V'] log-probability tensor: it takes log p(target) from the
logits (and, with copying, the attention) via `nlp.model.distribution.target_log_probs`,
the same formula decoding uses. Label smoothing spreads its mass over the vocabulary part
only (the generator's distribution), so it does not depend on source padding.
"""

from __future__ import annotations

import tensorflow as tf

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
) -> tf.Tensor:
    """Mean training loss per real (non-padding) target token (+ weighted coverage loss)."""
    losses, mask = token_losses(outputs, targets, vocab_size, label_smoothing)
    if coverage_weight:
        losses += coverage_weight * coverage_losses(outputs.attention) * mask
    return tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(mask), 1.0)
