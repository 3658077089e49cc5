"""Choosing the MMI re-ranking's weights by Hits@1 (`nlp.tuning.rerank_weights`), and the
chat candidates, bundle settings and summaries that carry the chosen weights."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import describe_options
from nlp.generation.decode_settings import (
    DEFAULT_RERANK_WEIGHTS,
    RERANK_WEIGHTS,
    DecodeSettings,
    default_decode_options,
)
from nlp.tuning.rerank_weights import RERANK_GRIDS, choose_rerank_weights
from nlp.tuning.search import chat_candidates

POSTS, K = 10, 4
WIN = np.tile([1.0, 0.0, 0.0, 0.0], (POSTS, 1))  # the true reply first on every post: Hits 1
LOSE = np.tile([0.0, 1.0, 0.0, 0.0], (POSTS, 1))  # a distractor first on every post: Hits 0


def test_the_weights_with_the_best_hits_are_chosen_per_rerank() -> None:
    """A scripted table: anti-LM wins only at lambda 0.7 on every token, and wins half the
    posts at lambda 1 there; bidi wins at lambda 2. Every grid weight is tried."""
    seen: list[DecodeOptions] = []

    def table(options: DecodeOptions) -> np.ndarray:
        seen.append(options)
        assert options.mmi_per_token  # the score Hits compares is per reply token
        if options.rerank == "mmi-antilm" and options.mmi_gamma == 0:
            if options.mmi_lambda == 0.7:
                return WIN
            if options.mmi_lambda == 1.0:
                return np.vstack([WIN[: POSTS // 2], LOSE[POSTS // 2 :]])
        if options.rerank == "mmi-bidi" and options.mmi_lambda == 2.0:
            return WIN
        return LOSE

    chosen, trials = choose_rerank_weights(table, ["mmi-antilm", "mmi-bidi"])
    assert chosen == {
        "mmi-antilm": {"mmi_lambda": 0.7, "mmi_gamma": 0},
        "mmi-bidi": {"mmi_lambda": 2.0, "mmi_gamma": 0},
    }
    assert len(seen) == len(trials) == len(RERANK_GRIDS["mmi-antilm"]) + len(
        RERANK_GRIDS["mmi-bidi"]
    )
    assert {trial.hits for trial in trials} == {0.0, 0.5, 1.0}
    only_antilm, _ = choose_rerank_weights(table, ["mmi-antilm"])
    assert set(only_antilm) == {"mmi-antilm"}  # a model with an LM only


def test_a_tie_keeps_the_default_weights() -> None:
    chosen, _ = choose_rerank_weights(lambda options: WIN, list(RERANK_GRIDS))
    assert chosen == DEFAULT_RERANK_WEIGHTS
    for rerank, grid in RERANK_GRIDS.items():
        assert grid[0] == DEFAULT_RERANK_WEIGHTS[rerank]
        assert len({tuple(sorted(w.items())) for w in grid}) == len(grid)  # none tried twice


def test_chat_candidates_rerank_per_token_with_the_chosen_weights() -> None:
    chosen = {"mmi-antilm": {"mmi_lambda": 1.0, "mmi_gamma": 0}}
    candidates = chat_candidates(["lm", "reverse"], chosen)
    reranking = {name: options for name, options in candidates.items() if options.rerank != "none"}
    assert set(reranking) == {
        "MMI anti-LM", "sample-and-rerank, MMI anti-LM", "MMI bidi", "sample-and-rerank, MMI bidi"
    }
    for name, options in reranking.items():
        assert options.mmi_per_token and options.n_best == 8
        weights = chosen.get(options.rerank, DEFAULT_RERANK_WEIGHTS[options.rerank])
        assert (options.mmi_lambda, options.mmi_gamma) == (
            weights["mmi_lambda"], weights["mmi_gamma"]
        ), name
    assert reranking["sample-and-rerank, MMI bidi"].strategy == "sample"
    only_lm = chat_candidates(["lm"], chosen)
    assert {o.rerank for o in only_lm.values()} == {"none", "mmi-antilm"}
    assert all(o.rerank == "none" for o in chat_candidates().values())


def test_bundle_settings_give_each_rerank_its_chosen_or_default_weights() -> None:
    sampling = default_decode_options("chat")
    tuned = DecodeSettings(
        sampling, "tuned", {RERANK_WEIGHTS: {"mmi-bidi": {"mmi_lambda": 8.0, "mmi_gamma": 0}}}
    )
    bidi = tuned.rerank_options("mmi-bidi")
    assert (bidi.rerank, bidi.mmi_lambda, bidi.mmi_per_token) == ("mmi-bidi", 8.0, True)
    antilm = tuned.rerank_options("mmi-antilm")  # none chosen: the defaults
    assert (antilm.mmi_lambda, antilm.mmi_gamma) == (0.3, 5)
    reranking = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.9, mmi_gamma=2)
    assert DecodeSettings(reranking, "flags").rerank_options("mmi-antilm") == reranking
    with pytest.raises(ValueError, match="unknown re-ranking 'mmi'"):
        tuned.rerank_options("mmi")



def test_picking_a_re_ranking_by_hand_takes_its_tuned_weights() -> None:
    """`--rerank mmi-bidi` (the CLI, HTTP `decoding`, `Model.options`) merged the flag over
    the bundle's options: the decoder's default weights, not those Hits chose (which
    `evaluate --metric hits` scored it with); a weight given by hand still wins."""
    import argparse

    from nlp.generation.decode_args import add_decode_arguments, resolve_decoding

    tuned = DecodeSettings(default_decode_options("chat"), "tuned",
                           {RERANK_WEIGHTS: {"mmi-bidi": {"mmi_lambda": 8.0, "mmi_gamma": 0}}})
    parser = argparse.ArgumentParser()
    add_decode_arguments(parser)
    chosen = resolve_decoding(parser.parse_args(["--rerank", "mmi-bidi"]), tuned).options
    assert (chosen.rerank, chosen.mmi_lambda, chosen.mmi_per_token) == ("mmi-bidi", 8.0, True)
    given = resolve_decoding(parser.parse_args(["--rerank", "mmi-bidi", "--mmi-lambda", "2"]),
                             tuned).options
    assert given.mmi_lambda == 2.0
    assert tuned.base_for({"rerank": "mmi-bidi"}).mmi_lambda == 8.0


def test_a_decoding_summary_names_the_reranking_and_its_weights() -> None:
    options = DecodeOptions(
        strategy="sample", n_best=8, top_p=0.9, rerank="mmi-antilm", mmi_lambda=1.0,
        mmi_gamma=0, mmi_per_token=True,
    )
    assert describe_options(options).endswith("n_best 8, mmi-antilm lambda 1 gamma 0 per token")
    bidi = DecodeOptions(n_best=5, rerank="mmi-bidi", mmi_lambda=8.0, length_bonus=0.5)
    assert describe_options(bidi).endswith("mmi-bidi lambda 8, length_bonus 0.5")
    assert "mmi" not in describe_options(DecodeOptions())
    # without generated replies the decoder's settings do not matter: not shown
    retrieved = DecodeOptions(retrieve=10, generated=False, rerank="dual-encoder")
    assert describe_options(retrieved) == (
        "10 retrieved replies only (none generated), ranked by dual-encoder")
    # ... unless the model refines what it retrieves: its decoder writes every reply
    from nlp.generation.reply_choice import ModelReads

    assert describe_options(DecodeOptions(rerank="likelihood", retrieve=10,
                                          fallback_threshold=0.4)).endswith("fallback below 0.4")
    refining = describe_options(retrieved, ModelReads(refines=True))
    assert "none generated" not in refining and refining.startswith("beam")


def test_weights_stay_default_when_replies_differ_only_in_capitals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Twenty replies, ten once a lowercasing model writes them: too few for Hits@1/20, so
    the tuner keeps the default weights instead of failing in the draw."""
    from nlp.corpus.records import Pair
    from nlp.generation.codec import TextCodec
    from nlp.tuning.command import _hits_weights
    from nlp.util.config import ExperimentConfig

    words = ["red", "blue", "green", "grey", "pink", "gold", "black", "white", "tea", "rain"]
    pairs = [Pair(f"say {w}", reply) for w in words for reply in (w, w.capitalize())]

    class CodecOnly:
        def __init__(self) -> None:
            self.codec = TextCodec.fit(ExperimentConfig(), pairs)
            self.companions = {"lm": object()}

    assert _hits_weights(CodecOnly(), pairs, 8) is None  # type: ignore[arg-type]
    assert "needs 20 different validation replies" in capsys.readouterr().err


