"""GNMT hypothesis scores (Wu et al. 2016, eq. 14): the one formula used both to rank beam
candidates at every step and to report `Hypothesis.score`, so the two never disagree."""

from __future__ import annotations

import tensorflow as tf

# Floor for coverage before the log: a source position never attended would otherwise give
# -inf and make every hypothesis equal; with soft attention real coverage is never this small.
_COVERAGE_FLOOR = 1e-6


class Scorer:
    """score = sum(log p) / ((5 + length) / 6) ** alpha + beta * sum_j log(min(coverage_j, 1)).

    `length` counts generated tokens including the end token; `coverage_j` is the attention
    summed over those steps at real source position j (padding excluded by `source_mask`).
    alpha = beta = 0 gives the plain sum of log-probabilities.
    """

    def __init__(self, alpha: tf.Tensor, beta: tf.Tensor, source_mask: tf.Tensor) -> None:
        self.alpha = alpha
        self.beta = beta
        self.source_mask = tf.cast(source_mask, tf.float32)  # [rows, S]

    def __call__(
        self, log_probs: tf.Tensor, lengths: tf.Tensor, coverage: tf.Tensor
    ) -> tf.Tensor:
        """Score `log_probs` of shape [rows] or [rows, n] (n candidates sharing a row's length
        and coverage), given `lengths` [rows] and `coverage` [rows, S]."""
        penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, self.alpha)
        clipped = tf.maximum(tf.minimum(coverage, 1.0), _COVERAGE_FLOOR)
        bonus = self.beta * tf.reduce_sum(tf.math.log(clipped) * self.source_mask, axis=-1)
        row_shape = tf.concat([[-1], tf.ones([tf.rank(log_probs) - 1], tf.int32)], axis=0)
        return log_probs / tf.reshape(penalty, row_shape) + tf.reshape(bonus, row_shape)
