"""Training batches: length bucketing, per-batch padding, seeded shuffling, in NumPy.

The order of batches is a pure function of (examples, seed, epoch), which is what lets an
interrupted run resume at the exact batch where it stopped (`EncodedExamples.batches(start=)`).

Written in NumPy rather than as a `tf.data` pipeline: per-element `shuffle`, `map` and
`bucket_by_sequence_length` cost about as much as the training step itself for small models
(they run on the same cores as the step), and counting an epoch's batches takes another full
pass. Here an epoch's plan is a few
vectorised index operations over the whole corpus, its length is known exactly, and each
batch is padded by one gather when it is needed (memory stays one batch, not one epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID

# (source ids, target ids): the target has no BOS and ends with EOS unless it was cut at
# `train.max_target_length` (`TextCodec.pair_ids`), so a cut target teaches no false end.
Example = tuple[Sequence[int], Sequence[int]]
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # source [B,S], target_in, target_out [B,T]

BATCH_SPEC = (tf.TensorSpec([None, None], tf.int32),) * 3  # what a Batch is as tensors


@dataclass(frozen=True)
class Batching:
    batch_size: int
    bucket_width: int
    max_length: int


def _flat(sequences: Iterator[Sequence[int]], count: int) -> tuple[np.ndarray, np.ndarray]:
    """All sequences concatenated, and each one's start offset (one extra: the total)."""
    listed = list(sequences)
    lengths = np.fromiter((len(s) for s in listed), dtype=np.int64, count=count)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for s in listed for i in s), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets


def _gather(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, shift: int) -> np.ndarray:
    """Rows `rows` of the flat sequences, padded with PAD_ID to the longest, each starting
    at column `shift` (columns before it are left for a start token)."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    width = int(lengths.max()) + shift
    columns = np.arange(width) - shift
    real = (columns >= 0) & (columns < lengths[:, None])
    positions = np.where(real, starts[:, None] + columns, 0)
    return np.where(real, flat[positions], PAD_ID).astype(np.int32)


class EncodedExamples:
    """Examples converted once to flat arrays; every epoch's batches are cut from them."""

    def __init__(self, examples: Sequence[Example]) -> None:
        if not examples:
            raise ValueError("no examples to build batches from")
        count = len(examples)
        self._source, self._source_offsets = _flat((s for s, _ in examples), count)
        self._target, self._target_offsets = _flat((t for _, t in examples), count)
        # A pair's bucketing length: its source, or its target (the decoder's inputs are
        # the start token and the target without its last token: as many).
        self.lengths = np.maximum(np.diff(self._source_offsets), np.diff(self._target_offsets))

    @classmethod
    def from_flat(
        cls,
        source: np.ndarray,
        source_offsets: np.ndarray,
        target: np.ndarray,
        target_offsets: np.ndarray,
    ) -> EncodedExamples:
        """Examples given flat already: each side's ids concatenated (int32) and each
        example's start offset with the total last (int64), as `_flat` makes them. For
        corpora too large to hold as one list per example (`s2s pretrain`'s windows)."""
        if len(source_offsets) < 2 or len(source_offsets) != len(target_offsets):
            raise ValueError("no examples to build batches from")
        examples = cls.__new__(cls)
        examples._source, examples._source_offsets = source, source_offsets
        examples._target, examples._target_offsets = target, target_offsets
        examples.lengths = np.maximum(np.diff(source_offsets), np.diff(target_offsets))
        return examples

    def __len__(self) -> int:
        return len(self.lengths)

    def plan(self, batching: Batching, *, seed: int | None, epoch: int = 0) -> list[np.ndarray]:
        """The epoch's batches as example indices, in the order they are trained on.

        `seed=None` keeps the corpus order (validation); otherwise the examples are shuffled
        with `seed + epoch`. Either way they are then grouped into length buckets of
        `bucket_width` as a stream: a batch is emitted when its bucket fills. The buckets'
        partial batches come last without a seed; with one, each is trained at a random
        place in the epoch. Why not last, as `bucket_by_sequence_length` streams them: they
        are the epoch's smallest batches, so its noisiest steps, and the longest bucket's
        came last of all; every epoch then ended on them, just before the validation that
        picks the bundle and drives the plateau schedule (docs/BENCHMARKS.md, "The buckets'
        partial batches across the epoch").
        """
        order = np.arange(len(self))
        rng = None
        if seed is not None:
            rng = np.random.default_rng(seed + epoch)
            order = rng.permutation(len(self))
        width = max(1, batching.bucket_width)
        boundaries = np.arange(width + 1, batching.max_length + 2, width)
        buckets = np.searchsorted(boundaries, self.lengths[order], side="right")
        size = batching.batch_size
        # (when the batch is emitted, its indices); a partial batch's half-step position
        # never ties with a full one's
        planned: list[tuple[float, np.ndarray]] = []
        for bucket in np.unique(buckets):
            at = np.flatnonzero(buckets == bucket)  # positions in the stream, in order
            for begin in range(0, len(at), size):
                chunk = at[begin : begin + size]
                if len(chunk) == size:
                    when = float(chunk[-1])
                elif rng is None:
                    when = len(order) + float(bucket)
                else:
                    when = float(rng.integers(len(order))) + 0.5
                planned.append((when, order[chunk]))
        planned.sort(key=lambda item: item[0])
        return [indices for _, indices in planned]

    def batch(self, indices: np.ndarray) -> Batch:
        """The padded arrays of the examples `indices`: `target_out` is the target as stored
        (EOS included when it has one), `target_in` the same shifted right after BOS."""
        source = _gather(self._source, self._source_offsets, indices, 0)
        target_out = _gather(self._target, self._target_offsets, indices, 0)
        shifted = np.full_like(target_out, BOS_ID)
        shifted[:, 1:] = target_out[:, :-1]
        target_in = np.where(target_out != PAD_ID, shifted, PAD_ID).astype(np.int32)
        return source, target_in, target_out

    def batches(
        self, batching: Batching, *, seed: int | None, epoch: int = 0, start: int = 0
    ) -> Iterator[Batch]:
        """The epoch's padded batches from batch `start` on (resuming mid-epoch)."""
        for indices in self.plan(batching, seed=seed, epoch=epoch)[start:]:
            yield self.batch(indices)


