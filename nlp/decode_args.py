"""Command-line flags for the shared decoder, used by every command that generates text."""

from __future__ import annotations

import argparse

from nlp.decoding.options import DecodeOptions


def add_decode_arguments(parser: argparse.ArgumentParser, *, max_length: int = 30) -> None:
    """--beam/--greedy/--sample and the decoder's options, passed straight to DecodeOptions."""
    group = parser.add_argument_group("decoding")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        "--beam", type=int, default=5, metavar="K", help="beam search of width K (default 5)"
    )
    choice.add_argument("--greedy", action="store_true", help="greedy search")
    choice.add_argument(
        "--sample",
        type=float,
        metavar="T",
        help="sampling with temperature T (see --top-k, --top-p, --sample-seed)",
    )
    group.add_argument("--top-k", type=int, default=0, help="sampling: only the K best tokens")
    group.add_argument("--top-p", type=float, default=1.0, help="sampling: nucleus mass P")
    group.add_argument("--sample-seed", type=int, help="sampling: seed for repeatable output")
    group.add_argument(
        "--max-length",
        type=int,
        default=max_length,
        help=f"at most this many output tokens (default {max_length})",
    )
    group.add_argument(
        "--max-length-ratio",
        type=float,
        default=0.0,
        help="also at most RATIO x source length tokens (0: off)",
    )
    group.add_argument(
        "--min-length",
        type=int,
        default=0,
        help="the end token is suppressed before this many tokens",
    )
    group.add_argument(
        "--length-penalty",
        type=float,
        default=0.0,
        help="GNMT length penalty alpha (0: off; 0.6-1.0 favours longer outputs)",
    )
    group.add_argument(
        "--coverage-penalty", type=float, default=0.0, help="GNMT coverage penalty beta (0: off)"
    )
    group.add_argument(
        "--no-repeat-ngram",
        type=int,
        default=0,
        metavar="N",
        help="never produce the same N-gram twice in one output (0: off)",
    )
    group.add_argument("--allow-unk", action="store_true", help="let the decoder emit <unk>")
    group.add_argument("--n-best", type=int, default=1, help="keep the K best outputs")
    group.add_argument(
        "--xla",
        action="store_true",
        help="compile the decoder with XLA: faster per sentence on CPU, but every new batch "
        "size and source-length bucket compiles once (seconds); pays off for large jobs",
    )


def decode_options(args: argparse.Namespace) -> DecodeOptions:
    """DecodeOptions from the flags of `add_decode_arguments` (ValueError if inconsistent)."""
    if args.greedy:
        strategy, width = "greedy", 1
    elif args.sample is not None:
        strategy, width = "sample", 1
    else:
        strategy, width = "beam", args.beam
    return DecodeOptions(
        strategy=strategy,
        beam_size=width,
        temperature=args.sample if args.sample is not None else 1.0,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.sample_seed,
        max_length=args.max_length,
        max_length_ratio=args.max_length_ratio,
        min_length=args.min_length,
        length_penalty=args.length_penalty,
        coverage_penalty=args.coverage_penalty,
        no_repeat_ngram=args.no_repeat_ngram,
        suppress_unk=not args.allow_unk,
        n_best=args.n_best,
    )
