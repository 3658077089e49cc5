"""Training throughput of the default configuration: target tokens per second, peak memory.

Default model (embedding and hidden 256, vocabulary 8000, batch 64) on synthetic batches of
source length 40 and target length 15, trained through the project's own `Trainer`: what a
user's `s2s train` step costs, without corpus reading or tokenization.

    python -m benchmarks.train_throughput [--steps 60] [--warmup 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, peak_rss_mb, run_isolated, write_json


def measure(steps: int, warmup: int, source_len: int, target_len: int, cell: str) -> dict[str, Any]:
    import numpy as np

    from nlp.config import ExperimentConfig
    from nlp.model import Seq2Seq
    from nlp.training.data import make_dataset
    from nlp.training.trainer import Trainer

    config = ExperimentConfig().with_overrides(
        [f"model.vocab_size={8000}", f"model.cell={cell}", f"train.max_source_length={source_len}"]
    )
    rng = np.random.default_rng(0)
    examples = [
        (rng.integers(4, 8000, source_len).tolist(), rng.integers(4, 8000, target_len).tolist())
        for _ in range(64 * (steps + warmup))
    ]
    model = Seq2Seq(config.model)
    trainer = Trainer(model, config.train, Path(tempfile.mkdtemp()), verbose=0)
    batches = list(make_dataset(examples, trainer.batching, seed=1))
    start = time.perf_counter()
    for batch in batches[:warmup]:
        float(trainer.train_batch(*batch))
    first = time.perf_counter() - start
    start = time.perf_counter()
    tokens = 0
    for batch in batches[warmup : warmup + steps]:
        float(trainer.train_batch(*batch))
        tokens += int((batch[2].numpy() != 0).sum())
    seconds = time.perf_counter() - start
    return {
        "cell": cell,
        "batch_size": config.train.batch_size,
        "source_len": source_len,
        "target_len": target_len,
        "parameters": model.count_params(),
        "steps": steps,
        "warmup_s": first,
        "ms_per_step": 1000 * seconds / steps,
        "target_tokens_per_s": tokens / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--source-len", type=int, default=40)
    parser.add_argument("--target-len", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "train_throughput.json")
    args = parser.parse_args()
    rows = [
        run_isolated(measure, args.steps, args.warmup, args.source_len, args.target_len, cell)
        for cell in ("lstm", "gru")
    ]
    print(
        format_table(
            rows,
            [
                ("cell", "cell"),
                ("parameters", "params"),
                ("ms_per_step", "ms/step"),
                ("target_tokens_per_s", "target tokens/s"),
                ("warmup_s", "warm-up s"),
                ("peak_rss_mb", "peak RSS MB"),
            ],
        )
    )
    write_json(
        args.out, {"config": "embedding 256, hidden 256, vocab 8000, batch 64", "rows": rows}
    )


if __name__ == "__main__":
    main()
