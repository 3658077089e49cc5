"""`s2s evaluate --metric exact|bleu` compares outputs and references on the same footing: a
reference goes through the path a model's output takes (lowercased by the tokenizer, then
truecased), so an output that says exactly what the reference says scores as perfect."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import bleu_metrics, exact_metrics, reply_metrics
from nlp.generation.codec import TextCodec
from nlp.generation.text_generator import Generation
from nlp.util.config import ExperimentConfig

PAIRS = [Pair("hello", "Hi there, John."), Pair("and you?", "I am fine, thanks.")]
TRAINING = [*PAIRS, Pair("who is it?", "It is John."), Pair("bye", "See you, John.")]


@dataclass
class Parrot:
    """Answers each source with its pair's reference, as a lowercasing model would write
    it: the reference's tokens turned into text by the codec (so truecased)."""

    codec: TextCodec
    pairs: Sequence[Pair] = tuple(PAIRS)
    shorten: int = 0  # words left out at the end of each answer

    def generate(
        self, texts: Sequence[str], options: DecodeOptions, seeds: object = None
    ) -> list[list[Generation]]:
        answers = {pair.source: pair.target for pair in self.pairs}
        outputs = []
        for text in texts:
            source = self.codec.source(text)
            tokens = self.codec.tokenizer.tokenize(answers[text].lower())
            tokens = tokens[: len(tokens) - self.shorten]
            output = self.codec.text(tokens, source)
            outputs.append([Generation(output, 0.0, tokens, source.tokens, np.zeros((0, 0)))])
        return outputs


def _parrot(pairs: Sequence[Pair] = tuple(PAIRS)) -> Parrot:
    codec = TextCodec.fit(ExperimentConfig(), TRAINING)
    assert codec.truecaser is not None and codec.config.tokenizer.lowercase
    return Parrot(codec, pairs)


def test_an_output_saying_exactly_the_reference_is_an_exact_match() -> None:
    report = exact_metrics(_parrot(), PAIRS, DecodeOptions(), batch_size=8)
    assert report == {"exact_match": 1.0, "pairs": 2}


def test_an_output_saying_exactly_the_reference_scores_full_bleu() -> None:
    report = bleu_metrics(_parrot(), PAIRS, DecodeOptions(), batch_size=8)
    assert report["bleu"] == 100.0


def test_chat_bleu_of_an_output_saying_exactly_the_reference_is_full() -> None:
    """A reference in capitals ("HI THERE") is what a lowercasing model writes "Hi there"."""
    shouted = [Pair("hello", "HI THERE, JOHN."), Pair("and you?", "I AM FINE, THANKS.")]
    report = reply_metrics(_parrot(shouted), shouted, DecodeOptions(), batch_size=8)
    assert report["bleu_1"] == pytest.approx(100.0) and report["bleu_2"] == pytest.approx(100.0)


def test_bleu_of_an_output_one_word_short_is_its_brevity_penalty() -> None:
    """Hand-computed: "the cat sat on the mat" against "... the mat today": every n-gram of
    the output matches (precisions 1), 6 words against 7, so BLEU = 100 * exp(1 - 7/6)."""
    pairs = [Pair("hello", "the cat sat on the mat today")]
    parrot = Parrot(_parrot().codec, pairs, shorten=1)
    report = bleu_metrics(parrot, pairs, DecodeOptions(), batch_size=8)
    assert report["bleu"] == round(100 * math.exp(1 - 7 / 6), 2) == 84.65
