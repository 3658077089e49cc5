"""`s2s headlines` (and scripts/generate_headlines.py): parse options, run one job.

Usage: ``s2s headlines --model DIR [INPUT|-] [-o OUTPUT|-] [--beam 5] [--n-best 3] ...``
Decoding starts from the model's recommended settings (its decoding.json); flags override.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlp.decode_args import add_decode_arguments, resolve_decoding
from nlp.decode_settings import DecodeSettings
from nlp.decoding import DecodeOptions
from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.headlines import readers, writers
from nlp.headlines.job import HeadlineJobOptions, generate_headlines
from nlp.headlines.readers import HeadlineInputError, ReaderOptions
from nlp.text_generator import TextGenerator

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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
        "--input-format", default="auto", choices=("auto", *readers.FORMATS),
        help="how INPUT is laid out (default: from its extension; plain text otherwise)",
    )
    io.add_argument(
        "--output-format", default="auto", choices=("auto", *writers.FORMATS),
        help="results as JSONL or TSV (default: from the output extension; JSONL otherwise)",
    )
    io.add_argument("--field", help="JSONL article field (default: article, source, text)")
    io.add_argument("--id-field", default="id", help="JSONL id field (default: id)")
    io.add_argument(
        "--column", default="-1", help="TSV/CSV article column: 0-based index or header name"
    )
    io.add_argument("--id-column", help="TSV/CSV id column: index or header name")
    io.add_argument("--batch-size", type=int, default=64, help="articles per decoder call")
    io.add_argument("--strict", action="store_true", help="stop at the first bad record")
    io.add_argument("--resume", action="store_true", help="complete an interrupted output file")
    io.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    io.add_argument("--quiet", action="store_true", help="no summary on stderr")
    add_decode_arguments(parser)


GeneratorLoader = Callable[..., tuple[TextGenerator, DecodeSettings | None]]


def load_generator(
    model: str, *, jit_compile: bool = XLA_BY_DEFAULT
) -> tuple[TextGenerator, DecodeSettings | None]:
    """The bundle's `Generator` (TensorFlow loads here) and its recommended decoding settings."""
    from nlp.generator import Generator

    generator = Generator.from_bundle(Path(model), jit_compile=jit_compile)
    return generator, generator.bundle.decoding


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
    return run_with_loader(args, load_generator)


def run_with_loader(args: argparse.Namespace, loader: GeneratorLoader) -> int:
    """`run` with the generator loader injectable (tests serve a fast fake this way)."""
    try:
        generator, recommended = loader(args.model, jit_compile=args.xla)
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
    except HeadlineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: run again with --resume to complete the output", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(summary.summary(args.input), file=sys.stderr)
    return EXIT_OK
