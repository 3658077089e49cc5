"""`s2s corpus stats|convert`: the corpus layer on the command line.

Thin by design: arguments become `read_pairs` options and `PipelineOptions`, the work is done
by `nlp.corpus`, and the read report is printed to stderr at the end so that a user always sees
what was skipped and where. Exit codes: 0 ok, 1 a problem with --strict (or nothing kept),
2 bad usage (unknown format, missing file, options that do not fit the format).
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nlp.corpus.pipeline import (
    DUPLICATE,
    VALID,
    JsonlWriter,
    PipelineOptions,
    exclude_seen,
    pair_keys,
    process,
    split_pairs,
)
from nlp.corpus.readers import (
    FORMATS,
    LOG_FORMAT,
    options_for_file,
    read_pairs,
)
from nlp.corpus.readers.base import KNOWN_FIELD_PAIRS, SIDES
from nlp.corpus.records import CorpusError, FormatError, Pair, ReadReport
from nlp.text.scripts import HAN_CLASS
from nlp.util.fsutil import same_path

PERCENTILES = (50, 90, 95, 99)
# `corpus convert`'s split seed: not train.seed's default (an output split again by `s2s
# train` with the same seed and fraction would hold no pair out)
CONVERT_SEED = 1
# Vocabulary estimate units: one CJK character, a run of other word characters, or one mark.
_VOCAB_TOKEN = re.compile(rf"[{HAN_CLASS}]|[^\W{HAN_CLASS}]+|[^\w\s]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `corpus` with its `stats` and `convert` subcommands to a parent CLI."""
    corpus = subparsers.add_parser(
        "corpus", help="inspect and convert corpora", description="Inspect and convert corpora."
    )
    commands = corpus.add_subparsers(dest="corpus_command", required=True, metavar="COMMAND")

    stats = commands.add_parser(
        "stats",
        help="count pairs, skips, duplicates, lengths and vocabulary",
        description="Read corpora and print counts, length percentiles and a vocabulary "
        "estimate (after normalisation and the length filters).",
    )
    _add_input_arguments(stats)
    _add_pipeline_arguments(stats)
    stats.set_defaults(func=run_stats)

    convert = commands.add_parser(
        "convert",
        help="convert corpora to JSONL (optionally with a validation split)",
        description="Read corpora, normalise, filter and deduplicate the pairs, and write "
        '{"source", "target"} JSONL files atomically.',
    )
    _add_input_arguments(convert)
    _add_pipeline_arguments(convert)
    convert.add_argument(
        "--output", required=True, metavar="OUT.jsonl", help="training pairs are written here"
    )
    convert.add_argument(
        "--valid-output", metavar="V.jsonl", help="also write a validation split here"
    )
    convert.add_argument(
        "--valid-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="share of pairs for --valid-output (default: %(default)s)",
    )
    convert.add_argument(
        "--seed",
        type=int,
        default=CONVERT_SEED,
        help="seed of the content-hash split (default: %(default)s; not train.seed's default, "
        "so that `s2s train`'s own split of --output, without --valid, holds pairs out)",
    )
    convert.add_argument(
        "--exclude-corpus",
        action="extend",
        nargs="+",
        metavar="PATH",
        help="leave out every pair that occurs in these corpora (any format, detected; e.g. the "
        "training files, so a test split holds nothing the model trained on), and every "
        "conversation all of whose pairs occur there; the counts are reported",
    )
    convert.set_defaults(func=run_convert)


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        action="extend",
        nargs="+",
        required=True,
        metavar="PATH",
        help="corpus files or directories (several after one --input, e.g. a shell glob "
        "such as rss-news/2021-*, or --input repeated)",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="corpus format (default: detect from path and content)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop with exit code 1 at the first bad record"
    )
    add_reader_arguments(parser)


