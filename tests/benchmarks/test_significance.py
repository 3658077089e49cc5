"""The statistics docs/BENCHMARKS.md quotes (`benchmarks.significance`), on cases small enough
to compute by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.significance import (
    PairedRecord,
    distinct_by_prefix_and_block,
    paired_records,
    sign_test_p,
)


def test_sign_test_p_is_the_two_sided_binomial_tail_at_one_half() -> None:
    # 1 post against 5: P(X >= 5 | n = 6) = (C(6,5) + C(6,6)) / 2^6 = 7/64; both tails 14/64
    assert sign_test_p(1, 5) == pytest.approx(14 / 64)
    assert sign_test_p(5, 1) == pytest.approx(14 / 64)
    # 0 against 10: only the two all-one-way outcomes are as extreme, 2 / 2^10
    assert sign_test_p(0, 10) == pytest.approx(2 / 1024)
    assert sign_test_p(3, 3) == pytest.approx(1.0)
    assert sign_test_p(0, 0) == 1.0  # no post splits them: no evidence either way


def test_paired_records_are_found_anywhere_with_the_p_recorded_beside_them() -> None:
    data = {
        "commit": "abc",
        "chat": {
            "paired": {
                "test": {"only_first": 1, "only_second": 5, "both": 2},
                "valid": {"only_first": 0, "only_second": 10, "both": 0},
                "sign_test_p": {"test": 0.22},
            }
        },
        "other": {"model": {"only_first": 3, "only_second": 3}},
    }
    assert list(paired_records(data, "f.json")) == [
        PairedRecord("f.json", "chat.paired.test", 1, 5, 0.22),
        PairedRecord("f.json", "chat.paired.valid", 0, 10, None),
        PairedRecord("f.json", "other.model", 3, 3, None),
    ]


def test_distinct_2_by_prefix_and_by_whole_block() -> None:
    replies = ["a b", "a b", "c d", "e f", "g h"]
    prefixes, blocks = distinct_by_prefix_and_block(replies, block=2, unit="word")
    # bigrams: first 2 replies {ab, ab}: 1 of 2; first 4 {ab, ab, cd, ef}: 3 of 4; all 5: 4 of 5
    assert prefixes == [(2, pytest.approx(0.5)), (4, pytest.approx(0.75)), (5, pytest.approx(0.8))]
    # whole blocks only: the fifth reply's block of one would not compare with blocks of two
    assert blocks == [(0, 2, pytest.approx(0.5)), (2, 4, pytest.approx(1.0))]


def test_the_bots_replies_are_to_the_posts_chat_quality_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The distinct-2 figures were of the replies to the test file's first posts, a few
    conversations' worth, while `chat_quality` scores posts drawn across conversations."""
    import json
    from types import SimpleNamespace

    import nlp.chat.offline
    import nlp.generation.generator
    from benchmarks.chat_quality import TEST
    from benchmarks.significance import bot_replies_of
    from nlp.decoding import DecodeOptions
    from nlp.metrics.hits import HitsDraw

    work = tmp_path
    rows = [{"source": f"post {c} {i}", "target": f"reply {c} {i}", "conversation": f"c{c}"}
            for c in range(8) for i in range(5)]
    (work / TEST).write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    bundle = SimpleNamespace(decoding=SimpleNamespace(options=DecodeOptions()))
    monkeypatch.setattr(nlp.generation.generator.Generator, "from_bundle",
                        classmethod(lambda cls, path: SimpleNamespace(bundle=bundle)))
    asked: list[list[str]] = []
    monkeypatch.setattr(nlp.chat.offline, "bot_replies",
                        lambda generator, posts, options: asked.append(posts) or posts)
    replies, _ = bot_replies_of(work, 10)
    drawn = [rows[row]["source"] for row in HitsDraw(k=20, limit=10).rows(
        [row["conversation"] for row in rows])]
    assert asked == [drawn] and replies == drawn
    assert len({post.split()[1] for post in drawn}) > 2  # not the first two conversations
