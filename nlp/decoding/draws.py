"""The sampler's random numbers, one stream per input.

Why not a seeded random op in the graph: a stateless op keyed by (seed, step) gives every row
of a batch numbers that depend on the row's position, so the sample an input got depended on
which other inputs shared its batch (and on where length sorting put it). Here each input's
numbers come from the seed and the input's own token ids, computed before the graph runs:
the same input with the same seed and options gets the same sample alone, in any batch, in
any position, and in a resumed headline job. Two identical inputs in one seeded call get the
same sample, as they would in two calls. Without a seed every call draws fresh numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np


def sampling_draws(
    sources: Sequence[Sequence[int]],
    seed: int | None,
    width: int,
    steps: int,
    seeds: Sequence[int | None] | None = None,
) -> np.ndarray:
    """[len(sources) * width, steps] float32 uniforms in [0, 1), rows in decoder order (an
    input's `width` samples adjacent). With a seed, an input's rows depend only on
    (seed, its token ids, width, steps). `seeds` gives each input its own seed instead (a None
    entry draws fresh numbers, as a None `seed` does): the chat responder seeds each chat's
    turn, so a chat's replies repeat while chats sharing one batch still sample
    independently."""
    per_input = list(seeds) if seeds is not None else [seed] * len(sources)
    if len(per_input) != len(sources):
        raise ValueError(f"{len(per_input)} seeds for {len(sources)} inputs")
    rng = np.random.default_rng() if any(s is None for s in per_input) else None
    shared = cast(np.random.Generator, rng)  # only used for the inputs without a seed
    rows = [
        (np.random.default_rng([own, *source]) if own is not None else shared).random(
            (width, steps), dtype=np.float32
        )
        for own, source in zip(per_input, sources, strict=True)
    ]
    return np.concatenate(rows) if rows else np.zeros((0, steps), np.float32)


def graph_draws(source_ids: Any, seed: Any, width: int, steps: Any) -> Any:
    """The same contract as `sampling_draws`, computed inside a graph (the exported
    SavedModel has no Python to run numpy in): [B * width, steps] uniforms where, with a seed
    >= 0, an input's rows depend only on (seed, its non-padding ids, width, steps); a
    negative seed draws fresh numbers. The generator differs (TensorFlow's stateless Philox
    keyed by a fingerprint of the ids instead of numpy's PCG64), so a seeded sample from the
    SavedModel is reproducible there but is not the one the Python decoder draws.
    """
    import tensorflow as tf  # this module is imported without TensorFlow elsewhere

    seed = tf.cast(seed, tf.int64)

    def one_input(row: tf.Tensor) -> tf.Tensor:
        ids = tf.boolean_mask(row, tf.not_equal(row, 0))
        key = tf.bitcast(tf.fingerprint(ids[None]), tf.int64)[0]
        return tf.random.stateless_uniform([width, steps], tf.stack([seed, key]))

    def seeded() -> tf.Tensor:
        rows = tf.map_fn(one_input, source_ids, fn_output_signature=tf.float32)
        return tf.reshape(rows, [-1, steps])

    def fresh() -> tf.Tensor:
        return tf.random.uniform([tf.shape(source_ids)[0] * width, steps])

    return tf.cond(seed >= 0, seeded, fresh)
