#!/usr/bin/env python3
"""Headline generation speed: articles per second through the real job, and peak memory.

Default: beam 5, batch 64, on a model bundle given with --model; without one, an untrained
bundle of the default size (ExperimentConfig defaults: embeddings and units 256, vocabulary up
to 8000, jieba words) is built in a temporary directory from the shared LCSTS training split
when present, else from the project's sample corpus (the vocabulary is then smaller: see
"vocab_size" in the result). Untrained weights decode to max_length more often than a trained
model, so the figure is a lower bound on speed. Articles: LCSTS validation contents, else the
sample corpus sources, repeated to --articles.

    .venv/bin/python -m benchmarks.headline_throughput [--model DIR] [--articles 1024]

Writes benchmarks/results/headline_throughput.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from itertools import cycle, islice
from pathlib import Path

from benchmarks.common import RESULTS_DIR, format_table, peak_rss_mb, timed, write_json
from nlp.corpus.readers import read_pairs
from nlp.corpus.records import Pair, ReadReport
from nlp.decoding import DecodeOptions
from nlp.headlines import HeadlineJobOptions, generate_headlines

ROOT = Path(__file__).resolve().parent.parent
RESULTS = RESULTS_DIR / "headline_throughput.json"
LCSTS = ROOT.parent / "shared" / "corpora" / "headlines-zh" / "lcsts"
SAMPLE = ROOT / "corpora" / "headlines-zh.jsonl"


COLUMNS = [
    ("vocab_size", "vocab"),
    ("beam", "beam"),
    ("batch_size", "batch"),
    ("articles", "articles"),
    ("warmup_s", "warm-up s"),
    ("articles_per_second", "articles/s"),
    ("ms_per_article", "ms/article"),
    ("peak_rss_mb", "peak RSS MiB"),
]


def corpus(split: str) -> tuple[list[Pair], str]:
    """LCSTS `split` ("train"/"val") when the shared corpora are there, else the sample."""
    path, fmt = (LCSTS / f"{split}.tsv", "lcsts-tsv")
    if not path.exists():
        path, fmt = SAMPLE, "auto"
    return list(read_pairs(path, fmt, report=ReadReport())), str(path)


def build_untrained_bundle(directory: Path) -> tuple[Path, str]:
    """A default-size bundle with random weights (what `s2s train` would start from)."""
    from nlp.generation.bundle import save_bundle
    from nlp.generation.codec import TextCodec
    from nlp.model import Seq2Seq
    from nlp.util.config import ExperimentConfig

    config = ExperimentConfig()
    config.data.task = "headline"
    config.tokenizer.kind = "jieba"
    pairs, origin = corpus("train")
    codec = TextCodec.fit(config, pairs)
    config.model = dataclasses.replace(config.model, vocab_size=len(codec.vocab))
    save_bundle(directory, config, codec, Seq2Seq(config.model), {"untrained": True})
    return directory, origin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="bundle directory (default: untrained)")
    parser.add_argument("--articles", type=int, default=1024)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from nlp.generation.generator import Generator  # TensorFlow loads here

    with tempfile.TemporaryDirectory(prefix="headline-throughput-") as tmp:
        work = Path(tmp)
        if args.model is None:
            (bundle, vocab_origin), build_s = timed(lambda: build_untrained_bundle(work / "b"))
        else:
            (bundle, vocab_origin), build_s = (args.model, "the bundle"), 0.0
        generator, load_s = timed(lambda: Generator.from_bundle(bundle))

        pairs, origin = corpus("val")
        source = work / "articles.txt"
        texts = (p.source.replace("\n", " ") for p in cycle(pairs))
        source.write_text("".join(t + "\n" for t in islice(texts, args.articles)), "utf-8")
        warm = work / "warm.txt"
        warm.write_text("".join(t + "\n" for t in islice(source.open(), args.batch_size)), "utf-8")

        decode = DecodeOptions(beam_size=args.beam, max_length=args.max_length)
        options = HeadlineJobOptions(decode=decode, batch_size=args.batch_size)
        _, warmup_s = timed(lambda: generate_headlines(generator, warm, work / "w.jsonl", options))
        summary = generate_headlines(generator, source, work / "headlines.jsonl", options)
        sample = [json.loads(line) for line in islice((work / "headlines.jsonl").open(), 3)]

    result = {
        "benchmark": "headline_throughput",
        "model": str(args.model) if args.model else "untrained default-size bundle",
        "vocab_from": vocab_origin,
        "vocab_size": generator.config.model.vocab_size,
        "embedding_dim": generator.config.model.embedding_dim,
        "units": generator.config.model.units,
        "articles_from": origin,
        "articles": summary.written,
        "error_records": summary.error_count,
        "beam": args.beam,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "build_s": round(build_s, 2),
        "load_s": round(load_s, 2),
        "warmup_s": round(warmup_s, 2),
        "seconds": round(summary.seconds, 2),
        "articles_per_second": round(summary.articles_per_second, 1),
        "ms_per_article": round(1000 / max(summary.articles_per_second, 1e-9), 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "sample_headlines": [r.get("headline", r.get("error")) for r in sample],
    }
    write_json(args.output, result)
    print(format_table([result], COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
