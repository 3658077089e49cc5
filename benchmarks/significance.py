"""The statistics docs/BENCHMARKS.md quotes beside the benchmarks' own tables.

Sign tests. Where two models were scored on the same posts and distractors, a benchmark's
JSON holds a paired record: how many posts only the first model got right (`only_first`),
only the second (`only_second`) and both. Posts that both or neither got say nothing about
which model is better. If neither is, each of the n = only_first + only_second posts that
split them is equally likely to fall either way, so the two-sided exact binomial test of
only_second out of n at p = 1/2 (the sign test; McNemar's exact test) says how often chance
alone gives a split at least this uneven. Printed for every paired record in
benchmarks/results/*.json, beside the p the file itself records:

    python -m benchmarks.significance

Distinct-2 by prefix and by block. distinct-2 (distinct bigrams over all bigrams) falls as
replies accumulate, so figures over different numbers of replies do not compare. For the
bot's replies to a chat recipe's test posts (regenerated from the model that
`benchmarks.chat_quality` trained in its work directory, as that benchmark generates them:
`nlp.chat.offline.bot_replies` with the bundle's tuned settings), distinct-2 over the first
BLOCK, 2 x BLOCK, ... replies and over each block of BLOCK replies:

    python -m benchmarks.significance --replies-of runs/chat_quality/chat-en [--limit 1000]
        [--block 200]

scipy comes with gensim, a dependency of the project.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table
from nlp.metrics.chat_metrics import distinct_n

PAIRED_KEYS = ("only_first", "only_second")
SIGN_TEST_PREFIX = "sign_test"  # a sibling dict {record name: p} the benchmark wrote, if any


def sign_test_p(only_first: int, only_second: int) -> float:
    """Two-sided exact sign test of a paired comparison: the binomial test of `only_second`
    successes in `only_first + only_second` trials at p = 1/2 (1.0 when no post splits them)."""
    from scipy.stats import binomtest  # type: ignore[import-untyped]

    trials = only_first + only_second
    if trials == 0:
        return 1.0
    return float(binomtest(only_second, trials, 0.5, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class PairedRecord:
    """One paired comparison found in a results file."""

    file: str
    path: str  # the record's keys from the file's top, joined by "."
    only_first: int
    only_second: int
    recorded_p: float | None  # the p the file holds beside it, if it holds one

    @property
    def p(self) -> float:
        return sign_test_p(self.only_first, self.only_second)


def paired_records(data: Any, file: str = "", path: tuple[str, ...] = ()) -> Iterator[PairedRecord]:
    """Every dict holding `only_first` and `only_second` in a loaded JSON document, in file
    order, with the p its parent keeps under a `sign_test*` key of the same name."""
    if not isinstance(data, dict):
        return
    recorded = next(
        (value for key, value in data.items()
         if key.startswith(SIGN_TEST_PREFIX) and isinstance(value, dict)),
        {},
    )
    for key, value in data.items():
        if isinstance(value, dict) and all(k in value for k in PAIRED_KEYS):
            p = recorded.get(key)
            yield PairedRecord(
                file, ".".join((*path, key)), int(value["only_first"]),
                int(value["only_second"]), None if p is None else float(p),
            )
        else:
            yield from paired_records(value, file, (*path, key))


def distinct_by_prefix_and_block(
    replies: Sequence[str], block: int, unit: str, n: int = 2
) -> tuple[list[tuple[int, float]], list[tuple[int, int, float]]]:
    """(distinct-n over the first block, 2 x block, ... replies (and over all of them when
    their count is not a multiple), distinct-n of each whole block as (start, end, value))."""
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    ends = list(range(block, len(replies) + 1, block))
    if len(replies) % block:
        ends.append(len(replies))
    prefixes = [(end, distinct_n(replies[:end], n, unit)) for end in ends]
    blocks = [
        (start, start + block, distinct_n(replies[start : start + block], n, unit))
        for start in range(0, len(replies) - block + 1, block)
    ]
    return prefixes, blocks


def bot_replies_of(work: Path, limit: int) -> tuple[list[str], str]:
    """(the bot's replies to `limit` test posts, the unit distinct-n counts in) for a
    `benchmarks.chat_quality` work directory, on the posts that benchmark scores (drawn
    across conversations by `HitsDraw`, not the file's first ones, which cluster in a few
    conversations), generated as it generates them."""
    from benchmarks.chat_quality import MODEL, TEST, scored_draw, scored_pairs
    from nlp.chat.offline import bot_replies
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport
    from nlp.generation.generator import Generator
    from nlp.metrics.chat_metrics import chat_unit
    from nlp.text.normalize import normalize_text

    generator = Generator.from_bundle(work / MODEL)
    settings = generator.bundle.decoding
    if settings is None:
        raise ValueError(f"{work / MODEL}: no decoding settings (did s2s tune-decoding run?)")
    every = list(read_pairs(work / TEST, "jsonl", report=ReadReport()))
    pairs = scored_pairs(every, scored_draw(limit))
    posts = [normalize_text(p.source) for p in pairs]
    references = [normalize_text(p.target) for p in pairs]
    replies = bot_replies(generator, posts, settings.options)
    return replies, chat_unit(posts, references)


def sign_tests(results: Path) -> list[dict[str, Any]]:
    """A table row for every paired record of every JSON file in `results`."""
    rows = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        for record in paired_records(data, path.name):
            rows.append({
                "file": record.file, "comparison": record.path,
                "only_first": record.only_first, "only_second": record.only_second,
                "p": f"{record.p:.3f}",
                "recorded p": "" if record.recorded_p is None else f"{record.recorded_p:.3f}",
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help="the benchmarks' JSON files (sign tests)")
    parser.add_argument("--replies-of", type=Path, metavar="WORK",
                        help="a chat_quality recipe's work directory: distinct-2 by prefix and "
                        "block of its bot's replies instead of the sign tests")
    parser.add_argument("--limit", type=int, default=1000, help="test posts (--replies-of)")
    parser.add_argument("--block", type=int, default=200, help="replies a block (--replies-of)")
    args = parser.parse_args()
    if args.replies_of is None:
        print(format_table(sign_tests(args.results), [
            ("file", "file"), ("comparison", "comparison"), ("only_first", "only first"),
            ("only_second", "only second"), ("p", "sign test p"), ("recorded p", "recorded p"),
        ]))
        return
    replies, unit = bot_replies_of(args.replies_of, args.limit)
    prefixes, blocks = distinct_by_prefix_and_block(replies, args.block, unit)
    print(format_table(
        [{"replies": f"first {end}", "distinct_2": f"{value:.3f}"} for end, value in prefixes]
        + [{"replies": f"{start + 1}-{end}", "distinct_2": f"{value:.3f}"}
           for start, end, value in blocks],
        [("replies", "replies"), ("distinct_2", "distinct-2")],
    ))


if __name__ == "__main__":
    main()
