"""Hits@1 of K: counting, the seeded draw, and the two ends of the scale with real models
(a model that memorised its pairs scores 1.0, an untrained one about 1/K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.metrics.hits import HitsDraw, distractors, enough_replies, hits_at_1
from tests.conftest import REPO, tiny_overrides, write_jsonl


def test_hits_counts_posts_whose_true_reply_scores_highest() -> None:
    scores = np.array(
        [
            [-1.0, -2.0, -3.0],  # hit
            [-2.0, -1.0, -3.0],  # miss
            [-1.0, -1.0, -5.0],  # tied with one distractor: half a hit
            [-1.0, -1.0, -1.0],  # tied with both: a third
        ]
    )
    assert hits_at_1(scores) == pytest.approx((1 + 0 + 0.5 + 1 / 3) / 4)


def test_distractors_are_other_replies_drawn_the_same_way_for_a_seed() -> None:
    targets = ["a", "b", "a", "c", "d", "e", "f"]
    drawn = distractors(targets, range(3), k=4, seed=7)
    assert drawn == distractors(targets, range(3), k=4, seed=7)
    assert drawn != distractors(targets, range(3), k=4, seed=8)
    for index, others in enumerate(drawn):
        texts = [targets[j] for j in others]
        assert len(others) == 3 and targets[index] not in texts and len(set(texts)) == 3
    with pytest.raises(ValueError, match="at least 8 different replies"):
        distractors(targets, [0], k=8, seed=0)


# Eight replies, six different once lowercased: "Yes"/"yes"/"YES" are one reply to a
# lowercasing model.
CASED = ["Yes", "yes", "no", "YES", "sure", "fine", "maybe", "later"]


def test_distractors_differ_from_the_true_reply_and_each_other_under_the_key() -> None:
    """A lowercasing key: no post is scored against its own reply in other capitals, and no
    two of its distractors are one reply (forced ties). Every seed, every post."""
    for seed in range(40):
        drawn = distractors(CASED, range(len(CASED)), k=5, seed=seed, key=str.lower)
        for index, others in enumerate(drawn):
            forms = [CASED[j].lower() for j in others]
            assert CASED[index].lower() not in forms, (seed, index, others)
            assert len(set(forms)) == 4, (seed, index, others)


def test_enough_replies_counts_replies_as_the_key_writes_them() -> None:
    assert enough_replies(CASED, 8) and enough_replies(CASED, 6, key=str.lower)
    assert not enough_replies(CASED, 7, key=str.lower)
    with pytest.raises(ValueError, match="at least 7 different replies in the file, it has 6"):
        distractors(CASED, [0], k=7, seed=0, key=str.lower)


def _evaluate(model: Path, corpus: Path, k: int) -> float:
    from nlp.evaluation.evaluate import hits_metrics
    from nlp.generation.generator import Generator
    from nlp.training.corpus_io import CorpusSpec, load_pairs

    generator = Generator.from_bundle(model)
    pairs = load_pairs(CorpusSpec((corpus,)), generator.config.data)
    options = generator.bundle.decoding.options if generator.bundle.decoding else None
    from nlp.decoding import DecodeOptions

    figures = hits_metrics(generator, pairs, options or DecodeOptions(), 32, HitsDraw(k=k))
    return figures[f"hits@1/{k}"]


def _train(out: Path, corpus: Path, **settings: object) -> Path:
    """Every pair trained on (the validation pair is another one)."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig

    valid = write_jsonl(out.parent / "valid.jsonl", [("tell me about it", "it is nice")])
    config = ExperimentConfig().with_overrides(tiny_overrides(**settings))
    train(
        config, CorpusSpec((corpus,)), RunOptions(out, verbose=0), valid_corpus=CorpusSpec((valid,))
    )
    return out / "model"


