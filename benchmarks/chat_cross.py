"""The English chat recipes' models on each other's test conversations: which English
recipe makes the better default bot, measured on DailyDialog's held-out dialogues and on the
held-out chitchat conversations alike.

Reads the models `benchmarks/chat_quality.py` left in its work directory (run that first) and
scores each English model's bot (its tuned settings, retrieval and ranker) on every English
recipe's test file, as chat_quality scores its own: --limit posts drawn at random across
conversations, what the bot sends (BLEU-2, embedding average, distinct-2, the retrieved
share) and Hits@1/20 by every ranker.

    python -m benchmarks.chat_cross [--work runs/chat_quality] [--limit 1000]
        [--models chat-en dailydialog-en OTHER]

--models adds work directories laid out like a recipe's (`runs/chat/model`), e.g. a model
trained on both recipes' training files, scored on the same test files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.chat_quality import MODEL, TEST, score
from benchmarks.common import RESULTS_DIR, format_table, read_results

ENGLISH = ("chat-en", "dailydialog-en")
COLUMNS = [
    ("model", "model"), ("test", "test"), ("hits", "Hits@1/20 (ranker)"),
    ("bleu_2", "BLEU-2"), ("embedding_average", "emb. average"),
    ("distinct_2", "distinct-2"), ("top5_reply_share", "top-5 share"),
    ("retrieved_share", "retrieved"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs") / "chat_quality")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "chat_cross.json")
    parser.add_argument("--models", nargs="+", default=list(ENGLISH),
                        help="work directories of the models scored (default: the recipes')")
    args = parser.parse_args()
    results: dict[str, Any] = read_results(args.out)  # other models' entries stay
    rows = []
    for model in args.models:
        for test in ENGLISH:
            if not (args.work / model / MODEL).exists():
                continue
            figures = score(args.work / model, args.limit, args.work / test / TEST,
                            configurations=False)
            ranker = figures["decoding"]["details"].get("ranker", "likelihood")
            table = "hits@1/20" if ranker == "likelihood" else f"hits@1/20 {ranker}"
            results[f"{model} on {test}"] = figures
            rows.append({"model": model, "test": test, **figures["bot"],
                         "hits": f"{figures['hits'].get(table, float('nan')):.3f} ({ranker})"})
            args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(format_table(rows, COLUMNS))


if __name__ == "__main__":
    main()
