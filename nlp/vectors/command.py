"""`s2s embeddings`: train word vectors whose words are a model's tokens (gensim)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nlp.corpus.command import add_reader_arguments, reader_options
from nlp.util.config import TASK_PRESETS, ExperimentConfig, task_preset
from nlp.vectors.files import GENSIM_SUFFIXES
from nlp.vectors.training import ALGORITHMS, VectorSettings

SENTENCEPIECE_KINDS = ("sentencepiece", "jieba+sentencepiece")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "embeddings",
        help="train word vectors for model.pretrained_embeddings",
        description="Train word2vec or fastText vectors (gensim) on corpora and/or plain text, "
        "tokenized exactly as a model config tokenizes (the same --task, --config and --set as "
        "`s2s train`, or --like an existing run), so the vectors' words are the model's "
        "tokens. Pass the output to `s2s train --set model.pretrained_embeddings=OUT`. "
        f"Output by suffix: {'/'.join(GENSIM_SUFFIXES)} gensim KeyedVectors, .bin word2vec "
        "binary, else word2vec text.",
    )
    parser.add_argument("--out", type=Path, required=True, help="vectors file to write")
    parser.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="corpora in any format `s2s train` reads (both sides of every pair are used)",
    )
    parser.add_argument("--format", default="auto", help="format of --corpus (default: detect)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record")
    add_reader_arguments(parser)
    parser.add_argument(
        "--text",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="plain unlabelled text files, one document a line",
    )
    parser.add_argument("--like", type=Path, help="tokenize as this run or bundle does")
    parser.add_argument("--task", choices=sorted(TASK_PRESETS), help="as `s2s train --task`")
    parser.add_argument("--config", type=Path, help="as `s2s train --config`")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="as `s2s train --set` (only the tokenizer.* settings matter here)",
    )
    defaults = VectorSettings()
    parser.add_argument(
        "--algorithm", choices=ALGORITHMS, default=defaults.algorithm,
        help="word2vec, or fasttext (also learns character n-grams)",
    )
    parser.add_argument(
        "--dim",
        type=int,
        default=defaults.dim,
        help=f"vector width (default {defaults.dim}; best equal to model.embedding_dim)",
    )
    parser.add_argument("--window", type=int, default=defaults.window,
                        help=f"context tokens on each side (default {defaults.window})")
    parser.add_argument("--min-count", type=int, default=defaults.min_count,
                        help=f"rarer tokens get no vector (default {defaults.min_count})")
    parser.add_argument(
        "--vector-epochs", type=int, default=defaults.epochs, help="passes over the text"
    )
    parser.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="processes/threads (default: every core)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="gensim's seed (its threads still order updates freely)")
    parser.set_defaults(func=run_embeddings)


def run_embeddings(args: argparse.Namespace) -> int:
    from nlp.vectors.training import build_vectors

    if not args.corpus and not args.text:
        raise ValueError("give --corpus and/or --text: what to train the vectors on")
    codec = tokenizing_codec(args)
    settings = VectorSettings(
        algorithm=args.algorithm,
        dim=args.dim,
        window=args.window,
        min_count=args.min_count,
        epochs=args.vector_epochs,
        skip_gram=not args.cbow,
        workers=args.workers,
        seed=args.seed,
    )
    started = time.monotonic()
    tokenized, count = build_vectors(_texts(args), codec, settings, args.out)
    print(
        f"{count:,} vectors of width {settings.dim} ({settings.algorithm}) from "
        f"{tokenized.texts:,} texts, {tokenized.tokens:,} tokens "
        f"({codec.config.tokenizer.kind} tokens) in {time.monotonic() - started:.0f} s "
        f"-> {args.out}",
        file=sys.stderr,
    )
    if tokenized.skipped_tokens:
        print(f"{tokenized.skipped_tokens} tokens with spaces left out", file=sys.stderr)
    return 0


def tokenizing_codec(args: argparse.Namespace) -> Any:
    """The codec whose `text_tokens` the vectors' words come from: a run's or bundle's own
    (--like), or a fresh one for the config (rule-based tokenizers need no training)."""
    from nlp.generation.codec import TextCodec
    from nlp.tokenizers import build_tokenizer
    from nlp.tokenizers.vocab import Vocabulary

    if args.like is not None:
        if args.task or args.config or args.set:  # the run's tokenizer is the one: no other
            raise ValueError("--like takes the run's own tokenizer; --task, --config and --set "
                             "would set another: give --like alone, or those without it")
        directory = _codec_directory(args.like)
        return TextCodec.load(ExperimentConfig.load(directory / "config.json"), directory)
    config = ExperimentConfig.load(args.config) if args.config else ExperimentConfig()
    sets = [*task_preset(args.task), *args.set] if args.task else list(args.set)
    config = config.with_overrides(sets)
    if config.tokenizer.kind in SENTENCEPIECE_KINDS:
        raise ValueError(
            f"tokenizer.kind={config.tokenizer.kind} learns its pieces from a model's training "
            "corpus; give --like RUN (a run or bundle of that tokenizer) so the vectors' words "
            "are that model's pieces"
        )
    return TextCodec(config, build_tokenizer(config.tokenizer), Vocabulary())


def _codec_directory(path: Path) -> Path:
    """A bundle (a run's best model, `bundle.resolve`), else a run's own `run/` directory,
    which holds the tokenizer before any epoch has ended."""
    from nlp.generation.bundle import resolve

    for candidate in (resolve(path), path / "run"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no config.json (a run directory or a model bundle)")


def _texts(args: argparse.Namespace) -> Iterator[str]:
    """Every text, streamed: both sides of each corpus pair, then each non-empty line."""
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport

    report = ReadReport()
    options = reader_options(args)
    for path in args.corpus:
        for pair in read_pairs(path, args.format, report=report, strict=args.strict, **options):
            yield pair.source
            yield pair.target
    if args.corpus:
        print(f"corpora: {report.details()}", file=sys.stderr)
    for path in args.text:
        yield from _lines(path)


def _lines(path: Path) -> Iterator[str]:
    from nlp.vectors.files import numbered_lines

    for _, line in numbered_lines(path):
        if line.strip():
            yield line
