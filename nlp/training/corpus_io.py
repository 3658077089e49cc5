"""Reading training corpora for `s2s train`, `retrain` and `evaluate`, with a report."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nlp.corpus.pipeline import (
    VALID,
    PipelineOptions,
    pair_keys,
    process,
    seen_key,
    split_pairs,
)
from nlp.corpus.readers import (
    FORMATS,
    Detection,
    format_options,
    options_for_file,
    read_pairs,
)
from nlp.corpus.records import Pair, ReadReport
from nlp.generation.bundle import file_sha256
from nlp.text.normalize import separator_count
from nlp.util.config import DataConfig


@dataclass(frozen=True)
class CorpusSpec:
    """Where pairs come from: files or directories, their format and reader options."""

    paths: tuple[Path, ...]
    fmt: str = "auto"
    strict: bool = False
    options: tuple[tuple[str, Any], ...] = ()
    # the options were given for other files (the training corpus): each file takes those
    # its own format does (`options_for_file`), where the corpus's own refuses the rest
    options_follow_format: bool = False


def load_pairs(spec: CorpusSpec, data: DataConfig | None = None) -> list[Pair]:
    """All pairs of the corpus; skipped records are summarised on stderr with file:line.

    With `data`, dialogue formats (whose readers take `context_turns`) build each source from
    `data.context_turns` earlier turns joined with `data.turn_separator`: the pairs are made
    the way the model is configured to read them.
    """
    given = dict(spec.options)
    if data is not None:
        for name, value in (
            ("context_turns", data.context_turns),
            ("turn_separator", data.turn_separator),
        ):
            if name in given and given[name] != value:
                raise ValueError(
                    f"reader option {name}={given[name]!r} contradicts data.{name}={value!r}: "
                    f"set --set data.{name}=... instead, the readers follow it"
                )
    report = ReadReport()
    pairs: list[Pair] = []
    for path in spec.paths:
        # files read beside a corpus (`--valid`, `--old-corpus`) get the reader options their
        # format takes: a raw corpus's fields or encoding mis-read a convert output
        # (each file's format is detected once, here, and handed to read_pairs)
        fmt: str | Detection = spec.fmt
        options = dict(given)
        if spec.fmt == "auto":
            fmt, own = options_for_file(path, options)
            if spec.options_follow_format:
                options = own
        if data is not None and _takes_context(fmt.fmt if isinstance(fmt, Detection) else fmt):
            options.setdefault("context_turns", data.context_turns)
            options.setdefault("turn_separator", data.turn_separator)
        pairs.extend(read_pairs(path, fmt, report=report, strict=spec.strict, **options))
    print(f"{_describe(spec)}: {report.details()}", file=sys.stderr)
    if not pairs:
        raise ValueError(f"{_describe(spec)}: no usable pairs")
    return pairs


def _takes_context(fmt: str) -> bool:
    return fmt in FORMATS and "context_turns" in format_options(fmt)


def earlier_turns(pairs: Iterable[Pair], separator: str) -> int:
    """The most earlier turns any source holds (separators in it), 0 for single turns."""
    return max((separator_count(pair.source, separator) for pair in pairs), default=0)


def check_context(pairs: Sequence[Pair], data: DataConfig) -> int:
    """How many earlier turns the sources hold; an error when that contradicts `data`.

    Why: the chat responder feeds `data.context_turns` earlier turns, so a model must have
    been trained on sources built the same way. Pairs from a dialogue format are built that
    way by `load_pairs`; pairs read as they are (JSONL from `s2s corpus convert
    --context-turns K`, for instance) must agree with the setting.
    """
    seen = earlier_turns(pairs, data.turn_separator)
    wanted = data.context_turns
    if data.task != "chat":
        if wanted:
            raise ValueError(f"data.context_turns={wanted} applies to data.task=chat only")
        return seen
    if seen > wanted:
        raise ValueError(
            f"training sources hold up to {seen} earlier turns joined with "
            f"{data.turn_separator.strip()!r} (as `s2s corpus convert --context-turns {seen}` "
            f"writes them), but data.context_turns={wanted}, so the chat would feed {wanted}: "
            f"set --set data.context_turns={seen}"
        )
    if wanted and not seen:
        raise ValueError(
            f"data.context_turns={wanted}, but no training source holds an earlier turn: read "
            "a dialogue format (dailydialog, chatterbot, cornell) directly, or convert it with "
            f"`s2s corpus convert --context-turns {wanted}`"
        )
    return seen


def _describe(spec: CorpusSpec) -> str:
    first = str(spec.paths[0])
    return first if len(spec.paths) == 1 else f"{first} and {len(spec.paths) - 1} more"


def dedupe(pairs: Iterable[Pair], what: str = "corpus") -> list[Pair]:
    """Normalised pairs without repeats (the corpus pipeline's rules), saying how many went."""
    report = ReadReport()
    unique = list(process(pairs, PipelineOptions(), report))
    dropped = sum(report.skipped.values())
    if dropped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
        print(f"{what}: dropped {dropped} pairs ({reasons})", file=sys.stderr)
    return unique


def without(pairs: Iterable[Pair], others: Iterable[Pair]) -> list[Pair]:
    """`pairs` minus those of `others`, compared as `--exclude-corpus` compares them
    (`nlp.corpus.pipeline.pair_keys`: case and spacing aside)."""
    seen = pair_keys(others)
    return [p for p in pairs if seen_key(p) not in seen]


def split(
    pairs: Iterable[Pair], fraction: float, seed: int, purpose: str = ""
) -> tuple[list[Pair], list[Pair]]:
    """(kept, held out): de-duplicated, then the corpus pipeline's content-hash split
    (`nlp.corpus.pipeline.assign_split`, whose `purpose` salts it).

    A pair's side depends on its content (or its conversation's) and the seed only, so
    identical pairs can never be on both sides, and the split is the one `s2s corpus convert
    --valid-output` makes. Pairs from too few conversations to have one on each side (a
    single chat's log, say) are split pair by pair instead, with a note on stderr: training
    on them beats refusing to, and the note says what the validation loss then means.
    """
    unique = dedupe(pairs)
    kept, held = _sides(unique, fraction, seed, purpose)
    # (all held out, `fraction` 1, as a retrain without mixing asks, is no split to warn of)
    if 0 < fraction < 1 and unique and not (kept and held) and any(p.group for p in unique):
        conversations = len({p.group for p in unique})
        print(
            f"corpus: {len(unique)} pairs from {conversations} conversation"
            f"{'s' * (conversations > 1)}, too few to hold out whole conversations: split "
            "pair by pair (validation pairs may share turns with training pairs)",
            file=sys.stderr,
        )
        kept, held = _sides([replace(p, group="") for p in unique], fraction, seed, purpose)
    return kept, held


def _sides(
    pairs: list[Pair], fraction: float, seed: int, purpose: str
) -> tuple[list[Pair], list[Pair]]:
    kept: list[Pair] = []
    held: list[Pair] = []
    for side, pair in split_pairs(pairs, fraction, seed, purpose):
        (held if side == VALID else kept).append(pair)
    return kept, held


def train_valid(
    pairs: Sequence[Pair], valid: Sequence[Pair] | None, fraction: float, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """Training and validation pairs that share no pair; a clear error when either is empty.

    Without a validation corpus, `fraction` of the (de-duplicated) pairs are held out.
    """
    if valid is None:
        train, held = split(pairs, fraction, seed)
    else:
        train = dedupe(pairs)
        unique = dedupe(valid, "validation corpus")
        held = without(unique, train)
        if len(held) < len(unique):
            print(
                f"validation corpus: left out {len(unique) - len(held)} pairs that are also "
                "in the training corpus",
                file=sys.stderr,
            )
    if not train:
        raise ValueError("no training pairs left after de-duplication and the validation split")
    if not held and valid is not None:
        raise ValueError("no validation pairs left: every one is also in the training corpus")
    if not held:
        raise ValueError(
            f"no validation pairs: train.valid_fraction={fraction} of {len(train)} distinct "
            "pairs held none out; give a validation corpus (--valid), or raise it (a file "
            f"`s2s corpus convert --seed {seed}` split keeps none below its own fraction: "
            "give its --valid-output, or another train.seed)"
        )
    return train, held


def run_validation_file(metadata: dict[str, Any], bundle: Path | None = None) -> Path | None:
    """The validation file a bundle's training run wrote, None when it is not there (a
    bundle moved without its run).

    Looked for first beside the bundle, where a run keeps it (`RUN/model` and
    `RUN/valid.jsonl`), then at the path in the metadata (`corpus.valid_file`), which is as
    the run was given it: relative to the directory training ran in, so from anywhere else it
    names nothing, and a run directory copied elsewhere still finds its own file."""
    recorded = Path(metadata.get("corpus", {}).get("valid_file", "") or "")
    if not recorded.name:
        return None
    places = [bundle.parent / recorded.name] if bundle is not None else []
    return next((place for place in [*places, recorded] if place.is_file()), None)


def run_validation_pairs(
    metadata: dict[str, Any], bundle: Path | None = None
) -> list[Pair] | None:
    """The pairs of `run_validation_file`, None when it is not there."""
    valid_file = run_validation_file(metadata, bundle)
    return None if valid_file is None else load_pairs(CorpusSpec((valid_file,), "jsonl"))


def sample(pairs: Sequence[Pair], count: int, seed: int) -> list[Pair]:
    """A seeded sample of `count` pairs (all of them when there are fewer)."""
    if count >= len(pairs):
        return list(pairs)
    return random.Random(seed).sample(list(pairs), count)


def corpus_fingerprint(spec: CorpusSpec) -> list[dict[str, str]]:
    """Path and sha256 of every corpus file, for the bundle metadata."""
    files = [f for p in spec.paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
    return [{"path": str(f), "sha256": file_sha256(f)} for f in files if f.is_file()]
