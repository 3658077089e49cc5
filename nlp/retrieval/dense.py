"""Retrieval by meaning: the indexed replies' dual-encoder vectors in an approximate
nearest-neighbour index, searched with a post's vector.

Why beside BM25: BM25 finds the posts that share the message's words, so it misses replies
that fit by meaning in other words and brings those whose words match in another sense. The
dual encoder (`nlp.ranking`) was trained to put a post's vector near its reply's, so the
replies nearest the message's post vector are candidates BM25 cannot find.

Why approximate, and why HNSW (`hnswlib`, a well-kept C++ library with Python bindings):
exact search reads every reply vector per query, which at a million replies is a gigabyte of
memory traffic a message; a hierarchical navigable small-world graph (Malkov & Yashunin 2018)
visits a few thousand of them for nearly the same neighbours (`benchmarks/ann_index.py`
measures both). The index's rows are the retrieval index's rows (`ReplyIndex`), so a neighbour
is a reply and its training pair there. It is saved beside that index in the bundle
(`INDEX_DIR`: `VECTORS_FILE` and `VECTORS_SETTINGS`), whose checksums are verified before
`load` reads the graph: hnswlib trusts the file it is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from nlp.retrieval.index import RetrievalIndexError

VECTORS_FILE = "reply_vectors.hnsw"  # the graph and the vectors, hnswlib's own format
VECTORS_SETTINGS = "reply_vectors.json"  # what loading needs: width, count, search settings
SPACE = "cosine"  # the dual encoder ranks by cosine; hnswlib normalises what it is given


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
    """Unit vectors of replies, searched by cosine; row i is the retrieval index's row i."""

    def __init__(self, graph: Any, width: int, count: int, settings: GraphSettings) -> None:
        self._graph = graph
        self.width = width
        self.count = count
        self.settings = settings
        self._ef = settings.ef
        graph.set_ef(settings.ef)

    def __len__(self) -> int:
        return self.count

    @classmethod
    def build(
        cls, vectors: np.ndarray, settings: GraphSettings | None = None, *, threads: int = -1
    ) -> VectorIndex:
        """An index of `vectors` ([rows, width]); row i is labelled i. `threads`: hnswlib's
        build threads (-1: every core; 1: a repeatable graph)."""
        settings = settings or GraphSettings()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or not len(vectors):
            raise ValueError(f"expected a non-empty [rows, width] array, got {vectors.shape}")
        count, width = vectors.shape
        graph = hnswlib.Index(space=SPACE, dim=width)
        graph.init_index(max_elements=count, ef_construction=settings.ef_construction,
                         M=settings.m, random_seed=settings.seed)
        graph.add_items(vectors, np.arange(count), num_threads=threads)
        return cls(graph, width, count, settings)

    def save(self, directory: Path) -> None:
        """Write the graph and its settings into `directory` (created)."""
        directory.mkdir(parents=True, exist_ok=True)
        self._graph.save_index(str(directory / VECTORS_FILE))
        settings = {"width": self.width, "count": self.count, "space": SPACE,
                    **asdict(self.settings)}
        (directory / VECTORS_SETTINGS).write_text(json.dumps(settings) + "\n", "utf-8")

    @classmethod
    def load(cls, directory: Path, *, rows: int | None = None) -> VectorIndex:
        """The index saved in `directory`. `rows`: the retrieval index's size, which it must
        match (a graph built for other rows would answer with the wrong replies)."""
        settings_file = directory / VECTORS_SETTINGS
        try:
            raw = json.loads(settings_file.read_text("utf-8"))
            width, count = int(raw.pop("width")), int(raw.pop("count"))
            if raw.pop("space") != SPACE:
                raise ValueError(f"space is not {SPACE!r}")
            settings = GraphSettings(**raw)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RetrievalIndexError(f"{settings_file}: unusable: {exc}") from exc
        if rows is not None and count != rows:
            raise RetrievalIndexError(
                f"{settings_file}: {count} reply vectors, but the retrieval index holds "
                f"{rows} replies"
            )
        graph = hnswlib.Index(space=SPACE, dim=width)
        try:
            graph.load_index(str(directory / VECTORS_FILE), max_elements=count)
        except (OSError, RuntimeError) as exc:
            raise RetrievalIndexError(f"{directory / VECTORS_FILE}: unusable: {exc}") from exc
        if graph.get_current_count() != count:
            raise RetrievalIndexError(
                f"{directory / VECTORS_FILE}: {graph.get_current_count()} vectors, "
                f"{settings_file} says {count}"
            )
        return cls(graph, width, count, settings)

    def set_ef(self, ef: int) -> None:
        """Search with `ef` candidates from now on (at least the neighbours a search asks
        for): more finds more of the true nearest for more time. The saved setting is
        unchanged; `benchmarks/ann_index.py --ef` measures the trade on one graph."""
        if ef < 1:
            raise ValueError(f"ef must be at least 1, got {ef}")
        self._ef = ef
        self._graph.set_ef(ef)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each query vector ([queries, width]), the rows of its `k` nearest replies
        (fewer if the index holds fewer) and their cosines, nearest first: int64 and float32
        arrays of [queries, k]."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.width)
        k = min(k, self.count)
        if k <= 0 or not len(vectors):
            return np.zeros((len(vectors), 0), np.int64), np.zeros((len(vectors), 0), np.float32)
        if k > self._ef:  # hnswlib finds at most ef neighbours
            self._ef = k
            self._graph.set_ef(k)
        labels, distances = self._graph.knn_query(vectors, k=k, num_threads=1)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
