"""The chat benchmark scores the bot's replies the way `s2s evaluate --metric chat` does:
references written as the model would write them, so a perfect reply of a lowercasing model
to a reference in capitals scores full BLEU, not less for case alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from benchmarks.chat_quality import measure
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.codec import TextCodec
from nlp.generation.text_generator import Generation
from nlp.util.config import ExperimentConfig

SHOUTED = [Pair("hello", "HI THERE, JOHN."), Pair("and you?", "I AM FINE, THANKS.")]
TRAINING = [*SHOUTED, Pair("who is it?", "It is John."), Pair("bye", "See you, John.")]


@dataclass
class PerfectReplier:
    """Answers each post with its pair's reference as a lowercasing model writes it."""

    codec: TextCodec
    pairs: Sequence[Pair]

    def generate(
        self, texts: Sequence[str], options: DecodeOptions, seeds: object = None
    ) -> list[list[Generation]]:
        answers = {pair.source: pair.target for pair in self.pairs}
        return [
            [Generation(self.codec.as_output(answers[text]), 0.0, [], [], np.zeros((0, 0)))]
            for text in texts
        ]


def test_a_perfect_reply_to_a_reference_in_capitals_scores_full_bleu() -> None:
    codec = TextCodec.fit(ExperimentConfig(), TRAINING)
    assert codec.config.tokenizer.lowercase
    replier = PerfectReplier(codec, SHOUTED)
    figures, replies = measure(replier, SHOUTED, DecodeOptions())
    assert replies[0] != SHOUTED[0].target  # the model's case differs from the reference's
    assert figures["bleu_1"] == pytest.approx(100.0)
    assert figures["bleu_2"] == pytest.approx(100.0)
    assert figures["pairs"] == 2
