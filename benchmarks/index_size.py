"""A learning curve of the retrieval index: what the bot sends when its index holds a seeded
share of the training pairs, the model and its dual encoder unchanged.

Reads a chat model `benchmarks/chat_quality.py` left in its work directory (run that first),
copies its bundle, rebuilds the copy's index from a seeded sample of the recipe's training
file with `s2s index` (the dual encoder kept), and scores the bot's replies to --limit test
posts drawn across conversations as chat_quality does (its tuned settings): BLEU-2,
embedding average, distinct-2 and the retrieved share, and Hits@1/20 of BM25 (whose document
frequencies come from the index).

    python -m benchmarks.index_size --recipe dailydialog-en [--work runs/chat_quality]
        [--sizes 5000,20000,all] [--limit 1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.chat_quality import MODEL, score
from benchmarks.common import RESULTS_DIR, format_table
from benchmarks.learning_curve import sample_pairs

TRAIN = "chat.jsonl"  # the recipes' training file (validation and test files stay out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="dailydialog-en")
    parser.add_argument("--work", type=Path, default=Path("runs") / "chat_quality")
    parser.add_argument("--sizes", default="5000,20000,all")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "index_size.json")
    args = parser.parse_args()
    work = args.work / args.recipe
    results: dict[str, Any] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            copy = Path(tmp) / f"work-{size}"
            shutil.copytree(work / MODEL / "model", copy / MODEL / "model")
            shutil.copy(work / "chat-test.jsonl", copy / "chat-test.jsonl")
            sample = Path(tmp) / f"index-{size}.jsonl"
            count = sample_pairs([work / TRAIN], None if size == "all" else int(size), 7, sample)
            subprocess.run([sys.executable, "-m", "s2s.cli", "index", "--model",
                            str(copy / MODEL), "--corpus", str(sample),
                            "--dual-encoder-minutes", "0", "--quiet"], check=True)
            figures = score(copy, args.limit, configurations=False)
            results[size] = {"indexed_pairs": count, **figures}
            rows.append({"indexed": count, **figures["bot"],
                         "hits_bm25": figures["hits"].get("hits@1/20 bm25")})
            args.out.write_text(json.dumps({args.recipe: results}, indent=2,
                                           ensure_ascii=False) + "\n")
    print(format_table(rows, [("indexed", "indexed pairs"), ("bleu_2", "BLEU-2"),
                              ("embedding_average", "emb. average"),
                              ("distinct_2", "distinct-2"), ("retrieved_share", "retrieved"),
                              ("hits_bm25", "Hits@1/20 BM25")]))


if __name__ == "__main__":
    main()
