"""Command-line flags for the shared decoder, used by every command that generates text.

Every flag defaults to "not given" (None, or False for switches), never to a value: the
starting point is the model's own recommended settings (`decoding.json` in the bundle, see
`nlp.decode_settings`), and only flags the user typed replace them. `resolve_decoding` does
the merge and says in one line which settings were used and what was overridden.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from nlp.decode_settings import DecodeSettings
from nlp.decoding.options import RERANK_NAMES, DecodeOptions

# DecodeOptions field <- argparse dest, for the flags that set one field each.
_FIELD_FLAGS: tuple[tuple[str, str], ...] = (
    ("top_k", "top_k"),
    ("top_p", "top_p"),
    ("seed", "sample_seed"),
    ("max_length", "max_length"),
    ("max_length_ratio", "max_length_ratio"),
    ("min_length", "min_length"),
    ("length_penalty", "length_penalty"),
    ("coverage_penalty", "coverage_penalty"),
    ("no_repeat_ngram", "no_repeat_ngram"),
    ("n_best", "n_best"),
    ("diversity_penalty", "diversity_penalty"),
    ("rerank", "rerank"),
    ("mmi_lambda", "mmi_lambda"),
    ("mmi_gamma", "mmi_gamma"),
    ("length_bonus", "length_bonus"),
)
_MODEL = "default: the model's setting"


def add_decode_arguments(parser: argparse.ArgumentParser, *, xla: bool = True) -> None:
    """--beam/--greedy/--sample and the decoder's options; unset flags keep the model's.

    `xla=False` leaves out --xla, for commands whose model loading does not offer it."""
    group = parser.add_argument_group(
        "decoding", "Unset flags keep the model's recommended settings (decoding.json)."
    )
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--beam", type=int, metavar="K", help=f"beam search of width K ({_MODEL})")
    choice.add_argument("--greedy", action="store_true", help="greedy search")
    choice.add_argument(
        "--sample",
        type=float,
        metavar="T",
        help="sampling with temperature T (see --top-k, --top-p, --sample-seed)",
    )
    choice.add_argument(
        "--diverse-beam",
        type=int,
        metavar="G",
        help="diverse beam search: G groups sharing the beam (its width rounded to a multiple "
        "of G), kept apart by --diversity-penalty",
    )
    group.add_argument(
        "--diversity-penalty", type=float, help="diverse beam: penalty per earlier group's token"
    )
    group.add_argument("--top-k", type=int, help="sampling: only the K best tokens (0: all)")
    group.add_argument("--top-p", type=float, help="sampling: nucleus mass P (1: all)")
    group.add_argument("--sample-seed", type=int, help="sampling: seed for repeatable output")
    group.add_argument("--max-length", type=int, help=f"at most this many output tokens ({_MODEL})")
    group.add_argument(
        "--max-length-ratio", type=float, help="also at most RATIO x source length tokens (0: off)"
    )
    group.add_argument(
        "--min-length", type=int, help="the end token is suppressed before this many tokens"
    )
    group.add_argument(
        "--length-penalty",
        type=float,
        help="GNMT length penalty alpha (0: off; 0.6-1.0 favours longer outputs)",
    )
    group.add_argument("--coverage-penalty", type=float, help="GNMT coverage penalty beta (0: off)")
    group.add_argument(
        "--no-repeat-ngram",
        type=int,
        metavar="N",
        help="never produce the same N-gram twice in one output (0: off)",
    )
    group.add_argument(
        "--rerank",
        choices=RERANK_NAMES,
        help="re-rank the n-best list by MMI (needs the companion LM or reverse model)",
    )
    group.add_argument("--mmi-lambda", type=float, help="MMI: weight of the companion score")
    group.add_argument(
        "--mmi-gamma", type=int, help="MMI anti-LM: penalise only the first N tokens (0: all)"
    )
    group.add_argument("--length-bonus", type=float, help="MMI: bonus per reply token")
    group.add_argument("--allow-unk", action="store_true", help="let the decoder emit <unk>")
    group.add_argument("--n-best", type=int, help="keep the K best outputs")
    if not xla:
        return
    group.add_argument(
        "--xla",
        action="store_true",
        help="compile the decoder with XLA: faster per sentence on CPU, but every new batch "
        "size and source-length bucket compiles once (seconds); pays off for large jobs",
    )


def given_flags(args: argparse.Namespace) -> list[str]:
    """The decoding flags the user typed, as written ("--beam 3", "--greedy")."""
    given = []
    if args.greedy:
        given.append("--greedy")
    for dest in ("beam", "sample", "diverse_beam", *(dest for _, dest in _FIELD_FLAGS)):
        value = getattr(args, dest)
        if value is not None:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            given.append(f"--{dest.replace('_', '-')} {shown}")
    if args.allow_unk:
        given.append("--allow-unk")
    return given


def decode_options(args: argparse.Namespace, base: DecodeOptions | None = None) -> DecodeOptions:
    """`base` (default: the decoder's defaults) with the flags the user gave on top.

    Settings the user did not give are kept, except where they would contradict a given one:
    the n-best size shrinks to what the strategy can produce, and the minimum length to the
    maximum (ValueError if explicit flags contradict each other).
    """
    merged = dataclasses.asdict(base or DecodeOptions())
    changes: dict[str, object] = {}
    if args.greedy:
        changes.update(strategy="greedy", beam_size=1)
    elif args.sample is not None:
        changes.update(strategy="sample", beam_size=1, temperature=args.sample)
    elif args.beam is not None:
        changes.update(strategy="beam", beam_size=args.beam)
    elif args.diverse_beam is not None:
        groups = args.diverse_beam
        changes.update(
            strategy="diverse_beam",
            beam_groups=groups,
            beam_size=groups * max(1, merged["beam_size"] // groups),
        )
    for name, dest in _FIELD_FLAGS:
        if getattr(args, dest) is not None:
            changes[name] = getattr(args, dest)
    if args.allow_unk:
        changes["suppress_unk"] = False
    merged.update(changes)
    if "n_best" not in changes:
        if merged["strategy"] == "greedy":
            merged["n_best"] = 1
        elif merged["strategy"] in ("beam", "diverse_beam"):
            merged["n_best"] = min(merged["n_best"], merged["beam_size"])
    if "min_length" not in changes:
        merged["min_length"] = min(merged["min_length"], merged["max_length"])
    return DecodeOptions(**merged)


@dataclass(frozen=True)
class ResolvedDecoding:
    """The options a command will use, and how they came about (for the stderr line)."""

    options: DecodeOptions
    source: str
    overridden: tuple[str, ...]

    def describe(self) -> str:
        """One line: "decoding: bundle settings (tuned ...): beam 5, ...; overridden: --beam 3"."""
        line = f"decoding: {self.source}: {describe_options(self.options)}"
        if self.overridden:
            line += f"; overridden: {' '.join(self.overridden)}"
        return line


def resolve_decoding(args: argparse.Namespace, settings: DecodeSettings | None) -> ResolvedDecoding:
    """The bundle's settings (or the decoder's defaults) with the given flags on top."""
    if settings is None:
        source, base = "built-in defaults (the model stores no decoding settings)", None
    else:
        source, base = f"bundle settings ({settings.origin})", settings.options
    return ResolvedDecoding(decode_options(args, base), source, tuple(given_flags(args)))


def describe_options(options: DecodeOptions) -> str:
    """Compact summary: the strategy, then every setting that is switched on."""
    parts = {
        "greedy": ["greedy"],
        "beam": [f"beam {options.beam_size}"],
        "sample": [f"sample T={options.temperature:g}"],
        "diverse_beam": [
            f"diverse beam {options.beam_size} in {options.beam_groups} groups, "
            f"diversity_penalty {options.diversity_penalty:g}"
        ],
    }[options.strategy]
    if options.strategy == "sample":
        parts += [f"top_k {options.top_k}"] * bool(options.top_k)
        parts += [f"top_p {options.top_p:g}"] * (options.top_p < 1)
    for name in ("length_penalty", "coverage_penalty", "no_repeat_ngram", "min_length"):
        value = getattr(options, name)
        if value:
            parts.append(f"{name} {value:g}")
    parts.append(f"max_length {options.max_length}")
    if options.max_length_ratio:
        parts.append(f"max_length_ratio {options.max_length_ratio:g}")
    if options.n_best > 1:
        parts.append(f"n_best {options.n_best}")
    if not options.suppress_unk:
        parts.append("allow_unk")
    return ", ".join(parts)
