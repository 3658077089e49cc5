"""What preparing a large corpus for training costs: reading, normalising and tokenizing,
building the vocabulary, encoding the pairs; pairs/s and peak memory, by stage and size.

Runs the code `s2s train` runs before its first step (`load_pairs`, `TextCodec.fit`,
`examples_of`) on the larger shared corpora, each size in a fresh process (peak RSS only
grows), at a share of the corpus and at all of it, so the growth of memory with corpus size
is read off one run:

    subtitles  dgk .conv subtitles, jieba (the chat-zh tokenizer)
    chitchat   chitchat-dataset's dataset.json, words (the chat-en tokenizer)
    xwlb       CCTV news JSONL, the headline preset (chars + placeholders)

    python -m benchmarks.data_pipeline [--only NAME] [--shares 0.1 0.3 1.0]

Writes benchmarks/results/data_pipeline.json.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, peak_rss_mb, run_isolated, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
RESULTS = RESULTS_DIR / "data_pipeline.json"


@dataclass(frozen=True)
class Corpus:
    name: str
    paths: tuple[str, ...]
    fmt: str
    settings: tuple[str, ...]  # `--set` values, after the task preset
    task: str
    options: tuple[tuple[str, Any], ...] = ()


def _chitchat() -> tuple[str, ...]:
    try:
        import importlib.resources

        return (str(importlib.resources.files("chitchat_dataset") / "dataset.json"),)
    except ImportError:
        return ()


def _xwlb() -> tuple[str, ...]:
    return tuple(str(p) for p in sorted((SHARED / "headlines-zh" / "xwlb").glob("*.jsonl")))


CORPORA = [
    Corpus("subtitles", (str(SHARED / "dialogue-zh" / "dgk-subtitles"),), "conv",
           ("tokenizer.kind=jieba", "vocab.max_size=10000"), "chat"),
    Corpus("chitchat", _chitchat(), "chitchat", ("tokenizer.kind=words", "vocab.max_size=10000"),
           "chat"),
    Corpus("xwlb", _xwlb(),
           "jsonl", (), "headline",
           (("source_field", "content"), ("target_field", "title"), ("strip_html", True))),
]


def measure(corpus: Corpus, share: float) -> dict[str, Any]:
    """One size of one corpus, stage by stage (run in a fresh process)."""
    from nlp.generation.codec import TextCodec
    from nlp.training.corpus_io import CorpusSpec, load_pairs
    from nlp.training.run import examples_of
    from nlp.util.config import ExperimentConfig, task_preset

    config = ExperimentConfig().with_overrides([*task_preset(corpus.task), *corpus.settings])
    spec = CorpusSpec(tuple(Path(p) for p in corpus.paths), corpus.fmt, options=corpus.options)
    started = time.perf_counter()
    pairs = load_pairs(spec, config.data)
    pairs = pairs[: max(1, round(len(pairs) * share))]
    read = time.perf_counter()
    codec = TextCodec.fit(config, pairs)
    fitted = time.perf_counter()
    examples = examples_of(codec, pairs)
    encoded = time.perf_counter()
    total = encoded - started
    return {
        "corpus": corpus.name,
        "share": share,
        "pairs": len(pairs),
        "examples": len(examples),
        "vocabulary": len(codec.vocab),
        "read_s": round(read - started, 1),
        "fit_s": round(fitted - read, 1),
        "encode_s": round(encoded - fitted, 1),
        "total_s": round(total, 1),
        "pairs_per_s": round(len(pairs) / total, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[c.name for c in CORPORA])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for corpus in CORPORA:
        if args.only and corpus.name not in args.only:
            continue
        if not corpus.paths or not all(Path(p).exists() for p in corpus.paths):
            print(f"{corpus.name}: not found, skipped")
            continue
        for share in args.shares:
            rows.append(run_isolated(measure, corpus, share))
            print(rows[-1], flush=True)
    write_json(args.out, {"rows": rows})
    print(format_table(rows, [(k, k) for k in rows[0]] if rows else []))


if __name__ == "__main__":
    main()
