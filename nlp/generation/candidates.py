"""Reply candidates beyond the decoder's, and the rankers that choose among all of them.

Why one module: a chat reply is chosen from the union of what the decoder wrote (its n-best
list or samples) and what people wrote to the training posts nearest the message (BM25,
`nlp.retrieval`), and every ranker must score both kinds on one scale:

- none: the chat model's log-probability of the reply: the decoder's own score for what it
  wrote, or, when retrieved replies compete (`retrieve`), every candidate's teacher-forced
  sum (the decoder's score is penalised for length and coverage, a retrieved reply's is not);
- likelihood: that log-probability per reply token (end token included), teacher-forced for
  every candidate, as Hits@1 scores (`nlp.generation.reply_scores`);
- mmi-antilm / mmi-bidi: MMI with a companion model (`nlp.generation.mmi`), on the model
  score that `none` uses;
- dual-encoder: the bundle's dual encoder (`nlp.ranking`), as the log-probability that a
  candidate is the reply among the input's candidates: log softmax(scale x cosine), in the
  same units (nats) as the others, so the bot's reply penalties (`nlp.chat.rerank`) weigh
  the same against every ranker;
- retrieval: the retrieved replies in the order of how well the post each answered matches
  the message (BM25, the index's own score, computed for every candidate the same way),
  the decoder's candidates after them: information retrieval's short-text conversation
  baseline (Ji et al. 2014, "An Information Retrieval Approach to Short Text Conversation").
  Why a ranker that never reads the reply: people rated the replies it picks from a pool
  sensible far more often than the dual encoder's picks from the same pool (docs/BENCHMARKS.md
  "Rated sense"). The dual encoder asks whether a reply is about what the message is about,
  and among replies to posts sharing the message's words, all are; a reply written to a post
  that says what the message says was written for that sense. BM25 is read as the log-odds of
  relevance it was derived as (Robertson and Spärck Jones), so its log softmax over the
  candidates is in nats like the others.

Retrieved replies come from two searches, taken in turn (`interleaved`): BM25 over the
training posts, and the nearest reply vectors to the message's dual-encoder vector
(`nlp.retrieval.dense`, when the bundle holds them), which finds replies that fit by meaning
in other words than the message's.

Retrieve-and-refine models (`data.retrieve_refine`) read the message with the reply of its
nearest training post after a separator (`nlp.retrieval.refine`); `drafts` finds that reply.
Everything here is loaded from the chat bundle: its index (`INDEX_DIR`) and dual encoder
(`DUAL_ENCODER_DIR`), lazily, so a headline model or a plain chat model pays nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any, Protocol

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.decoding.options import RETRIEVAL
from nlp.generation.bundle import Bundle
from nlp.generation.codec import TextCodec
from nlp.generation.mmi import COMPANION_KIND, CompanionScorer, mmi_score
from nlp.generation.retrieved_fit import fit_calibration_for, retrieved_fit
from nlp.generation.stage_clock import StageClock
from nlp.generation.text_generator import Generation
from nlp.metrics.calibration import Calibration
from nlp.retrieval import INDEX_DIR, ReplyIndex, Retrieved, message_tokens, repeats_a_turn
from nlp.retrieval.dense import VECTORS_FILE, VectorIndex
from nlp.retrieval.refine import refined_source
from nlp.tokenizers.specials import UNK_ID


class Companion(Protocol):
    """What MMI re-ranking needs (`nlp.generation.mmi.CompanionScorer`, or a scripted one in
    tests)."""

    kind: str  # "lm" | "reverse"

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]: ...


def ranking_ids(codec: TextCodec, text: str) -> list[int]:
    """`text` as the dual encoder reads it: the chat model's tokens (normalised, masked,
    tokenized, not cut) looked up in its vocabulary, a word outside it as `UNK_ID`. One
    definition for training it (`nlp.training.reply_index`) and ranking with it."""
    return token_ranking_ids(codec, codec.text_tokens(text))


def token_ranking_ids(codec: TextCodec, tokens: Sequence[str]) -> list[int]:
    """`ranking_ids` of text already tokenized by `codec.text_tokens`."""
    return [i if i < len(codec.vocab) else UNK_ID for i in codec.vocab.encode(tokens)]


def interleaved(
    first: Sequence[Retrieved], second: Sequence[Retrieved], k: int
) -> list[Retrieved]:
    """Up to `k` retrieved replies taken from the two lists in turn (each best first),
    `first`'s best first, a row (a training pair) already taken skipped, the longer list
    filling in when the other runs out. Why in turn and not by score: a BM25 score and a
    cosine share no scale, and the ranker that scores every candidate alike comes next; why
    `k` in all: the ranking's cost (a teacher-forced pass per candidate) stays what
    `retrieve=K` asked for."""
    taken: dict[int, Retrieved] = {}
    for pair in zip_longest(first, second):
        for hit in pair:
            if hit is not None and len(taken) < k:
                taken.setdefault(hit.row, hit)
    return list(taken.values())


FUSED = "dual-encoder+bm25"


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


class Candidates:
    """The retrieval index and the rankers of one chat bundle."""

    def __init__(
        self, bundle: Bundle, companions: dict[str, Companion], clock: StageClock | None = None
    ) -> None:
        self.bundle = bundle
        self.companions = companions
        self.clock = clock or StageClock()
        self._index: ReplyIndex | None = None
        self._vectors: VectorIndex | None = None
        self._dual_encoder: Any = None
        self._forward: CompanionScorer | None = None

    @property
    def index(self) -> ReplyIndex:
        """The bundle's retrieval index (`s2s train --task chat` builds it, `s2s index`
        rebuilds it); an error saying so when it has none."""
        if self._index is None:
            directory = self.bundle.part(INDEX_DIR)
            if directory is None:
                raise ValueError(
                    f"{self.bundle.path}: no retrieval index in the bundle; build one with "
                    f"`s2s index --model {self.bundle.path} --corpus TRAINING-CORPUS`"
                )
            self._index = ReplyIndex.load(directory)
        return self._index

    @property
    def has_index(self) -> bool:
        return self.bundle.part(INDEX_DIR) is not None

    @property
    def vectors(self) -> VectorIndex | None:
        """The reply vectors of the bundle's index (`nlp.retrieval.dense`), None when it has
        none (built with `retrieval.dense_index=false`, or without a dual encoder)."""
        directory = self.bundle.part(INDEX_DIR)
        if (self._vectors is None and directory is not None and self.has_dual_encoder
                and self.bundle.part(f"{INDEX_DIR}/{VECTORS_FILE}") is not None):
            self._vectors = VectorIndex.load(directory, rows=len(self.index))
        return self._vectors

    @property
    def dual_encoder(self) -> Any:
        """The bundle's dual encoder (`nlp.ranking.DualEncoder`)."""
        if self._dual_encoder is None:
            from nlp.ranking import DUAL_ENCODER_DIR, DualEncoder

            directory = self.bundle.part(DUAL_ENCODER_DIR)
            if directory is None:
                raise ValueError(
                    f"{self.bundle.path}: rerank=dual-encoder, but the bundle has no dual "
                    f"encoder; train one with `s2s index --model {self.bundle.path} --corpus "
                    "TRAINING-CORPUS`"
                )
            self._dual_encoder = DualEncoder.load(directory)
        return self._dual_encoder

    @property
    def has_dual_encoder(self) -> bool:
        from nlp.ranking import DUAL_ENCODER_DIR

        return self.bundle.part(DUAL_ENCODER_DIR) is not None

    @property
    def forward(self) -> CompanionScorer:
        """Teacher-forced scores by the chat model itself."""
        if self._forward is None:
            self._forward = CompanionScorer(self.bundle)
        return self._forward

    def query_tokens(self, text: str) -> list[str]:
        """What the index is searched with: the message as the model reads it, without the
        earlier turns joined before it (`nlp.retrieval.turns`: they are the ranker's)."""
        return message_tokens(self.bundle.codec.text_tokens(text),
                              self.bundle.config.data.turn_separator)

    def retrieve(self, texts: Sequence[str], k: int) -> list[list[Retrieved]]:
        """Up to `k` training replies for each text: those of the posts BM25 finds nearest
        it and, where the bundle holds reply vectors, those nearest its post vector, taken
        in turn (`interleaved`)."""
        queries = [self.query_tokens(text) for text in texts]
        lexical = self.index.search(queries, k)
        vectors = self.vectors
        if vectors is None or k <= 0:
            return lexical
        return [interleaved(words, meaning, k) for words, meaning
                in zip(lexical, self._nearest(vectors, queries, k), strict=True)]

    def _nearest(
        self, vectors: VectorIndex, queries: Sequence[Sequence[str]], k: int
    ) -> list[list[Retrieved]]:
        """For each query (the model's tokens), the `k` replies whose vectors are nearest
        its dual-encoder post vector, scored by their cosine; none for a query without
        tokens (BM25 finds none for it either)."""
        found: list[list[Retrieved]] = [[] for _ in queries]
        used = [i for i, query in enumerate(queries) if query]
        if not used:
            return found
        codec, index = self.bundle.codec, self.index
        posts = self.dual_encoder.post_vectors(
            [token_ranking_ids(codec, queries[i]) for i in used])
        rows, cosines = vectors.search(posts, k)
        for i, row_list, cosine_list in zip(used, rows.tolist(), cosines.tolist(), strict=True):
            found[i] = [index.hit(row, cosine)
                        for row, cosine in zip(row_list, cosine_list, strict=True)]
        return found

    def drafts(self, texts: Sequence[str]) -> list[Retrieved | None]:
        """Retrieve-and-refine: the one retrieved reply each text is read with: BM25's
        nearest, as in the refine model's training data (`nlp.training.reply_index`)."""
        hits = self.index.search([self.query_tokens(text) for text in texts], 1)
        return [found[0] if found else None for found in hits]

    def model_inputs(self, texts: Sequence[str]) -> tuple[list[str], list[Retrieved | None]]:
        """What the chat model reads for each text, and the draft it reads it with (None
        without one): the text itself, or for a retrieve-and-refine model the text, the
        separator and its draft (`nlp.retrieval.refine`). The one definition for decoding
        and for every teacher-forced score (loss, accuracy, Hits, reply scores): a refine
        model scored on the bare text would be scored on an input it never saw."""
        data = self.bundle.config.data
        if not data.retrieve_refine:
            return list(texts), [None] * len(texts)
        with self.clock.stage("retrieve"):
            drafts = self.drafts(texts)
        inputs = [refined_source(text, draft.reply if draft else "", data.refine_separator)
                  for text, draft in zip(texts, drafts, strict=True)]
        return inputs, drafts

    def model_pairs(self, pairs: Sequence[Pair]) -> list[Pair]:
        """`pairs` with each source as the model reads it (`model_inputs`)."""
        inputs, _ = self.model_inputs([pair.source for pair in pairs])
        return [dataclasses.replace(pair, source=source)
                for pair, source in zip(pairs, inputs, strict=True)]

    def retrieved(self, text: str, hits: Sequence[Retrieved]) -> list[Generation]:
        """Retrieved replies as candidates (scored by `rank`), but none that only repeats a
        turn of the conversation (`repeats_a_turn`: never a sensible reply); no attention:
        no decoder wrote them."""
        codec = self.bundle.codec
        source = codec.source(text)
        post = codec.text_tokens(text)
        separator = self.bundle.config.data.turn_separator
        query = self.query_tokens(text)
        settings = self.bundle.decoding
        calibration = fit_calibration_for(text, settings.details if settings else None)
        out = []
        for hit in hits:
            tokens = codec.text_tokens(hit.reply)
            if repeats_a_turn(tokens, post, separator):
                continue
            similarity = self.index.post_similarity(query, self.query_tokens(hit.post))
            out.append(Generation(
                text=hit.reply, score=float("nan"), tokens=tokens, source_tokens=source.tokens,
                attention=np.zeros((len(tokens), len(source.tokens)), np.float32),
                slots=source.slots, provenance="retrieved", pair=hit.pair, post=hit.post,
                fit=retrieved_fit(similarity, calibration),
            ))
        return out

    def rank(
        self,
        texts: Sequence[str],
        inputs: Sequence[str],
        results: list[list[Generation]],
        options: DecodeOptions,
    ) -> list[list[Generation]]:
        """Every input's candidates scored by `options.rerank` and sorted, best first.
        `texts` are the messages, `inputs` what the chat model read (the same, or with the
        retrieve-and-refine draft)."""
        flat = [(row, g) for row, n_best in enumerate(results) for g in n_best]
        if not flat:
            return results
        rerank = options.rerank
        if rerank == RETRIEVAL:
            scores, raw = self._retrieval_scores(texts, results)
            return self._sorted(results, flat, scores, self._confidences(rerank, raw))
        if rerank in ("dual-encoder", FUSED):  # the texts only: no chat-model score needed
            scores, raw = self._dual_encoder_scores(texts, results, options)
            return self._sorted(results, flat, scores, self._confidences(rerank, raw))
        # The decoder's score carries its length and coverage penalties and a retrieved reply
        # has none: where both compete, every candidate gets the teacher-forced sum.
        teacher = [i for i, (_, g) in enumerate(flat)
                   if rerank == "likelihood" or options.retrieve or g.provenance == "retrieved"]
        forward: dict[int, np.ndarray] = {}
        if teacher:
            scored = self.forward.token_log_probs(
                [Pair(inputs[flat[i][0]], flat[i][1].text) for i in teacher]
            )
            forward = dict(zip(teacher, scored, strict=True))
        sums = [float(np.sum(forward[i])) if i in forward else g.score
                for i, (_, g) in enumerate(flat)]
        lengths = [len(forward[i]) if i in forward else len(g.tokens) + 1
                   for i, (_, g) in enumerate(flat)]
        if rerank == "none":
            scores = sums
        elif rerank == "likelihood":
            scores = [total / max(length, 1) for total, length in zip(sums, lengths, strict=True)]
        elif rerank in COMPANION_KIND:
            scores = self._mmi(texts, flat, sums, lengths, options)
        else:
            raise ValueError(f"unknown rerank {rerank!r}")
        return self._sorted(results, flat, scores, self._confidences(rerank, scores))

    def calibration(self, rerank: str) -> Calibration | None:
        """The calibration of `rerank`'s score stored in the bundle's decoding settings
        (`s2s tune-decoding` fits it), None without one."""
        settings = self.bundle.decoding
        return settings.calibration(rerank) if settings is not None else None

    def _confidences(self, rerank: str, raw: Sequence[float]) -> list[float]:
        """Each candidate's calibrated probability of being the fitting reply, from the
        score the calibration was fitted on (the Hits table's: per reply token for the
        likelihood and MMI, the cosine or the fused score for the dual encoder); NaN
        without a calibration."""
        calibration = self.calibration(rerank)
        if calibration is None:
            return [math.nan] * len(raw)
        return calibration.probability(np.asarray(raw, np.float64)).tolist()

    @staticmethod
    def _sorted(
        results: Sequence[Sequence[Generation]],
        flat: Sequence[tuple[int, Generation]],
        scores: Sequence[float],
        confidences: Sequence[float],
    ) -> list[list[Generation]]:
        """Each input's candidates with their new scores and confidences, best first."""
        ranked: list[list[Generation]] = [[] for _ in results]
        for (row, g), score, confidence in zip(flat, scores, confidences, strict=True):
            ranked[row].append(dataclasses.replace(
                g, score=float(score), confidence=float(confidence)))
        return [sorted(n_best, key=lambda g: -g.score) for n_best in ranked]

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
            raise ValueError(
                f"rerank={options.rerank} needs a companion {kind} model; none was loaded "
                f"(train one with `s2s train {'--task lm' if kind == 'lm' else '--reverse'}`)"
            )
        with self.clock.stage("companions"):
            extra = companion.token_log_probs([Pair(texts[row], g.text) for row, g in flat])
        return [mmi_score(total, scores, length, options)
                for total, scores, length in zip(sums, extra, lengths, strict=True)]

    def _retrieval_scores(
        self, texts: Sequence[str], results: Sequence[Sequence[Generation]]
    ) -> tuple[list[float], list[float]]:
        """Each candidate's log-probability among its input's candidates of its BM25 score:
        the score of the post it answered (`Generation.post`) as a document for the message,
        as the index retrieves with (`ReplyIndex.candidate_scores`), so a reply found by its
        vector ranks on the same scale as one BM25 found; 0 for a candidate answering no
        post (the decoder's), below every reply BM25 found. And those BM25 scores."""
        codec, separator = self.bundle.codec, self.bundle.config.data.turn_separator
        bm25: list[np.ndarray] = []
        for text, n_best in zip(texts, results, strict=True):
            row = np.zeros(len(n_best))
            answered = [i for i, g in enumerate(n_best) if g.post]
            if answered:
                posts = [message_tokens(codec.text_tokens(n_best[i].post), separator)
                         for i in answered]
                row[answered] = self.index.candidate_scores(self.query_tokens(text), posts)
            bm25.append(row)
        return _log_softmax_rows(bm25), [value for row in bm25 for value in row.tolist()]

    @property
    def keeps_posts(self) -> bool:
        """Whether the bundle has an index that keeps its posts' texts, which rerank=retrieval
        reads (an index built before they were kept does not)."""
        return self.has_index and self.index.posts is not None

    def check_retrieval(self) -> None:
        """Raise ValueError unless the bundle's index can rank by retrieval (`keeps_posts`);
        without an index, the error `index` raises."""
        if self.index.posts is None:
            raise ValueError(
                f"{self.bundle.path}: rerank={RETRIEVAL} ranks replies by the posts they "
                "answered, which this retrieval index does not keep (it was built before "
                f"they were); rebuild it with `s2s index --model {self.bundle.path} --corpus "
                "TRAINING-CORPUS`, or choose another --rerank")

    def _dual_encoder_scores(
        self,
        texts: Sequence[str],
        results: Sequence[Sequence[Generation]],
        options: DecodeOptions,
    ) -> tuple[list[float], list[float]]:
        """Each candidate's log-probability among its input's candidates under the dual
        encoder's softmax (its training objective), of the cosine or with the FUSED ranker
        of the cosine plus the weighted BM25 term: the order is the score's own; and that
        cosine or fused score itself, as Hits tables it (what its calibration reads)."""
        encoder = self.dual_encoder
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
                      self.index.candidate_scores(post, replies), options.bm25_weight)
                if len(row) else row
                for row, post, replies in zip(cosines, post_tokens, reply_tokens, strict=True)
            ]
        scale = float(encoder.config.scale)
        return _log_softmax_rows([scale * np.asarray(row, np.float64) for row in cosines]), [
            value for row in cosines for value in np.asarray(row, np.float64).tolist()]


def _log_softmax_rows(rows: Sequence[np.ndarray]) -> list[float]:
    """Each row's log softmax, the rows' values in one list (an empty row adds none)."""
    out: list[float] = []
    for row in rows:
        if len(row):
            shifted = np.asarray(row, np.float64) - np.max(row)
            out.extend((shifted - np.log(np.exp(shifted).sum())).tolist())
    return out
