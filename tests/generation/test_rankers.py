"""The rankers of a chat reply's candidates (`nlp.generation.rankers`), on a bundle without a
model: the retrieval's order and its log softmax."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import log_softmax

from nlp.decoding import DecodeOptions
from nlp.decoding.options import RETRIEVAL
from nlp.generation.rankers import Rankers, _log_softmax_rows
from nlp.generation.stage_clock import StageClock
from nlp.retrieval import ReplyIndex
from nlp.util.config import ExperimentConfig
from tests.generation.test_candidates import PAIRS, candidates_of


def test_each_row_s_log_softmax_comes_out_in_one_list() -> None:
    rows = [np.array([1.0, 2.0, 3.0]), np.array([]), np.array([1000.0, 1000.0])]
    first = np.array([1.0, 2.0, 3.0])
    expected = (first - np.log(np.exp(first).sum())).tolist() + [np.log(0.5)] * 2
    assert _log_softmax_rows(rows) == pytest.approx(expected)  # no overflow at 1000


def test_the_retrieval_order_reads_what_retrieval_and_the_gate_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every retrieved reply holds its post's BM25 score for the message (`Retrieved.score`):
    BM25's own hits from the search, a reply the vectors found alone scored once when it is
    retrieved; and as a candidate, its fit (`Generation.fit`, the gate's reading of the
    sentence encoder's cosine of message and post). rerank=retrieval ranks by the fits (the
    log softmax of their log-odds) and asks BM25 about no post again."""
    candidates, _ = candidates_of(tmp_path, dense=True)
    codec, index = candidates.bundle.codec, candidates.index
    text = "are you there today"
    query = codec.text_tokens(text)
    (lexical,) = index.search([query], len(PAIRS))
    (found,) = candidates.retrieve([text], len(PAIRS))
    assert {hit.row for hit in found} - {hit.row for hit in lexical}  # some by meaning alone
    bm25 = index.candidate_scores(query, [codec.text_tokens(hit.post) for hit in found])
    assert [hit.score for hit in found] == pytest.approx(bm25.tolist())

    asked: list[object] = []
    scores_of = ReplyIndex.candidate_scores

    def recording(self: ReplyIndex, context: object, posts: list[list[str]]) -> np.ndarray:
        asked.append(posts)
        return scores_of(self, context, posts)  # type: ignore[arg-type]

    monkeypatch.setattr(ReplyIndex, "candidate_scores", recording)
    generations = candidates.retrieved(text, found)
    fits = np.array([g.fit for g in generations])
    assert np.all((fits > 0) & (fits < 1)) and len(set(fits.tolist())) > 1
    (ranked,) = Rankers(candidates, {}).rank(
        [text], [text], [generations], DecodeOptions(retrieve=len(PAIRS), rerank=RETRIEVAL))
    assert asked == []
    expected = dict(zip((g.text for g in generations),
                        log_softmax(np.log(fits / (1 - fits))).tolist(), strict=True))
    assert [g.score for g in ranked] == pytest.approx([expected[g.text] for g in ranked])
    assert [g.fit for g in ranked] == sorted(fits.tolist(), reverse=True)


def test_the_retrieval_order_is_the_fits_where_every_retrieved_reply_has_one() -> None:
    """By hand: fits 0.8 and 0.5 are log-odds log 4 and 0, the decoder's reply one nat
    below the least (-1); without a fit (NaN, no gate), BM25's scores and 0 for the
    decoder's, as before there were gates."""
    from nlp.generation.rankers import retrieval_values
    from nlp.generation.text_generator import Generation

    def candidate(text: str, score: float, provenance: str, fit: float) -> Generation:
        return Generation(text, score, text.split(), [], np.zeros((1, 0), np.float32),
                          provenance=provenance, fit=fit)  # type: ignore[arg-type]

    gated = [candidate("the red one", 9.0, "retrieved", 0.5),
             candidate("i know", -1.0, "generated", float("nan")),
             candidate("the blue one", 2.0, "retrieved", 0.8)]
    assert retrieval_values(gated) == pytest.approx([0.0, -1.0, np.log(4.0)])
    scores, raw = Rankers._retrieval_scores([gated])
    assert scores == pytest.approx(log_softmax(np.array([0.0, -1.0, np.log(4.0)])).tolist())
    assert raw == pytest.approx([0.0, -1.0, np.log(4.0)])
    ungated = [dataclasses.replace(g, fit=float("nan")) for g in gated]
    assert retrieval_values(ungated).tolist() == [9.0, 0.0, 2.0]
    # a fit of 1 (a saturated calibration) still ranks, above every other
    sure = [dataclasses.replace(gated[0], fit=1.0), *gated[1:]]
    assert np.all(np.isfinite(retrieval_values(sure))) and retrieval_values(sure).argmax() == 0


