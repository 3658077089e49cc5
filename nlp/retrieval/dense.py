"""Retrieval by meaning: vectors of the indexed pairs in an approximate nearest-neighbour
index, searched with the message's vector. Two kinds, each its own files beside the retrieval
index (`stem`):

- `REPLY_VECTORS`: the dual encoder's reply vectors, searched with the message's post vector
  (`retrieval.dense_index`). The dual encoder (`nlp.ranking`) was trained to put a post's
  vector near its reply's.
- `POST_VECTORS`: the pretrained sentence encoder's vectors of the posts the replies answered
  (`nlp.ranking.sentence_encoder`, `retrieval.post_vectors`), searched with the message's: the
  training posts that say what the message says, in whatever words, whose replies are the
  ones the chat's gate trusts (it reads the same cosine, `nlp.generation.retrieved_fit`).

Why beside BM25: BM25 finds the posts that share the message's words, so it misses posts
that say the same in other words and brings those whose words match in another sense.

Why approximate, and why HNSW (`hnswlib`, a well-kept C++ library with Python bindings):
exact search reads every vector per query, which at a million pairs is a gigabyte of memory
traffic a message; a hierarchical navigable small-world graph (Malkov & Yashunin 2018) visits
a few thousand of them for nearly the same neighbours (`benchmarks/ann_index.py` measures
both). Why an optional projection (`Projection`, principal components): the graph holds every
vector in memory as float32, 2 KB a post at the sentence encoder's 512 dimensions; its first
128 principal components keep the nearest posts nearly all in the first few (what only picks
candidates: their cosines are computed again in full by whoever ranks them) at a quarter of
the memory. The index's rows are the retrieval index's rows (`ReplyIndex`), so a neighbour is
a reply and its training pair there. Its files (`files`) are saved beside that index in the
bundle (`INDEX_DIR`), whose checksums are verified before `load` reads the graph: hnswlib
trusts the file it is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from nlp.retrieval.index import RetrievalIndexError

REPLY_VECTORS = "reply_vectors"  # the dual encoder's vectors of the replies
POST_VECTORS = "post_vectors"  # the sentence encoder's vectors of the posts
SPACE = "cosine"  # both rank by cosine; hnswlib normalises what it is given
# Rows a projection is fitted on: enough for 128 components of 512, and a second or two.
PROJECTION_SAMPLE = 20_000


def files(stem: str) -> tuple[str, str, str]:
    """A kind of vectors' file names: the graph and the vectors (hnswlib's own format), what
    loading needs (width, count, search settings), the projection (when there is one)."""
    return f"{stem}.hnsw", f"{stem}.json", f"{stem}.projection.npz"


VECTORS_FILE, VECTORS_SETTINGS, _ = files(REPLY_VECTORS)


@dataclass(frozen=True)
class Projection:
    """Vectors' first principal components: `(vectors - mean) @ components`, renormalised."""

    mean: np.ndarray  # [input width]
    components: np.ndarray  # [input width, width]

    @classmethod
    def fit(cls, vectors: np.ndarray, width: int, seed: int) -> Projection:
        """The first `width` principal components of (a seeded sample of) `vectors`."""
        rng = np.random.default_rng(seed)
        sample = vectors if len(vectors) <= PROJECTION_SAMPLE else vectors[
            rng.choice(len(vectors), PROJECTION_SAMPLE, replace=False)]
        mean = sample.mean(axis=0)
        _, _, directions = np.linalg.svd(sample - mean, full_matrices=False)
        return cls(mean.astype(np.float32),
                   np.ascontiguousarray(directions[:width].T, dtype=np.float32))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        projected = (vectors - self.mean) @ self.components
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        return (projected / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class GraphSettings:
    """HNSW's settings (hnswlib's names): `m` links per node and `ef_construction` candidates
    while building trade build time and memory for recall; `ef` candidates while searching
    (at least the neighbours asked for) trades query time for recall. The defaults are
    hnswlib's recommended starting point, with `ef` above its example's 50 because a query is
    one message, not a batch to hurry."""

    m: int = 16
    ef_construction: int = 200
    ef: int = 100
    seed: int = 100  # hnswlib's level draws; with one build thread the graph is repeatable


class VectorIndex:
    """Vectors of an index's rows, searched by cosine; row i is the retrieval index's row i.
    With a `projection`, the graph holds the projected vectors and queries are projected
    before the search; `width` is what a query has."""

    def __init__(self, graph: Any, width: int, count: int, settings: GraphSettings,
                 projection: Projection | None = None) -> None:
        self._graph = graph
        self.width = width
        self.count = count
        self.settings = settings
        self.projection = projection
        self._ef = settings.ef
        graph.set_ef(settings.ef)

    def __len__(self) -> int:
        return self.count

    @classmethod
    def build(
        cls, vectors: np.ndarray, settings: GraphSettings | None = None, *, threads: int = -1,
        projected_width: int = 0,
    ) -> VectorIndex:
        """An index of `vectors` ([rows, width]); row i is labelled i. `threads`: hnswlib's
        build threads (-1: every core; 1: a repeatable graph). `projected_width`: keep this
        many principal components of the vectors (0, or not fewer than they have: all)."""
        settings = settings or GraphSettings()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or not len(vectors):
            raise ValueError(f"expected a non-empty [rows, width] array, got {vectors.shape}")
        count, width = vectors.shape
        projection = None
        if 0 < projected_width < min(width, count):
            projection = Projection.fit(vectors, projected_width, settings.seed)
            vectors = projection(vectors)
        graph = hnswlib.Index(space=SPACE, dim=vectors.shape[1])
        graph.init_index(max_elements=count, ef_construction=settings.ef_construction,
                         M=settings.m, random_seed=settings.seed)
        graph.add_items(vectors, np.arange(count), num_threads=threads)
        return cls(graph, width, count, settings, projection)

    def save(self, directory: Path, stem: str = REPLY_VECTORS) -> None:
        """Write the graph, its settings and its projection into `directory` (created), in
        the files of `stem` (`files`)."""
        graph_file, settings_file, projection_file = files(stem)
        directory.mkdir(parents=True, exist_ok=True)
        self._graph.save_index(str(directory / graph_file))
        settings = {"width": self.width, "count": self.count, "space": SPACE,
                    "projected": self.projection is not None, **asdict(self.settings)}
        (directory / settings_file).write_text(json.dumps(settings) + "\n", "utf-8")
        if self.projection is not None:
            with (directory / projection_file).open("wb") as out:
                np.savez(out, mean=self.projection.mean, components=self.projection.components)

    @classmethod
    def load(cls, directory: Path, *, rows: int | None = None,
             stem: str = REPLY_VECTORS) -> VectorIndex:
        """The index saved in `directory` under `stem`. `rows`: the retrieval index's size,
        which it must match (a graph built for other rows would answer with the wrong
        replies)."""
        graph_file, settings_name, projection_file = files(stem)
        settings_file = directory / settings_name
        try:
            raw = json.loads(settings_file.read_text("utf-8"))
            width, count = int(raw.pop("width")), int(raw.pop("count"))
            if raw.pop("space") != SPACE:
                raise ValueError(f"space is not {SPACE!r}")
            projected = bool(raw.pop("projected", False))
            settings = GraphSettings(**raw)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RetrievalIndexError(f"{settings_file}: unusable: {exc}") from exc
        if rows is not None and count != rows:
            raise RetrievalIndexError(
                f"{settings_file}: {count} vectors ({stem}), but the retrieval index holds "
                f"{rows} replies"
            )
        projection = None
        if projected:
            try:
                with np.load(directory / projection_file) as saved:
                    projection = Projection(saved["mean"], saved["components"])
            except (OSError, KeyError, ValueError) as exc:
                raise RetrievalIndexError(
                    f"{directory / projection_file}: unusable: {exc}") from exc
            if projection.components.shape[0] != width:
                raise RetrievalIndexError(
                    f"{directory / projection_file}: projects {projection.components.shape[0]} "
                    f"dimensions, {settings_file} says {width}")
        graph = hnswlib.Index(
            space=SPACE, dim=projection.components.shape[1] if projection else width)
        try:
            graph.load_index(str(directory / graph_file), max_elements=count)
        except (OSError, RuntimeError) as exc:
            raise RetrievalIndexError(f"{directory / graph_file}: unusable: {exc}") from exc
        if graph.get_current_count() != count:
            raise RetrievalIndexError(
                f"{directory / graph_file}: {graph.get_current_count()} vectors, "
                f"{settings_file} says {count}"
            )
        return cls(graph, width, count, settings, projection)

    def set_ef(self, ef: int) -> None:
        """Search with `ef` candidates from now on (at least the neighbours a search asks
        for): more finds more of the true nearest for more time. The saved setting is
        unchanged; `benchmarks/ann_index.py --ef` measures the trade on one graph."""
        if ef < 1:
            raise ValueError(f"ef must be at least 1, got {ef}")
        self._ef = ef
        self._graph.set_ef(ef)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each query vector ([queries, width]), the rows of its `k` nearest vectors
        (fewer if the index holds fewer) and their cosines (in the projected space, where
        there is a projection), nearest first: int64 and float32 arrays of [queries, k]."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.width)
        if self.projection is not None:
            vectors = self.projection(vectors)
        k = min(k, self.count)
        if k <= 0 or not len(vectors):
            return np.zeros((len(vectors), 0), np.int64), np.zeros((len(vectors), 0), np.float32)
        if k > self._ef:  # hnswlib finds at most ef neighbours
            self._ef = k
            self._graph.set_ef(k)
        labels, distances = self._graph.knn_query(vectors, k=k, num_threads=1)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
