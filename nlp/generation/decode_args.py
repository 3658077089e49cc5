"""Command-line flags for the shared decoder, used by every command that generates text.

Every flag defaults to "not given" (None, or False for switches), never to a value: the
starting point is the model's own recommended settings (`decoding.json` in the bundle, see
`nlp.generation.decode_settings`), and only flags the user typed replace them. `resolve_decoding`
does the merge and says in one line which settings were used and what was overridden.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from nlp.decoding.options import (
    MODEL_SETTING,
    XLA_BY_DEFAULT,
    DecodeOptions,
    OptionError,
    beam_in_groups,
)
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.reply_choice import PLAIN, ModelReads, reply_choice

_TYPES = {"int": int, "float": float, "str": str}


@dataclass(frozen=True)
class _FieldFlag:
    """The command-line flag of one `DecodeOptions` field (from the field's metadata)."""

    name: str  # the field
    flag: str  # "--top-k"
    default: object  # the field's default

    @property
    def switch(self) -> bool:
        """A bool field: the flag takes no value and goes both ways (`--flag`, `--no-flag`),
        so a setting the bundle stores can be overridden either way."""
        return isinstance(self.default, bool)

    @property
    def sets(self) -> bool:
        """The value a switch's `--flag` gives its field (`--no-flag` the other): True for a
        flag named after the field (`--generated`), else the opposite of the default
        (`--allow-unk` sets `suppress_unk` False)."""
        return self.dest == self.name or not self.default

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def _field_flags() -> tuple[_FieldFlag, ...]:
    """Every `DecodeOptions` field with help text has one flag of its own."""
    return tuple(
        _FieldFlag(f.name, f.metadata.get("flag", "--" + f.name.replace("_", "-")), f.default)
        for f in dataclasses.fields(DecodeOptions)
        if "help" in f.metadata
    )


_FIELD_FLAGS = _field_flags()


def switch_sets(name: str) -> bool:
    """The value the flag of the bool option `name` gives it (`_FieldFlag.sets`): what its
    help text describes, which the HTTP API's schema says beside it."""
    return next(flag.sets for flag in _FIELD_FLAGS if flag.name == name and flag.switch)


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """--beam/--greedy/--sample, one flag per decoder option, and --xla; unset flags keep the
    model's settings."""
    group = parser.add_argument_group(
        "decoding", "Unset flags keep the model's recommended settings (decoding.json)."
    )
    # --beam is outside the exclusive group: it also sets a diverse beam's width
    # (`flag_changes` refuses it beside --greedy or --sample)
    group.add_argument(
        "--beam", type=int, metavar="K",
        help=f"beam search of width K ({MODEL_SETTING}); with --diverse-beam G, the diverse "
        "beam's width (a multiple of G)",
    )
    choice = group.add_mutually_exclusive_group()
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
        help="diverse beam search: G groups sharing the beam (--beam K's width, else the "
        "model's rounded down to a multiple of G), kept apart by --diversity-penalty",
    )
    fields = {f.name: f for f in dataclasses.fields(DecodeOptions)}
    for flag in _FIELD_FLAGS:
        meta = fields[flag.name].metadata
        if flag.switch:
            group.add_argument(flag.flag, action=argparse.BooleanOptionalAction,
                               help=meta["help"])
            continue
        kind = _TYPES[str(fields[flag.name].type).split(" |")[0]]
        extra = {key: meta[key] for key in ("metavar", "choices") if key in meta}
        group.add_argument(flag.flag, type=kind, help=meta["help"], **extra)
    group.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction if XLA_BY_DEFAULT else "store_true",
        default=XLA_BY_DEFAULT,
        help="compile the decoder with XLA: faster per sentence on CPU, but every new batch "
        "size and source-length bucket compiles once (seconds); pays off for large jobs",
    )


