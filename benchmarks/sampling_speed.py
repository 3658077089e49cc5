"""Sampling speed on a real chat bundle: the sampler's pick compiled by XLA (the default)
against the same pick in the plain graph (what an exported SavedModel runs), in one run, on
the same posts and seeds.

A chat bundle tuned by `s2s tune-decoding` usually samples (nucleus, temperature), often
several replies per post; its filters' floors come from `nlp.decoding.cutoffs`, a bisection
whose passes only pay off fused. `nlp.decoding.samplers.RandomSampler` therefore runs its
pick as XLA clusters inside the decoder's plain graph; the export keeps XLA out. Both pick
the same token but where a draw falls within rounding of the boundary between two tokens,
and from there on the two replies differ: how often depends on the machine's rounding, so
the identical replies are counted, not judged (tests/benchmarks/test_sampling_speed.py
checks every pick of both against the filters computed in float64).

Decoding only: the bundle's own options (its number of samples included) with a fixed seed
and no re-ranking or retrieval (those stages do not sample). Each post alone (batch 1, the
bot at low load) and in batches of 8; the fastest of `--repeats` passes; both variants
alternate within each pass.

    python -m benchmarks.sampling_speed --model CHAT/runs/chat/model --posts chat-test.jsonl
        [--count 60] [--repeats 3]

Posts: a seeded random sample of the JSONL file's `source` fields. Writes
benchmarks/results/sampling_speed.json. Exits 1 when a variant's replies change from one
pass to the next: with the seed fixed they cannot, unless the draws are not the seed's, and
then the passes timed different work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_json
from benchmarks.train_throughput import matmul_peak

BATCH = 8
VARIANTS = {"fused (XLA)": True, "unfused (as exported)": False}  # xla_clusters


def sample_posts(path: Path, count: int, seed: int = 0) -> list[str]:
    """`count` posts drawn at random (seeded) from the whole file, not its first lines."""
    with path.open(encoding="utf-8") as handle:
        posts = [json.loads(line)["source"] for line in handle if line.strip()]
    random.Random(seed).shuffle(posts)
    return posts[:count]


def measure(model_dir: Path, posts: list[str], repeats: int) -> dict[str, Any]:
    from nlp.decoding import Decoder
    from nlp.generation.generator import Generator
    from nlp.generation.loading import load_model

    loaded = load_model(model_dir)
    generator = loaded.generator
    assert isinstance(generator, Generator)  # a bundle's: its decoder can be swapped
    tuned = loaded.decoding.options if loaded.decoding else None
    if tuned is None or tuned.strategy != "sample":
        raise SystemExit(f"{model_dir}: its decoding does not sample ({tuned})")
    options = dataclasses.replace(tuned, rerank="none", retrieve=0, seed=3)
    decoders = {}
    for name, xla_clusters in VARIANTS.items():  # each its own graph, traced once here
        generator.decoder = decoders[name] = Decoder(generator.bundle.model,
                                                     xla_clusters=xla_clusters)
        for size in {1, BATCH, len(posts) % BATCH or BATCH}:  # XLA compiles per row count
            generator.generate(posts[:size], options)
    best: dict[str, dict[str, float]] = {name: {} for name in VARIANTS}
    passes: dict[str, list[list[str]]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name in VARIANTS:
            generator.decoder = decoders[name]
            start = time.perf_counter()
            passes[name].append([hypothesis.text for post in posts
                                 for hypothesis in generator.generate([post], options)[0]])
            alone = time.perf_counter() - start
            start = time.perf_counter()
            for offset in range(0, len(posts), BATCH):
                generator.generate(posts[offset : offset + BATCH], options)
            batched = time.perf_counter() - start
            for key, seconds in (("batch_1", alone), (f"batch_{BATCH}", batched)):
                ms = 1000 * seconds / len(posts)
                best[name][key] = min(best[name].get(key, ms), ms)
    first, second = (passes[name][-1] for name in VARIANTS)
    return {
        "options": dataclasses.asdict(options),
        "ms_per_post": best,
        "replies": len(first),
        "same_replies": sum(a == b for a, b in zip(first, second, strict=True)),
        "unrepeatable": unrepeatable(passes),
        "examples": first[:5],
    }


def unrepeatable(passes: dict[str, list[list[str]]]) -> list[str]:
    """The variants whose replies in some pass differ from those of their first pass."""
    return [name for name, replies in passes.items()
            if any(later != replies[0] for later in replies[1:])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a sampling chat bundle")
    parser.add_argument("--posts", type=Path, required=True, help="JSONL with `source` posts")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "sampling_speed.json")
    args = parser.parse_args(argv)
    posts = sample_posts(args.posts, args.count)
    peaks = [matmul_peak()]
    result = measure(args.model, posts, args.repeats)
    peaks.append(matmul_peak())
    rows = [{"variant": name, **{key: round(ms, 1) for key, ms in figures.items()}}
            for name, figures in result["ms_per_post"].items()]
    print(format_table(rows, [("variant", "sampler"), ("batch_1", "ms/post, batch 1"),
                              (f"batch_{BATCH}", f"ms/post, batch {BATCH}")]))
    print(f"identical replies: {result['same_replies']} of {result['replies']}; matmul peak "
          f"{peaks[0]:.1f} GFLOP/s before, {peaks[1]:.1f} after")
    write_json(args.output, {
        "model": str(args.model), "posts": len(posts), **result,
        "matmul_peak_gflops": {"before": round(peaks[0], 1), "after": round(peaks[1], 1)},
    })
    if result["unrepeatable"]:
        print(f"error: {', '.join(result['unrepeatable'])}: the replies changed from one pass "
              "to the next with the seed fixed, so the passes timed different work",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
