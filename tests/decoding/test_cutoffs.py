"""The cut-off search against sorting: order-preserving keys, and the heaviest tail's floor
for counts (top-k) and probabilities (the nucleus), ties and -inf included."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.decoding.cutoffs import heavy_tail_key, kept_mask, order_keys


def test_keys_order_like_the_floats() -> None:
    # (normal floats: TensorFlow on a CPU flushes subnormal ones to zero)
    values = np.concatenate([
        np.random.default_rng(0).normal(size=500).astype(np.float32) * 10.0,
        np.float32([0.0, -0.0, -np.inf, np.inf, 1e-30, -1e-30, 3.4e38, -3.4e38, 1.0, 1.0]),
    ])
    keys = order_keys(tf.constant(values)).numpy()
    assert keys.dtype == np.int32
    for a, b in [(i, j) for i in range(len(values)) for j in range(0, len(values), 7)]:
        assert (values[a] < values[b]) == (keys[a] < keys[b])
        assert (values[a] == values[b]) == (keys[a] == keys[b])


def reference_floor(row: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The largest value whose tail (values >= it) weighs at least `target`, by sorting."""
    for value in np.sort(np.unique(row))[::-1]:
        if weights[row >= value].sum() >= target:
            return float(value)
    return float(row.min())


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0])
def test_the_heavy_tail_floor_is_the_sorted_rows(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 10))
    values = (rng.normal(size=(16, 300)) * scale).astype(np.float32)
    values[:, :40] = np.round(values[:, :40], 1)  # ties
    values[3, 100:] = -np.inf  # a constrained row
    targets = rng.uniform(0.05, 0.99, size=16).astype(np.float32)
    weights = np.exp(values - values.max(axis=1, keepdims=True))
    weights = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    keys = order_keys(tf.constant(values))
    found = heavy_tail_key(keys, tf.constant(weights), tf.constant(targets)).numpy()
    for row in range(16):
        floor = reference_floor(values[row], weights[row].astype(np.float64), targets[row])
        assert found[row] == order_keys(tf.constant([floor], tf.float32)).numpy()[0]


def test_top_k_keeps_the_k_largest_and_their_ties() -> None:
    values = np.float32([[3.0, 1.0, 2.0, 2.0, 0.5, -np.inf], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    mask = kept_mask(tf.constant(values), tf.constant(3), tf.constant(1.0)).numpy()
    assert mask.tolist() == [[True, False, True, True, False, False], [True] * 6]


def test_no_filter_keeps_everything() -> None:
    values = tf.constant(np.random.default_rng(2).normal(size=(3, 50)).astype(np.float32))
    assert kept_mask(values, tf.constant(0), tf.constant(1.0)).numpy().all()
