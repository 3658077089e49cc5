"""Headline ablation: the README's headline recipe with one model setting changed at a time.

Each variant runs the recipe of `benchmarks.headline_quality` (convert, `s2s train --task
headline`, `s2s tune-decoding`) with `--set` overrides added to the training command, in its
own work directory and at the same training budget, then scores the test set exactly as
`headline_quality` does: with the decoding the bundle carries ("tuned") and with the
decoder's untuned defaults. ROUGE-1/2/L and the share of headlines repeating a content token
or a bigram.

    python -m benchmarks.headline_ablation [--only headlines-en] [--limit 1000]
        [--minutes 20] [--tune-minutes 5] [--variant NAME ...]

The README's budgets are 20 minutes of training and 5 of tuning; other budgets are written
into the JSON (`train_minutes`, `tune_minutes`) and the table says which were used.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, read_results, write_json
from benchmarks.headline_quality import MODEL, RUNS, UNTUNED, RecipeRun, score, training_info
from benchmarks.recipes import read_recipe, run_script, with_budget

# name -> `section.key=value` overrides on top of the headline preset
VARIANTS: dict[str, tuple[str, ...]] = {
    "preset (chars, copy, no coverage)": (),
    "words tokenizer": ("tokenizer.kind={word_tokenizer}",),  # the corpus's (`RecipeRun`)
    "no copy": ("model.copy=false",),
    "coverage": ("model.coverage=true",),
}


def variant_overrides(run: RecipeRun, name: str) -> tuple[str, ...]:
    """The overrides of variant `name` on corpus `run`."""
    return tuple(item.format(word_tokenizer=run.word_tokenizer) for item in VARIANTS[name])


_TRAIN = "s2s train --task headline"


def variant_script(recipe: str, overrides: tuple[str, ...], tune_minutes: float) -> str:
    """The recipe with `overrides` added to its training command and another tuning budget."""
    if _TRAIN not in recipe:
        raise ValueError(f"the recipe has no `{_TRAIN}` command:\n{recipe}")
    sets = "".join(f" --set {item}" for item in overrides)
    script = recipe.replace(_TRAIN, _TRAIN + sets)
    return re.sub(r"(s2s tune-decoding .*--minutes )[\d.]+", rf"\g<1>{tune_minutes:g}", script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=[r.name for r in RUNS], action="append")
    parser.add_argument("--variant", choices=list(VARIANTS), action="append")
    parser.add_argument("--limit", type=int, default=1000, help="test pairs per corpus")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--tune-minutes", type=float, default=5.0, help="tuning budget")
    parser.add_argument("--work", type=Path, default=Path("runs") / "headline_ablation")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "headline_ablation.json")
    args = parser.parse_args()
    # the other corpora's and variants' results stay when re-running some (`--only`)
    results: dict[str, Any] = read_results(args.out)
    rows = []
    for run in RUNS:
        if args.only and run.name not in args.only:
            continue
        for name in VARIANTS:
            if args.variant and name not in args.variant:
                continue
            overrides = variant_overrides(run, name)
            work = args.work / run.name / re.sub(r"\W+", "-", name).strip("-")
            script = variant_script(
                with_budget(read_recipe(run.name), args.minutes), overrides, args.tune_minutes
            )
            minutes = run_script(script, work, run.data, work / "recipe.log")
            tuned = score(run, work, args.limit)
            untuned = score(run, work, args.limit, UNTUNED)["model"]
            info = training_info(work / MODEL)
            entry = {
                "overrides": list(overrides),
                "train_minutes": args.minutes,
                "tune_minutes": args.tune_minutes,
                "recipe_minutes": round(minutes, 1),
                "epochs_run": info["epochs_run"],
                "kept_epoch": info["kept_epoch"],
                "best": info["best"],
                "decoding": info["decoding"],
                "unit": tuned["unit"],
                "tuned": tuned["model"],
                "untuned": untuned,
                "lead_sentence": tuned["lead_sentence"],
            }
            results.setdefault(run.name, {})[name] = entry
            write_json(args.out, results)  # keep what is measured if a later variant fails
            for decoding in ("tuned", "untuned"):
                rows.append({"corpus": run.name, "variant": name, "decoding": decoding,
                             "epochs": entry["epochs_run"], "kept": entry["kept_epoch"],
                             **entry[decoding]})
    print(f"training budget {args.minutes:g} min, tuning {args.tune_minutes:g} min")
    print(
        format_table(
            rows,
            [("corpus", "corpus"), ("variant", "variant"), ("decoding", "decoding"),
             ("epochs", "epochs"), ("kept", "kept epoch"), ("rouge1_f1", "R-1"),
             ("rouge2_f1", "R-2"), ("rougeL_f1", "R-L"), ("repeat_share", "repeats")],
        )
    )


if __name__ == "__main__":
    main()
