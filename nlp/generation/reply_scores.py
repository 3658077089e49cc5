"""The model's and its companions' scores of each post's true reply and its distractors.

Why one module: `s2s evaluate --metric hits` reports Hits@1 of K from these scores, and
`s2s tune-decoding` chooses the MMI re-ranking's weights by the same Hits on validation posts.
The expensive part (every candidate through the chat model and each companion) runs once;
a score table for any re-ranking weights is then arithmetic (`CandidateScores.table`), so
trying a grid of weights costs no further model call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding.options import DecodeOptions
from nlp.generation.candidates import token_ranking_ids
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.generator import Generator
from nlp.generation.mmi import COMPANION_KIND, mmi_score
from nlp.generation.rankers import FUSED, fused
from nlp.metrics.hits import HitsDraw, distractors, hard_distractors


@dataclass(frozen=True)
class CandidateScores:
    """For `posts` posts and K candidates each (the true reply first, then the distractors
    `nlp.metrics.hits.distractors` drew), row-major: the model's summed log-probability of
    each candidate, its length (tokens plus the end token, as scored), and per companion kind
    ("lm", "reverse") the companion's per-token log-probabilities."""

    posts: int
    k: int
    sums: np.ndarray  # [posts * k]
    lengths: np.ndarray  # [posts * k]
    companions: dict[str, list[np.ndarray]]
    # [posts, k] tables of the rankers that are not the chat model's: "dual-encoder" (the
    # cosine of post and reply) and "bm25" (the reply's BM25 score for the post, with the
    # index's statistics), when the bundle has them
    others: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def reranks(self) -> list[str]:
        """The weighted re-rankings that can be scored: MMI where its companion was, and the
        dual encoder with BM25 where both were."""
        mmi = [name for name, kind in COMPANION_KIND.items() if kind in self.companions]
        return mmi + ([FUSED] if {"dual-encoder", "bm25"} <= set(self.others) else [])

    def table(self, options: DecodeOptions | None = None) -> np.ndarray:
        """[posts, k] scores: the model's log-likelihood per token (options None or without
        re-ranking), or the per-token MMI score of `options`' re-ranking (`mmi_score` with
        `mmi_per_token`, whatever `options` say: a sum would let short distractors win by
        being short)."""
        if options is None or options.rerank in ("none", "likelihood"):
            return (self.sums / self.lengths).reshape(self.posts, self.k)
        if options.rerank in self.others:
            return self.others[options.rerank]
        if options.rerank == FUSED:
            if not {"dual-encoder", "bm25"} <= set(self.others):
                raise ValueError(f"rerank={FUSED} needs the dual encoder and the index")
            return fused(self.others["dual-encoder"], self.others["bm25"], options.bm25_weight)
        kind = COMPANION_KIND[options.rerank]
        if kind not in self.companions:
            raise ValueError(f"rerank={options.rerank} needs the {kind} companion; none scored")
        per_token = DecodeOptions(
            rerank=options.rerank,
            mmi_lambda=options.mmi_lambda,
            mmi_gamma=options.mmi_gamma,
            mmi_per_token=True,
        )
        scores = [
            mmi_score(float(total), extra, int(length), per_token)
            for total, extra, length in zip(
                self.sums, self.companions[kind], self.lengths, strict=True
            )
        ]
        return np.asarray(scores).reshape(self.posts, self.k)


    def ranker_tables(
        self, options: DecodeOptions, settings: DecodeSettings | None
    ) -> dict[str, np.ndarray]:
        """[posts, k] per ranker: "model", the length-normalised likelihood; each MMI
        re-ranking scored, with `options`' weights when they re-rank that way, else those
        `s2s tune-decoding` chose (`settings`, the bundle's; `options` when it has none);
        and the other rankers. The tables Hits reports and the API's reply scores."""
        chosen = settings or DecodeSettings(options, "")
        tables = {"model": self.table()}
        for name in self.reranks:
            weights = options if options.rerank == name else chosen.rerank_options(name)
            tables[name] = self.table(weights)
        return tables | self.others

