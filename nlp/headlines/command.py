"""`s2s headlines` (and scripts/generate_headlines.py): parse options, run one job.

Usage: ``s2s headlines --model DIR [INPUT|-] [-o OUTPUT|-] [--beam 5] [--n-best 3] ...``
Decoding starts from the model's recommended settings (its decoding.json); flags override.
``--runner beam`` runs the same job as an Apache Beam pipeline (``pip install .[beam]``):
``--beam-options="--runner=DataflowRunner --project=..."`` passes Beam's own flags (default:
the local DirectRunner), ``--num-shards N`` writes OUTPUT-00000-of-0000N shards instead of one
file in input order.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import Any

from nlp.corpus.command import add_cleaning_arguments
from nlp.corpus.readers.base import side_patterns
from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import add_decode_arguments, resolve_decoding
from nlp.generation.loading import LoadedModel, load_model, recommended_decoding
from nlp.headlines import input_format, readers, writers
from nlp.headlines.job import HeadlineJobOptions, generate_headlines
from nlp.headlines.readers import ReaderOptions
from nlp.util.arguments import positive_int

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
RUNNERS = ("in-process", "beam")


def register(subparsers: Any) -> None:
    """Add the `headlines` subcommand to the top-level `s2s` parser."""
    parser = subparsers.add_parser(
        "headlines",
        help="generate headlines for a file of articles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """All options of the command (shared with scripts/generate_headlines.py)."""
    parser.add_argument("--model", required=True, help="model bundle directory")
    parser.add_argument("input", nargs="?", default="-", help="articles file, - for stdin")
    parser.add_argument("-o", "--output", default="-", help="results file, - for stdout")
    io = parser.add_argument_group("input and output")
    io.add_argument(
        readers.FLAGS["format"], default="auto", choices=("auto", *input_format.FORMATS),
        help="how INPUT is laid out (default: detected from its name and content, as corpora "
        "are; .gz/.bz2/.xz are decompressed)",
    )
    io.add_argument(
        "--output-format", default="auto", choices=("auto", *writers.FORMATS),
        help="results as JSONL or TSV (default: from the output extension; JSONL otherwise)",
    )
    io.add_argument(
        readers.FLAGS["field"], help="JSONL article field (default: the one of "
        f"{', '.join(readers.ARTICLE_FIELDS)} there, or the first of a corpus pair such as "
        "description+title)",
    )
    io.add_argument(readers.FLAGS["id_field"], default=ReaderOptions.id_field,
                    help="JSONL id field (default: %(default)s)")
    io.add_argument(readers.FLAGS["column"], default=ReaderOptions.column,
                    help="TSV/CSV article column: 0-based index or header name")
    io.add_argument(readers.FLAGS["id_column"], help="TSV/CSV id column: index or header name")
    add_cleaning_arguments(parser)
    io.add_argument("--batch-size", type=positive_int, default=64, help="articles per decoder call")
    io.add_argument("--strict", action="store_true", help="stop at the first bad record")
    io.add_argument("--resume", action="store_true", help="complete an interrupted output file")
    io.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    io.add_argument("--quiet", action="store_true", help="no summary on stderr")
    scale = parser.add_argument_group("Apache Beam (--runner beam)")
    scale.add_argument(
        "--runner", default="in-process", choices=RUNNERS,
        help="in-process (default) or beam: an Apache Beam pipeline (pip install .[beam])",
    )
    scale.add_argument(
        "--beam-options", action="append", default=[], metavar="FLAGS",
        help="Beam pipeline flags, split like a shell line; give them with '=', e.g. "
        "--beam-options='--direct_num_workers=2 --direct_running_mode=multi_processing' "
        "(repeatable; default: the DirectRunner in this process)",
    )
    scale.add_argument(
        "--num-shards", type=int, default=None,
        help="write OUTPUT-00000-of-0000N shards (0: the runner chooses) instead of one file "
        "in input order",
    )
    add_decode_arguments(parser)


ModelLoader = Callable[..., LoadedModel]  # (model, *, jit_compile) -> the loaded model


def job_options(args: argparse.Namespace, decode: DecodeOptions) -> HeadlineJobOptions:
    """The job's options from parsed flags (the progress line only on a terminal by default)."""
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    return HeadlineJobOptions(
        decode=decode,
        reader=ReaderOptions(
            format=args.input_format,
            field=args.field,
            id_field=args.id_field,
            column=args.column,
            id_column=args.id_column,
            strip_html=args.strip_html,
            strip_patterns=side_patterns(args.strip_pattern or ()),
        ),
        output_format=args.output_format,
        batch_size=args.batch_size,
        strict=args.strict,
        resume=args.resume,
        progress=sys.stderr if show_progress else None,
    )


def run(args: argparse.Namespace) -> int:
    """Run the job; exit 0 (even with error records), 1 on a --strict or input failure,
    2 on bad options, 130 when interrupted (then --resume completes the output)."""
    if args.runner == "beam":
        return run_beam(args)
    if args.beam_options or args.num_shards is not None:
        print("error: --beam-options and --num-shards need --runner beam", file=sys.stderr)
        return EXIT_USAGE
    return run_with_loader(args, load_model)


def run_with_loader(args: argparse.Namespace, loader: ModelLoader) -> int:
    """`run` with the model loader injectable (tests serve a fast fake this way)."""
    try:
        loaded = loader(args.model, jit_compile=args.xla)
        generator, recommended = loaded.generator, loaded.decoding
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        decoding = resolve_decoding(args, recommended)
        options = job_options(args, decoding.options)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(decoding.describe(), file=sys.stderr)
    try:
        summary = generate_headlines(generator, args.input, args.output, options)
    except (OSError, ValueError) as exc:  # HeadlineInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: run again with --resume to complete the output", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(summary.summary(args.input), file=sys.stderr)
    return EXIT_OK


def run_beam(args: argparse.Namespace) -> int:
    """The job as a Beam pipeline (`nlp.headlines.beam_runner`); same exit codes as `run`."""
    if args.resume:
        print("error: --resume is for the in-process runner (a Beam run rewrites its output)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        from nlp.headlines import beam_runner as beam_job
    except ImportError as exc:
        print(f"error: --runner beam needs apache-beam ({exc}); pip install '.[beam]'",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        # the bundle's decoding.json without TensorFlow: the launcher only plans the
        # pipeline, the workers load the model
        recommended = recommended_decoding(args.model)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        decoding = resolve_decoding(args, recommended)
        base = job_options(args, decoding.options)  # the flags both runners share
        options = beam_job.BeamJobOptions(
            model=args.model,
            decode=decoding.options,
            reader=base.reader,
            output_format=base.output_format,
            batch_size=base.batch_size,
            strict=base.strict,
            num_shards=args.num_shards,
            jit_compile=args.xla,
            pipeline_args=[flag for text in args.beam_options for flag in shlex.split(text)],
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "verbose", False):
        beam_job.quiet_beam_logs()
    if not args.quiet:
        print(decoding.describe(), file=sys.stderr)
    try:
        summary = beam_job.run_pipeline(args.input, args.output, options)
    except (OSError, ValueError) as exc:  # HeadlineInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a failed pipeline: the runner wraps the worker's exception
        print(f"error: the Beam pipeline failed: {_last_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        print(summary.summary(args.input), file=sys.stderr)
    return EXIT_OK


def _last_line(exc: BaseException) -> str:
    """The worker's own message out of a runner's wrapped traceback."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
