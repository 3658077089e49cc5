"""Placeholders: masking finds each kind, restore reproduces the source exactly, and the
token shape survives jieba and a word tokenizer."""

from __future__ import annotations

import re
from collections.abc import Mapping

import jieba
import pytest

from nlp.text.placeholders import (
    PLACEHOLDER_RE,
    is_placeholder,
    mask,
    mask_like,
    placeholder_tokens,
    restore,
)
from nlp.tokenizers.detokenize import spaced_unless_chinese

jieba.setLogLevel(60)


def _restore(text: str, slots: Mapping[str, str]) -> str:
    """`restore` with the spacing of a tokenizer without word rules (plain sentencepiece)."""
    return restore(text, slots, spaced_unless_chinese)


ZH_ARTICLE = (
    "苹果公司2026年3月5日发布iPhone 17，营收2.4亿元，同比增长37.5%，"
    "另有3000万美元用于AI研发，详见https://www.apple.com/cn/。售价5元起。"
)
EN_ARTICLE = (
    "Apple said on March 5, 2026 that revenue rose 37.5% to $2.4 billion, "
    "or 1,234 million dollars, up from 3.14 on 2025-03-05. See www.example.com/a?b=1."
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("营收2.4亿元，", "money", "2.4亿元"),
        ("投资3000万美元。", "money", "3000万美元"),
        ("只要5元", "money", "5元"),
        ("rose to $2.4 billion.", "money", "$2.4 billion"),
        ("增长37.5%达到", "pct", "37.5%"),
        ("增长百分之三十", "pct", "百分之三十"),
        ("rose 12 pct in", "pct", "12 pct"),
        ("于2026年3月5日发布", "date", "2026年3月5日"),
        ("于3月5日发布", "date", "3月5日"),
        ("on 2026-03-05 at", "date", "2026-03-05"),
        ("on March 5, 2026 at", "date", "March 5, 2026"),
        ("共1,234人", "num", "1,234"),
        ("pi is 3.14 here", "num", "3.14"),
        # times and scores whole ("10: 30", "3: 2" before)
        ("上午10:30开会", "num", "10:30"),
        ("比分3:2获胜", "num", "3:2"),
        ("at 9:05:30 pm", "num", "9:05:30"),
        # a sign that starts a word, a score, a range: one value ("- 5", "phnum1-phnum2" before)
        ("it was -5 today", "num", "-5"),
        ("气温-5度", "num", "-5"),
        ("(+3)", "num", "+3"),
        ("won 3-1 at home", "num", "3-1"),
        ("pages 1-2-3 here", "num", "1-2-3"),
        ("up 5-10% now", "pct", "5-10%"),
        ("跌了-2.5%", "pct", "-2.5%"),
        ("see https://example.com/x?y=1.", "url", "https://example.com/x?y=1"),
        ("发布iPhone手机", "lat", "iPhone"),
        ("发展AI技术", "lat", "AI"),
    ],
)
def test_each_kind_is_masked_whole(text: str, kind: str, value: str) -> None:
    masked = mask(text)
    assert masked.slots == {f"ph{kind}1": value}
    assert value not in masked.text
    assert _restore(masked.text, masked.slots) == text


@pytest.mark.parametrize("kind", ["words", "jieba"])
def test_signed_numbers_scores_and_ranges_come_back_as_written(kind: str) -> None:
    """Masked, tokenized, written and restored as a headline is: the sign kept on its number,
    a score one placeholder the vocabulary knows."""
    from nlp.tokenizers import build_tokenizer
    from nlp.util.config import TokenizerConfig

    tokenizer = build_tokenizer(TokenizerConfig(kind=kind))
    text = "it was -5 degrees, a 3-1 win (-2) and 5-10% more"
    masked = mask(text)
    tokens = tokenizer.tokenize(masked.text)
    assert all(is_placeholder(t) or not t.startswith("ph") for t in tokens), tokens
    assert _restore(tokenizer.detokenize(tokens), masked.slots) == text
    assert mask("v1.2, COVID-19 and 2015-03-14").slots == {"phdate1": "2015-03-14"}