@pytest.mark.slow
def test_a_model_that_memorised_its_pairs_scores_one(tmp_path: Path) -> None:
    words = [
        "red",
        "blue",
        "green",
        "cold",
        "warm",
        "tea",
        "rain",
        "snow",
        "moon",
        "sun",
        "fish",
        "bird",
        "tree",
        "road",
        "ship",
        "bell",
    ]
    pairs = [
        (f"tell me about {w}", f"{w} {words[(i + 5) % len(words)]} is nice")
        for i, w in enumerate(words)
    ]
    corpus = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    model = _train(
        tmp_path / "run",
        corpus,
        **{
            "model.units": 32,
            "model.embedding_dim": 16,
            "train.epochs": 60,
            "train.learning_rate": 0.02,
            "train.select_by": "last",
            "train.batch_size": 16,
        },
    )
    assert _evaluate(model, corpus, k=8) == 1.0


@pytest.mark.slow
def test_an_untrained_model_scores_about_one_in_k(tmp_path: Path) -> None:
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    model = _train(tmp_path / "run", corpus, **{"train.learning_rate": 0.0})
    hits = _evaluate(model, corpus, k=5)
    # 348 posts, chance 0.2: the standard deviation of the share is about 0.021
    assert 0.13 < hits < 0.27


@pytest.mark.parametrize("bundle", ["tiny_bundle", "tiny_headline_bundle"])
def test_each_candidate_gets_its_own_score_as_if_scored_alone(
    bundle: str, request: pytest.FixtureRequest
) -> None:
    """Hits@1's table, posts x K: cell (i, j) must be candidate j of post i scored on its own,
    its mean log-probability per token (end included), however the candidates were batched,
    padded and encoded together (the headline bundle copies: a candidate's ids depend on its
    post). The reference is training's own measure, on that pair alone: minus the mean
    teacher-forced cross-entropy `LossMeter` reports (`s2s evaluate --metric loss`)."""
    from nlp.corpus.records import Pair
    from nlp.decoding import DecodeOptions
    from nlp.evaluation.evaluate import hits_scores
    from nlp.generation.generator import Generator
    from nlp.training.corpus_io import CorpusSpec, load_pairs
    from nlp.training.prepare import examples_of
    from nlp.training.trainer import LossMeter, batching_for

    generator = Generator.from_bundle(request.getfixturevalue(bundle))
    sample = "dialogue-en.jsonl" if bundle == "tiny_bundle" else "headlines-zh.jsonl"
    pairs = load_pairs(CorpusSpec((REPO / "corpora" / sample,)))[:40]
    k, posts = 4, 5
    # batch size 2: the 5 posts go through several calls, the last one short
    draw = HitsDraw(k, seed=3, limit=posts)
    table = hits_scores(generator, pairs, DecodeOptions(), 2, draw)["model"]
    assert table.shape == (posts, k)
    targets = [p.target for p in pairs]
    rows = draw.rows([p.group for p in pairs])  # a seeded sample across conversations
    drawn = distractors(targets, rows, k, 3, key=generator.codec.as_output)
    meter = LossMeter(generator.bundle.model, batching_for(generator.bundle.config.train))
    for i, row in enumerate(rows):
        for j, target in enumerate(targets[t] for t in (row, *drawn[i])):
            (example,) = examples_of(generator.codec, [Pair(pairs[row].source, target)], workers=1)
            assert table[i, j] == pytest.approx(-meter([example]), abs=1e-5), (i, j)
    assert len({round(float(s), 6) for s in table.ravel()}) > posts  # not one score a post


def test_distinct_rows_give_each_post_one_encoder_row() -> None:
    """The K candidates of a post share its source ids: the scorer encodes each distinct
    source once and points every candidate at its row."""
    from nlp.generation.mmi import distinct_rows

    rows = [[5, 6], [5, 6], [7], [5, 6], [7], [8, 9, 10]]
    unique, owner = distinct_rows(rows)
    assert unique == [[5, 6], [7], [8, 9, 10]]
    assert owner == [0, 0, 1, 0, 1, 2]


