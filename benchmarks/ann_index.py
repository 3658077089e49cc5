"""Retrieval by meaning at the size of a large chat corpus: memory, build time, query time and
recall@K of the reply-vector index (`nlp.retrieval.dense.VectorIndex`, HNSW with its default
settings) beside exact search (one numpy matrix-vector product a query), each size measured
in a fresh process (peak RSS only grows).

The vectors are random unit vectors of the dual encoder's width: the costs depend on the
count and the width, not on what the vectors mean. Recall@K is the share of exact search's
K nearest that the index returns, for two kinds of query: "planted", a stored vector with
as much noise again added (cosine about 0.7 to it: a post with a reply that fits it), and
"random", a query near nothing, whose K nearest are barely nearer than the rest (the hard
case, which no structure helps). Memory is the growth of resident memory while the index
is built (hnswlib allocates it whole at the start). The machine's matmul peak is timed
before and after, as the other benchmarks do, so a busy machine shows.

With `--model` (a chat bundle with its index and dual encoder) and `--corpus` (validation
pairs), the vectors are the bundle's own instead: its dual encoder's vector of every reply its
index holds, which `retrieval.dense_index` stores, searched with the post vectors of posts
drawn across the file's conversations, as the chat searches. Recall there says what the index
misses of neighbours that exist.

    python -m benchmarks.ann_index [--sizes 250000 1000000] [--queries 200] [--ef 50 100 200]
    python -m benchmarks.ann_index --model runs/chat --corpus chat-valid.jsonl [--ef ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    RESULTS_DIR,
    format_table,
    percentile,
    run_isolated,
    write_json,
)
from benchmarks.train_throughput import matmul_peak

CHUNK = 100_000  # vectors drawn (and exact scores computed) at a time


def unit_vectors(count: int, width: int, seed: int) -> np.ndarray:
    """[count, width] float32 unit vectors, uniform on the sphere."""
    generator = np.random.default_rng(seed)
    out = np.empty((count, width), np.float32)
    for start in range(0, count, CHUNK):
        block = generator.standard_normal((min(CHUNK, count - start), width), np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def planted(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` queries each a stored vector plus a random unit vector, normalised."""
    generator = np.random.default_rng(seed)
    chosen = vectors[generator.choice(len(vectors), count, replace=False)]
    queries = chosen + unit_vectors(count, vectors.shape[1], seed + 1)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def exact_nearest(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """[queries, k] rows of the k largest cosines, best first."""
    return np.stack([_top(vectors @ query, k) for query in queries])


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.argsort(-scores[best], kind="stable")]


