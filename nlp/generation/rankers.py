"""The rankers that choose a chat reply among its candidates, every one on one scale.

A chat reply is chosen from the union of what the decoder wrote (its n-best list or samples)
and what people wrote to the training posts nearest the message (`nlp.generation.candidates`),
and every ranker must score both kinds on one scale:

- none: the chat model's log-probability of the reply: the decoder's own score for what it
  wrote, or, when retrieved replies compete (`retrieve`) or a fallback threshold reads the
  score's calibration, every candidate's teacher-forced sum (`teacher_forced`: the
  decoder's score is penalised for length and coverage, a retrieved reply's is not);
- likelihood: that log-probability per reply token (end token included), teacher-forced for
  every candidate, as Hits@1 scores (`nlp.generation.reply_scores`);
- mmi-antilm / mmi-bidi: MMI with a companion model (`nlp.generation.mmi`), on the model
  score that `none` uses;
- dual-encoder: the bundle's dual encoder (`nlp.ranking`), as the log-probability that a
  candidate is the reply among the input's candidates: log softmax(scale x cosine), in the
  same units (nats) as the others, so the bot's reply penalties (`nlp.chat.rerank`) weigh
  the same against every ranker;
- retrieval: the retrieved replies in the order of how well the post each answered matches
  the message, the decoder's candidates after them: information retrieval's short-text
  conversation baseline (Ji et al. 2014, "An Information Retrieval Approach to Short Text
  Conversation"). Why a ranker that never reads the reply: people rated the replies it picks
  from a pool sensible far more often than the dual encoder's picks from the same pool
  (docs/BENCHMARKS.md "Rated sense"). The dual encoder asks whether a reply is about what the
  message is about, and among replies to posts sharing the message's words, all are; a reply
  written to a post that says what the message says was written for that sense. How well
  the post matches: where the message's language has a retrieved-or-generated gate
  (`nlp.generation.retrieved_fit`), each reply's fit, the gate's calibrated reading of the
  similarity it measures (the sentence encoder's cosine by default), as log-odds, so the
  reply the gate rates likeliest to make sense is the one sent, on the scale the gate
  decides on; else BM25, the index's own score, read as the log-odds of relevance it was
  derived as (Robertson and Spärck Jones). Either way its log softmax over the candidates
  is in nats like the others.
- sentence-encoder: the retrieved replies by a pretrained multilingual sentence encoder
  (`nlp.ranking.sentence_encoder`): cosine(message, reply) + cosine(message, the post the
  reply answered), the decoder's candidates after them, as under `retrieval`. Why both
  cosines: the post's says whether the reply was written for what the message says (the
  retrieval's question, asked in meaning rather than shared words), the reply's whether it
  answers it (the encoder learnt response prediction from far more conversations than the
  bundle's dual encoder). As log softmax of SENTENCE_ENCODER_SCALE x that sum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from scipy.special import log_softmax

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.decoding.options import RETRIEVAL, SENTENCE_ENCODER, OptionError
from nlp.generation.bundle import Bundle
from nlp.generation.candidates import Candidates, token_ranking_ids
from nlp.generation.confidence import confidences
from nlp.generation.mmi import COMPANION_KIND, mmi_score
from nlp.generation.text_generator import Generation
from nlp.ranking.sentence_encoder import SentenceEncoder
from nlp.text.normalize import last_turn_text
from nlp.util.config import DataConfig

# A fit of exactly 0 or 1 (a calibration's sigmoid saturated) still has finite log-odds.
FIT_FLOOR = 1e-9


class Companion(Protocol):
    """What MMI re-ranking needs (`nlp.generation.mmi.CompanionScorer`, or a scripted one in
    tests)."""

    kind: str  # "lm" | "reverse"

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]: ...


FUSED = "dual-encoder+bm25"
# The sentence-encoder ranker's log softmax reads its cosine sum times this, a temperature in
# the range the dual encoder learns for its own cosines (nats, so the bot's reply penalties
# weigh alike): a sum 0.1 higher is 2.7 times as likely.
SENTENCE_ENCODER_SCALE = 10.0
# A decoder's candidate's sum under the sentence-encoder ranker: below any two cosines' (-2)
WRITTEN_BELOW = -3.0


def fused(cosines: np.ndarray, bm25: np.ndarray, weight: float) -> np.ndarray:
    """The dual-encoder+bm25 ranker's scores of [posts, candidates]: the dual encoder's
    cosine plus `weight` times the candidate's BM25 score for the post divided by the best
    candidate's (0 where no candidate shares a word with the post).

    Why both: the dual encoder learns which replies follow which posts, but reads only the
    model's vocabulary and may have seen each pair once; BM25 rewards the rare words a reply
    shares with its post (Weibo replies often repeat them) and knows every word the
    tokenizer makes. Why scaled to the best candidate: a BM25 score grows with the post's
    length and rarity, a cosine does not, so one weight could not suit short and long posts
    alike; per post, the best candidate's overlap is 1."""
    best = np.max(bm25, axis=-1, keepdims=True)
    scaled = np.divide(bm25, best, out=np.zeros_like(bm25, dtype=np.float64), where=best > 0)
    return np.asarray(cosines, np.float64) + weight * scaled


