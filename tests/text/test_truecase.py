"""Truecasing of a lowercased model's output, and its round trip through a bundle's codec."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.text.normalize import normalize_text
from nlp.text.truecase import TRUECASE_FILE, TruecaseCounts, Truecaser

TRAINING = [
    "Did you see John yesterday ?",
    "I told John and Mary about NASA .",
    "Mary said the NASA trip was fun .",
    "The weather is nice , isn ’ t it ?",
    "Yes , I ’ m going to the park with Mary .",
]


@pytest.fixture(scope="module")
def truecaser() -> Truecaser:
    return Truecaser.fit(normalize_text(text) for text in TRAINING)


@pytest.mark.parametrize(
    ("lowered", "expected"),
    [
        ("i'm sorry.", "I'm sorry."),
        ("that's right. i think so!", "That's right. I think so!"),
        ("did you see john? he met nasa people.", "Did you see John? He met NASA people."),
        ("it costs 3.5 dollars.", "It costs 3.5 dollars."),
        ("phnum1 people came.", "phnum1 people came."),  # placeholders are not words
        ("你好，john", "你好，John"),
    ],
)
def test_truecasing_a_lowercased_reply(truecaser: Truecaser, lowered: str, expected: str) -> None:
    assert truecaser.apply(lowered) == expected


def test_words_written_lowercase_or_only_sentence_initially_stay_lowercase(
    truecaser: Truecaser,
) -> None:
    assert "the" not in truecaser.forms  # "The" appears only sentence-initially
    assert "yes" not in truecaser.forms
    assert truecaser.apply("yes, the park.") == "Yes, the park."


@pytest.mark.parametrize("written", [normalize_text(text) for text in TRAINING])
def test_round_trip_lowercase_then_truecase_restores_the_training_text(
    truecaser: Truecaser, written: str
) -> None:
    assert truecaser.apply(written.lower()) == written


def test_already_cased_words_are_left_alone(truecaser: Truecaser) -> None:
    assert truecaser.apply("iPhone and McDonald are here.") == "iPhone and McDonald are here."


def test_save_load_and_missing_file(truecaser: Truecaser, tmp_path: Path) -> None:
    truecaser.save(tmp_path / TRUECASE_FILE)
    assert Truecaser.load(tmp_path / TRUECASE_FILE) == truecaser
    assert Truecaser.load(tmp_path / "absent.json").apply("i see john.") == "I see john."


def test_codec_truecases_output_of_a_lowercasing_tokenizer(tmp_path: Path) -> None:
    from nlp.corpus.records import Pair
    from nlp.generation.codec import TextCodec
    from nlp.util.config import ExperimentConfig

    config = ExperimentConfig()
    pairs = [Pair(TRAINING[i], TRAINING[i + 1]) for i in range(len(TRAINING) - 1)]
    codec = TextCodec.fit(config, pairs)
    assert config.tokenizer.lowercase
    source = codec.source("where is john ?")
    tokens = codec.tokenizer.tokenize(normalize_text("i ’ m with john ."))
    assert codec.text(tokens, source) == "I'm with John."
    codec.save(tmp_path)
    loaded = TextCodec.load(config, tmp_path)
    assert loaded.text(tokens, source) == "I'm with John."


def test_sentence_capitals_follow_the_training_data() -> None:
    """A corpus written in lowercase (digits to words) keeps its outputs lowercase."""
    lowercase = Truecaser.fit(["three five one", "nine two", "one one eight"])
    assert lowercase.apply("three five one") == "three five one"
    english = Truecaser.fit(["Hello there. How are you?", "I am fine.", "Good."])
    assert english.apply("hello there. i am fine.") == "Hello there. I am fine."


def test_saved_table_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = Truecaser.fit(["three five one", "we met John and John"])
    table.save(tmp_path / "truecase.json")
    loaded = Truecaser.load(tmp_path / "truecase.json")
    assert loaded == table and not loaded.capitalize_initial


def test_counts_merged_in_order_give_the_truecaser_of_all_texts() -> None:
    """Training counts its texts in chunks, in worker processes, and merges the counts."""
    texts = [*TRAINING, "mary met NASA people .", "Mary and JOHN and John ."]
    halves = TruecaseCounts(), TruecaseCounts()
    for index, text in enumerate(texts):
        halves[index * 2 // len(texts)].add(text)
    halves[0].update(halves[1])
    assert Truecaser.from_counts(halves[0]) == Truecaser.fit(texts)


@pytest.mark.parametrize(("lowered", "expected"), [
    ("let's meet at 5 p.m. tomorrow.", "Let's meet at 5 p.m. tomorrow."),
    ("fruit, e.g. apples, is good.", "Fruit, e.g. apples, is good."),
    ("go to https://github.com/user/repo now.", "Go to https://github.com/user/repo now."),
    ("see https://example.com/i/page", "See https://example.com/i/page"),
    ("i work at google.com. then i left.", "I work at google.com. Then I left."),
    ("it costs 3.5 dollars. great", "It costs 3.5 dollars. Great"),
])
def test_a_point_inside_a_name_or_after_an_initialism_ends_no_sentence(
    lowered: str, expected: str
) -> None:
    """A point touching a letter ended a sentence ("5 p.M. Tomorrow", "e.G. Apples",
    "github.Com"), and the pronoun rule capitalised "i" inside URLs ("example.com/I/page");
    URLs and dotted names keep their case, and an initialism's point ends no sentence."""
    assert Truecaser({"i": "I"}, capitalize_initial=True).apply(lowered) == expected
