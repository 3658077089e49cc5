#!/usr/bin/env python3
"""Flat memory of batch headline generation over a 1,000,000-line input.

Runs the real job (`nlp.headlines.generate_headlines`: JSONL reader, batching, JSONL writer,
flush per batch) with the fast fake generator, samples the resident set size after every
batch, and reports it at 1 %, 10 %, 50 % and 100 % of the input. Flat means the growth from
10 % to 100 % stays under a few MB: nothing is kept per record.

    .venv/bin/python -m benchmarks.headline_memory [--lines 1000000] [--batch-size 64]

Writes benchmarks/results/headline_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # the fake generator is a test double (tests/fakes)

from benchmarks.common import RESULTS_DIR, format_table, peak_rss_mb, write_json  # noqa: E402
from nlp.decoding import DecodeOptions  # noqa: E402
from nlp.generation.text_generator import Generation  # noqa: E402
from nlp.headlines import HeadlineJobOptions, generate_headlines  # noqa: E402
from tests.fakes.fake_generators import FakeGenerator  # noqa: E402

RESULTS = RESULTS_DIR / "headline_memory.json"
FLAT_LIMIT_MB = 8.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE / 2**20


class SamplingGenerator(FakeGenerator):
    """The fake generator, noting (articles seen so far, RSS) every `every` calls (sparsely, so
    that the samples themselves do not show up as growth)."""

    def __init__(self, every: int = 64) -> None:
        super().__init__(words=6)
        self.every = every
        self.seen = 0
        self.samples: list[tuple[int, float]] = []

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[Generation]]:
        self.seen += len(texts)
        result = super().generate(texts, options)
        if self.calls % self.every == 1:
            self.samples.append((self.seen, rss_mb()))
        return result


def write_input(path: Path, lines: int) -> None:
    """Realistic-length JSONL articles, mixed Chinese and English, with a few bad records."""
    zh = "面对撤资中国内地及香港的传言，李嘉诚希望用数字说话：长和系去年毛收入约4300亿港元。"
    en = "Oil prices rose sharply on Monday as traders weighed supply cuts against demand."
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            if i % 10_000 == 9_999:
                handle.write("{not json\n")
            else:
                text = zh if i % 2 else en
                handle.write(json.dumps({"id": i, "article": f"{text} {i}"}, ensure_ascii=False))
                handle.write("\n")


def at_fraction(samples: list[tuple[int, float]], total: int, fraction: float) -> tuple[int, float]:
    """The first (articles seen, RSS) sample at or past `fraction` of the input."""
    return next((seen, rss) for seen, rss in samples if seen >= total * fraction * 0.99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="headline-memory-") as tmp:
        source, destination = Path(tmp) / "articles.jsonl", Path(tmp) / "headlines.jsonl"
        started = time.perf_counter()
        write_input(source, args.lines)
        input_mb = source.stat().st_size / 2**20
        print(f"input: {args.lines:,} lines, {input_mb:,.0f} MiB "
              f"({time.perf_counter() - started:.1f} s to write)", file=sys.stderr)  # fmt: skip
        generator = SamplingGenerator()
        baseline = rss_mb()
        options = HeadlineJobOptions(batch_size=args.batch_size, progress=sys.stderr)
        summary = generate_headlines(generator, source, destination, options)
        generator.samples.append((generator.seen, rss_mb()))
        output_mb = destination.stat().st_size / 2**20
    fractions = (0.01, 0.1, 0.5, 1.0)
    points = [at_fraction(generator.samples, generator.seen, f) for f in fractions[:-1]]
    points.append(generator.samples[-1])  # taken after the job ended
    growth = points[-1][1] - points[1][1]
    result = {
        "benchmark": "headline_memory",
        "lines": args.lines,
        "batch_size": args.batch_size,
        "input_mib": round(input_mb, 1),
        "output_mib": round(output_mb, 1),
        "records_written": summary.written,
        "error_records": summary.error_count,
        "seconds": round(summary.seconds, 2),
        "records_per_second": round(summary.articles_per_second, 1),
        "rss_mb_before_job": round(baseline, 1),
        "rss_mb": [
            {"fraction": f, "articles": seen, "rss_mb": round(rss, 1)}
            for f, (seen, rss) in zip(fractions, points, strict=True)
        ],
        "growth_mb_10_to_100pct": round(growth, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "flat": growth < FLAT_LIMIT_MB,
    }
    write_json(args.output, result)
    print(format_table(result["rss_mb"], [("articles", "articles"), ("rss_mb", "RSS MiB")]))
    print(
        f"{summary.written:,} records ({summary.error_count} error records) in "
        f"{summary.seconds:.1f} s, {summary.articles_per_second:,.0f}/s; growth 10-100 %: "
        f"{growth:.1f} MiB; peak RSS {result['peak_rss_mb']} MiB; flat: {result['flat']}"
    )
    return 0 if result["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
