"""The training batches (`nlp/training/data.py`): every example once per epoch, one length
bucket per batch, padding and start/end tokens where the model expects them, and an order
that is a pure function of (seed, epoch) so a resumed run continues at the same batch."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID
from nlp.training.data import Batching, EncodedExamples, as_dataset, cut_targets, encoded

BATCHING = Batching(batch_size=4, bucket_width=3, max_length=12)


def _examples(count: int = 37) -> list[tuple[list[int], list[int]]]:
    """Random examples; about one target in four was cut (no end token)."""
    rng = np.random.default_rng(5)
    return [
        (rng.integers(4, 50, rng.integers(1, 11)).tolist(),
         rng.integers(4, 50, rng.integers(1, 10)).tolist() + [EOS_ID] * (rng.random() < 0.75))
        for _ in range(count)
    ]


def test_each_example_once_per_epoch_in_one_bucket_per_batch() -> None:
    examples = _examples()
    encoded = EncodedExamples(examples)
    plan = encoded.plan(BATCHING, seed=1)
    seen = np.concatenate(plan)
    assert sorted(seen.tolist()) == list(range(len(examples)))
    for indices in plan:
        assert 1 <= len(indices) <= BATCHING.batch_size
        buckets = {(max(len(examples[i][0]), len(examples[i][1])) - 1) // 3 for i in indices}
        assert len(buckets) == 1, [examples[i] for i in indices]


def test_the_partial_batches_are_trained_across_the_epoch_not_at_its_end() -> None:
    """The buckets' partial batches (the smallest, so the noisiest steps) are placed at
    random in each shuffled epoch rather than last, where every epoch ended on them right
    before its validation; the plan stays a pure function of (seed, epoch), and validation's
    unshuffled plan keeps them last."""
    encoded = EncodedExamples(_examples(200))
    places: list[float] = []
    for epoch in range(20):
        plan = encoded.plan(BATCHING, seed=1, epoch=epoch)
        assert all(
            np.array_equal(a, b)
            for a, b in zip(plan, encoded.plan(BATCHING, seed=1, epoch=epoch), strict=True)
        )
        partial = [i for i, indices in enumerate(plan) if len(indices) < BATCHING.batch_size]
        assert partial
        places += [i / (len(plan) - 1) for i in partial]
    assert 0.3 < float(np.mean(places)) < 0.7
    unshuffled = [len(indices) for indices in encoded.plan(BATCHING, seed=None)]
    partial_sizes = [n for n in unshuffled if n < BATCHING.batch_size]
    assert unshuffled[len(unshuffled) - len(partial_sizes):] == partial_sizes


def test_batches_are_padded_with_start_and_end_tokens() -> None:
    examples = [([5, 6, 7], [8, EOS_ID]), ([9], [10, 11, 12, EOS_ID])]
    source, target_in, target_out = EncodedExamples(examples).batch(np.array([1, 0]))
    assert source.tolist() == [[9, PAD_ID, PAD_ID], [5, 6, 7]]
    assert target_in.tolist() == [[BOS_ID, 10, 11, 12], [BOS_ID, 8, PAD_ID, PAD_ID]]
    assert target_out.tolist() == [[10, 11, 12, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert source.dtype == target_in.dtype == target_out.dtype == np.int32


def test_a_cut_target_is_not_taught_to_end() -> None:
    """A target cut at `train.max_target_length` (no EOS in the example) gets no end token:
    the model learns its tokens, and never that the sentence stops at the cut."""
    examples = [([5], [8, 9, 10]), ([6], [11, EOS_ID])]
    _, target_in, target_out = EncodedExamples(examples).batch(np.array([0, 1]))
    assert target_in.tolist() == [[BOS_ID, 8, 9], [BOS_ID, 11, PAD_ID]]
    assert target_out.tolist() == [[8, 9, 10], [11, EOS_ID, PAD_ID]]
    assert cut_targets(examples) == 1


def test_order_is_a_function_of_seed_and_epoch() -> None:
    encoded = EncodedExamples(_examples())

    def order(seed: int | None, epoch: int = 0) -> list[list[int]]:
        return [indices.tolist() for indices in encoded.plan(BATCHING, seed=seed, epoch=epoch)]

    assert order(1) == order(1)
    assert order(1, epoch=1) != order(1)
    assert order(1) != order(2)
    resumed = list(encoded.batches(BATCHING, seed=1, epoch=2, start=3))
    whole = list(encoded.batches(BATCHING, seed=1, epoch=2))
    assert len(resumed) == len(whole) - 3
    for got, expected in zip(resumed, whole[3:], strict=True):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_unshuffled_order_keeps_the_corpus_order_within_a_bucket() -> None:
    examples = [([4] * (1 + i % 2 * 5), [5, EOS_ID]) for i in range(10)]  # lengths 2, 6, 2, ...
    plan = EncodedExamples(examples).plan(Batching(3, 3, 12), seed=None)
    assert [indices.tolist() for indices in plan] == [[0, 2, 4], [1, 3, 5], [6, 8], [7, 9]]


def test_as_dataset_yields_the_same_tensors() -> None:
    examples = EncodedExamples(_examples())
    batches = list(examples.batches(BATCHING, seed=3))
    dataset = as_dataset(examples, examples.plan(BATCHING, seed=3))
    for got, expected in zip(dataset, batches, strict=True):
        for a, b in zip(got, expected, strict=True):
            assert a.dtype == tf.int32
            np.testing.assert_array_equal(a.numpy(), b)


def test_no_examples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        EncodedExamples([])


def test_encoded_converts_only_what_is_not_encoded_yet() -> None:
    """The trainer encodes its validation set once; measuring it each epoch reuses that."""
    examples = _examples(20)
    once = encoded(examples)
    assert isinstance(once, EncodedExamples)
    assert encoded(once) is once
    assert len(once) == len(examples)


def test_as_dataset_builds_no_generator_dataset() -> None:
    """TensorFlow's GeneratorDataset kernel (`Dataset.from_generator`) fixes glibc's malloc
    thresholds for the whole process (`mallopt(M_MMAP_THRESHOLD, 128 KiB)`), which made
    every later training step in that process two to three times slower."""
    examples = EncodedExamples(_examples())
    dataset = as_dataset(examples, examples.plan(BATCHING, seed=3))
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(
        dataset._as_serialized_graph(
            external_state_policy=tf.data.experimental.ExternalStatePolicy.WARN
        ).numpy()
    )
    ops = {node.op for node in graph.node}
    ops |= {node.op for function in graph.library.function for node in function.node_def}
    assert "MapDataset" in ops
    assert "GeneratorDataset" not in ops
