"""Token pickers: given log-probabilities [rows, V'], choose one token per row.

Kept apart from the search strategies (as in OpenNMT-tf) so the same width-1 search serves
both greedy decoding (best token) and sampling (random token).
"""

from __future__ import annotations

from typing import Protocol

import tensorflow as tf

from nlp.decoding.constraints import NEG_INF
from nlp.decoding.params import DecodeParams


class Sampler(Protocol):
    random: bool  # True if `pick` reads `params.draws` (the decoder then fills them)

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        """Return int32 token ids [rows]."""
        ...


class BestSampler:
    """The most probable token (ties go to the lowest id, so results are deterministic)."""

    random = False

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


class RandomSampler:
    """A random token after temperature scaling and top-k / top-p (nucleus) filtering.

    The randomness comes in from outside: `params.draws[row, step]` is one uniform number in
    [0, 1) per row and step, turned into a token by inverting the row's cumulative
    distribution. The decoder derives each input's draws from the seed and that input alone
    (see `nlp.decoding.draws`), so a seeded sample does not depend on which other inputs
    share its batch, while the graph holds no random-generator state.
    """

    random = True

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        logits = log_probs / params.temperature
        # One descending sort serves both filters: each yields the smallest logit it keeps.
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
        width = tf.shape(logits)[-1]
        k = tf.where(params.top_k > 0, tf.minimum(params.top_k, width), width)
        top_k_floor = ranked[:, k - 1]
        mass_before = tf.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
        in_nucleus = (mass_before < params.top_p) | (params.top_p >= 1.0)
        kept = tf.reduce_sum(tf.cast(in_nucleus, tf.int32), axis=-1)
        top_p_floor = tf.gather(ranked, tf.maximum(kept - 1, 0), batch_dims=1)
        floor = tf.maximum(top_k_floor, top_p_floor)
        probs = tf.nn.softmax(tf.where(logits < floor[:, None], NEG_INF, logits))
        cumulative = tf.cumsum(probs, axis=-1)
        target = tf.gather(params.draws, step, axis=1) * cumulative[:, -1]
        picked = tf.reduce_sum(tf.cast(cumulative <= target[:, None], tf.int32), axis=-1)
        # Rounding can put `target` at the total; never step past the last token with mass.
        last = tf.reduce_max(tf.where(probs > 0, tf.range(width)[None, :], 0), axis=-1)
        return tf.minimum(picked, last)