def score_candidates(
    generator: Generator,
    pairs: Sequence[Pair],
    draw: HitsDraw,
    batch_size: int,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    specificity: float | None = None,
) -> CandidateScores:
    """Score the true replies of the posts `draw` picks (a seeded sample across
    conversations, or all) and K-1 distractors drawn from every reply of `pairs`, by every
    ranker (`score_rows`). Replies are told apart as the model writes them
    (`TextCodec.as_output`), so no distractor is the true reply with other capitals (a forced
    tie).

    With a `deadline` (a `clock()` time) scoring stops after the first model call that ends
    past it, and the table holds the posts scored so far: the draw's order is itself a
    sample across conversations (`nlp.metrics.sampling`), so those posts are exactly the
    draw with a smaller limit. The tuner uses this so that, on a slow machine, choosing the
    ranker leaves time for choosing the decoding. `specificity`: what a model trained on
    specificity buckets is told (`score_rows`)."""
    groups = [p.group for p in pairs]
    rows, k = draw.rows(groups), draw.k
    targets = [p.target for p in pairs]
    drawn = distractor_texts(generator, pairs, rows, draw)
    per_call = max(1, 8 * batch_size // k)  # posts whose K candidates go through one call
    parts = []
    for start in range(0, len(rows), per_call):
        chunk = zip(rows[start : start + per_call], drawn[start : start + per_call], strict=True)
        posts, replies = [], []
        for i, others in chunk:
            posts.append(pairs[i].source)
            replies.append([targets[i], *others])
        parts.append(score_rows(generator, posts, replies, k, specificity))
        if deadline is not None and clock() > deadline:
            break
    if not parts:
        return score_rows(generator, [], [], k)
    return CandidateScores(
        sum(part.posts for part in parts), k,
        np.concatenate([part.sums for part in parts]),
        np.concatenate([part.lengths for part in parts]),
        {kind: [row for part in parts for row in part.companions[kind]]
         for kind in parts[0].companions},
        {name: np.concatenate([part.others[name] for part in parts])
         for name in parts[0].others},
    )


def distractor_texts(
    generator: Generator, pairs: Sequence[Pair], rows: Sequence[int], draw: HitsDraw
) -> list[list[str]]:
    """The k-1 distractors of each post of `rows`, as `draw.kind` says: drawn at random from
    the file's replies, or hard (`hard_distractors`: the conversation's other replies and
    what the bundle's BM25 index retrieves for the post, which it must have)."""
    targets = [p.target for p in pairs]
    key = generator.codec.as_output
    if draw.kind == "random":
        drawn = distractors(targets, rows, draw.k, draw.seed, key=key)
        return [[targets[j] for j in others] for others in drawn]
    if draw.kind != "hard":
        raise ValueError(f"distractors must be 'random' or 'hard', not {draw.kind!r}")
    if not generator.candidates.has_index:
        raise ValueError("hard distractors need the bundle's retrieval index (s2s index)")
    queries = [generator.candidates.query_tokens(pairs[row].source) for row in rows]
    found = generator.candidates.index.search(queries, draw.k)
    retrieved = [[hit.reply for hit in hits] for hits in found]
    return hard_distractors(
        targets, [p.group for p in pairs], rows, draw.k, draw.seed, retrieved, key=key
    )


def score_replies(generator: Generator, post: str, replies: Sequence[str]) -> CandidateScores:
    """Every ranker's scores of `replies` to one `post` (one row, K = len(replies)), by
    `score_rows`, so a reply scores here what it scores in Hits."""
    return score_rows(generator, [post], [list(replies)], len(replies))


def score_rows(
    generator: Generator,
    posts: Sequence[str],
    replies: Sequence[Sequence[str]],
    k: int,
    specificity: float | None = None,
) -> CandidateScores:
    """The one scorer of the cells of Hits and of reply scores: each post's `k` replies by
    the model (teacher-forced on the input it reads, `Candidates.model_inputs`: a
    retrieve-and-refine model's post with its draft, a specificity-controlled model's with
    the marker of `specificity`, None the bundle's), by each companion the generator has
    loaded (on the post itself, as MMI re-ranking scores), and by the bundle's dual encoder
    and BM25 index when it has them. Each cell is its candidate's own score: the same as
    scoring that (post, reply) pair alone. The model's scorer is the generator's own
    (`Candidates.forward`, compiled once)."""
    inputs, _ = generator.candidates.model_inputs(posts, specificity)
    read = [Pair(text, reply) for text, row in zip(inputs, replies, strict=True) for reply in row]
    said = [Pair(post, reply) for post, row in zip(posts, replies, strict=True) for reply in row]
    forward = generator.candidates.forward.token_log_probs(read) if read else []
    kinds = sorted(kind for kind in set(COMPANION_KIND.values()) if kind in generator.companions)
    companions = {
        kind: generator.companions[kind].token_log_probs(said) if said else [] for kind in kinds
    }
    return CandidateScores(
        len(posts), k, np.asarray([float(np.sum(row)) for row in forward]),
        np.asarray([len(row) for row in forward], dtype=np.float64), companions,
        other_rankers(generator, posts, replies) if said else {},
    )


def other_rankers(
    generator: Generator, posts: Sequence[str], replies: Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    """[posts, k] tables of the bundle's dual encoder ("dual-encoder", cosine) and BM25
    index ("bm25"), each reply scored for its post; only those the bundle has."""
    candidates = generator.candidates
    codec = generator.codec
    tables: dict[str, np.ndarray] = {}
    if not (candidates.has_dual_encoder or candidates.has_index):
        return tables
    # each distinct text tokenized once: a reply is a distractor for many posts
    tokens: dict[str, list[str]] = {}
    for text in (*posts, *(reply for row in replies for reply in row)):
        if text not in tokens:
            tokens[text] = codec.text_tokens(text)
    if candidates.has_dual_encoder:
        cosines = candidates.dual_encoder.scores(
            [token_ranking_ids(codec, tokens[post]) for post in posts],
            [[token_ranking_ids(codec, tokens[reply]) for reply in row] for row in replies],
        )
        tables["dual-encoder"] = np.asarray(cosines, dtype=np.float64)
    if candidates.has_index:
        index = candidates.index
        tables["bm25"] = np.asarray([
            index.candidate_scores(tokens[post], [tokens[r] for r in row])
            for post, row in zip(posts, replies, strict=True)
        ])
    return tables
