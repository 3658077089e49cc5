#!/usr/bin/env python3
"""What the Beam pipeline costs: `s2s headlines` in process vs `--runner beam` on Beam's local
runner (FnApiRunner, the DirectRunner's batch engine) with 1 worker and with 2 worker
processes, on the same articles, model and options.

Each configuration is one `s2s headlines` command in a fresh process, timed from start to exit
(TensorFlow import, model loading and, for Beam, pipeline start-up and worker processes
included: what a user waits for), next to the job time the command itself reports. Absolute
figures depend on the machine and its load; compare the ratios to the in-process run of the
same invocation. The outputs are compared record by record with the in-process one: records
whose headline (or error) differs, and records whose score differs (written rounded to 4
decimals; batches of other sizes and compositions sum in another order, which moves raw scores
by ~1e-6 at this model size, see README).

Default: 2,000 LCSTS validation articles (repeated when the split has fewer; the project's
sample corpus when the shared corpora are absent), beam 5, batch 64, an untrained bundle of
the default size built as `benchmarks.headline_throughput` builds it (or --model DIR).

    .venv/bin/python -m benchmarks.beam_runner [--model DIR] [--articles 2000]

Writes benchmarks/results/beam_runner.json. Needs apache-beam (pip install '.[beam]').
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_json
from benchmarks.headline_throughput import build_untrained_bundle, corpus

ROOT = Path(__file__).resolve().parent.parent
RESULTS = RESULTS_DIR / "beam_runner.json"
SUMMARY = re.compile(r"^([\d,]+) records written .* in ([\d.]+) s")

CONFIGURATIONS: list[tuple[str, list[str]]] = [
    ("in-process", []),
    ("beam, 1 worker", ["--runner", "beam"]),
    (
        "beam, 2 worker processes",
        ["--runner", "beam",
         "--beam-options=--direct_num_workers=2 --direct_running_mode=multi_processing"],
    ),
]

COLUMNS = [
    ("runner", "runner"),
    ("articles", "articles"),
    ("wall_s", "wall s"),
    ("articles_per_second", "articles/s (wall)"),
    ("ratio", "vs in-process"),
    ("job_s", "job s (reported)"),
    ("job_articles_per_second", "articles/s (job)"),
    ("headlines_differing", "headlines differing"),
    ("scores_differing", "scores differing"),
]


def run_command(name: str, flags: list[str], common: list[str], out: Path) -> dict[str, Any]:
    """One `s2s headlines` process; its wall time and the summary line it printed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "s2s.cli", "headlines", *common, "-o", str(out), *flags]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name}: exit {done.returncode}\n{done.stderr[-3000:]}")
    match = next(filter(None, map(SUMMARY.match, done.stderr.splitlines())), None)
    if match is None:
        raise RuntimeError(f"{name}: no summary line in\n{done.stderr[-3000:]}")
    written, job_s = int(match[1].replace(",", "")), float(match[2])
    return {
        "runner": name,
        "flags": " ".join(flags),
        "articles": written,
        "wall_s": round(wall, 2),
        "articles_per_second": round(written / wall, 1),
        "job_s": job_s,
        "job_articles_per_second": round(written / job_s, 1) if job_s else None,
    }


def differences(expected: str, got: str) -> dict[str, Any]:
    """How many records differ from the in-process output: in headline (or error), in score
    only, and the largest score difference."""
    pairs = list(zip(expected.splitlines(), got.splitlines(), strict=True))
    records = [(json.loads(a), json.loads(b)) for a, b in pairs]
    texts = sum(a.get("headline", a.get("error")) != b.get("headline", b.get("error"))
                for a, b in records)
    gaps = [abs(a["score"] - b["score"]) for a, b in records if "score" in a and "score" in b]
    return {
        "identical_file": expected == got,
        "headlines_differing": texts,
        "scores_differing": sum(gap > 0 for gap in gaps),
        "max_score_difference": round(max(gaps, default=0.0), 6),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="bundle directory (default: untrained)")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="copy the articles and outputs here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="beam-headlines-") as tmp:
        work = Path(tmp)
        if args.model is None:
            bundle, vocab_origin = build_untrained_bundle(work / "bundle")
        else:
            bundle, vocab_origin = args.model, "the bundle"
        pairs, origin = corpus("val")
        source = work / "articles.txt"
        texts = (p.source.replace("\n", " ") for p in cycle(pairs))
        source.write_text("".join(t + "\n" for t in islice(texts, args.articles)), "utf-8")
        common = [
            "--model", str(bundle), str(source), "--beam", str(args.beam),
            "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
            "--no-progress",
        ]
        rows, outputs = [], []
        for index, (name, flags) in enumerate(CONFIGURATIONS):
            out = work / f"out-{index}.jsonl"
            rows.append(run_command(name, flags, common, out))
            outputs.append(out.read_text("utf-8"))
            print(f"{name}: {rows[-1]['wall_s']} s", file=sys.stderr, flush=True)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for file in [source, *work.glob("out-*.jsonl")]:
                shutil.copy(file, args.keep / file.name)

    base = rows[0]["articles_per_second"]
    for row, output in zip(rows, outputs, strict=True):
        row["ratio"] = round(row["articles_per_second"] / base, 3)
        row.update(differences(outputs[0], output))
    import apache_beam

    result = {
        "benchmark": "beam_runner",
        "model": str(args.model) if args.model else "untrained default-size bundle",
        "vocab_from": vocab_origin,
        "articles_from": origin,
        "articles": args.articles,
        "beam": args.beam,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "apache_beam": apache_beam.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "runs": rows,
    }
    write_json(args.output, result)
    print(format_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
