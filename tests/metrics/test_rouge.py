"""ROUGE against hand-computed cases and the independent rouge-score package; lead baselines."""

from __future__ import annotations

import random

import pytest

from nlp.evaluation.baselines import (
    first_sentence,
    first_units,
    lead_n_baseline,
    lead_sentence_baseline,
    mean_reference_length,
    split_sentences,
)
from nlp.metrics.rouge import (
    char_units,
    lcs_length,
    resolve_unit,
    rouge,
    rouge_pair,
    word_units,
)

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

TYPES = ("rouge1", "rouge2", "rougeL")

EN_PAIRS = [
    ("the cat sat on the mat", "the cat was on the mat"),
    ("Police kill the gunman.", "The gunman was shot down by police!"),
    ("U.S. stocks rose 3.5% on Monday", "US stocks rise 3.5 pct on Monday"),
    ("", "empty hypothesis"),
    ("empty reference", ""),
    ("a a a a", "a"),
    ("Café owners protest new tax", "cafe owners protest tax"),
    ("GM TO CUT 5,000 JOBS", "General Motors to cut 5,000 jobs in 2026"),
]


def _random_english_pairs(count: int, seed: int = 7) -> list[tuple[str, str]]:
    words = [
        "the",
        "a",
        "of",
        "to",
        "in",
        "stocks",
        "rose",
        "fell",
        "oil",
        "price",
        "bank",
        "said",
        "u.s.",
        "china",
        "trade",
        "deal",
        "shares",
        "company",
        "profit",
        "loss",
        "3.5%",
        "year-on-year",
        "Monday's",
        "record",
    ]
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        ref = [rng.choice(words) for _ in range(rng.randint(3, 14))]
        hyp = [w for w in ref if rng.random() < 0.7] + [rng.choice(words) for _ in range(3)]
        if rng.random() < 0.3:
            rng.shuffle(hyp)
        pairs.append((" ".join(hyp), " ".join(ref)))
    return pairs


ZH_PAIRS = [
    ("李嘉诚回应撤资质疑", "李嘉诚回应“撤资”等质疑：是一个大笑话"),
    ("在法国的中国人才", "在法国的中国海外人才"),
    ("苹果发布iPhone 17", "苹果公司发布新款 iPhone"),
    ("营收2.4亿元增长37.5%", "营收增长37.5%至2.4亿元"),
    ("", "空"),
]


def _random_chinese_pairs(count: int, seed: int = 11) -> list[tuple[str, str]]:
    chars = "中国经济增长市场公司发布新的政策银行股价上涨下跌百分亿元北京上海。，"
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        ref = "".join(rng.choice(chars) for _ in range(rng.randint(5, 25)))
        hyp = "".join(c for c in ref if rng.random() < 0.7) + rng.choice(chars)
        pairs.append((hyp, ref))
    return pairs


