"""The reply-vector benchmark on a chat bundle's own vectors: every reply its index holds,
searched with validation posts' vectors, exact search's neighbours as the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.ann_index import bundle_vectors, measure

DIALOGUE = [
    ("hi, how are you?", "fine, thanks. and you?", "c1"),
    ("good. what are you doing today?", "i am going to the park.", "c1"),
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
    from nlp.generation.loading import load_generator

    replies, asked = bundle_vectors(str(tiny_bundle), str(_corpus(tmp_path)), 3, 0)
    index = load_generator(tiny_bundle).candidates.index
    assert replies.shape[0] == len(index) and set(asked) == {"posts"}
    assert asked["posts"].shape == (3, replies.shape[1])  # 3 posts drawn across conversations
    for vectors in (replies, asked["posts"]):
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_measure_on_a_bundle_reports_recall_of_its_posts(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    exact, hnsw = measure(0, 0, 4, 3, 0, str(tiny_bundle), str(_corpus(tmp_path)))
    assert exact["vectors"] == hnsw["vectors"] > 3 and exact["recall_posts"] == 1.0
    # a graph of a few hundred vectors searched with ef 100 visits them all: exact
    assert hnsw["recall_posts"] == 1.0 and "recall_random" not in hnsw


def test_measure_gives_a_row_for_each_ef_on_one_graph() -> None:
    exact, *graphs = measure(2000, 16, 20, 5, 0, efs=(5, 2000))
    assert exact["method"] == "exact (numpy)"
    assert [row["ef"] for row in graphs] == [5, 2000]
    assert len({row["build_s"] for row in graphs}) == 1  # built once, searched twice
    # with every vector a candidate the graph finds (nearly) what exact search finds
    assert graphs[1]["recall_planted"] > 0.99 and graphs[1]["recall_random"] > 0.99
    assert graphs[0]["recall_random"] < graphs[1]["recall_random"]
