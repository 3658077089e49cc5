"""Retrieve-and-refine against the plain chat model: the dailydialog-en recipe run verbatim
but for one setting, `--set data.retrieve_refine=true` on its `s2s train` line (the encoder
reads the message, then the reply of the nearest training post; Weston, Dinan & Miller 2018),
tuned and scored exactly as `benchmarks/chat_quality.py` scores the recipe's own model:
the bot's replies to --limit test posts drawn across conversations, its Hits@1/20 by every
ranker, and every tuner configuration. Compare with chat_quality's dailydialog-en entry.

    python -m benchmarks.refine_quality [--work runs/refine_quality] [--limit 1000] [--reuse]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.chat_quality import BASELINES, MODEL, RUNS, score
from benchmarks.common import RESULTS_DIR, write_json
from benchmarks.recipes import read_recipe, run_script

RECIPE = "dailydialog-en"
REFINE = "--set data.retrieve_refine=true"


def refined_recipe() -> str:
    """The recipe with retrieve-and-refine on its one `s2s train` line."""
    script = read_recipe(RECIPE)
    head, sep, rest = script.partition("s2s train --task chat ")
    if not sep:
        raise ValueError(f"recipe {RECIPE} has no `s2s train --task chat` line")
    return f"{head}{sep}{REFINE} {rest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs") / "refine_quality")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "refine_quality.json")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--baselines", action="store_true",
                        help="score only the bot and chat_quality's baselines beside it")
    args = parser.parse_args()
    run = next(r for r in RUNS if r.name == RECIPE)
    script = refined_recipe()
    entry: dict = {"recipe": script}
    if not (args.reuse and (args.work / MODEL / "model").exists()):
        entry["recipe_minutes"] = round(
            run_script(script, args.work, run.data, args.work / "recipe.log"), 1)
    entry.update(score(args.work, args.limit,
                       configurations=BASELINES if args.baselines else True))
    write_json(args.out, {RECIPE + " retrieve-and-refine": entry})
    bot = entry["bot"]
    print(f"retrieve-and-refine on {RECIPE}: BLEU-2 {bot['bleu_2']:.2f}, embedding average "
          f"{bot.get('embedding_average', float('nan')):.4f}, distinct-2 {bot['distinct_2']:.3f}, "
          f"retrieved {bot.get('retrieved_share', 0):.3f}; hits {entry['hits']}")


if __name__ == "__main__":
    main()