def given_flags(args: argparse.Namespace) -> list[str]:
    """The decoding flags the user typed, as written ("--beam 3", "--greedy")."""
    given = []
    if args.greedy:
        given.append("--greedy")
    for dest in ("beam", "sample", "diverse_beam"):
        value = getattr(args, dest)
        if value is not None:
            given.append(f"--{dest.replace('_', '-')} {_shown(value)}")
    for flag in _FIELD_FLAGS:
        value = getattr(args, flag.dest)
        if value is None:
            continue
        if flag.switch:
            given.append(flag.flag if value else flag.flag.replace("--", "--no-", 1))
        else:
            given.append(f"{flag.flag} {_shown(value)}")
    return given


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def flag_changes(args: argparse.Namespace) -> dict[str, object]:
    """The decoding flags the user gave, as `DecodeOptions` changes (OptionError if they
    contradict each other)."""
    changes: dict[str, object] = {}
    if args.beam is not None and (args.greedy or args.sample is not None):
        raise OptionError("--beam: greedy search and sampling have no beam (--beam K goes "
                          "alone or with --diverse-beam G)")
    if args.greedy:
        changes.update(strategy="greedy")
    elif args.sample is not None:
        changes.update(strategy="sample", temperature=args.sample)
    elif args.diverse_beam is not None:
        changes.update(strategy="diverse_beam", beam_groups=args.diverse_beam)
        if args.beam is not None:
            changes.update(beam_size=args.beam)
    elif args.beam is not None:
        changes.update(strategy="beam", beam_size=args.beam)
    for flag in _FIELD_FLAGS:
        value = getattr(args, flag.dest)
        if value is not None:
            changes[flag.name] = (flag.sets if value else not flag.sets) if flag.switch else value
    return changes


def merge_options(base: DecodeOptions | None, changes: Mapping[str, object]) -> DecodeOptions:
    """`base` with `changes` (DecodeOptions field -> value) on top: what the decoding flags
    and the HTTP server's `decoding` objects both mean, so `--greedy` and
    `{"strategy": "greedy"}` decode alike.

    Settings not changed are kept, except where they would contradict a changed one: greedy
    search and sampling use a beam of 1, a diverse beam is rounded to whole groups, the
    n-best size shrinks to what the strategy can produce, a beam asked for instead of greedy
    search or sampling is the decoder's default beam, and the minimum length and the
    n-gram block shrink to the maximum length (OptionError naming the field if a name is
    unknown, the changes contradict each other or a value is out of range).
    """
    merged = dataclasses.asdict(base or DecodeOptions())
    unknown = sorted(set(changes) - set(merged))
    if unknown:
        raise OptionError(
            f"unknown decoding option {unknown[0]!r}; known: {', '.join(merged)}"
        )
    merged.update(changes)
    beams = ("beam", "diverse_beam")
    if "beam_size" not in changes:
        if merged["strategy"] in ("greedy", "sample") and "strategy" in changes:
            merged["beam_size"] = 1
        elif ("strategy" in changes and merged["strategy"] in beams
              and dataclasses.asdict(base or DecodeOptions())["strategy"] not in beams):
            # from greedy search or sampling (a beam of 1): the decoder's own beam, not a
            # "beam" of 1 that is greedy search under another name
            merged["beam_size"] = max(merged["beam_size"], DecodeOptions().beam_size)
        if merged["strategy"] == "diverse_beam":
            merged["beam_size"] = beam_in_groups(merged["beam_size"], merged["beam_groups"])
    if "n_best" not in changes:
        if merged["strategy"] == "greedy":
            merged["n_best"] = 1
        elif merged["strategy"] in ("beam", "diverse_beam"):
            merged["n_best"] = min(merged["n_best"], merged["beam_size"])
    for bounded in ("min_length", "no_repeat_ngram"):  # as the chat's /length bounds them
        if bounded not in changes:
            merged[bounded] = min(merged[bounded], merged["max_length"])
    return DecodeOptions(**merged)