def test_with_an_index_only_retrieved_replies_compete() -> None:
    """A model with an index sends a retrieved reply where it fits and its own elsewhere,
    the retrieved ones ranked by the ranker Hits chose or, where its index keeps the posts,
    by the sentence encoder alone (it reads the posts); a model without one still chooses
    among decodings."""
    with_index = chat_candidates(["lm"], None, "dual-encoder")
    assert list(with_index) == ["retrieved or generated, dual-encoder"]
    [options] = with_index.values()
    assert options.rerank == "dual-encoder" and options.retrieve == 10
    assert options.generated and options.retrieved_threshold > 0
    keeping_posts = chat_candidates(["lm"], None, "dual-encoder", retrieval=True)
    assert list(keeping_posts) == ["retrieved or generated, sentence-encoder"]
    assert [o.rerank for o in keeping_posts.values()] == ["sentence-encoder"]
    assert all(o.retrieve == 10 and o.generated for o in keeping_posts.values())
    assert not any(n.startswith("retrieved") for n in chat_candidates())  # no index


def test_fused_scores_add_the_weighted_bm25_share_of_the_best_candidate() -> None:
    """By hand: BM25 [0, 2, 4] over the best (4) is [0, .5, 1]; a post whose candidates share
    no word with it keeps its cosines; the Hits table of the fused re-ranking is the same
    arithmetic on the dual-encoder and BM25 tables, and it is offered for weights."""
    from nlp.generation.rankers import fused
    from nlp.generation.reply_scores import CandidateScores

    cosines = np.array([[0.5, 0.2, 0.1], [0.3, 0.2, 0.1]])
    bm25 = np.array([[0.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    assert fused(cosines, bm25, 1.0) == pytest.approx(np.array([[0.5, 0.7, 1.1], [0.3, 0.2, 0.1]]))
    assert fused(cosines, bm25, 0.2)[0] == pytest.approx([0.5, 0.3, 0.3])
    scored = CandidateScores(2, 3, np.zeros(6), np.ones(6), {},
                             {"dual-encoder": cosines, "bm25": bm25})
    assert scored.reranks == ["dual-encoder+bm25"]
    table = scored.table(DecodeOptions(rerank="dual-encoder+bm25", bm25_weight=1.0))
    assert table == pytest.approx(fused(cosines, bm25, 1.0))
    chosen, trials = choose_rerank_weights(scored.table, scored.reranks)
    assert {t.rerank for t in trials} == {"dual-encoder+bm25"}
    # only a weight under 0.4 keeps post 0's true reply (column 0) first
    assert chosen["dual-encoder+bm25"] == {"bm25_weight": 0.25}
    only_encoder = CandidateScores(2, 3, np.zeros(6), np.ones(6), {}, {"dual-encoder": cosines})
    assert only_encoder.reranks == []
