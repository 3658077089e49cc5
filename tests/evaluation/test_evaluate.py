"""`s2s evaluate --metric exact|bleu` compares outputs and references on the same footing: a
reference goes through the path a model's output takes (lowercased by the tokenizer, then
truecased), so an output that says exactly what the reference says scores as perfect."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import bleu_metrics, exact_metrics, reply_metrics, score_replies
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


def test_a_reply_without_word_vectors_scores_zero_similarity(tmp_path: Path) -> None:
    """`s2s evaluate --metric chat`: an empty reply and one of words without vectors score 0
    embedding similarity; left out, they would lift the mean."""
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("hi 1.0 0.0\nthere 0.0 1.0\nfine 1.0 1.0\n", encoding="utf-8")
    pairs = [Pair("hello", "hi there"), Pair("and you?", "fine"), Pair("bye", "hi")]
    report = score_replies(_parrot().codec, pairs, ["hi there", "", "qqq zzz"],
                           similarity=str(vectors))
    assert report["embedding_scored"] == 3
    assert report["embedding_average"] == pytest.approx(1 / 3)


def test_loss_and_accuracy_read_a_refine_models_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A retrieve-and-refine model was trained on `post __ret__ draft`: its loss and token
    accuracy are measured on that input, the draft found as generation finds it."""
    from types import SimpleNamespace

    from nlp.evaluation import accuracy, evaluate
    from nlp.generation.candidates import Candidates
    from nlp.retrieval import INDEX_DIR
    from nlp.retrieval.refine import refined_source
    from nlp.training import trainer
    from nlp.training.prepare import examples_of
    from nlp.training.reply_index import build_index
    from tests.fakes.fake_bundle import FakeBundle

    config = ExperimentConfig().with_overrides(["data.retrieve_refine=true"])
    codec = TextCodec.fit(config, TRAINING)
    index = build_index(codec, [Pair("hello again", "Hello."), Pair("you again?", "Me.")])
    index.save(tmp_path / INDEX_DIR)
    bundle = FakeBundle(codec, config, {INDEX_DIR: tmp_path / INDEX_DIR})
    generator = SimpleNamespace(codec=codec, bundle=bundle, candidates=Candidates(bundle))  # type: ignore[arg-type]
    measured: list[list[object]] = []

    class Meter:
        def __init__(self, model: object, batching: object) -> None:
            pass

        def __call__(self, examples: Sequence[object]) -> float:
            measured.append(list(examples))
            return 1.0

    monkeypatch.setattr(trainer, "LossMeter", Meter)
    monkeypatch.setattr(accuracy, "AccuracyMeter", Meter)
    evaluate.loss_metrics(generator, PAIRS, 8)  # type: ignore[arg-type]
    evaluate.accuracy_metrics(generator, PAIRS, 8)  # type: ignore[arg-type]
    separator = config.data.refine_separator
    read = [Pair(refined_source("hello", "Hello.", separator), PAIRS[0].target),
            Pair(refined_source("and you?", "Me.", separator), PAIRS[1].target)]
    assert measured == [examples_of(codec, read, workers=1)] * 2
