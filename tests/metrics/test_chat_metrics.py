import math

import pytest

from nlp.metrics.chat_metrics import (
    chat_metrics,
    distinct_n,
    is_echo,
    top_reply_repeats,
    top_reply_share,
)


def test_distinct_n_counts_unique_ngrams_over_all_replies() -> None:
    replies = ["i am fine", "i am ok"]
    assert distinct_n(replies, 1, "word") == pytest.approx(4 / 6)
    assert distinct_n(replies, 2, "word") == pytest.approx(3 / 4)
    assert distinct_n(["你好", "你好"], 1, "char") == pytest.approx(2 / 4)
    assert distinct_n([], 1, "word") == 0.0


def test_top_reply_share_and_echo() -> None:
    replies = ["ok"] * 6 + ["a", "b", "c", "d", "e", "f"]
    assert top_reply_share(replies, 1) == pytest.approx(0.5)
    assert top_reply_share(replies, 5) == pytest.approx(10 / 12)
    assert is_echo("how are you today", "how are you", "word")
    assert not is_echo("how are you today", "fine thanks", "word")
    assert is_echo("今天天气很好", "天气很好", "char")


def test_top_reply_repeats_count_from_the_second_time() -> None:
    replies = ["ok"] * 6 + ["a", "b", "c", "d", "e", "f"]
    assert top_reply_repeats(replies, 1) == pytest.approx(5 / 12)
    assert top_reply_repeats(replies, 5) == pytest.approx(5 / 12)
    assert top_reply_repeats(["a", "b", "c"]) == 0.0  # however few, all different
    assert top_reply_repeats(["OK", "ok ", "no"]) == pytest.approx(1 / 3)  # as top_reply_share
    assert top_reply_repeats([]) == 0.0
    # one reply however spaced: a bot's retrieved replies keep the corpus's "I don't know ."
    spaced = ["I don't know."] * 3 + ["i don't know ."] * 3 + list("abcdef")
    assert top_reply_share(spaced, 1) == pytest.approx(0.5)
    assert top_reply_repeats(spaced, 1) == pytest.approx(5 / 12)


def test_chat_metrics_picks_units_per_language() -> None:
    report = chat_metrics(["你好吗", "吃了吗"], ["我很好", "吃了"])
    assert report["unit"] == "char"
    assert report["echo_share"] == pytest.approx(0.5)
    assert report["empty_share"] == 0.0


def test_bleu_and_length_on_a_hand_checked_english_case() -> None:
    # unigrams: 5 of 6 match (sat does not); bigrams: "the cat", "on the", "the mat" of 5;
    # equal lengths, so no brevity penalty: BLEU-1 = 5/6, BLEU-2 = sqrt(5/6 * 3/5).
    report = chat_metrics(
        ["where is the cat ?"], ["the cat sat on the mat"], references=["the cat is on the mat"]
    )
    assert report["bleu_tokenize"] == "13a" and report["unit"] == "word"
    assert report["bleu_1"] == pytest.approx(100 * 5 / 6, abs=1e-3)
    assert report["bleu_2"] == pytest.approx(100 * (0.5**0.5), abs=1e-3)
    assert report["mean_reply_length"] == 6


def test_bleu_on_chinese_counts_characters_with_the_brevity_penalty() -> None:
    # 3 characters against 4: every unigram and bigram matches, brevity penalty exp(1 - 4/3).
    report = chat_metrics(["你好吗"], ["我很好"], references=["我很好啊"])
    assert report["bleu_tokenize"] == "zh" and report["unit"] == "char"
    assert report["bleu_1"] == pytest.approx(100 * math.exp(1 - 4 / 3), abs=1e-3)
    assert report["bleu_2"] == pytest.approx(100 * math.exp(1 - 4 / 3), abs=1e-3)
    assert report["mean_reply_length"] == 3
    assert "bleu_1" not in chat_metrics(["你好吗"], ["我很好"])  # no references, no BLEU