def test_a_posts_distractors_do_not_depend_on_which_other_posts_are_scored() -> None:
    targets = [f"reply {i}" for i in range(30)]
    everyone = distractors(targets, range(30), k=5, seed=3)
    sample = [17, 2, 25]
    assert distractors(targets, sample, k=5, seed=3) == [everyone[row] for row in sample]


# --- hard distractors ---------------------------------------------------------------------


def test_hard_distractors_take_the_conversation_then_the_keyword_matches() -> None:
    from nlp.metrics.hits import hard_distractors

    targets = ["t1", "t2", "t3", "u1", "u2", "v1", "v2", "v3", "v4"]
    groups = ["a", "a", "a", "b", "b", "", "", "", ""]
    # post 0 (true reply t1), k=5: 4 distractors, at most 2 from its conversation
    [drawn] = hard_distractors(
        targets, groups, [0], 5, 0, [["T1", "r1", "T3", "r2", "r3"]], str.lower
    )
    assert set(drawn[:2]) == {"t2", "t3"}  # the conversation's other replies, seeded order
    # then BM25's matches best first, skipping the true reply and what is taken (under the key)
    assert drawn[2:] == ["r1", "r2"]


def test_hard_distractors_keep_at_most_half_from_the_conversation() -> None:
    from nlp.metrics.hits import hard_distractors

    targets = [f"c{i}" for i in range(6)] + ["x1", "x2", "x3"]
    groups = ["a"] * 6 + ["", "", ""]
    [drawn] = hard_distractors(targets, groups, [2], 5, 3, [["m1", "m2", "m3"]])
    assert len([t for t in drawn if t.startswith("c")]) == 2
    assert drawn[2:] == ["m1", "m2"]
    assert "c2" not in drawn


def test_hard_distractors_fill_up_at_random_and_stay_distinct() -> None:
    from nlp.metrics.hits import hard_distractors

    targets = ["a", "b", "c", "d", "e", "f", "g"]
    groups = [""] * 7  # no conversations
    drawn = hard_distractors(targets, groups, [0, 1], 6, 1, [[], ["a", "a"]])
    assert [len(row) for row in drawn] == [5, 5]
    assert "a" not in drawn[0] and "b" not in drawn[1]
    assert all(len(set(row)) == 5 for row in drawn)
    assert drawn[1][0] == "a"  # the one distinct match first
    assert drawn == hard_distractors(targets, groups, [0, 1], 6, 1, [[], ["a", "a"]])


def test_hits_reports_hard_distractors_beside_random_ones(tiny_bundle: Path) -> None:
    from nlp.decoding import DecodeOptions
    from nlp.evaluation.evaluate import hits_metrics
    from nlp.generation.generator import Generator
    from nlp.generation.reply_scores import distractor_texts
    from nlp.training.corpus_io import CorpusSpec, load_pairs

    generator = Generator.from_bundle(tiny_bundle)
    assert generator.candidates.has_index
    pairs = load_pairs(CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), generator.config.data)
    draw = HitsDraw(k=5, limit=20, kind="hard")
    rows = draw.rows([p.group for p in pairs])
    drawn = distractor_texts(generator, pairs, rows, draw)
    # what the index retrieves for a post (other than its own reply) is among its distractors
    tokens = generator.codec.text_tokens(pairs[rows[0]].source)
    found = [h.reply for h in generator.candidates.index.search([tokens], 5)[0]]
    others = [
        r
        for r in found
        if generator.codec.as_output(r) != generator.codec.as_output(pairs[rows[0]].target)
    ]
    assert others and others[0] == drawn[0][0]
    figures = hits_metrics(generator, pairs, DecodeOptions(), 32, HitsDraw(k=5, limit=20))
    assert 0.0 <= figures["hard hits@1/5"] <= 1.0 and "hard hits@1/5 bm25" in figures
    assert "hits@1/5 bm25" in figures