def test_latin_words_in_english_text_are_left_alone_unless_asked() -> None:
    assert mask("Apple sells the iPhone").slots == {}
    assert mask("Apple sells the iPhone", latin_everywhere=True).slots["phlat4"] == "iPhone"
    assert mask("The COVID-19 wave and 5G").slots == {}


def test_same_value_same_placeholder_numbered_per_kind_in_order() -> None:
    masked = mask("涨了37.5%，又涨了37.5%，共12次，再涨5%")
    assert masked.text == "涨了phpct1，又涨了phpct1，共phnum1次，再涨phpct2"
    assert masked.slots == {"phpct1": "37.5%", "phnum1": "12", "phpct2": "5%"}


@pytest.mark.parametrize("article", [ZH_ARTICLE, EN_ARTICLE])
def test_round_trip_restores_realistic_text_exactly(article: str) -> None:
    masked = mask(article)
    assert not re.search(r"\d", PLACEHOLDER_RE.sub("", masked.text))
    assert _restore(masked.text, masked.slots) == article


def test_headline_reproduces_money_and_percentage_exactly() -> None:
    masked = mask(ZH_ARTICLE)
    money = next(k for k, v in masked.slots.items() if v == "2.4亿元")
    pct = next(k for k, v in masked.slots.items() if v == "37.5%")
    fake_model_output = f"苹果营收{money}增长{pct}"
    assert _restore(fake_model_output, masked.slots) == "苹果营收2.4亿元增长37.5%"


def test_unknown_placeholders_are_removed_cleanly() -> None:
    slots = mask(EN_ARTICLE).slots
    assert _restore("revenue rose phpct9 to phmoney1", slots) == "revenue rose to $2.4 billion"
    assert _restore("phnum7 apple up", slots) == "apple up"
    assert _restore("营收phmoney5增长", {}) == "营收增长"
    assert not PLACEHOLDER_RE.search(_restore("phdate3phlat2 x PHNUM4", {}))


def test_longest_known_placeholder_wins() -> None:
    slots = {f"phnum{i}": str(i * 100) for i in range(1, 13)}
    assert _restore("a phnum12 b phnum1", slots) == "a 1200 b 100"


def test_an_unknown_placeholder_is_never_read_as_a_known_prefix() -> None:
    """"phnum12" with only "phnum1" in the source is dropped, not printed as "500" + "2"."""
    assert _restore("phnum12 员工", {"phnum1": "500"}) == "员工"
    assert _restore("裁员 phnum12 人", {"phnum1": "500"}) == "裁员 人"
    assert _restore("up phpct10 now", {"phpct1": "5%"}) == "up now"


def test_placeholders_survive_jieba_and_a_word_tokenizer() -> None:
    masked = mask(ZH_ARTICLE)
    jieba_tokens = jieba.lcut(masked.text)
    for token in masked.slots:
        assert token in jieba_tokens
    english = mask(EN_ARTICLE)
    words = re.findall(r"\w+", english.text.lower())
    for token in english.slots:
        assert token in words
    assert jieba.lcut("增长phpct1达到") == ["增长", "phpct1", "达到"]


def test_adjacent_placeholders_are_kept_apart_for_jieba() -> None:
    masked = mask("融资2.4亿元AI芯片")
    assert "phmoney1 phlat1" in masked.text
    assert {"phmoney1", "phlat1"} <= set(jieba.lcut(masked.text))
    assert _restore(masked.text, masked.slots) == "融资2.4亿元 AI芯片"


def test_helpers() -> None:
    tokens = placeholder_tokens(3)
    assert "phmoney3" in tokens and len(tokens) == 18
    assert all(is_placeholder(t) for t in tokens)
    assert not is_placeholder("phone")
    with pytest.raises(ValueError, match="unknown placeholder kinds"):
        mask("x", kinds={"nope"})


def test_only_requested_kinds_are_masked() -> None:
    masked = mask("2026年营收2.4亿元，增长37.5%", kinds={"pct"})
    assert masked.slots == {"phpct1": "37.5%"}


