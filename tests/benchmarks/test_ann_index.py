"""The reply-vector benchmark on a chat bundle's own vectors: every reply its index holds,
searched with validation posts' vectors, exact search's neighbours as the truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.ann_index import bundle_vectors, exact_nearest, measure, unit_vectors

DIALOGUE = [
    ("hi, how are you?", "fine, thanks. and you?", "c1"),
    # a post with its earlier turns joined: the chat searches with the message alone
    ("hi, how are you? __eot__ fine, thanks. and you? __eot__ good. what are you doing today?",
     "i am going to the park.", "c1"),
    ("do you like music?", "yes, i love jazz.", "c2"),
    ("what is your favourite food?", "pizza, with lots of cheese.", "c3"),
]


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "valid.jsonl"
    corpus.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n"
        for s, t, c in DIALOGUE))
    return corpus


def test_bundle_vectors_are_the_index_replies_and_the_posts(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """Their dot products are the dual encoder's cosines of each post drawn (three
    different ones, by their message) with the index's replies, in the index's order."""
    from nlp.generation.candidates import ranking_ids
    from nlp.generation.loading import load_generator
    from nlp.text.normalize import last_turn_text

    replies, asked = bundle_vectors(str(tiny_bundle), str(_corpus(tmp_path)), 3, 0)
    generator = load_generator(tiny_bundle)
    index, codec = generator.candidates.index, generator.codec
    assert replies.shape[0] == len(index) and set(asked) == {"posts"}
    assert asked["posts"].shape == (3, replies.shape[1])
    shown = index.replies[:8]
    messages = [last_turn_text(source, " __eot__ ") for source, _, _ in DIALOGUE]
    cosines = generator.candidates.dual_encoder.scores(
        [ranking_ids(codec, message) for message in messages],
        [[ranking_ids(codec, reply) for reply in shown]] * len(messages))
    drawn = [[row for row, cosine in enumerate(cosines)
              if np.allclose(post @ replies[: len(shown)].T, cosine, atol=1e-4)]
             for post in asked["posts"]]
    assert all(len(rows) == 1 for rows in drawn), drawn
    assert len({rows[0] for rows in drawn}) == 3


def test_exact_search_finds_the_largest_cosines_best_first() -> None:
    """The truth recall is measured against: exact search's K nearest are the K largest
    cosines, best first (a full sort says which)."""
    vectors = unit_vectors(2000, 8, 0)
    queries = unit_vectors(20, 8, 1)
    expected = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :100]
    np.testing.assert_array_equal(exact_nearest(vectors, queries, 100), expected)


def test_measure_on_a_bundle_reports_recall_of_its_posts(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    from nlp.generation.loading import load_generator

    _, hnsw = measure(0, 0, 4, 3, 0, str(tiny_bundle), str(_corpus(tmp_path)))
    assert hnsw["vectors"] == len(load_generator(tiny_bundle).candidates.index)
    # a graph of a few hundred vectors searched with ef 100 visits them all: exact
    assert hnsw["recall_posts"] == 1.0 and "recall_random" not in hnsw


def test_measure_gives_a_row_for_each_ef_on_one_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    from nlp.retrieval.dense import VectorIndex

    built: list[int] = []
    build = VectorIndex.build

    def counted(*args: Any, **kwargs: Any) -> VectorIndex:
        built.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(VectorIndex, "build", counted)
    _, *graphs = measure(2000, 16, 20, 5, 0, efs=(5, 2000))
    assert len(built) == 1  # built once, searched with each ef
    assert [row["ef"] for row in graphs] == [5, 2000]
    # with every vector a candidate the graph finds (nearly) what exact search finds
    assert graphs[1]["recall_planted"] > 0.99 and graphs[1]["recall_random"] > 0.99
    assert graphs[0]["recall_random"] < graphs[1]["recall_random"]
