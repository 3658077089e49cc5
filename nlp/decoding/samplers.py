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
    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        """Return int32 token ids [rows]."""
        ...


class BestSampler:
    """The most probable token (ties go to the lowest id, so results are deterministic)."""

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


class RandomSampler:
    """A random token after temperature scaling and top-k / top-p (nucleus) filtering.

    Uses stateless random ops keyed by (seed, step): the same seed gives the same samples on
    every call, with no random-generator state to thread through the graph.
    """

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
        logits = tf.where(logits < floor[:, None], NEG_INF, logits)
        seed = tf.stack([params.seed, step])
        picked = tf.random.stateless_categorical(logits, 1, seed=seed, dtype=tf.int32)
        return picked[:, 0]
