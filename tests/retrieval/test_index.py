"""BM25 reply retrieval (nlp/retrieval/index.py) on corpora small enough to score by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nlp.retrieval import ReplyIndex, RetrievalIndexError

# Three posts; N = 3, average length 2, BM25 k1 = 1.5, b = 0.75 (Lucene's IDF):
#   idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl))
# (Lucene's form, which drops the constant factor k1 + 1 of Robertson's)
POSTS = [["a", "b"], ["b", "c", "c"], ["d"]]
REPLIES = ["reply to a b", "reply to b c c", "reply to d"]
PAIRS = ["chat.jsonl:1", "chat.jsonl:2", "chat.jsonl:3"]
IDF_B = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # b is in two posts
IDF_C = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # c in one


def tf_part(tf: int, length: int) -> float:
    return tf / (tf + 1.5 * (0.25 + 0.75 * length / 2))


@pytest.fixture
def index() -> ReplyIndex:
    return ReplyIndex.build(POSTS, REPLIES, PAIRS)


def test_scores_and_order_are_the_hand_computed_ones(index: ReplyIndex) -> None:
    # "b": post 0 (length 2) beats post 1 (length 3, the same tf): shorter documents win
    hits = index.search([["b"]], 3)[0]
    assert [h.row for h in hits] == [0, 1]  # post 2 shares no token: never returned
    assert hits[0].score == pytest.approx(IDF_B * tf_part(1, 2), rel=1e-5)
    assert hits[1].score == pytest.approx(IDF_B * tf_part(1, 3), rel=1e-5)
    # "b c": post 1's two c's and rarer c outweigh post 0's single b
    hits = index.search([["b", "c"]], 3)[0]
    assert [h.row for h in hits] == [1, 0]
    assert hits[0].score == pytest.approx(
        IDF_B * tf_part(1, 3) + IDF_C * tf_part(2, 3), rel=1e-5
    )
    assert (hits[0].reply, hits[0].pair) == ("reply to b c c", "chat.jsonl:2")


def test_k_limits_and_unknown_words_match_nothing(index: ReplyIndex) -> None:
    assert [h.row for h in index.search([["b"]], 1)[0]] == [0]
    assert index.search([["zzz"]], 3) == [[]]
    assert index.search([["b"]], 0) == [[]]


def test_a_pair_never_retrieves_itself_nor_a_duplicate_of_its_post() -> None:
    posts = [["hi", "there"], ["hi", "there"], ["hi", "you"], ["bye"]]
    index = ReplyIndex.build(posts, ["r0", "r1", "r2", "r3"], ["f:1", "f:2", "f:3", "f:4"])
    # without skipping, the post's own pair and its duplicate are the best matches
    assert {h.row for h in index.search([posts[0]], 2)[0]} == {0, 1}
    for row, post in enumerate(posts):
        hits = index.search([post], 3, skip_same_post=True)[0]
        assert row not in {h.row for h in hits}
        assert all(posts[h.row] != post for h in hits)
    assert [h.row for h in index.search([posts[0]], 3, skip_same_post=True)[0]] == [2]


def test_candidate_scores_use_the_index_statistics(index: ReplyIndex) -> None:
    # a candidate reply scored as a BM25 document for the context, with the posts' df and
    # average length: "c c b" (length 3) against context "b c"
    scores = index.candidate_scores(["b", "c"], [["c", "c", "b"], ["d"], []])
    assert scores[0] == pytest.approx(IDF_B * tf_part(1, 3) + IDF_C * tf_part(2, 3), rel=1e-6)
    assert scores[1] == 0 and scores[2] == 0


def test_save_and_load_round_trip(index: ReplyIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "retrieval")
    loaded = ReplyIndex.load(tmp_path / "retrieval")
    assert len(loaded) == 3
    assert loaded.search([["b", "c"]], 3) == index.search([["b", "c"]], 3)


def test_the_posts_texts_are_kept_and_an_older_index_without_them_loads(
    tmp_path: Path,
) -> None:
    """A hit carries the text of the post its reply answered (the rankers compare it with
    the message); an index written before posts were kept loads, its hits with no post."""
    index = ReplyIndex.build(POSTS, REPLIES, PAIRS, ["A b!", "b, c c", "D"])
    index.save(tmp_path / "retrieval")
    loaded = ReplyIndex.load(tmp_path / "retrieval")
    assert [h.post for h in loaded.search([["b", "c"]], 3)[0]] == ["b, c c", "A b!"]
    replies = tmp_path / "retrieval" / "replies.jsonl"
    records = [json.loads(line) for line in replies.read_text("utf-8").splitlines()]
    replies.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "post"}) + "\n"
                               for r in records), "utf-8")
    older = ReplyIndex.load(tmp_path / "retrieval")
    assert older.posts is None
    assert [(h.row, h.post) for h in older.search([["b", "c"]], 3)[0]] == [(1, ""), (0, "")]
    with pytest.raises(ValueError, match="same length"):
        ReplyIndex.build(POSTS, REPLIES, PAIRS, ["one"])


def test_a_broken_replies_file_is_named_with_its_line(index: ReplyIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "retrieval")
    replies = tmp_path / "retrieval" / "replies.jsonl"
    lines = replies.read_text("utf-8").splitlines()
    lines[1] = json.dumps({"reply": "x"})  # no pair, no key
    replies.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(RetrievalIndexError, match=r"replies\.jsonl:2"):
        ReplyIndex.load(tmp_path / "retrieval")


def test_rows_must_align() -> None:
    with pytest.raises(ValueError, match="same length"):
        ReplyIndex.build([["a"]], ["r", "s"], ["f:1"])


def test_candidate_scores_are_the_scores_bm25s_retrieves_with() -> None:
    """Hits' BM25 column must be the BM25 retrieval uses: scoring the indexed posts
    themselves as candidates gives bm25s' own retrieve scores, with a query repeating a word
    (bm25s counts it each time) and a word the index never saw (bm25s ignores it)."""
    posts = [["a", "b", "c"], ["c", "d"], ["e", "a", "a"], ["b", "b", "f", "g"]]
    index = ReplyIndex.build(posts, ["r0", "r1", "r2", "r3"], ["f:1", "f:2", "f:3", "f:4"])
    for query in (["a"], ["a", "a"], ["a", "zz"], ["c", "a", "a", "x"], ["b", "g", "g"]):
        retrieved = index.search([query], len(posts))[0]
        expected = np.zeros(len(posts))
        for hit in retrieved:
            expected[hit.row] = hit.score
        assert index.candidate_scores(query, posts) == pytest.approx(expected, rel=1e-5)
    # a word outside the index adds nothing, even to a candidate that holds it
    assert index.candidate_scores(["zz", "a"], [["zz", "a"], ["a", "zz"]])[0] == \
        pytest.approx(index.candidate_scores(["a"], [["zz", "a"]])[0], rel=1e-6)
    assert index.candidate_scores(["zz"], [["zz"]]).tolist() == [0.0]


def test_search_finds_what_bm25s_retrieves_ties_by_row_on_one_core_or_all() -> None:
    """`search` selects the best posts itself (bm25s' own selection is slow when most
    scores tie at 0): the same scores as bm25s' `retrieve`, best first, posts with a score
    of 0 left out, equal scores in row order (duplicates of a post tie), and the same
    answers spread over every core. With `skip_same_post` a query that has many copies in
    the index still finds its k other posts."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    posts = [list(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(300)]
    posts += [["w1", "w2"]] * 30  # one post with many copies: they tie
    count = len(posts)
    index = ReplyIndex.build(posts, [f"r{i}" for i in range(count)],
                             [f"f:{i + 1}" for i in range(count)])
    queries = [posts[i] for i in range(0, count, 7)] + [["w1", "w2"], ["w39", "zz"], ["zz"]]
    found = index.search(queries, 8)
    assert index.search(queries, 8, all_cores=True) == found
    rows, scores = index._bm25.retrieve(  # type: ignore[attr-defined]
        [list(q) for q in queries], k=count, show_progress=False)
    for hits, row_list, score_list in zip(found, rows, scores, strict=True):
        expected = sorted(((-float(s), int(r)) for r, s in zip(row_list, score_list,
                                                                strict=True) if s > 0))[:8]
        assert [h.row for h in hits] == [row for _, row in expected]
        assert [h.score for h in hits] == pytest.approx([-score for score, _ in expected])
    copies = index.search([["w1", "w2"]], 8)[0]
    assert [h.row for h in copies] == list(range(300, 308))  # the tied copies in row order
    others = index.search([["w1", "w2"]], 8, skip_same_post=True)[0]
    assert len(others) == 8 and all(posts[h.row] != ["w1", "w2"] for h in others)