def bundle_vectors(model: str, corpus: str, queries: int,
                   seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The chat bundle `model`'s reply vectors (its dual encoder's, of every reply its index
    holds) and, as queries of kind "posts", the post vectors of `queries` posts of `corpus`
    drawn across its conversations (`nlp.metrics.sampling`), read as the chat reads them."""
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport
    from nlp.generation.candidates import ranking_ids, token_ranking_ids
    from nlp.generation.loading import load_generator
    from nlp.metrics.sampling import sample_rows

    generator = load_generator(model)
    candidates, codec = generator.candidates, generator.bundle.codec
    encoder = candidates.dual_encoder
    replies = encoder.reply_vectors([ranking_ids(codec, r) for r in candidates.index.replies])
    pairs = list(read_pairs(corpus, "jsonl", report=ReadReport()))
    rows = sample_rows([pair.group for pair in pairs], queries, seed)
    posts = encoder.post_vectors(
        [token_ranking_ids(codec, candidates.query_tokens(pairs[row].source)) for row in rows])
    return _unit(replies), {"posts": _unit(posts)}


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def measure(count: int, width: int, queries: int, k: int, seed: int,
            model: str | None = None, corpus: str | None = None,
            efs: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Exact search, then the HNSW index searched with each of `efs` (default: the bundle's
    setting) on the one graph built: a row each; `queries` of each kind, timed one at a
    time. On `count` random vectors of `width`, or with `model` on that bundle's own
    (`bundle_vectors`, queries from `corpus`)."""
    from nlp.retrieval.dense import VECTORS_FILE, VectorIndex

    if model is not None and corpus is not None:
        vectors, asked = bundle_vectors(model, corpus, queries, seed)
        count, width = vectors.shape
    else:
        vectors = unit_vectors(count, width, seed)
        asked = {"planted": planted(vectors, queries, seed + 2),
                 "random": unit_vectors(queries, width, seed + 4)}
    truth = {kind: exact_nearest(vectors, some, k) for kind, some in asked.items()}
    exact_ms = []
    for some in asked.values():
        for query in some:
            started = time.perf_counter()
            _top(vectors @ query, k)
            exact_ms.append(1000 * (time.perf_counter() - started))
    common = {"vectors": count, "width": width, "k": k}
    exact = {**common, "method": "exact (numpy)", "memory_mb": round(vectors.nbytes / 2**20, 1),
             "build_s": 0.0, "query_ms_p50": round(percentile(exact_ms, 50), 3),
             "query_ms_p95": round(percentile(exact_ms, 95), 3),
             **{f"recall_{kind}": 1.0 for kind in asked}}

    before = rss_mb()
    started = time.perf_counter()
    index = VectorIndex.build(vectors)
    build_s = time.perf_counter() - started
    graph_mb = rss_mb() - before
    with tempfile.TemporaryDirectory() as directory:
        index.save(Path(directory))
        disk_mb = (Path(directory) / VECTORS_FILE).stat().st_size / 2**20
    settings = index.settings
    rows = [exact]
    for ef in efs or [settings.ef]:
        index.set_ef(ef)
        hnsw_ms = []
        recall = {}
        for kind, some in asked.items():
            hits = 0
            for query, nearest in zip(some, truth[kind], strict=True):
                started = time.perf_counter()
                found, _ = index.search(query[None], k)
                hnsw_ms.append(1000 * (time.perf_counter() - started))
                hits += len(set(found[0].tolist()) & set(nearest.tolist()))
            recall[f"recall_{kind}"] = round(hits / (k * len(some)), 4)
        rows.append({**common, "method": f"hnsw M={settings.m} ef={ef}", "ef": ef,
                     "memory_mb": round(graph_mb, 1), "disk_mb": round(disk_mb, 1),
                     "build_s": round(build_s, 1), "build_threads": os.cpu_count(),
                     "query_ms_p50": round(percentile(hnsw_ms, 50), 3),
                     "query_ms_p95": round(percentile(hnsw_ms, 95), 3), **recall})
    return rows


def main() -> None:
    from nlp.ranking.dual_encoder import DualEncoderConfig

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[250_000, 1_000_000])
    parser.add_argument("--width", type=int, default=DualEncoderConfig().hidden,
                        help="vector width (default: the dual encoder's)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument("--k", type=int, default=10, help="neighbours a query (recall@K)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef", nargs="+", type=int, default=[],
                        help="search ef values to measure on each graph (default: the "
                        "bundle's setting)")
    parser.add_argument("--model", help="a chat bundle: its own reply vectors (--sizes and "
                        "--width unused)")
    parser.add_argument("--corpus", help="with --model: validation pairs whose posts query")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "ann_index.json")
    args = parser.parse_args()
    if bool(args.model) != bool(args.corpus):
        parser.error("--model and --corpus go together")
    if any(ef < args.k for ef in args.ef):
        parser.error(f"--ef below --k {args.k}: a search raises ef to the neighbours it asks for")
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    peaks = [run_isolated(matmul_peak, 2048, 10, "float32")]
    rows: list[dict[str, Any]] = []
    for size in [0] if args.model else args.sizes:
        rows += run_isolated(measure, size, args.width, args.queries, args.k, args.seed,
                             args.model, args.corpus, args.ef)
        print(f"measured {rows[-1]['vectors']} vectors", flush=True)
    peaks.append(run_isolated(matmul_peak, 2048, 10, "float32"))
    write_json(args.out, {
        "matmul_peak_gflops": {"size": 2048, "dtype": "float32",
                               "before": round(peaks[0], 1), "after": round(peaks[1], 1)},
        "cpus": os.cpu_count(), "queries": args.queries, "model": args.model,
        "corpus": args.corpus, "rows": rows,
    })
    recalls = [key for key in rows[0] if key.startswith("recall_")]
    print(format_table(rows, [
        ("vectors", "vectors"), ("method", "method"), ("memory_mb", "memory MB"),
        ("disk_mb", "disk MB"), ("build_s", "build s"), ("query_ms_p50", "query ms p50"),
        ("query_ms_p95", "query ms p95"),
        *[(key, f"recall@{args.k} {key.removeprefix('recall_')}") for key in recalls],
    ]))
    print(f"matmul peak: {peaks[0]:.0f} GFLOP/s before, {peaks[1]:.0f} after")


if __name__ == "__main__":
    main()