def teacher_forced(options: DecodeOptions, candidates: Sequence[Generation]) -> bool:
    """Whether every candidate is scored by the chat model teacher-forced, else each by the
    decoder's own score. The decoder's score carries its length and coverage penalties and a
    reply no decoder wrote has none: where both compete (retrieved replies, or the true reply
    a calibration is fitted with, `nlp.tuning.calibration`), every candidate gets the
    teacher-forced sum, and so it does under a fallback threshold, whose calibration was
    fitted on those sums. The likelihood is always teacher-forced (per token)."""
    return (options.rerank == "likelihood" or options.retrieve > 0
            or options.fallback_threshold > 0
            or any(g.provenance == "retrieved" for g in candidates))


def reads_chat_model(options: DecodeOptions) -> bool:
    """Whether ranking under `options` reads the candidates with the chat model, teacher-forced
    (`teacher_forced`, and MMI under `pmi_weight`, whose candidates' scores are their PMI): what
    a request's cost charges (`nlp.serving.http.budget`). The rankers of posts and the dual
    encoder never do."""
    if options.rerank in (RETRIEVAL, SENTENCE_ENCODER, "dual-encoder", FUSED):
        return False
    return teacher_forced(options, ()) or (
        options.rerank in COMPANION_KIND and options.pmi_weight > 0)


