"""Masked cross-entropy with optional label smoothing, on log-probabilities."""

from __future__ import annotations

import tensorflow as tf

from nlp.specials import PAD_ID


def token_losses(
    log_probs: tf.Tensor, targets: tf.Tensor, label_smoothing: float = 0.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-token loss [B,T] (zero on padding) and the padding mask as float [B,T].

    The model returns log-probabilities rather than logits because with copying the output
    is a mixture of two distributions; smoothing spreads its mass over the vocabulary width.
    """
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), log_probs.dtype)
    nll = -tf.gather(log_probs, targets, axis=-1, batch_dims=2)
    if label_smoothing > 0.0:
        smooth = -tf.reduce_mean(log_probs, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll * mask, mask


def masked_mean_loss(
    log_probs: tf.Tensor, targets: tf.Tensor, label_smoothing: float = 0.0
) -> tf.Tensor:
    """Mean loss per real (non-padding) target token."""
    losses, mask = token_losses(log_probs, targets, label_smoothing)
    return tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(mask), 1.0)
