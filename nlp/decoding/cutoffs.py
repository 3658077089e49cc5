"""The top-k and nucleus cut-offs of a row of logits, found without sorting the row.

Both filters keep the values at or above a floor. Top-k's floor is the k-th largest value;
the nucleus's (Holtzman et al. 2020) is the smallest value among the fewest most probable
tokens whose probabilities add up to p. Both are one function of the row: the largest value
`v` such that the weights of the values >= `v` add up to at least a target (weight 1 and
target k; weight the probability and target p). `kept_mask` finds that value by bisection
over the floats' order-preserving integer keys. Each step halves the range of keys that can
hold the floor and is one pass over the row (compare, select, sum); 32 steps settle any
float32.

Why not a library's: TensorFlow selects by rank (`tf.math.top_k`), not by cumulative weight,
and ranking a wide nucleus means sorting most of the row. A flat distribution at temperature
1 puts the 0.9 nucleus past the 1,024 largest of 10,000 logits, and sorting such rows at
every step costs more than the model's own step.
Compiled with XLA (`nlp.decoding.samplers.RandomSampler` does), the passes fuse, and a
search costs about what ranking only the 256 largest logits with `tf.math.top_k` does in the
plain graph, whatever the nucleus's width (`benchmarks/sampling_speed.py` times the pick
fused and not). The sums run in another order than a sorted row's running total, so a
floor exactly at the target can fall on the other side of it by rounding;
`tests/decoding/test_samplers.py` checks the picks against a plain sort in float64.
"""

from __future__ import annotations

import tensorflow as tf

_KEY_BITS = 32  # float32 keys: the bisection needs at most this many halvings


def order_keys(values: tf.Tensor) -> tf.Tensor:
    """int32 keys [.., n] with the order of float32 `values` (-inf lowest; -0.0 is 0.0)."""
    values = tf.where(tf.equal(values, 0.0), tf.zeros_like(values), values)
    bits = tf.bitcast(values, tf.int32)
    # A negative float's bit pattern grows as the float falls: flip all but the sign bit.
    return tf.where(bits < 0, tf.bitwise.bitwise_xor(bits, tf.constant(0x7FFFFFFF)), bits)


def heavy_tail_key(keys: tf.Tensor, weights: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Per row of `keys` [rows, n], the largest key `K` of the row such that the `weights` of
    the keys >= `K` add up to at least `target` [rows]; the row's smallest key where even
    the whole row weighs less."""
    low = tf.reduce_min(keys, axis=-1)  # the tail from `low` weighs >= target, or low = min
    high = tf.reduce_max(keys, axis=-1)  # the answer is <= high

    def step(low: tf.Tensor, high: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # ceil((low + high) / 2) without leaving int32
        middle = low // 2 + high // 2 + (low % 2 + high % 2 + 1) // 2
        heavy = tf.reduce_sum(tf.where(keys >= middle[:, None], weights, 0.0), axis=-1) >= target
        return tf.where(heavy, middle, low), tf.where(heavy, high, middle - 1)

    # A fixed count: stopping early needs a second pass per step to see that no key lies
    # between the bounds, which costs more than the steps it saves.
    low, _ = tf.while_loop(lambda low, high: True, step, (low, high),
                           maximum_iterations=_KEY_BITS)
    return low


def kept_mask(logits: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """bool [rows, V]: the tokens that top-k (`top_k` > 0) and the nucleus (`top_p` < 1)
    both keep; all of them when neither filter is on."""
    keys = order_keys(logits)
    rows = tf.shape(logits)[0]
    floor = tf.fill([rows], keys.dtype.min)
    floor = tf.cond(
        top_k > 0,
        lambda: tf.maximum(floor, heavy_tail_key(
            keys, tf.ones_like(logits), tf.fill([rows], tf.cast(top_k, logits.dtype)))),
        lambda: floor,
    )
    floor = tf.cond(
        top_p < 1.0,
        lambda: tf.maximum(floor, heavy_tail_key(
            keys, tf.nn.softmax(logits), tf.fill([rows], top_p))),
        lambda: floor,
    )
    return keys >= floor[:, None]