def cut_targets(examples: Sequence[Example]) -> int:
    """How many examples' targets were cut at `train.max_target_length` (no end token)."""
    return sum(1 for _, target in examples if not target or target[-1] != EOS_ID)


def encoded(examples: Sequence[Example] | EncodedExamples) -> EncodedExamples:
    """`examples` as `EncodedExamples`, converting them only when they are not yet."""
    return examples if isinstance(examples, EncodedExamples) else EncodedExamples(examples)


def as_dataset(examples: EncodedExamples, plan: Sequence[np.ndarray]) -> tf.data.Dataset:
    """The planned batches as a `tf.data.Dataset`, for what needs one (a distribution
    strategy): each batch is padded by `EncodedExamples.batch` when the dataset reaches it.

    Why not `Dataset.from_generator`: its kernel (GeneratorDatasetOp) calls glibc's
    `mallopt(M_MMAP_THRESHOLD, 128 KiB)` for the whole process (TensorFlow's
    `ApplyPython311MemoryPatch`). That fixes malloc's thresholds, so the heap is trimmed and
    refaulted around every step's larger tensors: in a process that has built one, every
    later training step spends most of its time in the kernel, for the rest of the process.
    """

    def padded(position: np.ndarray) -> Batch:
        return examples.batch(plan[int(position)])

    def load(position: tf.Tensor) -> tuple[tf.Tensor, ...]:
        batch = tf.numpy_function(padded, [position], [tf.int32] * len(BATCH_SPEC))
        for tensor, spec in zip(batch, BATCH_SPEC, strict=True):
            tensor.set_shape(spec.shape)
        return tuple(batch)

    # Workers split each batch by element (DATA), as AUTO ends up doing for a source with no
    # files; naming it skips AUTO's attempt to shard by file, which made the two-worker test
    # (tests/training/test_multi_worker.py) take 32 s instead of 21.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return tf.data.Dataset.range(len(plan)).map(load).with_options(options)
