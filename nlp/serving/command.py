"""`s2s export`: write a model bundle as a TensorFlow SavedModel for TensorFlow Serving.

The SavedModel's `generate` signature runs the project's decoder (greedy, beam search,
sampling) inside the graph; `score` gives the teacher-forced log-likelihood of targets.
Tokenizer, vocabulary, config and decoding defaults are copied to EXPORT_DIR/assets/
(assets/serving.json holds the text <-> ids recipe and the exported limits). A chat bundle's
retrieval, ranking and fallback settings (generated, retrieve, rerank, ...) are not exported:
they need its index and rankers outside the graph, and a warning names those it drops.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULTS_NOTE = "(the bundle's recommended decode options are always included)"


def register(subparsers: Any) -> None:
    """Add the `export` subcommand to the top-level `s2s` parser."""
    parser = subparsers.add_parser(
        "export",
        help="export a model bundle as a TensorFlow SavedModel (decoder inside)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, help="model bundle directory")
    parser.add_argument("--out", required=True, type=Path, help="SavedModel directory to write")
    parser.add_argument(
        "--beam-sizes", type=_sizes, default=None, metavar="N,N,...",
        help=f"beam widths to trace (default 1,2,3,4,5,6,8,10) {DEFAULTS_NOTE}",
    )
    parser.add_argument(
        "--sample-counts", type=_sizes, default=None, metavar="N,N,...",
        help=f"n_best values for strategy sample (default 1,2,3,4,5) {DEFAULTS_NOTE}",
    )
    parser.add_argument(
        "--max-no-repeat-ngram", type=int, default=None, metavar="N",
        help="largest no_repeat_ngram a request may use (default 4)",
    )
    parser.set_defaults(func=run)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return sizes


def run(args: argparse.Namespace) -> int:
    from nlp.generation.loading import recommended_decoding
    from nlp.serving.export import (
        ExportLimits,
        export_bundle,
        not_exported,
        unexported_strategy,
    )

    settings = recommended_decoding(args.model)
    dropped = not_exported(settings.options) if settings is not None else {}
    if dropped:
        named = ", ".join(f"{name}={value}" for name, value in dropped.items())
        retrieves = " (the bot sends retrieved replies; the export's are all generated)" * (
            dropped.get("generated") is False)
        print(f"s2s export: warning: the bundle's {named} are not exported: they choose among "
              "retrieved and ranked candidates outside the graph, so the SavedModel's "
              f"generate answers with the decoder's own outputs{retrieves}", file=sys.stderr)
    strategy = unexported_strategy(settings.options) if settings is not None else {}
    if strategy:
        named = ", ".join(f"{name}={value}" for name, value in strategy.items())
        print(f"s2s export: warning: the bundle's {named} are not exported: the graph has no "
              "diverse beam; assets/serving.json's generate_defaults ask for a plain beam of "
              "its size", file=sys.stderr)
    given = {
        "beam_sizes": args.beam_sizes,
        "sample_counts": args.sample_counts,
        "max_no_repeat_ngram": args.max_no_repeat_ngram,
    }
    limits = ExportLimits(**{k: v for k, v in given.items() if v is not None})
    out = export_bundle(args.model, args.out, limits)
    print(f"SavedModel written to {out} (signatures: generate, score; assets in {out}/assets)")
    return 0
