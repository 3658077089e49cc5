"""Reading training corpora for `s2s train`, `retrain` and `evaluate`, with a report."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp.bundle import file_sha256
from nlp.corpus.readers import read_pairs
from nlp.corpus.records import Pair, ReadReport


@dataclass(frozen=True)
class CorpusSpec:
    """Where pairs come from: files or directories, their format and reader options."""

    paths: tuple[Path, ...]
    fmt: str = "auto"
    strict: bool = False
    options: tuple[tuple[str, Any], ...] = ()


def load_pairs(spec: CorpusSpec) -> list[Pair]:
    """All pairs of the corpus; skipped records are summarised on stderr with file:line."""
    report = ReadReport()
    pairs: list[Pair] = []
    for path in spec.paths:
        pairs.extend(
            read_pairs(path, spec.fmt, report=report, strict=spec.strict, **dict(spec.options))
        )
    print(f"{_describe(spec)}: {report.details()}", file=sys.stderr)
    if not pairs:
        raise ValueError(f"{_describe(spec)}: no usable pairs")
    return pairs


def _describe(spec: CorpusSpec) -> str:
    first = str(spec.paths[0])
    return first if len(spec.paths) == 1 else f"{first} and {len(spec.paths) - 1} more"


def split_off(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Seeded (train, validation) split; at least one pair on each side when possible."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    size = min(len(pairs) - 1, max(1, round(len(pairs) * fraction))) if len(pairs) > 1 else 0
    held = set(order[:size])
    train = [p for i, p in enumerate(pairs) if i not in held]
    valid = [p for i, p in enumerate(pairs) if i in held]
    return train, valid or train[:1]


def sample(pairs: Sequence[Pair], count: int, seed: int) -> list[Pair]:
    """A seeded sample of `count` pairs (all of them when there are fewer)."""
    if count >= len(pairs):
        return list(pairs)
    return random.Random(seed).sample(list(pairs), count)


def corpus_fingerprint(spec: CorpusSpec) -> list[dict[str, str]]:
    """Path and sha256 of every corpus file, for the bundle metadata."""
    files = [f for p in spec.paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
    return [{"path": str(f), "sha256": file_sha256(f)} for f in files if f.is_file()]