def layered_options(
    settings: DecodeSettings | None, *layers: Mapping[str, object]
) -> DecodeOptions:
    """The bundle's `settings` (or the decoder's defaults) with each layer of changes merged
    on top in turn (`merge_options`): a `Model.load`'s overrides, then a call's; a
    command's flags. A re-ranking any layer picks (the last that names one) starts from the
    weights tuned for it (`DecodeSettings.base_for`), under every layer's own values. Why
    one function: the flags, the Python API's load and per-call overrides must resolve
    alike, and a layer resolved apart lost the others (a per-call `rerank` rebuilt the base
    without the load's overrides; a load's `rerank` went without its tuned weights)."""
    union = {name: value for layer in layers for name, value in layer.items()}
    options = settings.base_for(union) if settings is not None else None
    for layer in layers:
        options = merge_options(options, layer)
    return options if options is not None else DecodeOptions()


@dataclass(frozen=True)
class ResolvedDecoding:
    """The options a command will use, and how they came about (for the stderr line)."""

    options: DecodeOptions
    source: str
    overridden: tuple[str, ...]

    def describe(self, reads: ModelReads = PLAIN) -> str:
        """One line: "decoding: bundle settings (tuned ...): beam 5, ...; overridden: --beam 3"
        (`reads`: what the model reads beside the message, which decides whether it decodes)."""
        line = f"decoding: {self.source}: {describe_options(self.options, reads)}"
        if self.overridden:
            line += f"; overridden: {' '.join(self.overridden)}"
        return line


def resolve_decoding(args: argparse.Namespace, settings: DecodeSettings | None) -> ResolvedDecoding:
    """The bundle's settings (or the decoder's defaults) with the given flags on top."""
    source = ("built-in defaults (the model stores no decoding settings)" if settings is None
              else f"bundle settings ({settings.origin})")
    options = layered_options(settings, flag_changes(args))  # --rerank: its tuned weights
    return ResolvedDecoding(options, source, tuple(given_flags(args)))


def describe_options(options: DecodeOptions, reads: ModelReads = PLAIN) -> str:
    """Compact summary: the strategy, then every setting that is switched on (where the
    decoder does not run for a model that `reads` what it reads, `reply_choice`, only what
    picks among the retrieved replies: a retrieve-and-refine model decodes whatever
    `generated` says)."""
    choice = reply_choice(options, reads)
    if not choice.decodes:
        parts = [f"{options.retrieve} retrieved replies only (none generated)"]
        if choice.retrieved_threshold:
            parts.append(f"those whose fit reaches {choice.retrieved_threshold:g} where any does")
        if options.rerank != "none":
            parts.append(f"ranked by {options.rerank}")
        if options.fallback_threshold:
            parts.append(f"fallback below {options.fallback_threshold:g}")
        return ", ".join(parts)
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
    for name in ("length_penalty", "coverage_penalty", "rare_word_weight", "no_repeat_ngram",
                 "min_length"):
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
    if options.pmi_weight:
        parts.append(f"the model's replies by PMI with the message (weight {options.pmi_weight:g})")
    if options.retrieve and options.retrieved_threshold:
        parts.append(f"a retrieved reply (of {options.retrieve}) where its fit reaches "
                     f"{options.retrieved_threshold:g}, else the model's own")
    elif options.retrieve:
        parts.append(f"with {options.retrieve} retrieved replies")
    if options.rerank.startswith("mmi-"):
        gamma = f" gamma {options.mmi_gamma}" * (options.rerank == "mmi-antilm")
        parts.append(f"{options.rerank} lambda {options.mmi_lambda:g}{gamma}"
                     + " per token" * options.mmi_per_token)
        parts += [f"length_bonus {options.length_bonus:g}"] * bool(options.length_bonus)
    elif options.rerank != "none":
        parts.append(f"ranked by {options.rerank}")
    if options.fallback_threshold:  # said where the decoder runs too, not only without it
        parts.append(f"fallback below {options.fallback_threshold:g}")
    return ", ".join(parts)