class Rankers:
    """The rankers of one chat bundle's candidates (`Candidates`: its index, dual encoder and
    teacher-forced scorer), with the companions MMI reads."""

    def __init__(self, candidates: Candidates, companions: dict[str, Companion]) -> None:
        self.candidates = candidates
        self.companions = companions
        self.clock = candidates.clock

    @property
    def bundle(self) -> Bundle:
        return self.candidates.bundle

    def rank(
        self,
        texts: Sequence[str],
        inputs: Sequence[str],
        results: list[list[Generation]],
        options: DecodeOptions,
    ) -> list[list[Generation]]:
        """Every input's candidates scored by `options.rerank` and sorted, best first, each
        with its confidence (its raw score through the bundle's calibration,
        `nlp.generation.confidence`). `texts` are the messages, `inputs` what the chat model
        read (the same, or with the retrieve-and-refine draft)."""
        flat = [(row, g) for row, n_best in enumerate(results) for g in n_best]
        if not flat:
            return results
        scores, raw = self.scores(texts, inputs, results, options)
        sure = confidences(self.bundle, options, self.candidates.decodes(options), raw)
        ranked: list[list[Generation]] = [[] for _ in results]
        for (row, g), score, confidence in zip(flat, scores, sure, strict=True):
            ranked[row].append(dataclasses.replace(
                g, score=float(score), confidence=float(confidence)))
        return [sorted(n_best, key=lambda g: -g.score) for n_best in ranked]

    def scores(
        self,
        texts: Sequence[str],
        inputs: Sequence[str],
        results: Sequence[Sequence[Generation]],
        options: DecodeOptions,
    ) -> tuple[list[float], list[float]]:
        """Every candidate's score by `options.rerank`, the inputs' candidates one after the
        other: the score it is ranked by, and its raw score, what its calibration reads
        (the same score, or for the dual encoder the cosine or the fused score, for the
        retrieval BM25's, of which the ranking takes the log softmax)."""
        flat = [(row, g) for row, n_best in enumerate(results) for g in n_best]
        if not flat:
            return [], []
        rerank = options.rerank
        if rerank == RETRIEVAL:
            return self._retrieval_scores(results)
        if rerank == SENTENCE_ENCODER:
            return self._sentence_encoder_scores(texts, results)
        if rerank in ("dual-encoder", FUSED):  # the texts only: no chat-model score needed
            return self._dual_encoder_scores(texts, results, options)
        # MMI's forward term is the likelihood: under `pmi_weight` a written candidate's
        # score is its PMI, so the likelihood is read teacher-forced (`reads_chat_model`)
        if reads_chat_model(options) or teacher_forced(options, [g for _, g in flat]):
            forward = self.candidates.forward.token_log_probs(
                [Pair(inputs[row], g.text) for row, g in flat])
            sums = [float(np.sum(row)) for row in forward]
            lengths = [len(row) for row in forward]
        else:
            sums = [g.score for _, g in flat]
            lengths = [len(g.tokens) + 1 for _, g in flat]
        if rerank == "none":
            scores = sums
        elif rerank == "likelihood":
            scores = [total / max(length, 1) for total, length in zip(sums, lengths, strict=True)]
        elif rerank in COMPANION_KIND:
            scores = self._mmi(texts, flat, sums, lengths, options)
        else:
            raise ValueError(f"unknown rerank {rerank!r}")
        return scores, scores

    def _mmi(
        self,
        texts: Sequence[str],
        flat: Sequence[tuple[int, Generation]],
        sums: Sequence[float],
        lengths: Sequence[int],
        options: DecodeOptions,
    ) -> list[float]:
        kind = COMPANION_KIND[options.rerank]
        companion = self.companions.get(kind)
        if companion is None:
            raise OptionError(
                f"rerank={options.rerank} needs a companion {kind} model; none was loaded",
                f"train one with `s2s train {'--task lm' if kind == 'lm' else '--reverse'}`")
        with self.clock.stage("companions"):
            extra = companion.token_log_probs([Pair(texts[row], g.text) for row, g in flat])
        return [mmi_score(total, scores, length, options)
                for total, scores, length in zip(sums, extra, lengths, strict=True)]

    @staticmethod
    def _retrieval_scores(
        results: Sequence[Sequence[Generation]],
    ) -> tuple[list[float], list[float]]:
        """Each candidate's log-probability among its input's candidates of its retrieval
        score (`retrieval_values`), the decoder's candidates below every retrieved reply and
        among them in the decoder's own order: each is lowered by how far its score falls
        below the best of them (nats, as the bot's reply penalties are). Why: where the
        retrieved-or-generated gate sends the model's reply, it must be the one the decoder
        prefers, as rated; tied, the penalties alone chose among the beams. And those
        retrieval scores (the raw values)."""
        values = [retrieval_values(n_best) for n_best in results]
        ranked = _log_softmax_rows(values)
        below = [value for n_best in results for value in _below_best_written(n_best)]
        return ([score + lower for score, lower in zip(ranked, below, strict=True)],
                [value for row in values for value in row.tolist()])

    def _sentence_encoder_scores(
        self, texts: Sequence[str], results: Sequence[Sequence[Generation]]
    ) -> tuple[list[float], list[float]]:
        """Each retrieved candidate's log-probability among its input's candidates of
        SENTENCE_ENCODER_SCALE x (cosine(message, reply) + cosine(message, its post)), the
        decoder's candidates at WRITTEN_BELOW and among them in the decoder's order (as
        `_retrieval_scores` puts them); and those sums (the raw values)."""
        with self.clock.stage("sentence encoder"):
            separator = self.bundle.config.data.turn_separator
            sums = [sentence_encoder_sums(self.candidates.sentence_encoder, text, n_best,
                                          separator)
                    for text, n_best in zip(texts, results, strict=True)]
        ranked = _log_softmax_rows([SENTENCE_ENCODER_SCALE * row for row in sums])
        below = [value for n_best in results for value in _below_best_written(n_best)]
        return ([score + lower for score, lower in zip(ranked, below, strict=True)],
                [value for row in sums for value in row.tolist()])

    def _dual_encoder_scores(
        self,
        texts: Sequence[str],
        results: Sequence[Sequence[Generation]],
        options: DecodeOptions,
    ) -> tuple[list[float], list[float]]:
        """Each candidate's log-probability among its input's candidates under the dual
        encoder's softmax (its training objective), of the cosine or with the FUSED ranker
        of the cosine plus the weighted BM25 term: the order is the score's own; and that
        cosine or fused score itself (what its calibration reads)."""
        encoder = self.candidates.dual_encoder
        codec = self.bundle.codec
        post_tokens = [codec.text_tokens(text) for text in texts]
        reply_tokens = [[codec.text_tokens(g.text) for g in n_best] for n_best in results]
        cosines = encoder.scores(
            [token_ranking_ids(codec, tokens) for tokens in post_tokens],
            [[token_ranking_ids(codec, tokens) for tokens in row] for row in reply_tokens],
        )
        if options.rerank == FUSED:
            cosines = [
                fused(np.asarray(row, np.float64),
                      self.candidates.index.candidate_scores(post, replies), options.bm25_weight)
                if len(row) else row
                for row, post, replies in zip(cosines, post_tokens, reply_tokens, strict=True)
            ]
        scale = float(encoder.config.scale)
        return _log_softmax_rows([scale * np.asarray(row, np.float64) for row in cosines]), [
            value for row in cosines for value in np.asarray(row, np.float64).tolist()]



