"""The Keras `addition_rnn` tutorial ("535+61" -> "596") through `s2s train`, as a user runs it.

100,000 random sums of two numbers in 0..999 (the Keras example trains on 50,000 for many
more epochs), the chars tokenizer with every digit and "+" a token (`latin_chars=true`), the
default attention model at units 128, batch 512, rate 0.01, 7 epochs: the cheapest settings
to 99% of those tried. `s2s train` runs in its own process, as a user runs it; then greedy
decoding of fresh sums the model never saw, scored by exact match. No reply index or dual
encoder: the model is a seq2seq tutorial, not a chat bot.

Why a benchmark and not a test: it is a reproduction of a published result at its own scale
(minutes of training on 2 cores), where the test suite trains tiny models in seconds; the
suite's learning tests (integer reversal, digits to words, both to 99%) stay there.

    python -m benchmarks.tutorial_addition [--pairs 100000] [--epochs 7] [--fresh 1000]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS_DIR, format_table, write_json
from benchmarks.train_throughput import matmul_peak
from nlp.corpus.records import Pair
from nlp.training.run import write_pairs

REPO = Path(__file__).resolve().parent.parent
SETTINGS = [
    "tokenizer.kind=chars",
    "tokenizer.latin_chars=true",
    "model.units=128",
    "model.embedding_dim=32",
    "model.dropout=0.0",
    "train.batch_size=512",
    "train.learning_rate=0.01",
    "retrieval.index=false",
    "retrieval.dual_encoder_minutes=0",
]


def addition_pair(rng: random.Random) -> tuple[str, str]:
    """The Keras `addition_rnn` task: "535+61" -> "596", two numbers in 0..999."""
    a, b = rng.randint(0, 999), rng.randint(0, 999)
    return f"{a}+{b}", str(a + b)


def exact_match(model_dir: Path, pairs: list[tuple[str, str]]) -> float:
    """The share of `pairs` whose greedy output is exactly the sum (`s2s evaluate`'s exact)."""
    from nlp.decoding import DecodeOptions
    from nlp.evaluation.evaluate import exact_metrics
    from nlp.generation.generator import Generator

    scored = exact_metrics(Generator.from_bundle(model_dir), [Pair(s, t) for s, t in pairs],
                           DecodeOptions(strategy="greedy"), batch_size=256)
    return scored["exact_match"]


def run(work: Path, pairs: int, epochs: int, fresh: int, extra: list[str]) -> dict[str, object]:
    """Train on `pairs` seeded sums in a `s2s train` process, score `fresh` unseen ones."""
    rng = random.Random(7)
    train_pairs = [addition_pair(rng) for _ in range(pairs)]
    corpus = work / "train.jsonl"
    write_pairs([Pair(source, target) for source, target in train_pairs], corpus)
    settings = [*SETTINGS, f"train.epochs={epochs}", f"train.patience={epochs}", *extra]
    command = [sys.executable, "-m", "s2s.cli", "train", "--corpus", str(corpus),
               "--out", str(work / "run"), "--quiet", *(f"--set={s}" for s in settings)]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    seen = {source for source, _ in train_pairs}
    unseen: list[tuple[str, str]] = []
    while len(unseen) < fresh:
        pair = addition_pair(rng)
        if pair[0] not in seen:
            unseen.append(pair)
    score = exact_match(work / "run" / "model", unseen)
    return {"pairs": pairs, "epochs": epochs, "fresh_sums": fresh, "settings": settings,
            "train_seconds": round(seconds, 1), "exact_match": score}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--fresh", type=int, default=1000, help="unseen sums scored")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        metavar="section.key=value", help="another training setting")
    parser.add_argument("--results", type=Path,
                        default=RESULTS_DIR / "tutorial_addition.json")
    args = parser.parse_args(argv)
    peak_before = matmul_peak()
    with tempfile.TemporaryDirectory() as work:
        row = run(Path(work), args.pairs, args.epochs, args.fresh, args.extra)
    row["matmul_gflops"] = [round(peak_before, 1), round(matmul_peak(), 1)]
    print(format_table([row], [("pairs", "pairs"), ("epochs", "epochs"),
                               ("train_seconds", "train s (process)"),
                               ("exact_match", f"exact match, {args.fresh} fresh sums"),
                               ("matmul_gflops", "matmul GFLOP/s before, after")]))
    write_json(args.results, row)


if __name__ == "__main__":
    main()
