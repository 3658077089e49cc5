"""Checks on the project's own sample corpora in ``corpora/`` (fast, no TensorFlow)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO

CORPORA = REPO / "corpora"

# name -> (minimum pairs, language, (source min, source max), (target min, target max))
# Lengths are characters for Chinese, words for English.
SPECS = {
    "dialogue-zh.jsonl": (320, "zh", (2, 30), (2, 30)),
    "dialogue-en.jsonl": (320, "en", (1, 20), (1, 20)),
    "headlines-zh.jsonl": (160, "zh", (40, 200), (6, 30)),
    "headlines-en.jsonl": (160, "en", (30, 120), (4, 15)),
}

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]+")
NUMBER_AMOUNT = re.compile(r"\d+(?:\.\d+)?(?:%|亿元|万元)")


def load(name: str) -> list[dict]:
    path = CORPORA / name
    records = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            assert line.strip(), f"{name}:{lineno}: blank line"
            record = json.loads(line)
            assert isinstance(record, dict), f"{name}:{lineno}: not an object"
            records.append(record)
    return records


def length(text: str, lang: str) -> int:
    return len(text) if lang == "zh" else len(text.split())


@pytest.fixture(scope="module", params=sorted(SPECS))
def corpus(request) -> tuple[str, list[dict]]:
    return request.param, load(request.param)


def test_records_have_nonempty_source_and_target(corpus):
    name, records = corpus
    for i, record in enumerate(records, 1):
        assert set(record) == {"source", "target"}, f"{name}:{i}: fields {sorted(record)}"
        for field in ("source", "target"):
            value = record[field]
            assert isinstance(value, str), f"{name}:{i}: {field} is not a string"
            assert value.strip(), f"{name}:{i}: empty {field}"
            assert value == value.strip(), f"{name}:{i}: {field} has outer whitespace"
            assert "\n" not in value and "\t" not in value, f"{name}:{i}: control char"


def test_minimum_counts(corpus):
    name, records = corpus
    assert len(records) >= SPECS[name][0]


def test_no_duplicate_pairs_or_sources(corpus):
    name, records = corpus
    pairs = [(r["source"], r["target"]) for r in records]
    assert len(set(pairs)) == len(pairs), f"{name}: duplicate pairs"
    sources = [r["source"] for r in records]
    assert len(set(sources)) == len(sources), f"{name}: duplicate sources"


def test_script_matches_language(corpus):
    name, records = corpus
    lang = SPECS[name][1]
    for i, record in enumerate(records, 1):
        for field in ("source", "target"):
            text = record[field]
            if lang == "zh":
                # a Latin-script name ("iPhone", "GDP") counts as one unit, like a word
                cjk = len(CJK.findall(text))
                latin = len(LATIN_WORD.findall(text))
                assert cjk >= 0.6 * (cjk + latin), f"{name}:{i}: {field} is not mostly CJK"
            else:
                ascii_chars = sum(1 for c in text if c.isascii())
                assert ascii_chars >= 0.95 * len(text), f"{name}:{i}: {field} not mostly ASCII"
                assert not CJK.search(text), f"{name}:{i}: CJK in English {field}"


def test_lengths_are_sensible(corpus):
    name, records = corpus
    _, lang, (s_lo, s_hi), (t_lo, t_hi) = SPECS[name]
    for i, record in enumerate(records, 1):
        s, t = length(record["source"], lang), length(record["target"], lang)
        assert s_lo <= s <= s_hi, f"{name}:{i}: source length {s}"
        assert t_lo <= t <= t_hi, f"{name}:{i}: target length {t}"


def test_headlines_are_shorter_than_articles():
    for name in ("headlines-zh.jsonl", "headlines-en.jsonl"):
        lang = SPECS[name][1]
        for i, r in enumerate(load(name), 1):
            assert length(r["target"], lang) < length(r["source"], lang) / 2, f"{name}:{i}"


def test_english_headlines_are_not_all_caps():
    for i, r in enumerate(load("headlines-en.jsonl"), 1):
        assert r["target"] != r["target"].upper(), f"headlines-en.jsonl:{i}: ALL CAPS"


def test_zh_headlines_copy_numbers_from_articles():
    """The copy mechanism is exercised on amounts and percentages that the headline repeats."""
    copied = 0
    for r in load("headlines-zh.jsonl"):
        amounts = set(NUMBER_AMOUNT.findall(r["source"]))
        if any(a in r["target"] for a in amounts):
            copied += 1
    assert copied >= 10


def test_zh_headlines_contain_latin_names_and_dates():
    records = load("headlines-zh.jsonl")
    latin = [r for r in records if re.search(r"[A-Za-z]{2,}", r["source"])]
    latin_in_title = [r for r in latin if re.search(r"[A-Za-z]{2,}", r["target"])]
    dated = [r for r in records if re.search(r"\d{4}年\d{1,2}月\d{1,2}日", r["source"])]
    assert len(latin) >= 10
    assert len(latin_in_title) >= 5
    assert len(dated) >= 20
