"""A learning curve: validation quality at the README's training budget against training pairs.

It tells users what more data buys on this model at a fixed budget, and whether a longer
budget would (a run that reaches few epochs at the largest size is still learning). For a
README recipe (`benchmarks.recipes`) it runs the recipe's lines before its first `s2s train`
verbatim (installing and converting the corpora),
then, for each size, trains the recipe's first `s2s train` command (its main model) on a
seeded sample of that many pairs drawn from the training files the command names ("all":
every pair), with everything else as written (validation file, settings, budget). Each model
is scored on the recipe's validation file, the split the recipe tunes on, never its test
split: chat by Hits@1/20 (`nlp.metrics.hits`) and the bundle's replies' distinct-2 and top-5
share; headlines by ROUGE-L and the share of repeating headlines. Companions and decoding
tuning are not run: the curve is about the model, with the task's default decoding.

    python -m benchmarks.learning_curve --recipe chat-zh [--sizes 10000,30000,100000,all]
        [--work runs/learning_curve] [--limit 1000] [--reuse] [--minutes M] [--plot PNG]

Writes benchmarks/results/learning_curve.json (one entry per recipe) and a plot (--plot;
default docs/learning_curve-RECIPE.png of this checkout, the one BENCHMARKS.md shows).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.chat_quality import RUNS as CHAT_RUNS
from benchmarks.common import RESULTS_DIR, format_table, read_results, write_json
from benchmarks.headline_quality import RUNS as HEADLINE_RUNS
from benchmarks.headline_quality import training_info
from benchmarks.recipes import (
    commands,
    first_training,
    read_recipe,
    run_script,
    s2s_environment,
    with_budget,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPES = {run.name: run for run in [*CHAT_RUNS, *HEADLINE_RUNS]}
DEFAULT_SIZES = "10000,30000,100000,all"


def option_values(argv: list[str], option: str) -> tuple[int, int]:
    """(start, end) of the values after `option` in `argv` (up to the next option)."""
    start = argv.index(option) + 1
    end = start
    while end < len(argv) and not argv[end].startswith("--"):
        end += 1
    return start, end


def sample_pairs(files: list[Path], size: int | None, seed: int, out: Path) -> int:
    """Write a seeded sample of `size` lines (None: all) of the JSONL `files` to `out`."""
    lines = [line for f in files for line in f.read_text("utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    chosen = lines if size is None else lines[:size]
    out.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return len(chosen)


def score(task: str, model: Path, valid: Path, limit: int) -> dict[str, Any]:
    """Validation quality of one model with the task's default decoding."""
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport
    from nlp.evaluation.evaluate import hits_metrics, reply_metrics, rouge_metrics
    from nlp.generation.generator import Generator
    from nlp.metrics.hits import HitsDraw

    generator = Generator.from_bundle(model)
    pairs = list(read_pairs(valid, "jsonl", report=ReadReport()))
    options = generator.bundle.decoding.options if generator.bundle.decoding else None
    if options is None:
        raise ValueError(f"{model}: no decoding settings")
    if task == "headline":
        rows = HitsDraw(limit=limit).rows([p.group for p in pairs])
        figures = rouge_metrics(generator, [pairs[r] for r in rows], options, 64)["model"]
        return {"rougeL": figures["rougeL_f1"], "repeat_share": figures["repeat_share"]}
    draw = HitsDraw(k=20, limit=limit)  # posts drawn at random across conversations
    hits = hits_metrics(generator, pairs, options, 64, draw)
    sample = [pairs[row] for row in draw.rows([p.group for p in pairs])]
    replies = reply_metrics(generator, sample, options, 64)
    return {
        "hits@1/20": hits["hits@1/20"],
        "distinct_2": replies["distinct_2"],
        "top5_reply_share": replies["top5_reply_share"],
    }