class _CharTokenizer:
    """rouge-score tokenizer for pre-split text: each space-separated item is a unit."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def _assert_matches_rouge_score(ours: dict, theirs: dict) -> None:
    for name in TYPES:
        assert ours[name].precision == pytest.approx(theirs[name].precision, abs=1e-6)
        assert ours[name].recall == pytest.approx(theirs[name].recall, abs=1e-6)
        assert ours[name].f1 == pytest.approx(theirs[name].fmeasure, abs=1e-6)


def test_hand_computed_english_case() -> None:
    scores = rouge_pair("the cat sat on the mat", "the cat was on the mat", "word")
    # unigrams: 5 of 6 match both ways; bigrams: "the cat", "on the", "the mat" = 3 of 5
    assert scores["rouge1"].f1 == pytest.approx(5 / 6)
    assert scores["rouge2"].precision == pytest.approx(3 / 5)
    assert scores["rouge2"].f1 == pytest.approx(3 / 5)
    # LCS "the cat on the mat" = 5
    assert scores["rougeL"].recall == pytest.approx(5 / 6)


def test_hand_computed_chinese_case() -> None:
    scores = rouge_pair("中国经济", "中国 经济 增长", "char")
    assert scores["rouge1"].precision == 1.0
    assert scores["rouge1"].recall == pytest.approx(4 / 6)
    assert scores["rouge2"].recall == pytest.approx(3 / 5)
    assert scores["rougeL"].f1 == pytest.approx(2 * (4 / 6) / (1 + 4 / 6))


def test_units() -> None:
    assert char_units("苹果 iPhone，") == ["苹", "果", "i", "p", "h", "o", "n", "e", "，"]
    assert word_units("U.S. Stocks' 3.5% rise—café") == [
        "u",
        "s",
        "stocks",
        "3",
        "5",
        "rise",
        "caf",
    ]
    assert word_units("running stocks", stem=True) == ["run", "stock"]
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4


@pytest.mark.parametrize("stem", [False, True])
def test_matches_rouge_score_per_word(stem: bool) -> None:
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=stem)
    pairs = EN_PAIRS + _random_english_pairs(30)
    for hyp, ref in pairs:
        _assert_matches_rouge_score(rouge_pair(hyp, ref, "word", stem), scorer.score(ref, hyp))


def test_matches_rouge_score_per_character() -> None:
    scorer = rouge_scorer.RougeScorer(list(TYPES), tokenizer=_CharTokenizer())
    for hyp, ref in ZH_PAIRS + _random_chinese_pairs(30):
        theirs = scorer.score(" ".join(char_units(ref)), " ".join(char_units(hyp)))
        _assert_matches_rouge_score(rouge_pair(hyp, ref, "char"), theirs)


def test_corpus_score_is_the_mean_of_sentence_scores() -> None:
    pairs = _random_english_pairs(20, seed=3)
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    scorer = rouge_scorer.RougeScorer(list(TYPES))
    result = rouge(hyps, refs)
    assert result.unit == "word" and result.count == 20
    for name in TYPES:
        expected = sum(scorer.score(r, h)[name].fmeasure for h, r in pairs) / len(pairs)
        assert getattr(result, name).f1 == pytest.approx(expected, abs=1e-9)
    assert result.as_dict()["rougeL_f1"] == result.rougeL.f1


def test_auto_unit_and_errors() -> None:
    assert rouge(["中国"], ["中国经济"]).unit == "char"
    assert rouge(["china"], ["china economy"], unit="auto").unit == "word"
    assert rouge([], []).rouge1.f1 == 0.0
    with pytest.raises(ValueError, match="hypotheses"):
        rouge(["a"], [])
    with pytest.raises(ValueError, match="unit"):
        rouge(["a"], ["a"], unit="token")


def test_auto_unit_is_decided_by_the_corpus_share_of_character_units() -> None:
    """One Han character quoted in an English corpus does not switch it to characters; a
    Chinese corpus with Latin brand names stays in characters (each word one unit)."""
    english = ["the minister met the press", "talks on trade resume", "a visit to 北京 ends"]
    assert resolve_unit(english, "auto") == "word"
    assert resolve_unit(["苹果发布iPhone新品", "华为发布Mate手机"], "auto") == "char"


def test_kana_and_hangul_are_scored_per_character() -> None:
    """Word units are ASCII runs, so Japanese and Korean would score 0 against themselves;
    per character, an identical output scores 1 and a half-right one a hand-counted value."""
    japanese = rouge(["こんにちは"], ["こんにちは"])
    assert japanese.unit == "char" and japanese.rouge1.f1 == 1.0
    korean = rouge(["안녕하세요"], ["안녕 여러분"])  # 2 of the 5 characters on each side
    assert korean.unit == "char"
    assert korean.rouge1.f1 == pytest.approx(0.4)


def test_sentence_splitting_and_lead_sentence() -> None:
    text = "他说：“好！”然后走了。股价上涨3.5%.Then it fell! Really?\nNew line"
    assert split_sentences(text) == [
        "他说：“好！”",
        "然后走了。",
        "股价上涨3.5%.",
        "Then it fell!",
        "Really?",
        "New line",
    ]
    assert first_sentence("No end here") == "No end here"
    assert lead_sentence_baseline(["一。二。", ""]) == ["一。", ""]
    # an abbreviation ends no sentence ("The U." and "Mr." were lead sentences)
    assert first_sentence("The U.S. Agriculture Department said so. Then more.") == (
        "The U.S. Agriculture Department said so.")
    assert first_sentence("Mr. Smith of NEC Corp. left. Fine.") == "Mr. Smith of NEC Corp. left."


def test_lead_n_uses_mean_reference_length() -> None:
    assert mean_reference_length(["中国经济", "增长 快"], "char") == 4  # 3.5 rounds up
    assert first_units("中 国经济增长", 3, "char") == "中 国经"
    assert first_units("Oil prices rose sharply today", 3, "word") == "Oil prices rose"
    assert lead_n_baseline(["中国经济增长很快", "上海股市"], ["经济增长", "股市上涨啊"]) == [
        "中国经济增",
        "上海股市",
    ]
    assert lead_n_baseline(["Oil prices rose sharply"], ["oil up"], unit="word") == ["Oil prices"]
