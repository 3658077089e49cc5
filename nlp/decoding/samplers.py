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

    The filters need the row's largest logits in order. Sorting the whole vocabulary at every
    step cost more than the model's own step on a CPU (`benchmarks/sampling_speed.py`
    compares the two), while a chat model's nucleus usually lies within a few hundred of its
    most probable tokens. So the rows' `TIERS[0]` largest logits are ranked first
    (`tf.math.top_k`, a partial sort); only in a step where some row's filter reaches past
    them (a wider nucleus, or a larger top-k) are the next tier's, and past the last tier the
    whole rows are sorted. Every tier computes the floor from the same ranked values the
    sorted row starts with, so a tier changes no sample (`tests/decoding/test_samplers.py`
    checks the picks against a plain sort).
    """

    random = True
    TIERS = (256, 1024)  # logits ranked per row, in turn, before sorting whole rows

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        logits = log_probs / params.temperature
        width = tf.shape(logits)[-1]
        total = tf.reduce_logsumexp(logits, axis=-1, keepdims=True)  # softmax's normaliser

        def floor_of(ranked: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            """The smallest logit each filter keeps, from the row's largest logits `ranked`
            [rows, n] (descending), and whether `ranked` held all it needed."""
            n = tf.shape(ranked)[1]
            top_k_floor = tf.where(
                params.top_k > 0, ranked[:, tf.minimum(tf.maximum(params.top_k, 1), n) - 1],
                NEG_INF,
            )
            mass_before = tf.cumsum(tf.exp(ranked - total), axis=-1, exclusive=True)
            kept = tf.reduce_sum(tf.cast(mass_before < params.top_p, tf.int32), axis=-1)
            top_p_floor = tf.where(
                params.top_p < 1.0, tf.gather(ranked, tf.maximum(kept - 1, 0), batch_dims=1),
                NEG_INF,
            )
            # A nucleus that ends inside `ranked` (kept < n) is the whole row's; a top-k
            # within `ranked` floors at least as high as any nucleus cut there.
            complete = (params.top_k <= n) & (
                (params.top_k > 0) | (params.top_p >= 1.0) | (kept < n)
            )
            return tf.maximum(top_k_floor, top_p_floor), complete

        def floor_from(tier: int) -> tf.Tensor:
            if tier == len(self.TIERS):
                return floor_of(tf.sort(logits, axis=-1, direction="DESCENDING"))[0]
            ranked = tf.math.top_k(logits, tf.minimum(self.TIERS[tier], width))[0]
            floor, complete = floor_of(ranked)
            return tf.cond(tf.reduce_all(complete), lambda: floor,
                           lambda: floor_from(tier + 1))

        floor = floor_from(0)
        probs = tf.nn.softmax(tf.where(logits < floor[:, None], NEG_INF, logits))
        cumulative = tf.cumsum(probs, axis=-1)
        target = tf.gather(params.draws, step, axis=1) * cumulative[:, -1]
        picked = tf.reduce_sum(tf.cast(cumulative <= target[:, None], tf.int32), axis=-1)
        # Rounding can put `target` at the total; never step past the last token with mass.
        last = tf.reduce_max(tf.where(probs > 0, tf.range(width)[None, :], 0), axis=-1)
        return tf.minimum(picked, last)
