"""Teacher-forced next-token accuracy, the kind of figure the Keras seq2seq tutorials report.

The share of target positions where the model's most probable next token, given the true
previous ones, is the true token. Counted over the real positions of `target_out`, the end
token included (predicting where the output stops is part of the task) and padding
excluded. The `lstm_seq2seq` tutorial's `val_accuracy` differs there: its targets are padded
with spaces and its Keras accuracy has no mask, so it scores the padding too (restated in
its definition by `benchmarks/tutorial_translation.py`). With copying the argmax is taken
over the whole extended distribution, so copying the right source word counts as right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import tensorflow as tf

from nlp.model.distribution import DecoderOutputs, log_probabilities
from nlp.tokenizers.specials import PAD_ID
from nlp.training.data import BATCH_SPEC, Batching, EncodedExamples, Example, encoded
from nlp.util.config import ModelConfig


class TeacherForced(Protocol):
    """What the metric needs of a model: its config and its teacher-forcing pass."""

    config: ModelConfig

    def teacher_forcing(
        self, source_ids: tf.Tensor, target_in: tf.Tensor, training: bool = False
    ) -> DecoderOutputs: ...


class AccuracyMeter:
    """Correct and counted target tokens over examples, one compiled graph for all batches."""

    def __init__(self, model: TeacherForced, batching: Batching) -> None:
        self.model = model
        self.batching = batching
        self._counts = tf.function(self._batch_counts, input_signature=list(BATCH_SPEC))

    def _batch_counts(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        outputs = self.model.teacher_forcing(source, target_in, training=False)
        if outputs.gate is None:  # argmax of the logits is argmax of the distribution
            scores = outputs.logits
        else:
            scores = log_probabilities(outputs, self.model.config.vocab_size)
        predicted = tf.argmax(scores, axis=-1, output_type=tf.int32)
        real = tf.not_equal(target_out, PAD_ID)
        hits = tf.logical_and(real, tf.equal(predicted, target_out))
        return tf.reduce_sum(tf.cast(hits, tf.int64)), tf.reduce_sum(tf.cast(real, tf.int64))

    def __call__(self, examples: Sequence[Example] | EncodedExamples) -> dict[str, float]:
        correct, tokens = 0, 0
        for batch in encoded(examples).batches(self.batching, seed=None):
            hits, real = self._counts(*batch)
            correct += int(hits)
            tokens += int(real)
        return {"token_accuracy": correct / max(tokens, 1), "tokens": tokens,
                "pairs": len(examples)}
