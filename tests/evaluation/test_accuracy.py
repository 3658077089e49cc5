"""`s2s evaluate --metric accuracy` (teacher-forced next-token accuracy) and `--metric bleu`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

from nlp.corpus.records import Pair
from nlp.evaluation.accuracy import AccuracyMeter
from nlp.generation.generator import Generator
from nlp.model.distribution import DecoderOutputs
from nlp.tokenizers.specials import EOS_ID
from nlp.training.data import Batching
from nlp.util.config import ModelConfig
from s2s.cli import main
from tests.conftest import write_jsonl


class AlwaysEnd:
    """A model whose every next-token guess is the end token."""

    config = ModelConfig(vocab_size=12)

    def teacher_forcing(
        self, source_ids: tf.Tensor, target_in: tf.Tensor, training: bool = False
    ) -> DecoderOutputs:
        logits = tf.one_hot(tf.fill(tf.shape(target_in), EOS_ID), 12) * 5.0
        return DecoderOutputs(logits, tf.zeros(tf.shape(source_ids)), None, source_ids)


def test_accuracy_counts_the_end_token_and_not_padding() -> None:
    """Targets (with EOS) 7 8 </s> | 9 </s> | </s>: 3 of 6 real positions are </s>.

    Batched together the rows are padded to 3; counting padding would give 3/9, leaving
    out the end token 0/3: only ours (end token in, padding out) gives 1/2.
    """
    examples = [([5], [7, 8, EOS_ID]), ([5, 6], [9, EOS_ID]), ([4], [EOS_ID])]
    meter = AccuracyMeter(AlwaysEnd(), Batching(batch_size=8, bucket_width=100, max_length=50))
    assert meter(examples) == {"token_accuracy": 0.5, "tokens": 6, "pairs": 3}


def test_evaluate_accuracy_and_bleu_through_the_cli(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI figure equals argmax == target counted pair by pair from the model's call()."""
    pairs = [("hello there", "hi how are you"), ("what is your name", "i am a bot")]
    corpus = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    argv = ["evaluate", "--model", str(tiny_bundle), "--corpus", str(corpus), "--greedy",
            "--metric", "accuracy", "--metric", "bleu"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)

    generator = Generator.from_bundle(tiny_bundle)
    hits = tokens = 0
    for source, target in pairs:
        source_ids, target_ids = generator.codec.pair_ids(Pair(source, target))
        target_out = target_ids
        target_in = np.array([[1, *target_ids[:-1]]])
        log_probs = generator.bundle.model((np.array([source_ids]), target_in)).numpy()[0]
        hits += int(np.sum(log_probs.argmax(-1) == np.array(target_out)))
        tokens += len(target_out)
    assert report["accuracy"]["tokens"] == tokens
    assert report["accuracy"]["token_accuracy"] == pytest.approx(hits / tokens)
    assert report["bleu"]["tokenize"] == "13a"
    # BLEU as sacrebleu (the oracle) scores the model's greedy outputs against the references
    # as the model would write them (hand-computed cases: tests/evaluation/test_evaluate.py).
    greedy = replace(generator.bundle.decoding.options, strategy="greedy", beam_size=1)
    outputs = [n_best[0].text if n_best else ""
               for n_best in generator.generate([source for source, _ in pairs], greedy)]
    references = [generator.codec.as_output(target) for _, target in pairs]
    expected = sacrebleu.BLEU(tokenize="13a").corpus_score(outputs, [references]).score
    assert report["bleu"]["bleu"] == round(expected, 2)
