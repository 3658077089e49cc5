"""What preparing a large corpus for training costs, stage by stage: pairs/s and peak
memory, at several sizes.

Runs what `s2s train` runs before its first step, through the same function
(`nlp.training.prepare.prepare_examples`), each size in a fresh process (peak RSS only grows):

    read       read, clean and normalise the corpus (`load_pairs`), take the share, split off
               the validation pairs (`train_valid`)
    fit        train the tokenizer when it learns (sentencepiece kinds; nothing otherwise)
    tokenize   every training and validation text tokenized once, by `workers` processes
               (one, this process, below `POOL_MIN_PAIRS` pairs)
    vocab      count the training tokens, build the vocabulary (and the truecaser)
    encode     token lists -> ids, training and validation
    peak RSS   of the measuring process, and of the largest tokenizing worker (sampled)

The share is taken after reading, so "read" is always the whole corpus; the sizes show how
time and memory grow with corpus size. Corpora (under ../shared/corpora):

    subtitles  dgk .conv TV subtitles, jieba (the chat-zh tokenizer)
    chat-zh    the chat-zh recipe's training corpora: LCCC (toy_train.txt) and the
               subtitles, jieba, vocab.max_size=10000
    chitchat   chitchat-dataset's dataset.json, words (the chat-en tokenizer)
    xwlb       CCTV news JSONL, the headline preset (chars + placeholders)

    python -m benchmarks.data_pipeline [--only NAME] [--shares 0.1 0.3 1.0] [--workers N]

`--workers 1` tokenizes in one process whatever the size (the baseline the pool is compared
with). Writes benchmarks/results/data_pipeline.json.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    RESULTS_DIR,
    ChildrenPeakRss,
    format_table,
    peak_rss_mb,
    run_isolated,
    write_json,
)
from benchmarks.recipes import training_settings

if TYPE_CHECKING:
    from nlp.corpus.records import Pair
    from nlp.util.config import ExperimentConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
RESULTS = RESULTS_DIR / "data_pipeline.json"


@dataclass(frozen=True)
class Source:
    """Corpus files of one format (`CorpusSpec`)."""

    paths: tuple[str, ...]
    fmt: str
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Corpus:
    name: str
    sources: tuple[Source, ...]
    settings: tuple[str, ...]  # `--set` values, after the task preset
    task: str

    def present(self) -> bool:
        return all(s.paths and all(Path(p).exists() for p in s.paths) for s in self.sources)


def _chitchat() -> tuple[str, ...]:
    try:
        import importlib.resources

        return (str(importlib.resources.files("chitchat_dataset") / "dataset.json"),)
    except ImportError:
        return ()


def _xwlb() -> tuple[str, ...]:
    return tuple(str(p) for p in sorted((SHARED / "headlines-zh" / "xwlb").glob("*.jsonl")))


SUBTITLES = Source((str(SHARED / "dialogue-zh" / "dgk-subtitles"),), "conv")


@functools.cache
def corpora() -> list[Corpus]:
    """The corpora the benchmarks read; chat-zh's and the subtitles' settings are the chat-zh
    recipe's own (tokenizer, vocabulary, softmax), chitchat's the chat-en recipe's, read from
    the README when first asked for, not at import."""
    chat_zh = training_settings("chat-zh")
    # the chat-en recipe's training (its ranking loss and unlikelihood cost time a step)
    # but its packaged word vectors, which start the model and do not change a step's work
    chat_en = tuple(setting for setting in training_settings("chat-en")
                    if not setting.startswith("model.pretrained_embeddings="))
    return [
        Corpus("subtitles", (SUBTITLES,), chat_zh, "chat"),
        Corpus(
            "chat-zh",
            (Source((str(SHARED / "dialogue-zh" / "lccc" / "toy_train.txt"),), "lccc"),
             SUBTITLES),
            chat_zh,
            "chat",
        ),
        Corpus("chitchat", (Source(_chitchat(), "chitchat"),), chat_en, "chat"),
        Corpus("xwlb", (Source(_xwlb(), "jsonl", (("source_field", "content"),
                                                  ("target_field", "title"),
                                                  ("strip_html", True))),),
               (), "headline"),
    ]


def corpus_config(corpus: Corpus) -> ExperimentConfig:
    """The `ExperimentConfig` `s2s train --task TASK --set ...` starts from for `corpus`."""
    from nlp.util.config import ExperimentConfig, task_preset

    return ExperimentConfig().with_overrides([*task_preset(corpus.task), *corpus.settings])


def read_corpus(corpus: Corpus, config: ExperimentConfig) -> list[Pair]:
    """Every pair of `corpus`, read and normalised as `s2s train --corpus` reads them."""
    from nlp.training.corpus_io import CorpusSpec, load_pairs

    return [
        pair
        for source in corpus.sources
        for pair in load_pairs(
            CorpusSpec(tuple(Path(p) for p in source.paths), source.fmt, options=source.options),
            config.data,
        )
    ]


def measure(corpus: Corpus, share: float, workers: int | None) -> dict[str, Any]:
    """One size of one corpus, stage by stage (run in a fresh process)."""
    from nlp.training.corpus_io import train_valid
    from nlp.training.prepare import prepare_examples, workers_for

    config = corpus_config(corpus)
    started = time.perf_counter()
    pairs = read_corpus(corpus, config)
    pairs = pairs[: max(1, round(len(pairs) * share))]
    train, valid = train_valid(pairs, None, config.train.valid_fraction, config.train.seed)
    ends = {"read": time.perf_counter()}

    def stage(name: str) -> None:
        ends[name] = time.perf_counter()

    with ChildrenPeakRss() as workers_rss:
        codec, train_examples, valid_examples, _ = prepare_examples(
            config, train, valid, workers=workers, stage=stage
        )
    seconds = dict(zip(STAGES, _durations(started, [ends[name] for name in STAGE_NAMES]),
                       strict=True))
    total = ends[STAGE_NAMES[-1]] - started
    return {
        "corpus": corpus.name,
        "share": share,
        "pairs": len(pairs),
        "examples": len(train_examples) + len(valid_examples),
        "vocabulary": len(codec.vocab),
        "workers": workers_for(len(train) + len(valid), workers),
        **seconds,
        "total_s": round(total, 1),
        "pairs_per_s": round(len(pairs) / total),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "worker_peak_rss_mb": round(workers_rss.peak_mb, 1),
    }


# The stages `prepare_examples` reports (after "read", timed here), and their columns.
STAGE_NAMES = ("read", "tokenizer fit", "tokenize", "vocabulary", "encode")
STAGES = ("read_s", "fit_s", "tokenize_s", "vocab_s", "encode_s")


def _durations(started: float, ends: list[float]) -> list[float]:
    return [round(end - begin, 1) for begin, end in zip([started, *ends], ends, strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[c.name for c in corpora()])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument(
        "--workers", type=int, help="tokenizing processes (default: every core; 1: no pool)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for corpus in corpora():
        if args.only and corpus.name not in args.only:
            continue
        if not corpus.present():
            print(f"{corpus.name}: not found, skipped")
            continue
        for share in args.shares:
            rows.append(run_isolated(measure, corpus, share, args.workers))
            print(rows[-1], flush=True)
    write_json(args.out, {"rows": rows})
    print(format_table(rows, [(k, k) for k in rows[0]] if rows else []))


if __name__ == "__main__":
    main()