def plot(name: str, rows: list[dict[str, Any]], out: Path) -> None:
    """Quality and epochs reached against training pairs (log scale), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [row["pairs"] for row in rows]
    quality = "rougeL" if "rougeL" in rows[0] else "hits@1/20"
    second = "repeat_share" if quality == "rougeL" else "distinct_2"
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot(pairs, [row[quality] for row in rows], "o-", label=quality)
    axes[0].plot(pairs, [row[second] for row in rows], "s--", label=second)
    if quality == "hits@1/20":
        axes[0].axhline(1 / 20, color="grey", linewidth=0.8, label="chance (1/20)")
    axes[0].set_title(f"{name}: validation quality")
    axes[1].plot(pairs, [row["epochs_run"] for row in rows], "o-")
    axes[1].set_title("epochs reached within the budget")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="pairs per run, 'all' for all")
    parser.add_argument("--seed", type=int, default=7, help="seed of the samples")
    parser.add_argument("--limit", type=int, default=1000, help="validation pairs scored")
    parser.add_argument("--work", type=Path, default=Path("runs") / "learning_curve")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "learning_curve.json")
    parser.add_argument("--minutes", type=float, help="training budget (not the README's)")
    parser.add_argument("--reuse", action="store_true", help="score models already in --work")
    parser.add_argument("--plot", type=Path, help="the PNG to write (default: docs/ here)")
    args = parser.parse_args()

    run = RECIPES[args.recipe]
    work = args.work / run.name
    work.mkdir(parents=True, exist_ok=True)
    script = with_budget(read_recipe(run.name), args.minutes)
    steps = commands(script)
    training_index = first_training(steps)
    converts = "\n".join(steps[:training_index])  # data preparation, as the recipe writes it
    if not args.reuse or not (work / "converted").exists():
        run_script(converts, work, run.data, work / "convert.log")
        (work / "converted").touch()
    train = shlex.split(steps[training_index])
    task = train[train.index("--task") + 1]
    start, end = option_values(train, "--corpus")
    corpus_files = [work / name for name in train[start:end]]
    valid = work / train[train.index("--valid") + 1]

    rows: list[dict[str, Any]] = []
    for size_text in args.sizes.split(","):
        size = None if size_text == "all" else int(size_text)
        out = f"runs/curve-{size_text}"
        model_dir = work / out
        sample = work / f"curve-{size_text}.jsonl"
        pairs = sample_pairs(corpus_files, size, args.seed, sample)
        if size is not None and pairs < size:
            print(f"{run.name}: only {pairs} pairs, no run at {size}")
            continue
        argv = [*train[:start], sample.name, *train[end:]]
        argv[argv.index("--out") + 1] = out
        minutes_file = work / f"curve-{size_text}.minutes"  # a reused run keeps its time
        argv_file = work / f"curve-{size_text}.argv"  # and the command that trained it
        if not (args.reuse and (model_dir / "model").exists()):
            argv_file.write_text(shlex.join(argv) + "\n", "utf-8")
            began = time.monotonic()
            subprocess.run(
                ["bash", "-e", "-c", shlex.join(argv) + f" > curve-{size_text}.train.log 2>&1"],
                cwd=work, env=s2s_environment(run.data), check=True,
            )
            minutes_file.write_text(f"{(time.monotonic() - began) / 60:.1f}\n", "utf-8")
        minutes = float(minutes_file.read_text("utf-8")) if minutes_file.exists() else None
        info = training_info(model_dir)
        trained_by = argv_file.read_text("utf-8").strip() if argv_file.exists() else None
        row = {
            "pairs": pairs,
            "size": size_text,
            "trained_by_this_recipe": trained_by == shlex.join(argv),
            "epochs_run": info["epochs_run"],
            "kept_epoch": info["kept_epoch"],
            "train_minutes": minutes,
            **score(task, model_dir / "model", valid, args.limit),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    results = read_results(args.out)
    # verbatim: the README's budget, and every model trained by it (not a reused smoke run's)
    verbatim = args.minutes is None and all(row["trained_by_this_recipe"] for row in rows)
    results[run.name] = {"recipe": script, "verbatim": verbatim,
                         "train": shlex.join(train), "sizes": rows}
    write_json(args.out, results)
    if rows:
        plot(run.name, rows, args.plot or DOCS / f"learning_curve-{run.name}.png")
    columns = [("pairs", "pairs"), ("epochs_run", "epochs"), ("train_minutes", "minutes")]
    shown = {"size", "kept_epoch", *(key for key, _ in columns)}
    columns += [(key, key) for key in (rows[0] if rows else {}) if key not in shown]
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