def test_s2s_evaluate_metric_chat_reports_bleu_and_length(tiny_bundle, capsys) -> None:  # type: ignore[no-untyped-def]
    """The CLI's figures are those of what the bot sends to a seeded sample of posts drawn
    across conversations (greedy here: one candidate, so the bot sends the decoder's best
    unless it echoes): BLEU as sacrebleu (the oracle) scores them against the references as
    the model would write them, length as their count of lowercase ASCII alphanumeric runs
    (the word unit)."""
    import json
    import re
    from dataclasses import replace

    from sacrebleu.metrics import BLEU

    from nlp.chat.offline import bot_replies
    from nlp.generation.generator import Generator
    from nlp.metrics.hits import HitsDraw
    from nlp.training.corpus_io import CorpusSpec, load_pairs
    from s2s.cli import main
    from tests.conftest import REPO

    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    argv = ["evaluate", "--model", str(tiny_bundle), "--corpus", str(corpus),
            "--metric", "chat", "--limit", "8", "--greedy"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)["chat"]
    assert report["pairs"] == 8 and report["bleu_tokenize"] == "13a"

    generator = Generator.from_bundle(tiny_bundle)
    every = load_pairs(CorpusSpec((corpus,)), generator.config.data)
    rows = HitsDraw(limit=8).rows([p.group for p in every])
    assert rows != list(range(8))  # a sample, not the file's first 8
    pairs = [every[row] for row in rows]
    assert generator.bundle.decoding is not None
    greedy = replace(generator.bundle.decoding.options, strategy="greedy", beam_size=1)
    replies = bot_replies(generator, [p.source for p in pairs], greedy)
    references = [generator.codec.as_output(p.target) for p in pairs]
    for order in (1, 2):
        oracle = BLEU(tokenize="13a", max_ngram_order=order, effective_order=False)
        expected = oracle.corpus_score(replies, [references]).score
        assert report[f"bleu_{order}"] == pytest.approx(expected, abs=1e-9)
    words = [len(re.findall("[a-z0-9]+", reply.lower())) for reply in replies]
    assert report["mean_reply_length"] == pytest.approx(sum(words) / 8)


def test_per_block_measures_do_not_move_with_the_sample_size() -> None:
    import random

    from nlp.metrics.chat_metrics import per_block

    # A bot with 60 stock replies, drawn at random: plain distinct-2 falls as more replies
    # are scored; per block of 100 it stays put (the tuner's floor relies on that).
    rng = random.Random(0)
    stock = [f"reply number {i} here" for i in range(60)]
    replies = [rng.choice(stock) for _ in range(1000)]
    plain_200, plain_1000 = (distinct_n(replies[:n], 2, "word") for n in (200, 1000))
    assert plain_1000 < 0.6 * plain_200
    block_200, block_1000 = (
        per_block(replies[:n], lambda b: distinct_n(b, 2, "word")) for n in (200, 1000)
    )
    assert abs(block_200 - block_1000) < 0.1 * block_1000
    # hand-checked: two blocks of 2, each "a a" / "a b" -> top-1 share 1.0 and 0.5
    assert per_block(["a", "a", "a", "b"], lambda b: top_reply_share(b, 1), block=2) == 0.75
    assert per_block(["a", "b", "c"], lambda b: top_reply_share(b, 1), block=2) == 0.5
    assert per_block(["a"], lambda b: top_reply_share(b, 1), block=2) == 1.0


def test_one_rule_decides_the_unit_for_figures_and_the_tuner() -> None:
    """The tuner's objective read the posts, its word vectors the references, the figures
    both: Chinese posts with English replies got "char", "word" and "char" in three places."""
    from nlp.metrics.chat_metrics import chat_unit

    posts, references = ["你好吗", "今天天气怎么样"], ["fine", "it is sunny"]
    assert chat_unit(posts, references) == "char"
    assert chat_unit(["hello there, my friend"], ["很好"]) == "word"
