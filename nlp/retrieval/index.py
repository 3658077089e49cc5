"""BM25 retrieval of replies: given a context, the replies of the training posts nearest it.

Why retrieval beside a generator: a chat model's own replies rarely fit the message (its
Hits@1 of 20 is near the published attention seq2seq baseline's, while retrieval systems
reach four times that), and a retrieved reply is a sentence a person wrote. The index holds
a chat model's training pairs, its posts indexed in the model's own tokens (so the same
normalising, lowercasing and segmentation decide what matches), and is saved in the model
bundle (`INDEX_DIR`), checksummed like every other file.

BM25 itself is `bm25s` (a well-kept library over scipy sparse matrices: it indexes and
queries a quarter of a million short posts in seconds, and keeps only the non-zero scores,
so memory grows with the corpus' tokens, not with posts times vocabulary). This module adds
what a reply index needs around it: the selection of each query's best posts (`_best`: bm25s'
own is slow where most scores tie at 0), the replies and the training pair each came from, one
key per post so that a pair never retrieves itself or a duplicate of its own post while the
training data is built (`search(..., skip_same_post=True)`), and the BM25 score of any
candidate reply against a context (`candidate_scores`, by `bm25s`' own formulas), which
`bm25s` cannot give for texts outside its index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

INDEX_DIR = "retrieval"  # the sub-directory of a model bundle holding the index
# one {"reply", "pair", "key", "post"} per indexed pair, in row order ("post" is the pair's
# source as written; an index saved before it was kept has none)
REPLIES_FILE = "replies.jsonl"
STATS_FILE = "stats.json"  # what candidate scoring needs beside bm25s' own files
BM25_SUBDIR = "bm25"


class RetrievalIndexError(ValueError):
    """A retrieval index that is missing or does not match its files."""


@dataclass(frozen=True)
class Retrieved:
    """One retrieved reply: its text, BM25 score, row in the index, the training pair it
    came from ("file:line", for `/why` and the API) and the post it answered there ("" for
    an index saved without its posts' texts)."""

    reply: str
    score: float
    row: int
    pair: str
    post: str = ""


def _bm25s() -> ModuleType:
    """`bm25s`, imported when an index is built or loaded. Its package sets its own logger to
    DEBUG on import, which prints a line per index built in every command; back to WARNING,
    where the project keeps other libraries' loggers (`s2s.quiet`)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def post_key(tokens: Sequence[str]) -> int:
    """One integer per distinct tokenized post: a pair and the exact duplicates of its post
    share it (the tokens are the model's, so "Hi!" and "hi !" are duplicates if the model
    reads them alike)."""
    digest = hashlib.blake2b("\x1f".join(tokens).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ReplyIndex:
    """BM25 over the tokenized posts of training pairs; answers with their replies."""

    def __init__(
        self,
        bm25: object,
        replies: list[str],
        pairs: list[str],
        keys: np.ndarray,
        average_length: float,
        posts: list[str] | None = None,
    ) -> None:
        self._bm25 = bm25
        self.replies = replies
        self.pairs = pairs
        self.keys = keys
        # The text of each row's post: what a retrieved reply answered, which the rankers
        # compare with the message (`nlp.generation.candidates`); None for an older index
        self.posts = posts
        self.average_length = average_length
        self._copies = Counter(keys.tolist())  # posts per key: how many hits a skip may drop
        scores = bm25.scores  # type: ignore[attr-defined]
        indptr = np.asarray(scores["indptr"])
        self._df = np.diff(indptr)  # posts holding each token (the CSC columns are tokens)
        self._vocab: dict[str, int] = bm25.vocab_dict  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.replies)

    @classmethod
    def build(
        cls,
        posts: Sequence[Sequence[str]],
        replies: Sequence[str],
        pairs: Sequence[str],
        post_texts: Sequence[str] | None = None,
    ) -> ReplyIndex:
        """Index `posts` (token lists) with their `replies`, the training pair each came
        from and, given them, the posts as written (`post_texts`, kept beside the replies).
        Posts with no tokens are kept as rows (they never match) so rows stay aligned with
        the pairs given."""
        bm25s = _bm25s()
        if not (len(posts) == len(replies) == len(pairs)) or (
                post_texts is not None and len(post_texts) != len(posts)):
            raise ValueError("posts, replies, pairs and post texts must have the same length")
        if not posts:
            raise ValueError("no pairs to index")
        bm25 = bm25s.BM25()
        bm25.index([list(p) for p in posts], show_progress=False)
        keys = np.asarray([post_key(p) for p in posts], np.int64)
        average = float(np.mean([len(p) for p in posts]))
        return cls(bm25, list(replies), list(pairs), keys, average,
                   None if post_texts is None else list(post_texts))

    def save(self, directory: Path) -> None:
        """Write the index into `directory` (created); a bundle checksums these files."""
        directory.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(directory / BM25_SUBDIR))  # type: ignore[attr-defined]
        with (directory / REPLIES_FILE).open("w", encoding="utf-8") as out:
            for row, (reply, pair, key) in enumerate(
                    zip(self.replies, self.pairs, self.keys.tolist(), strict=True)):
                record: dict[str, object] = {"reply": reply, "pair": pair, "key": key}
                if self.posts is not None:
                    record["post"] = self.posts[row]
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        stats = {"pairs": len(self), "average_length": self.average_length}
        (directory / STATS_FILE).write_text(json.dumps(stats) + "\n", "utf-8")

    @classmethod
    def load(cls, directory: Path) -> ReplyIndex:
        """The index saved in `directory`; the score matrix is memory-mapped, so a large
        index costs little memory until it is queried."""
        bm25s = _bm25s()
        replies_file, stats_file = directory / REPLIES_FILE, directory / STATS_FILE
        replies: list[str] = []
        pairs: list[str] = []
        keys: list[int] = []
        posts: list[str] | None = []
        try:
            stats = json.loads(stats_file.read_text("utf-8"))
            with replies_file.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    try:
                        record = json.loads(line)
                        replies.append(str(record["reply"]))
                        pairs.append(str(record["pair"]))
                        keys.append(int(record["key"]))
                        if posts is not None and "post" in record:
                            posts.append(str(record["post"]))
                        else:  # an index written before posts were kept: none of them
                            posts = None
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                        raise RetrievalIndexError(
                            f"{replies_file}:{number}: unusable record: {exc}"
                        ) from exc
            bm25 = bm25s.BM25.load(str(directory / BM25_SUBDIR), mmap=True)
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise RetrievalIndexError(f"{directory}: unusable retrieval index: {exc}") from exc
        if len(replies) != stats.get("pairs") or bm25.scores["num_docs"] != len(replies):
            raise RetrievalIndexError(
                f"{replies_file}: {len(replies)} replies, but the index holds "
                f"{bm25.scores['num_docs']} posts"
            )
        return cls(bm25, replies, pairs, np.asarray(keys, np.int64),
                   float(stats["average_length"]), posts)

    def search(
        self,
        queries: Sequence[Sequence[str]],
        k: int,
        *,
        skip_same_post: bool = False,
        all_cores: bool = False,
    ) -> list[list[Retrieved]]:
        """For each query (a token list), up to `k` replies of the posts that match it best,
        best first; posts sharing no token with the query are never returned.
        `skip_same_post`: the queries are indexed posts themselves (building training data),
        so drop every hit whose post is the query's own post or an exact duplicate of it.
        `all_cores`: spread the queries over every core (threads: the scoring and selection
        run in numpy), for building training data from a whole corpus; a message at chat
        time keeps to one."""
        if k <= 0 or not queries:
            return [[] for _ in queries]
        # with skip_same_post, as many more as the index holds copies of the query's post
        owns = [post_key(query) if skip_same_post else None for query in queries]
        depths = [k + (self._copies.get(own, 0) if own is not None else 0) for own in owns]
        if all_cores and len(queries) > 1:
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                found = list(pool.map(self._best, queries, depths))
        else:
            found = list(map(self._best, queries, depths))
        results: list[list[Retrieved]] = []
        for own, (rows, scores) in zip(owns, found, strict=True):
            hits: list[Retrieved] = []
            for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
                if len(hits) == k:
                    break
                if own is not None and int(self.keys[row]) == own:
                    continue
                hits.append(self.hit(int(row), float(score)))
            results.append(hits)
        return results

    def _best(self, query: Sequence[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the (at most) `depth` posts with the highest positive BM25 scores for
        `query`, best first (ties: the lower row first), and those scores. Why not `bm25s`'
        own `retrieve`: it selects the top rows with numpy's argpartition over every post's
        score, which is pathologically slow when most scores tie at 0, as they do for a short
        query that shares a word with few posts (a Chinese message of a few words): numpy's
        selection degrades on equal keys. Selecting among the posts that share a word costs
        what their number does; posts that share none never matched anyway."""
        ids = [self._vocab[token] for token in query
               if self._vocab.get(token, len(self._df)) < len(self._df)]
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._bm25.get_scores_from_ids(ids)  # type: ignore[attr-defined]
        rows = np.flatnonzero(scores > 0)  # in row order, which the masks below keep
        if len(rows) > depth:
            worst = np.partition(scores[rows], len(rows) - depth)[len(rows) - depth]
            above, tied = rows[scores[rows] > worst], rows[scores[rows] == worst]
            rows = np.concatenate([above, tied[: depth - len(above)]])
        rows = rows[np.lexsort((rows, -scores[rows]))]
        return rows, scores[rows]

    def hit(self, row: int, score: float) -> Retrieved:
        """Row `row` as a retrieved reply scored `score`."""
        return Retrieved(self.replies[row], score, row, self.pairs[row],
                         self.posts[row] if self.posts is not None else "")

    def candidate_scores(
        self, context: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> np.ndarray:
        """The BM25 score of each candidate reply (a token list) as a document for the query
        `context`, with the index's parameters and its posts' token statistics (document
        frequencies, average length): the lexical-overlap ranker of retrieval baselines
        (TF-IDF in Zhang et al. 2018). `bm25s` scores only the documents it indexed, so the
        score is assembled here from `bm25s`' own idf and term-frequency functions for the
        index's method, and summed as its `retrieve` sums: a query word counts each time it
        occurs, and a word the index never saw counts nothing (it has no idf there), so an
        indexed post scored here scores what retrieval gave it."""
        # Private helpers: bm25s (0.2.x) has no public way to score a document it did not
        # index (`BM25.get_scores` and `retrieve` read only the indexed matrix), and its idf
        # and term-frequency formulas are private. The pin keeps bm25s below 0.3, and
        # tests/retrieval/test_index.py checks these scores against `retrieve`'s.
        from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

        bm25 = self._bm25
        idf_of = _select_idf_scorer(bm25.idf_method)  # type: ignore[attr-defined]
        tfc_of = _select_tfc_scorer(bm25.method)  # type: ignore[attr-defined]
        total = len(self)
        weights = {  # query word -> its occurrences times its idf
            token: count * idf_of(int(self._df[self._vocab[token]]), total)
            for token, count in Counter(context).items()
            if token in self._vocab
        }
        scores = np.zeros(len(candidates))
        for index, candidate in enumerate(candidates):
            counts = Counter(t for t in candidate if t in weights)
            if not counts:
                continue
            tfc = tfc_of(
                tf_array=np.asarray(list(counts.values()), np.float64),
                l_d=len(candidate),
                l_avg=self.average_length,
                k1=bm25.k1,  # type: ignore[attr-defined]
                b=bm25.b,  # type: ignore[attr-defined]
                delta=bm25.delta,  # type: ignore[attr-defined]
            )
            scores[index] = float(np.dot([weights[t] for t in counts], tfc))
        return scores

    def post_similarity(self, query: Sequence[str], post: Sequence[str]) -> float:
        """The cosine of the query's and a post's tf-idf vectors (idf = ln(1 + N / df) over
        the indexed posts; a word the index never saw weighs as the rarest, df 1): 1 for the
        same words, 0 for none shared.

        Why not the BM25 score the search ranked by: that grows with the query's length and
        its words' rarity, so it says which post matches best but not how well. The cosine is
        on one scale for every message, which a calibrated confidence that the post's reply
        fits needs (`nlp.generation.retrieved_fit`): a near-twin of the message was answered
        with a reply that fits it; a post sharing one keyword was about something else."""
        total = len(self)

        def weights(tokens: Sequence[str]) -> dict[str, float]:
            counts = Counter(tokens)
            return {
                token: count * math.log1p(
                    total / (int(self._df[self._vocab[token]]) if token in self._vocab else 1))
                for token, count in counts.items()
            }

        a, b = weights(query), weights(post)
        shared = sum(a[t] * b[t] for t in a.keys() & b.keys())
        norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
        return shared / norm if norm > 0 else 0.0
