"""Headline quality on real corpora: the README's recipe, run verbatim, against the leads.

Each run executes a recipe block of README.md (`benchmarks.recipes`: convert, `s2s train
--task headline` with its 20-minute budget, `s2s tune-decoding`), then scores the model with
`s2s evaluate --metric rouge` on a test set it never saw, with the decoding settings the
bundle carries (no flags), beside the lead baselines:

    headlines-zh  LCSTS subset: trained on train.tsv, tested on val.tsv (ROUGE per character)
    headlines-en  Reuters-21578: trained on reut2-000..019, tested on reut2-020..021 (words)
    xwlb-zh       CCTV news (JSONL): trained on 2012-2023, tested on 2024-2025 (per character)
    rss-news-en   RSS news snapshots (JSON): trained on 2021, tested on 2022 (words)

    python -m benchmarks.headline_quality [--only NAME] [--limit 1000] [--reuse]
        [--minutes M]   # another training budget: a smoke run, not the README's recipe
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import format_table
from benchmarks.recipes import recipe_arguments, run_recipes, s2s_environment

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
MODEL = "runs/news"  # where the recipes leave the model, relative to their work directory


@dataclass(frozen=True)
class RecipeRun:
    """A README recipe, the data folders it names, and the test set that scores it."""

    name: str
    data: dict[str, Path]
    test: list[str]  # `s2s evaluate` arguments naming the test corpus
    # The tokenizer that cuts this corpus into words. Chinese has no spaces, and the `words`
    # tokenizer cuts Han text into characters (the `chars` tokens), so Chinese words are jieba's.
    word_tokenizer: str = "words"


RUNS = [
    RecipeRun(
        "headlines-zh",
        {"LCSTS": SHARED / "headlines-zh" / "lcsts"},
        ["--corpus", "$LCSTS/val.tsv", "--format", "lcsts-tsv"],
        word_tokenizer="jieba",
    ),
    RecipeRun(
        "headlines-en",
        {"REUTERS": SHARED / "headlines-en" / "reuters21578"},
        ["--corpus", "$REUTERS/reut2-020.sgm", "$REUTERS/reut2-021.sgm", "--format", "reuters"],
    ),
    RecipeRun(
        "xwlb-zh",
        {"XWLB": SHARED / "headlines-zh" / "xwlb"},
        ["--corpus", "test-2024.jsonl"],  # written by the recipe from the 2024-2025 files
        word_tokenizer="jieba",
    ),
    RecipeRun(
        "rss-news-en",
        {"RSS": SHARED / "headlines-en" / "rss-news"},
        ["--corpus", "test-2022.jsonl"],  # written by the recipe from the 2022 snapshots
    ),
]


def training_info(model_dir: Path) -> dict[str, Any]:
    """What the run says about its training, and the decoding the bundle recommends.

    `epochs_run` comes from the run's last checkpoint: the bundle's own history stops at the
    epoch it was saved from (`kept_epoch`), which is earlier when a later epoch did not win.
    """
    from nlp.training.checkpoint import read_state

    metadata = json.loads((model_dir / "model" / "metadata.json").read_text("utf-8"))
    decoding = json.loads((model_dir / "model" / "decoding.json").read_text("utf-8"))
    history = metadata.get("history", [])
    try:
        epochs_run = read_state(model_dir / "checkpoint").epoch
    except (OSError, ValueError):  # no checkpoint left: the bundle's history is all there is
        epochs_run = len(history)
    return {
        "epochs_run": epochs_run,
        "kept_epoch": len(history),
        "best": metadata.get("metrics"),
        "history": history,
        "decoding": decoding,
    }


# The decoder's own defaults, spelt out: what the model gives without the bundle's tuning.
UNTUNED = "--beam 5 --length-penalty 0 --no-repeat-ngram 0 --min-length 0 --max-length-ratio 0"


def score(run: RecipeRun, work: Path, limit: int, flags: str = "") -> dict[str, Any]:
    """`s2s evaluate --metric rouge` on the test set, with the bundle's own decoding (or
    with `flags` overriding it)."""
    out = work / ("test-rouge-untuned.json" if flags else "test-rouge.json")
    env = s2s_environment(run.data)
    command = " ".join(
        ["s2s evaluate --model", MODEL, *run.test, "--metric rouge --limit", str(limit),
         "--json", str(out.resolve()), flags]
    )
    subprocess.run(["bash", "-e", "-c", command], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text("utf-8"))["rouge"]


def main() -> None:
    args = recipe_arguments(__doc__, "headline_quality", RUNS)

    def measure(run: RecipeRun, work: Path) -> dict[str, Any]:
        return {
            **training_info(work / MODEL),
            **score(run, work, args.limit),
            "model_untuned_decoding": score(run, work, args.limit, UNTUNED)["model"],
        }

    results = run_recipes(RUNS, args, MODEL, measure)
    rows = [
        {"corpus": name, "system": system, "unit": result["unit"], **result[system]}
        for name, result in results.items()
        for system in ("model", "model_untuned_decoding", "lead_sentence", "lead_n")
        if system in result
    ]
    print(
        format_table(
            rows,
            [("corpus", "corpus"), ("system", "system"), ("unit", "unit"),
             ("rouge1_f1", "R-1"), ("rouge2_f1", "R-2"), ("rougeL_f1", "R-L"),
             ("repeat_share", "repeats")],
        )
    )


if __name__ == "__main__":
    main()