def add_cleaning_arguments(parser: argparse.ArgumentParser) -> None:
    """--strip-html and --strip-pattern: how text is cleaned as it is read (also by
    `s2s headlines`, so that articles are cleaned as the training sources were)."""
    parser.add_argument(
        "--strip-html",
        action=argparse.BooleanOptionalAction,
        help="turn HTML in text fields into its visible text (default: on for json and csv, "
        "off for the other formats)",
    )
    parser.add_argument(
        "--strip-pattern",
        action="append",
        metavar="SIDE=REGEX",
        help="remove every match of REGEX from the source or target (after --strip-html), "
        "e.g. 'target=^\\[视频\\]'; repeatable, applied in order (an article is a source)",
    )


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """The reader options, for every command that reads corpora (see `reader_options`)."""
    parser.add_argument("--encoding", help="file encoding (default: the format's own)")
    add_cleaning_arguments(parser)
    parser.add_argument(
        "--skip-pattern",
        action="append",
        metavar="SIDE=REGEX",
        help="leave out pairs whose source or target (as cleaned) REGEX matches anywhere "
        "(re.search), e.g. 'target=完整版'; repeatable, counted by pattern",
    )
    group = parser.add_argument_group("format options (only where the format has them)")
    for side, other in (("source", "target"), ("target", "source")):
        partners = ", ".join(
            f"{pair[SIDES.index(side)]} -> {pair[SIDES.index(other)]}"
            for pair in KNOWN_FIELD_PAIRS[1:]
        )
        group.add_argument(
            f"--{side}-field",
            help=f"jsonl/json: field holding the {side} (dotted path if nested); given alone, "
            f"the {other} field is its known partner ({partners}), else "
            f"'{KNOWN_FIELD_PAIRS[0][SIDES.index(other)]}'",
        )
    group.add_argument(
        "--records-field",
        metavar="PATH",
        help="json: field (dotted path) of the top-level object that holds the records array",
    )
    group.add_argument(
        "--columns",
        metavar="SRC,TGT",
        help="tsv/csv: source and target column, 0-based index or csv header name",
    )
    group.add_argument("--no-header", action="store_true", help="csv: the first row is data")
    group.add_argument("--delimiter", help="csv: field delimiter (default ',')")
    group.add_argument(
        "--context-turns",
        type=int,
        metavar="K",
        help="dailydialog/chatterbot/cornell/conv/chitchat: earlier turns prepended to the source "
        "(train on the result with --set data.context_turns=K; s2s train checks it)",
    )
    group.add_argument(
        "--min-human-label",
        type=int,
        metavar="K",
        help="lcsts-xml: keep records with human_label >= K",
    )
    group.add_argument(
        "--title-case",
        action="store_true",
        help="reuters: turn ALL CAPS titles into Title Case (tickers, dotted abbreviations and "
        "words the article also writes in capitals, such as USDA, kept)",
    )


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cleaning")
    group.add_argument(
        "--no-normalize",
        action="store_true",
        help="skip NFKC/whitespace normalisation (nlp.text.normalize_text)",
    )
    group.add_argument("--lowercase", action="store_true", help="lowercase both sides")
    group.add_argument("--no-dedupe", action="store_true", help="keep repeated pairs")
    group.add_argument(
        "--length-unit",
        choices=["chars", "tokens"],
        default="chars",
        help="unit of the length limits (tokens = whitespace-separated words)",
    )
    for side in ("source", "target"):
        group.add_argument(
            f"--min-{side}-length",
            type=int,
            default=1,
            metavar="N",
            help=f"drop pairs whose {side} is shorter (default: %(default)s)",
        )
        group.add_argument(
            f"--max-{side}-length",
            type=int,
            default=0,
            metavar="N",
            help=f"drop pairs whose {side} is longer (default: 0 = no limit)",
        )


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `read_pairs` options the user actually gave (so foreign ones can be refused).

    `args` comes from a parser given `add_reader_arguments`.
    """
    options: dict[str, Any] = {
        "source_field": args.source_field,
        "target_field": args.target_field,
        "records_field": args.records_field,
        "strip_html": args.strip_html,
        "delimiter": args.delimiter,
        "context_turns": args.context_turns,
        "min_human_label": args.min_human_label,
        "encoding": args.encoding,
        "header": False if args.no_header else None,
        "title_case": True if args.title_case else None,
        "strip_patterns": tuple(args.strip_pattern) if args.strip_pattern else None,
        "skip_patterns": tuple(args.skip_pattern) if args.skip_pattern else None,
    }
    if args.columns is not None:
        source, _, target = args.columns.partition(",")
        if not source.strip() or not target.strip():
            raise FormatError("--columns", 0, f"expected SRC,TGT, got {args.columns!r}")
        options["source_column"] = _column(source)
        options["target_column"] = _column(target)
    return {name: value for name, value in options.items() if value is not None}


def _column(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    return PipelineOptions(
        normalize=not args.no_normalize,
        lowercase=args.lowercase,
        dedupe=not args.no_dedupe,
        length_unit=args.length_unit,
        min_source_length=args.min_source_length,
        max_source_length=args.max_source_length,
        min_target_length=args.min_target_length,
        max_target_length=args.max_target_length,
    )


def _pairs(
    args: argparse.Namespace, report: ReadReport, excluded: list[str] | None = None
) -> Iterator[Pair]:
    """Processed pairs of all inputs; every input is checked before the first is read.

    With `--exclude-corpus`, those corpora are read first (each format detected, the same
    cleaning, so equal text gives equal keys) and what they hold is left out; the ids of the
    conversations left out whole go to `excluded`.
    """
    options = reader_options(args)
    streams = [
        read_pairs(path, args.format, report=report, strict=args.strict, **options)
        for path in args.input
    ]
    pairs = process(itertools.chain.from_iterable(streams), pipeline_options(args), report)
    if not getattr(args, "exclude_corpus", None):
        return pairs
    seen = set()
    for path in args.exclude_corpus:
        own = ReadReport()
        fmt, own_options = options_for_file(path, options)
        seen |= pair_keys(
            process(read_pairs(path, fmt, report=own, **own_options), pipeline_options(args), own)
        )
        print(f"excluding {own.kept} pairs of {path}", file=sys.stderr)
        if own.problems or not own.kept:
            # a file that excludes nothing excludes nothing silently otherwise (fields named
            # otherwise, another format's options): show why
            print(own.details(), file=sys.stderr)
        if not own.kept:
            raise FormatError(path, 0, "--exclude-corpus: no pair read from it, so it would "
                              "exclude nothing (see above)")
    return exclude_seen(pairs, seen, report, excluded)


def run_stats(args: argparse.Namespace) -> int:
    """Print counts, length percentiles and a vocabulary estimate; the report to stderr."""
    report = ReadReport()
    source_lengths, target_lengths = array("L"), array("L")
    vocabulary: set[str] = set()

    def consume(pairs: Iterator[Pair]) -> None:
        for pair in pairs:
            source_lengths.append(len(pair.source))
            target_lengths.append(len(pair.target))
            vocabulary.update(_VOCAB_TOKEN.findall(pair.source.lower()))
            vocabulary.update(_VOCAB_TOKEN.findall(pair.target.lower()))

    code = _run(args, report, consume)
    if code == 0:
        print(
            f"pairs kept: {report.kept} (read {report.read}, "
            f"skipped {sum(report.skipped.values())}, duplicates {report.skipped[DUPLICATE]})"
        )
        print(f"source chars: {describe_lengths(source_lengths)}")
        print(f"target chars: {describe_lengths(target_lengths)}")
        print(
            f"vocabulary estimate: {len(vocabulary)} distinct tokens "
            "(words, CJK characters and punctuation marks, lowercased)"
        )
    return code


def run_convert(args: argparse.Namespace) -> int:
    """Write the processed pairs (and an optional validation split) as JSONL, atomically."""
    if args.valid_output and same_path(args.valid_output, args.output):
        print("error: --valid-output must differ from --output", file=sys.stderr)
        return 2
    written: list[str] = []
    excluded: list[str] = []

    def consume(pairs: Iterator[Pair]) -> None:
        with JsonlWriter(args.output) as train:
            if args.valid_output:
                with JsonlWriter(args.valid_output) as valid:
                    for side, pair in split_pairs(pairs, args.valid_fraction, args.seed):
                        (valid if side == VALID else train).write(pair)
                    if not train.count + valid.count:
                        raise NothingKept  # aborts both writers: the files stay as they were
                written.append(f"{valid.count} to {args.valid_output}")
            else:
                for pair in pairs:
                    train.write(pair)
                if not train.count:
                    raise NothingKept
        written.insert(0, f"{train.count} pairs to {args.output}")
        if args.exclude_corpus:
            print(
                f"left out {len(excluded)} conversations found whole in --exclude-corpus",
                file=sys.stderr,
            )

    report = ReadReport()
    code = _run(args, report, consume, written, excluded)
    logs = [path for path, fmt in report.formats.items() if fmt.startswith(LOG_FORMAT)]
    if code == 0 and logs:
        # read as a log, a file's pairs stay out of retrieval indexes unless asked; the
        # output is plain pairs, and an index built from it would send them to others
        print(f"note: {', '.join(logs)} held what people wrote to the bot; {args.output} no "
              "longer says so: keep it out of the corpora you index (s2s index, or train "
              "with retrieval.index=false), or train on the log itself", file=sys.stderr)
    return code


class NothingKept(Exception):
    """A conversion kept no pair: its outputs are not written (`run_convert`), so a mistyped
    option never replaces a good file with an empty one."""


def _run(
    args: argparse.Namespace,
    report: ReadReport,
    consume: Callable[[Iterator[Pair]], None],
    written: list[str] | None = None,
    excluded: list[str] | None = None,
) -> int:
    """Feed the processed pairs to `consume`, then print the report; map errors to codes."""
    try:
        consume(_pairs(args, report, excluded))
    except NothingKept:
        _print_report(report)
        print("error: no pairs kept; no file written (an output that existed is unchanged)",
              file=sys.stderr)
        return 1
    except FormatError as exc:
        return _fail(report, exc, 2)
    except CorpusError as exc:  # a bad record with --strict
        return _fail(report, exc, 1)
    except (ValueError, OSError) as exc:
        return _fail(report, exc, 2)
    _print_report(report)
    if written:
        print("wrote " + " and ".join(written), file=sys.stderr)
    if not report.kept:
        print("error: no pairs kept", file=sys.stderr)
        return 1
    return 0


def _fail(report: ReadReport, error: Exception, code: int) -> int:
    if report.read:
        _print_report(report)
    print(f"error: {error}", file=sys.stderr)
    return code


def _print_report(report: ReadReport) -> None:
    """Formats (one line per format when many inputs share it, e.g. a glob of day folders),
    then the counts and problems."""
    by_format: dict[str, list[str]] = {}
    for path, fmt in report.formats.items():
        by_format.setdefault(fmt, []).append(path)
    for fmt, paths in by_format.items():
        where = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more inputs"
        print(f"format: {where}: {fmt}", file=sys.stderr)
    print(report.details(), file=sys.stderr)


def describe_lengths(lengths: Iterable[int]) -> str:
    """`p50 N  p90 N  p95 N  p99 N  max N  mean X` (nearest-rank percentiles)."""
    ordered = sorted(lengths)
    if not ordered:
        return "no pairs"
    parts = [
        f"p{q} {ordered[min(len(ordered) - 1, -(-q * len(ordered) // 100) - 1)]}"
        for q in PERCENTILES
    ]
    parts += [f"max {ordered[-1]}", f"mean {sum(ordered) / len(ordered):.1f}"]
    return "  ".join(parts)
