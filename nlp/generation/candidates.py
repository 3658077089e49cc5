"""Reply candidates beyond the decoder's: the replies people wrote to the training posts
nearest the message, and what the chat model reads.

A chat reply is chosen from the union of what the decoder wrote (its n-best list or samples)
and what people wrote to the training posts nearest the message (BM25, `nlp.retrieval`); the
rankers that score both kinds alike are `nlp.generation.rankers`.

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
from typing import Any

import numpy as np

from nlp.control import controlled_source, wanted_bucket
from nlp.corpus.records import Pair
from nlp.decoding.options import RETRIEVAL, DecodeOptions, OptionError
from nlp.generation.bundle import Bundle
from nlp.generation.codec import Source, TextCodec
from nlp.generation.decode_settings import recommended_options
from nlp.generation.mmi import CompanionScorer
from nlp.generation.pmi import MarginalScorer, marginal_posts, pmi_scores
from nlp.generation.reply_choice import ModelReads, reply_choice
from nlp.generation.retrieved_fit import SENTENCE_ENCODER, gate_for, retrieved_fit
from nlp.generation.stage_clock import StageClock
from nlp.generation.text_generator import Generation
from nlp.ranking.sentence_encoder import SentenceEncoder
from nlp.retrieval import INDEX_DIR, ReplyIndex, Retrieved, message_tokens, repeats_a_turn
from nlp.retrieval.dense import POST_VECTORS, VECTORS_FILE, VectorIndex, files
from nlp.retrieval.refine import refined_source
from nlp.text.normalize import last_turn_text
from nlp.tokenizers.specials import UNK_ID


def ranking_ids(codec: TextCodec, text: str) -> list[int]:
    """`text` as the dual encoder reads it: the chat model's tokens (normalised, masked,
    tokenized, not cut) looked up in its vocabulary, a word outside it as `UNK_ID`. One
    definition for training it (`nlp.training.reply_index`) and ranking with it."""
    return token_ranking_ids(codec, codec.text_tokens(text))


def token_ranking_ids(codec: TextCodec, tokens: Sequence[str]) -> list[int]:
    """`ranking_ids` of text already tokenized by `codec.text_tokens`."""
    return [i if i < len(codec.vocab) else UNK_ID for i in codec.vocab.encode(tokens)]


def interleaved(lists: Sequence[Sequence[Retrieved]], k: int) -> list[Retrieved]:
    """Up to `k` retrieved replies taken from the lists in turn (each best first), the first
    list's best first, a row (a training pair) already taken skipped, the longer lists
    filling in when the others run out. Why in turn and not by score: a BM25 score and a
    cosine share no scale, and the ranker that scores every candidate alike comes next; why
    `k` in all: the ranking's cost (a teacher-forced pass per candidate) stays what
    `retrieve=K` asked for."""
    taken: dict[int, Retrieved] = {}
    for hits in zip_longest(*lists):
        for hit in hits:
            if hit is not None and len(taken) < k:
                taken.setdefault(hit.row, hit)
    return list(taken.values())


class Candidates:
    """The retrieval index, the dual encoder and the teacher-forced scorer of one chat
    bundle."""

    def __init__(self, bundle: Bundle, clock: StageClock | None = None) -> None:
        self.bundle = bundle
        self.clock = clock or StageClock()
        self._index: ReplyIndex | None = None
        self._vectors: VectorIndex | None = None
        self._post_vectors: VectorIndex | None = None
        self._dual_encoder: Any = None
        self._sentence_encoder: SentenceEncoder | None = None
        self._forward: CompanionScorer | None = None
        self._marginal: MarginalScorer | None = None

    @property
    def index(self) -> ReplyIndex:
        """The bundle's retrieval index (`s2s train --task chat` builds it, `s2s index`
        rebuilds it); an error saying so when it has none."""
        if self._index is None:
            directory = self.bundle.part(INDEX_DIR)
            if directory is None:
                raise OptionError(
                    f"{self.bundle.path}: no retrieval index in the bundle",
                    f"build one with `s2s index --model {self.bundle.path} --corpus "
                    "TRAINING-CORPUS`")
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
    def post_vectors(self) -> VectorIndex | None:
        """The sentence-encoder vectors of the posts in the bundle's index
        (`nlp.retrieval.dense.POST_VECTORS`), None when it has none (built with
        `retrieval.post_vectors=false`, or before there were any)."""
        graph, _, _ = files(POST_VECTORS)
        if self._post_vectors is None and self.bundle.part(f"{INDEX_DIR}/{graph}") is not None:
            directory = self.bundle.part(INDEX_DIR)
            assert directory is not None  # it holds the graph
            self._post_vectors = VectorIndex.load(directory, rows=len(self.index),
                                                  stem=POST_VECTORS)
        return self._post_vectors

    @property
    def dual_encoder(self) -> Any:
        """The bundle's dual encoder (`nlp.ranking.DualEncoder`)."""
        if self._dual_encoder is None:
            from nlp.ranking import DUAL_ENCODER_DIR, DualEncoder

            directory = self.bundle.part(DUAL_ENCODER_DIR)
            if directory is None:
                raise OptionError(
                    f"{self.bundle.path}: rerank=dual-encoder, but the bundle has no dual "
                    "encoder", f"train one with `s2s index --model {self.bundle.path} --corpus "
                    "TRAINING-CORPUS`")
            self._dual_encoder = DualEncoder.load(directory)
        return self._dual_encoder

    @property
    def sentence_encoder(self) -> SentenceEncoder:
        """The pretrained sentence encoder the retrieved-or-generated gate and
        rerank=sentence-encoder read; its weights load on first use (`MissingPackage` names
        the package to install)."""
        if self._sentence_encoder is None:
            self._sentence_encoder = SentenceEncoder()
        return self._sentence_encoder

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

    @property
    def marginal(self) -> MarginalScorer:
        """The model's own p(T) over a fixed sample of the index's training posts, as the
        model reads them (`nlp.generation.pmi`)."""
        if self._marginal is None:
            if self.index.posts is None:
                raise OptionError(
                    f"{self.bundle.path}: pmi_weight averages the model over its training "
                    "posts, which this retrieval index does not keep (it was built before "
                    "they were kept)", f"rebuild it with `s2s index --model {self.bundle.path} "
                    "--corpus TRAINING-CORPUS`")
            inputs, _ = self.model_inputs(marginal_posts(self.index.posts))
            self._marginal = MarginalScorer(self.forward, inputs)
        return self._marginal

    def by_pmi(
        self, inputs: Sequence[str], results: Sequence[Sequence[Generation]], weight: float
    ) -> list[list[Generation]]:
        """Each input's candidates (`inputs`: what the model read) sorted by their PMI with it
        per token, best first, that score their `score` (`nlp.generation.pmi`), which the
        bot's chooser and rerank=retrieval (below every retrieved reply) order them by."""
        flat = [(row, g) for row, n_best in enumerate(results) for g in n_best]
        if not flat:
            return [list(n_best) for n_best in results]
        forward = self.forward.token_log_probs([Pair(inputs[row], g.text) for row, g in flat])
        marginals = self.marginal.log_marginals([g.text for _, g in flat])
        ordered: list[list[Generation]] = [[] for _ in results]
        for (row, g), score in zip(flat, pmi_scores(forward, marginals, weight), strict=True):
            ordered[row].append(dataclasses.replace(g, score=score))
        return [sorted(n_best, key=lambda g: -g.score) for n_best in ordered]

    def decodes(self, options: DecodeOptions) -> bool:
        """Whether the decoder writes candidates under `options` (`reply_choice`: with
        generated replies on, and always for a retrieve-and-refine model)."""
        return reply_choice(options, ModelReads.of(self.bundle.config.data)).decodes

    def query_tokens(self, text: str) -> list[str]:
        """What the index is searched with: the message as the model reads it, without the
        earlier turns joined before it (`nlp.retrieval.turns`: they are the ranker's)."""
        return message_tokens(self.bundle.codec.text_tokens(text),
                              self.bundle.config.data.turn_separator)

    def retrieve(self, texts: Sequence[str], k: int) -> list[list[Retrieved]]:
        """Up to `k` training replies for each text: those of the posts BM25 finds nearest
        it and, where the bundle holds them, those of the posts whose sentence vectors are
        nearest the message's and the replies nearest its dual-encoder post vector, taken in
        turn (`interleaved`); each scored by BM25 (`with_bm25`)."""
        queries = [self.query_tokens(text) for text in texts]
        lexical = self.index.search(queries, k)
        found = [lexical]
        if k > 0 and (posts := self.post_vectors) is not None:
            found.append(self._nearest_posts(posts, texts, k))
        if k > 0 and (vectors := self.vectors) is not None:
            found.append(self._nearest(vectors, queries, k))
        if len(found) == 1:
            return lexical
        return [self.with_bm25(query, lists[0], interleaved(lists, k))
                for query, *lists in zip(queries, *found, strict=True)]

    def with_bm25(
        self, query: Sequence[str], lexical: Sequence[Retrieved], hits: Sequence[Retrieved]
    ) -> list[Retrieved]:
        """`hits` each scored by BM25 as the index retrieves with, its post a document for
        `query`: the score BM25's own hits (`lexical`) hold, and for a reply its vector found
        alone, its post's score (`ReplyIndex.candidate_scores`; 0 where the index keeps no
        posts), so that every retrieved reply ranks on the one scale rerank=retrieval reads."""
        held = {hit.row: hit.score for hit in lexical}
        alone = [i for i, hit in enumerate(hits) if hit.row not in held]
        separator = self.bundle.config.data.turn_separator
        posts = [message_tokens(self.bundle.codec.text_tokens(hits[i].post), separator)
                 for i in alone]
        found = dict(zip(alone, self.index.candidate_scores(query, posts).tolist(), strict=True))
        return [dataclasses.replace(hit, score=held[hit.row] if i not in found else found[i])
                for i, hit in enumerate(hits)]

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

    def _nearest_posts(
        self, vectors: VectorIndex, texts: Sequence[str], k: int
    ) -> list[list[Retrieved]]:
        """For each text, the replies of the `k` indexed posts whose sentence vectors are
        nearest its message's (its last turn, as the gate reads it), scored by that cosine
        (in the index's projection); none for an empty message."""
        separator = self.bundle.config.data.turn_separator
        messages = [last_turn_text(text, separator) for text in texts]
        found: list[list[Retrieved]] = [[] for _ in texts]
        used = [i for i, message in enumerate(messages) if message.strip()]
        if not used:
            return found
        rows, cosines = vectors.search(
            self.sentence_encoder.encode([messages[i] for i in used]), k)
        for i, row_list, cosine_list in zip(used, rows.tolist(), cosines.tolist(), strict=True):
            found[i] = [self.index.hit(row, cosine)
                        for row, cosine in zip(row_list, cosine_list, strict=True)]
        return found

    def drafts(self, texts: Sequence[str]) -> list[Retrieved | None]:
        """Retrieve-and-refine: the one retrieved reply each text is read with: BM25's
        nearest, as in the refine model's training data (`nlp.training.reply_index`)."""
        hits = self.index.search([self.query_tokens(text) for text in texts], 1)
        return [found[0] if found else None for found in hits]

    def model_inputs(
        self, texts: Sequence[str], specificity: float | None = None
    ) -> tuple[list[str], list[Retrieved | None]]:
        """What the chat model reads for each text, and the draft it reads it with (None
        without one): the text itself, or for a retrieve-and-refine model the text, the
        separator and its draft (`nlp.retrieval.refine`); for a model trained on
        specificity buckets, then the marker of the bucket `specificity` asks for (the decode
        option's; None: the bundle's recommended one, as teacher-forced scores read it;
        `nlp.control`). The one definition for decoding and for every teacher-forced score
        (loss, accuracy, Hits, reply scores): a refine model scored on the bare text would be
        scored on an input it never saw."""
        data = self.bundle.config.data
        inputs = list(texts)
        drafts: list[Retrieved | None] = [None] * len(texts)
        if data.retrieve_refine:
            with self.clock.stage("retrieve"):
                drafts = self.drafts(texts)
            inputs = [refined_source(text, draft.reply if draft else "", data.refine_separator)
                      for text, draft in zip(texts, drafts, strict=True)]
        if data.controls_specificity:
            settings = self.bundle.decoding
            recommended = recommended_options(settings).specificity
            wanted = recommended if specificity is None else specificity
            bucket = wanted_bucket(wanted, data.specificity_buckets)
            inputs = [controlled_source(text, bucket) for text in inputs]
        return inputs, drafts

    def model_pairs(
        self, pairs: Sequence[Pair], specificity: float | None = None
    ) -> list[Pair]:
        """`pairs` with each source as the model reads it (`model_inputs`)."""
        inputs, _ = self.model_inputs([pair.source for pair in pairs], specificity)
        return [dataclasses.replace(pair, source=source)
                for pair, source in zip(pairs, inputs, strict=True)]

    def retrieved(
        self, text: str, hits: Sequence[Retrieved], source: Source | None = None
    ) -> list[Generation]:
        """Retrieved replies as candidates, each scored by its retrieval's score (`retrieve`:
        BM25's for the post it answered) until `rank` scores them, but none that only repeats
        a turn of the conversation (`repeats_a_turn`: never a sensible reply); no attention:
        no decoder wrote them. Each is written as the model writes text (`as_output`): a
        corpus's own spacing ("Sure ." in DailyDialog) is not what a person should read.
        `text` is the message with its turns as written: what the gate's fit and
        `repeats_a_turn` read (a refine or specificity model's input adds its draft or
        marker); `source` is what the model reads for it (`model_inputs`, through the
        codec), what the replies' attention is over; without it, `text`'s."""
        codec = self.bundle.codec
        source = codec.source(text) if source is None else source
        post = codec.text_tokens(text)
        separator = self.bundle.config.data.turn_separator
        settings = self.bundle.decoding
        gate = gate_for(text, settings.details if settings else None)
        read = [(hit, *codec.tokens_and_output(hit.reply)) for hit in hits]
        kept = [(hit, tokens, written) for hit, tokens, written in read
                if not repeats_a_turn(tokens, post, separator)]
        similarities = (self.post_similarities(text, [hit.post for hit, _, _ in kept], gate.signal)
                        if gate is not None else [float("nan")] * len(kept))
        out = []
        for (hit, tokens, written), similarity in zip(kept, similarities, strict=True):
            out.append(Generation(
                text=written, score=hit.score, tokens=tokens,
                source_tokens=source.tokens,
                attention=np.zeros((len(tokens), len(source.tokens)), np.float32),
                slots=source.slots, provenance="retrieved", pair=hit.pair, post=hit.post,
                # an index built before posts were kept has none to match: no fit (the
                # message's likeness to "" is not one), so the gate sends the model's reply
                fit=retrieved_fit(similarity, gate) if hit.post else math.nan,
            ))
        return out

    def post_similarities(self, text: str, posts: Sequence[str], signal: str) -> list[float]:
        """The similarity of the message in `text` (its last turn) and each post by `signal`
        (`nlp.generation.retrieved_fit.SIGNALS`), what a gate's calibration reads."""
        if signal == SENTENCE_ENCODER:  # the last turns: as BM25 and tf-idf read them
            separator = self.bundle.config.data.turn_separator
            message = last_turn_text(text, separator)
            vectors = self.sentence_encoder.encode(
                [message, *(last_turn_text(post, separator) for post in posts)])
            return (vectors[1:] @ vectors[0]).astype(float).tolist()
        query = self.query_tokens(text)
        return [self.index.post_similarity(query, self.query_tokens(p)) for p in posts]

    @property
    def keeps_posts(self) -> bool:
        """Whether the bundle has an index that keeps its posts' texts, which rerank=retrieval
        reads (an index built before they were kept does not)."""
        return self.has_index and self.index.posts is not None

    def check_retrieval(self, rerank: str = RETRIEVAL) -> None:
        """Raise OptionError unless the bundle's index can rank by the posts replies answered
        (`keeps_posts`: `POST_RANKERS`); without an index, the error `index` raises."""
        if self.index.posts is None:
            raise OptionError(
                f"{self.bundle.path}: rerank={rerank} ranks replies by the posts they "
                "answered, which this retrieval index does not keep (it was built before "
                "they were): choose another --rerank",
                f"or rebuild it with `s2s index --model {self.bundle.path} --corpus "
                "TRAINING-CORPUS`")

