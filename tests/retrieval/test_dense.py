"""Retrieval by meaning (nlp/retrieval/dense.py): an HNSW index of reply vectors, on vectors
small enough to check by hand, saved in a bundle like its other files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.generation.bundle import ChecksumError, bundle_part, open_bundle, save_bundle, store_part
from nlp.generation.codec import TextCodec
from nlp.retrieval import INDEX_DIR, RetrievalIndexError
from nlp.retrieval.dense import VECTORS_FILE, VECTORS_SETTINGS, GraphSettings, VectorIndex
from nlp.util.config import ExperimentConfig

# Unit vectors in a plane at these angles (degrees); a query at 10 degrees is 10, 20, 50, 90
# and 170 degrees from them, so its neighbours are rows 0, 1, 2, 3, 4 in that order, each
# with the cosine of its angle.
ANGLES = [0, 30, 60, 100, 180]


def plane(*degrees: float) -> np.ndarray:
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians), np.zeros_like(radians)], axis=1)


@pytest.fixture
def index() -> VectorIndex:
    return VectorIndex.build(plane(*ANGLES), threads=1)


def test_neighbours_are_the_nearest_by_cosine(index: VectorIndex) -> None:
    rows, cosines = index.search(plane(10, 170), 3)
    assert rows.tolist() == [[0, 1, 2], [4, 3, 2]]
    expected = [[math.cos(math.radians(a)) for a in (10, 20, 50)],
                [math.cos(math.radians(a)) for a in (10, 70, 110)]]
    assert cosines == pytest.approx(np.asarray(expected), abs=1e-5)
    # a vector's length does not matter, only its direction
    longer, _ = index.search(7.5 * plane(10), 3)
    assert longer.tolist() == [[0, 1, 2]]


def test_asking_for_more_than_it_holds_or_than_ef_returns_what_there_is() -> None:
    index = VectorIndex.build(plane(*ANGLES), GraphSettings(ef=2), threads=1)
    rows, _ = index.search(plane(10), 4)  # more than ef: the search widens to k
    assert rows.tolist() == [[0, 1, 2, 3]]
    rows, cosines = index.search(plane(10), 50)
    assert rows.tolist() == [[0, 1, 2, 3, 4]] and cosines.shape == (1, 5)
    rows, _ = index.search(plane(10), 0)
    assert rows.shape == (1, 0)


def test_set_ef_widens_the_search_and_refuses_nonsense() -> None:
    generator = np.random.default_rng(1)
    vectors = generator.normal(size=(3000, 32)).astype(np.float32)
    queries = generator.normal(size=(40, 32)).astype(np.float32)  # near nothing: the hard case
    exact = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True))
                       @ (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).T,
                       axis=1)[:, :10]
    index = VectorIndex.build(vectors, GraphSettings(m=4, ef_construction=10), threads=1)

    def recall() -> float:
        rows, _ = index.search(queries, 10)
        found = zip(rows.tolist(), exact.tolist(), strict=True)
        return sum(len(set(a) & set(b)) for a, b in found) / 400

    index.set_ef(10)
    narrow = recall()
    index.set_ef(3000)  # every vector reachable a candidate: nearly exact on a sparse graph
    wide = recall()
    assert narrow < 0.5 and wide > 0.99
    with pytest.raises(ValueError, match="at least 1"):
        index.set_ef(0)


def test_its_neighbours_are_exact_search_s_on_a_small_random_set() -> None:
    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + 0.1 * generator.normal(size=(20, 16)).astype(np.float32)
    rows, _ = VectorIndex.build(vectors, threads=1).search(queries, 5)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert rows.tolist() == exact.tolist()


def bundle_with(tmp_path: Path, index: VectorIndex) -> Path:
    """A bundle (a stand-in for the weights: nothing here loads them) whose retrieval folder
    holds `index`, stored as `s2s train` stores it."""
    config = ExperimentConfig()
    codec = TextCodec.untrained(config, [Pair("hello there", "hi")])

    class Weights:
        def save_weights(self, path: Path) -> None:
            path.write_bytes(b"weights")

    directory = tmp_path / "model"
    save_bundle(directory, config, codec, Weights())
    store_part(directory, INDEX_DIR, index.save)
    return directory


def test_it_survives_the_bundle_and_a_tampered_file_is_refused(
    index: VectorIndex, tmp_path: Path
) -> None:
    directory = bundle_with(tmp_path, index)
    files = open_bundle(directory)
    assert {f"{INDEX_DIR}/{VECTORS_FILE}", f"{INDEX_DIR}/{VECTORS_SETTINGS}"} <= set(
        files.metadata["files"])
    part = bundle_part(files.path, files.metadata, INDEX_DIR)
    assert part is not None
    loaded = VectorIndex.load(part, rows=len(ANGLES))
    queries = plane(10, 95, 170)
    assert [a.tolist() for a in loaded.search(queries, 4)] == \
        [a.tolist() for a in index.search(queries, 4)]
    with pytest.raises(RetrievalIndexError,
                       match=r"5 vectors \(reply_vectors\), but the retrieval index"):
        VectorIndex.load(part, rows=6)  # a graph of other rows than the index's
    graph = directory / INDEX_DIR / VECTORS_FILE
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=f"{VECTORS_FILE}: corrupt"):
        open_bundle(directory)


def test_a_projection_keeps_the_neighbours_of_vectors_in_fewer_dimensions(tmp_path: Path) -> None:
    """Vectors of 6 dimensions that vary in 2 (a plane through a common point): their 2
    principal components hold all they differ in, so the projected graph finds the same
    neighbours in the same order as exact search in 6 dimensions, queries are projected
    alike, and the projection is saved and read back with the graph."""
    rng = np.random.default_rng(4)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T  # two orthonormal directions
    centre = rng.normal(size=6)
    points = rng.normal(size=(40, 2))
    vectors = centre + points @ basis
    index = VectorIndex.build(vectors, threads=1, projected_width=2)
    assert index.projection is not None and index.projection.components.shape == (6, 2)
    queries = centre + rng.normal(size=(5, 2)) @ basis
    centred = (vectors - vectors.mean(0)) / np.linalg.norm(vectors - vectors.mean(0), axis=1,
                                                           keepdims=True)
    wanted = queries - vectors.mean(0)
    wanted /= np.linalg.norm(wanted, axis=1, keepdims=True)
    exact = np.argsort(-(wanted @ centred.T), axis=1)[:, :4]
    rows, cosines = index.search(queries, 4)
    assert rows.tolist() == exact.tolist()
    index.save(tmp_path, "post_vectors")
    loaded = VectorIndex.load(tmp_path, rows=40, stem="post_vectors")
    assert loaded.width == 6 and loaded.projection is not None
    again_rows, again_cosines = loaded.search(queries, 4)
    assert again_rows.tolist() == rows.tolist()
    np.testing.assert_allclose(again_cosines, cosines, rtol=1e-5)
    # as many components as the vectors have, or more: none kept, nothing projected
    assert VectorIndex.build(vectors, threads=1, projected_width=6).projection is None
