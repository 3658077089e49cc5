"""TensorFlow's oneDNN kernels against its Eigen ones on this machine: what `import nlp`
setting `TF_ENABLE_ONEDNN_OPTS=1` changes (see `nlp/__init__.py`).

    python -m benchmarks.onednn_cpu --model RUN/model --articles valid.jsonl [--rounds 2]

TensorFlow reads the variable once, when it is imported, so every measurement runs in a
process of its own with the variable set to 0 or 1, the two settings alternating round by
round so that a shared machine's drift falls on both:
- `train`: the default training step (`benchmarks.train_throughput --only-default`): ms a
  step, and the 2048^3 float32 matmul peak timed in that process before and after;
- `decode`: the trained bundle `--model` writes headlines (or replies) for the first
  `--count` sources of `--articles` (JSONL with a `source` field), one a call and 16 a call,
  greedy and beam 5, through `Generator.generate`: the plain compiled graph the commands
  use. Milliseconds a source, the fastest of two passes, and the matmul peak after.
On a CPU where TensorFlow turns oneDNN on by itself (AVX-512 VNNI, bfloat16, AMX) the two
settings are the same program; the table says which kernels each process reported.
Prints a table and writes benchmarks/results/onednn_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_json

REPO = Path(__file__).resolve().parents[1]
DECODINGS = {"greedy": {"strategy": "greedy"}, "beam5": {"strategy": "beam", "beam_size": 5}}
BATCHES = (1, 16)
COLUMNS = [
    ("round", "round"),
    ("onednn", "TF_ENABLE_ONEDNN_OPTS"),
    ("onednn_in_use", "oneDNN in use"),
    ("train_ms_per_step", "train ms/step"),
    *((f"{name}_b{batch}_ms", f"{name} batch {batch} ms/source")
      for name in DECODINGS for batch in BATCHES),
    ("matmul_peak_gflops", "matmul peak GFLOP/s"),
]


def onednn_in_use() -> bool:
    """TensorFlow's own answer (after it is imported), not the variable's value."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def measure_decode(model: str, articles: str, count: int) -> dict[str, Any]:
    """Run in the child process: ms a source for each decoding and batch size."""
    from benchmarks.train_throughput import matmul_peak
    from nlp.decoding import DecodeOptions
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(Path(model))
    with open(articles, encoding="utf-8") as lines:
        sources = [json.loads(line)["source"] for line in lines][:count]
    result: dict[str, Any] = {"onednn_in_use": onednn_in_use()}
    for name, settings in DECODINGS.items():
        options = DecodeOptions(max_length=30, **settings)  # type: ignore[arg-type]
        for batch in BATCHES:
            generator.generate(sources[:batch], options)  # trace this shape
            best = float("inf")
            for _ in range(2):
                start = time.perf_counter()
                for first in range(0, len(sources), batch):
                    generator.generate(sources[first: first + batch], options)
                best = min(best, time.perf_counter() - start)
            result[f"{name}_b{batch}_ms"] = 1000 * best / len(sources)
    result["matmul_peak_gflops"] = matmul_peak()
    return result


def _child(setting: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return done


def measure_train(setting: str, steps: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.json"
        _child(setting, [sys.executable, "-m", "benchmarks.train_throughput", "--only-default",
                         "--steps", str(steps), "--warmup", str(warmup), "--out", str(out)])
        report = json.loads(out.read_text())
    return {"train_ms_per_step": report["rows"][0]["ms_per_step"],
            "train_matmul_peak_gflops": report["matmul_peak_gflops"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained bundle (decoding rows)")
    parser.add_argument("--articles", required=True, help="JSONL with a `source` field")
    parser.add_argument("--count", type=int, default=48, help="sources decoded a pass")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=5, help="training steps not timed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "onednn_cpu.json")
    args = parser.parse_args(argv)

    rows = []
    for round_ in range(1, args.rounds + 1):
        for setting in ("0", "1"):
            row: dict[str, Any] = {"round": round_, "onednn": setting}
            row.update(measure_train(setting, args.steps, args.warmup))
            code = ("import json, sys; from benchmarks.onednn_cpu import measure_decode; "
                    "print(json.dumps(measure_decode(*sys.argv[1:3], int(sys.argv[3]))))")
            decoded = _child(setting, [sys.executable, "-c", code, args.model, args.articles,
                                       str(args.count)])
            row.update(json.loads(decoded.stdout.strip().splitlines()[-1]))
            rows.append(row)
            print(format_table([row], COLUMNS), flush=True)
    print(format_table(rows, COLUMNS))
    write_json(args.out, {"model": args.model, "articles": args.articles, "count": args.count,
                          "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
