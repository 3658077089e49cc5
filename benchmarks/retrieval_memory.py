"""The retrieval index at the size of a large chat corpus: build time, disk, memory and query
time of `nlp.retrieval.ReplyIndex`, each measured in a fresh process (peak RSS only grows).

Posts and replies come from JSONL corpora (e.g. the chat-zh recipe's LCCC and subtitle
pairs, about 220,000, or chitchat's 120,000), tokenized beforehand by the project's `words`
tokenizer (words, punctuation, each Han character a token of its own: the index's cost depends
on how many posts share each query token, not on which tokenizer made the tokens); --pairs
repeats the corpus to reach a size.

    python -m benchmarks.retrieval_memory --corpus FILE.jsonl [FILE2.jsonl] [--pairs 250000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, peak_rss_mb, percentile, run_isolated
from nlp.tokenizers.words import WordTokenizer


def _pairs(files: list[str], count: int) -> tuple[list[list[str]], list[str], list[str]]:
    """Posts tokenized, replies, and the posts as written (an index keeps them)."""
    records = [json.loads(line) for f in files for line in Path(f).read_text("utf-8").splitlines()
               if line.strip()]
    tokenizer = WordTokenizer()
    posts = [tokenizer.tokenize(r["source"]) for r in records]
    replies = [r["target"] for r in records]
    texts = [r["source"] for r in records]
    while count and len(posts) < count:
        posts, replies, texts = posts + posts, replies + replies, texts + texts
    return (posts[:count], replies[:count], texts[:count]) if count else (posts, replies, texts)


def build(files: list[str], count: int, directory: str) -> dict[str, Any]:
    from nlp.retrieval import ReplyIndex

    posts, replies, texts = _pairs(files, count)
    before = peak_rss_mb()
    started = time.perf_counter()
    index = ReplyIndex.build(posts, replies, [f"pair:{i}" for i in range(len(posts))], texts)
    seconds = time.perf_counter() - started
    index.save(Path(directory))
    disk = sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())
    return {"pairs": len(posts), "build_seconds": round(seconds, 1),
            "build_peak_rss_mb_over_data": round(peak_rss_mb() - before, 1),
            "disk_mb": round(disk / 2**20, 1)}


def query(files: list[str], count: int, directory: str) -> dict[str, Any]:
    from nlp.retrieval import ReplyIndex

    # loaded before the queries are read: peak RSS only grows, and reading the corpus files
    # would otherwise set a peak the index stays under
    before = peak_rss_mb()
    index = ReplyIndex.load(Path(directory))
    loaded = peak_rss_mb() - before
    posts, _, _ = _pairs(files, 1000)
    single = []
    for post in posts[:200]:
        started = time.perf_counter()
        index.search([post], 10)
        single.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    index.search(posts, 10)
    batch = 1000 * (time.perf_counter() - started) / len(posts)
    return {"load_rss_mb": round(loaded, 1), "query_ms_p50": round(percentile(single, 50), 2),
            "query_ms_p95": round(percentile(single, 95), 2),
            "query_ms_per_post_batch_1000": round(batch, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", required=True)
    parser.add_argument("--pairs", type=int, default=250_000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "retrieval_memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        result = run_isolated(build, args.corpus, args.pairs, directory)
        result |= run_isolated(query, args.corpus, args.pairs, directory)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table([result], [(k, k) for k in result]))


if __name__ == "__main__":
    main()