def sentence_encoder_sums(
    encoder: SentenceEncoder, message: str, candidates: Sequence[Generation],
    separator: str = DataConfig.turn_separator,
) -> np.ndarray:
    """Per candidate, cosine(message, reply) + cosine(message, the post it answered) for a
    retrieved reply, WRITTEN_BELOW for any other; one batch through the encoder. The message
    and the posts are their last turns (`separator`): a context model's input and training
    posts hold earlier turns, and the same post with one before it read as another post."""
    retrieved = [g for g in candidates if g.provenance == "retrieved"]
    if not retrieved:
        return np.full(len(candidates), WRITTEN_BELOW)
    vectors = encoder.encode([last_turn_text(message, separator), *(g.text for g in retrieved),
                              *(last_turn_text(g.post, separator) for g in retrieved)])
    cosines = vectors[1:] @ vectors[0]
    per_reply = iter((cosines[: len(retrieved)] + cosines[len(retrieved):]).tolist())
    return np.array([next(per_reply) if g.provenance == "retrieved" else WRITTEN_BELOW
                     for g in candidates], np.float64)


def retrieval_values(n_best: Sequence[Generation]) -> np.ndarray:
    """What rerank=retrieval ranks one input's candidates by (see the module): where every
    retrieved reply has a fit (`Generation.fit`, the gate's), its log-odds, and for the
    decoder's candidates one nat below the least of them (any margin keeps them below every
    retrieved reply where both compete, `either`, as BM25's 0 did); else each retrieved reply's BM25
    score (`Candidates.retrieve`: the same scale whichever search found it) and 0, below
    every reply BM25 found, for the decoder's. A retrieved reply's fit is its share of the
    two expected ratings, P(sensible) x c / (P(sensible) x c + the model's), so its
    log-odds are log P(sensible) up to a constant of the message's language: the log
    softmax over the candidates is that of P(sensible)."""
    retrieved = [g.provenance == "retrieved" for g in n_best]
    fits = np.array([g.fit for g, found in zip(n_best, retrieved, strict=True) if found])
    if len(fits) and np.all(np.isfinite(fits)):
        clipped = np.clip(fits, FIT_FLOOR, 1.0 - FIT_FLOOR)
        log_odds = np.log(clipped / (1.0 - clipped))
        odds, below = iter(log_odds.tolist()), float(log_odds.min()) - 1.0
        return np.array([next(odds) if found else below for found in retrieved], np.float64)
    return np.array([g.score if found else 0.0 for g, found in zip(n_best, retrieved,
                                                                     strict=True)], np.float64)


def _below_best_written(n_best: Sequence[Generation]) -> list[float]:
    """Per candidate, how far the decoder's score of a candidate it wrote falls below the
    best such score (0 for the best and for retrieved replies; 0 where a score is NaN)."""
    written = [g.score for g in n_best if g.provenance != "retrieved" and np.isfinite(g.score)]
    best = max(written, default=0.0)
    return [float(g.score - best) if g.provenance != "retrieved" and np.isfinite(g.score)
            else 0.0 for g in n_best]


def _log_softmax_rows(rows: Sequence[np.ndarray]) -> list[float]:
    """Each row's log softmax, the rows' values in one list (an empty row adds none)."""
    return [value for row in rows if len(row)
            for value in log_softmax(np.asarray(row, np.float64)).tolist()]