def test_under_the_retrieval_order_the_model_s_replies_keep_the_decoder_s_order() -> None:
    """Where the retrieved-or-generated gate sends the model's own reply, it is the one the
    decoder prefers (the beam rated), not whichever beam the bot's penalties alone pick
    among tied scores: the decoder's candidates stay below every retrieved reply, each
    lowered by how far its score falls below the best beam's."""
    from nlp.generation.text_generator import Generation

    def candidate(text: str, score: float, provenance: str) -> Generation:
        return Generation(text, score, text.split(), [], np.zeros((1, 0), np.float32),
                          provenance=provenance)  # type: ignore[arg-type]

    row = [candidate("yes", -2.0, "generated"), candidate("i know", -1.0, "generated"),
           candidate("the red one", 3.0, "retrieved"), candidate("no", -5.0, "generated")]
    scores, raw = Rankers._retrieval_scores([row])
    base = log_softmax(np.array([0.0, 0.0, 3.0, 0.0]))
    assert scores == pytest.approx([base[0] - 1.0, base[1], base[2], base[3] - 4.0])
    assert raw == [0.0, 0.0, 3.0, 0.0]
    order = [row[i].text for i in np.argsort(scores)[::-1]]
    assert order == ["the red one", "i know", "yes", "no"]


class AxisEncoder:
    """A sentence encoder whose vectors are set by hand: each text's unit vector in 2-D."""

    def __init__(self, vectors: dict[str, tuple[float, float]]) -> None:
        self.vectors = vectors
        self.batches: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        rows = np.array([self.vectors[text] for text in texts], np.float64)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_sentence_encoder_ranks_retrieved_replies_by_both_cosines_and_keeps_the_beams_below(
) -> None:
    from nlp.generation.rankers import (
        SENTENCE_ENCODER_SCALE,
        WRITTEN_BELOW,
        sentence_encoder_sums,
    )
    from nlp.generation.text_generator import Generation

    def candidate(text: str, score: float, provenance: str, post: str = "") -> Generation:
        return Generation(text, score, text.split(), [], np.zeros((1, 0), np.float32),
                          provenance=provenance, post=post)  # type: ignore[arg-type]

    # message along x; cosines with it: "near" 0.8, "far" 0, "across" -0.6, "same" 1
    encoder = AxisEncoder({"msg": (1, 0), "near": (0.8, 0.6), "far": (0, 1),
                           "across": (-0.6, 0.8), "same": (1, 0)})
    row = [candidate("yes", -2.0, "generated"),
           candidate("near", 5.0, "retrieved", post="far"),      # 0.8 + 0 = 0.8
           candidate("across", 9.0, "retrieved", post="same"),   # -0.6 + 1 = 0.4
           candidate("i know", -1.0, "generated")]
    sums = sentence_encoder_sums(encoder, "msg", row)  # type: ignore[arg-type]
    assert sums == pytest.approx([WRITTEN_BELOW, 0.8, 0.4, WRITTEN_BELOW])
    assert encoder.batches == [["msg", "near", "across", "far", "same"]]  # one batch
    assert sentence_encoder_sums(encoder, "msg", row[:1]) == pytest.approx(  # type: ignore[arg-type]
        [WRITTEN_BELOW])
    # a context model: its input and its training posts hold earlier turns, and the same
    # post with a turn before it read as another post; compared by their last turns now
    with_turns = [candidate("near", 5.0, "retrieved", post="earlier __eot__ far")]
    assert sentence_encoder_sums(encoder, "before __eot__ msg", with_turns) == pytest.approx(  # type: ignore[arg-type]
        [0.8])

    class Holder:  # what `Rankers` reads of its candidates here
        sentence_encoder = encoder
        clock = StageClock()
        bundle = SimpleNamespace(config=ExperimentConfig())

    rankers = Rankers(Holder(), {})  # type: ignore[arg-type]
    scores, raw = rankers._sentence_encoder_scores(["msg"], [row])
    base = log_softmax(SENTENCE_ENCODER_SCALE * np.array([WRITTEN_BELOW, 0.8, 0.4, WRITTEN_BELOW]))
    assert scores == pytest.approx([base[0] - 1.0, base[1], base[2], base[3]])
    assert raw == pytest.approx([WRITTEN_BELOW, 0.8, 0.4, WRITTEN_BELOW])
    order = [row[i].text for i in np.argsort(scores)[::-1]]
    assert order == ["near", "across", "i know", "yes"]  # BM25 (the scores held) would not
