"""The repetition figure: stutters from the headline issues are caught, normal headlines are
not, and `s2s evaluate --metric rouge` reports it beside ROUGE for every system."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import rouge_metrics
from nlp.generation.text_generator import Generation
from nlp.metrics.repetition import (
    reader_tokens,
    repeats_bigram,
    repeats_content_token,
    repetition_shares,
)

STUTTERS = [
    "十个:地方地方地方设计设计",
    "雅虎:雅虎:的的的的的的",
    "51信用卡信贷信贷信贷信贷51信贷信贷亿",
    "智能手机:8 8 8 8 8 8 8角落",
    "Oil prices rise as oil output falls",
    # held-out LCSTS headlines of a jieba-words model, whose words hide the repeat
    # ("金融" / "金融机构", "美国" / "美国空军")
    "央行：中国加强金融金融机构退出报告",
    "美国：美国空军海外将中国苏联像",
]
CLEAN = [
    "国务院批准中国银行发行新债",  # a reused character (国, 行) is no repeat
    "The cat and the dog",  # stopwords may repeat
    "美国股市大涨3%,道指创新高",
    "",
]


@pytest.mark.parametrize("text", STUTTERS)
def test_stutters_are_counted(text: str) -> None:
    assert repetition_shares([text])["repeat_share"] == 1.0


@pytest.mark.parametrize("text", CLEAN)
def test_clean_outputs_are_not(text: str) -> None:
    assert repetition_shares([text])["repeat_share"] == 0.0


def test_chinese_is_read_in_characters_and_english_in_words() -> None:
    assert reader_tokens("金融金融机构 iPhone 8，3.5%") == [
        "金", "融", "金", "融", "机", "构", "iphone", "8", "，", "3.5%"]


def test_unigram_and_bigram_rules_differ() -> None:
    assert repeats_content_token(["oil", "up", ",", "oil", "down"])
    assert not repeats_bigram(["oil", "up", ",", "oil", "down"])
    assert repeats_bigram(["的", "的", "的"]) and not repeats_content_token(["的", "的", "的"])
    # "地方地方" repeats characters in pairs (n=2); "oil ... oil" a word (n=1)
    shares = repetition_shares([STUTTERS[0], CLEAN[0], CLEAN[1], STUTTERS[4]])
    assert shares == {
        "repeat_content_token_share": 0.25,
        "repeat_bigram_share": 0.25,
        "repeat_share": 0.5,
    }


class ScriptedGenerator:
    """Returns a fixed output per source (a test double for `Generator`)."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[Generation]]:
        empty = np.zeros((0, 0))
        return [[Generation(self.outputs[t], 0.0, [], [], empty)] for t in texts]


def test_rouge_report_has_repetition_beside_rouge() -> None:
    pairs = [
        Pair("雅虎宣布裁员。公司股价上涨。", "雅虎裁员"),
        Pair("苹果发布新手机。销量很好。", "苹果发布新手机"),
    ]
    generator = ScriptedGenerator(
        {pairs[0].source: "雅虎雅虎雅虎", pairs[1].source: "苹果发布新手机"}
    )
    report = rouge_metrics(generator, pairs, DecodeOptions(), 8)  # type: ignore[arg-type]
    assert report["model"]["repeat_share"] == 0.5
    assert report["model"]["rougeL_f1"] > 0
    assert report["lead_sentence"]["repeat_share"] == 0.0