def test_mask_like_uses_only_the_source_slots() -> None:
    source = mask("苹果营收2.4亿元，增长37.5%，售价5999元")
    target = "营收2.4亿元增长37.5%，利润3亿元，AI"
    assert mask_like(target, source.slots) == "营收phmoney1增长phpct1，利润3亿元，AI"
    assert mask_like(target, {}) == target
    english = mask("Profit rose 37.5% to $5 billion on March 5, 2026")
    masked_title = mask_like("PROFIT UP 37.5% ON MARCH 5, 2026", english.slots)
    assert masked_title == "PROFIT UP phpct1 ON phdate1"  # values match case-insensitively


def test_restore_respaces_values_the_detokenizer_spaced_like_latin_words() -> None:
    masked = mask("营收2.4亿元，增长37.5%，iPhone于2026年3月5日发布")
    detokenized = "营收 phmoney1，增长 phpct1，phlat1 于 phdate1 发布"  # nlp.tokenizers style
    expected = "营收2.4亿元，增长37.5%，iPhone 于2026年3月5日发布"
    assert _restore(detokenized, masked.slots) == expected
    assert _restore("rose phpct1 to phmoney1", mask("up 5% to $3").slots) == "rose 5% to $3"


def test_values_the_masking_spaced_apart_come_back_as_the_source_wrote_them() -> None:
    """Masking spaces two touching values apart ("phmoney1 phpct1": one token to jieba
    otherwise); restoring without a tokenizer's rules kept that space beside every placeholder,
    so "2.4亿元37.5%" came back "2.4亿元 37.5%" and "2024年1-5月" as "2024年 1-5月"."""
    for text in ("营收2.4亿元37.5%", "2019年-2023年", "2024年1-5月"):
        masked = mask(text)
        assert _restore(masked.text, masked.slots) == text


@pytest.mark.parametrize("kind", ["words", "jieba"])
def test_project_tokenizers_keep_placeholders_whole(kind: str) -> None:
    from nlp.tokenizers import build_tokenizer
    from nlp.util.config import TokenizerConfig

    tokenizer = build_tokenizer(TokenizerConfig(kind=kind))
    for article in (ZH_ARTICLE, EN_ARTICLE):
        masked = mask(article)
        tokens = tokenizer.tokenize(masked.text)
        assert set(masked.slots) <= set(tokens)
        # A model that emits the placeholders: the values come back exactly.
        output = [t for t in tokens if is_placeholder(t)]
        restored = _restore(tokenizer.detokenize(output), masked.slots)
        values = "".join(masked.slots[t] for t in output)
        assert restored.replace(" ", "") == values.replace(" ", "")


@pytest.mark.parametrize("kind", ["chars", "jieba"])
def test_a_headline_codec_writes_numbers_and_dates_back_as_they_were(kind: str) -> None:
    """Through the headline preset's codec (mask, tokenize, detokenize, restore): placeholders
    were spaced as Latin words ("2024年 1-5月", "999元 /吨"), and a placeholder right after
    another became one token no vocabulary holds ("phdate1phnum1", "phpct1-phpct2")."""
    import json as json_module

    from nlp.api.training import training_config
    from nlp.corpus.records import Pair
    from nlp.generation.codec import TextCodec
    from tests.conftest import REPO

    lines = (REPO / "corpora" / "headlines-zh.jsonl").read_text("utf-8").splitlines()
    pairs = [Pair(r["source"], r["target"]) for r in map(json_module.loads, lines)]
    codec = TextCodec.fit(training_config("headline", overrides=[f"tokenizer.kind={kind}"]),
                          pairs)
    for text in ("2024年1-5月", "今年5月1日12时", "投资额达50亿元(约7亿美元)", "价格为999元/吨",
                 "2019年-2023年", "5月1日-5月3日", "营收50亿元-60亿元", "涨了5%-10%", "得分3/5",
                 "It rose 5% to $2.4 billion, up 3-1 (-2)."):
        tokens, written = codec.tokens_and_output(text)
        assert written == text, tokens
        assert all(is_placeholder(t) or not PLACEHOLDER_RE.search(t) for t in tokens), tokens
