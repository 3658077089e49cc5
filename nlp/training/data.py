"""tf.data input pipeline: length bucketing, per-batch padding, seeded shuffling.

The order of batches is a pure function of (examples, seed, epoch), which is what lets an
interrupted run resume at the exact batch where it stopped (`Dataset.skip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nlp.specials import BOS_ID, EOS_ID

Example = tuple[Sequence[int], Sequence[int]]  # (source ids, target ids without BOS/EOS)


@dataclass(frozen=True)
class Batching:
    batch_size: int
    bucket_width: int
    max_length: int


def _ragged(sequences: Sequence[Sequence[int]]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def _with_specials(source: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    target_in = tf.concat([[BOS_ID], target], axis=0)
    target_out = tf.concat([target, [EOS_ID]], axis=0)
    return source, target_in, target_out


def make_dataset(
    examples: Sequence[Example],
    batching: Batching,
    *,
    seed: int | None,
    epoch: int = 0,
) -> tf.data.Dataset:
    """Batches of (source [B,S], target_in [B,T], target_out [B,T]), padded with PAD_ID.

    `seed=None` keeps the corpus order (validation); otherwise the examples are shuffled
    with `seed + epoch`, grouped by length into buckets of `bucket_width`, and padded only
    to the longest member of each batch.
    """
    if not examples:
        raise ValueError("no examples to build a dataset from")
    dataset = tf.data.Dataset.from_tensor_slices(
        (_ragged([s for s, _ in examples]), _ragged([t for _, t in examples]))
    )
    if seed is not None:
        dataset = dataset.shuffle(len(examples), seed=seed + epoch, reshuffle_each_iteration=False)
    dataset = dataset.map(_with_specials)
    width = max(1, batching.bucket_width)
    boundaries = list(range(width + 1, batching.max_length + 2, width))
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda s, t_in, t_out: tf.maximum(tf.shape(s)[0], tf.shape(t_in)[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batching.batch_size] * (len(boundaries) + 1),
    )
    return dataset.prefetch(2)


def count_batches(dataset: tf.data.Dataset) -> int:
    """Number of batches (bucketing makes it vary slightly with the shuffle)."""
    return int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
