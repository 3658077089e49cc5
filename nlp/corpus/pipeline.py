"""From raw pairs to training files: normalise, filter, dedupe, split, write.

Everything streams: `process` and `split_pairs` are generators, deduplication keeps one 8-byte
hash per kept pair, and the split is decided per pair from a hash of its content (or of its
conversation's) and the seed, so it needs no shuffling buffer and gives the same split for the
same data in any order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from nlp.corpus.readers.base import EMPTY_SOURCE, EMPTY_TARGET
from nlp.corpus.records import GROUP_FIELD, Pair, ReadReport
from nlp.text.normalize import normalize_text
from nlp.util.fsutil import atomic_file

DUPLICATE = "duplicate"
SEEN_PAIR = "pair in an excluded corpus"
SEEN_CONVERSATION = "pair of a conversation found whole in an excluded corpus"
TRAIN, VALID = "train", "valid"
LengthUnit = Literal["chars", "tokens"]


@dataclass(frozen=True)
class PipelineOptions:
    """What `process` does to each pair; a maximum of 0 means no limit."""

    normalize: bool = True  # nlp.text.normalize_text on both sides
    lowercase: bool = False
    dedupe: bool = True  # drop exact (source, target) repeats after normalisation
    length_unit: LengthUnit = "chars"  # "tokens" = whitespace-separated words
    min_source_length: int = 1
    max_source_length: int = 0
    min_target_length: int = 1
    max_target_length: int = 0

    def __post_init__(self) -> None:
        if self.length_unit not in ("chars", "tokens"):
            raise ValueError(f"length_unit must be 'chars' or 'tokens', not {self.length_unit!r}")
        for name in (
            "min_source_length",
            "max_source_length",
            "min_target_length",
            "max_target_length",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


def measure(text: str, unit: LengthUnit) -> int:
    """Length of a side in the unit the filters use."""
    return len(text) if unit == "chars" else len(text.split())


def pair_hash(source: str, target: str, salt: str = "") -> int:
    """A stable 64-bit hash of a pair (same on every run and machine, unlike `hash`)."""
    digest = hashlib.blake2b(
        "\x00".join((salt, source, target)).encode("utf-8"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def process(pairs: Iterable[Pair], options: PipelineOptions, report: ReadReport) -> Iterator[Pair]:
    """Normalised, length-filtered, deduplicated pairs; every drop is counted in `report`."""
    seen: set[int] = set()
    for pair in pairs:
        source, target = pair.source, pair.target
        if options.normalize:
            source, target = normalize_text(source), normalize_text(target)
        if options.lowercase:
            source, target = source.lower(), target.lower()
        reason = _length_problem(source, target, options)
        if reason:
            report.count_skip(reason)
            continue
        if options.dedupe:
            key = pair_hash(source, target)
            if key in seen:
                report.count_skip(DUPLICATE)
                continue
            seen.add(key)
        yield Pair(source, target, pair.origin, pair.group)


def seen_key(pair: Pair) -> int:
    """What `exclude_seen` (and training's validation corpus against its training corpus)
    compares: the pair's hash with case and whitespace left out. Why: corpora write one
    utterance in several forms ("I see.Do you" in DailyDialog's `validation/`, "I see . Do
    you" in `train/`), and a held-out pair written otherwise is still a training pair."""
    return pair_hash(*("".join(side.casefold().split()) for side in (pair.source, pair.target)))


def pair_keys(pairs: Iterable[Pair]) -> set[int]:
    """The `seen_key` of every pair: what `exclude_seen` compares against."""
    return {seen_key(pair) for pair in pairs}


def exclude_seen(
    pairs: Iterable[Pair],
    seen: set[int],
    report: ReadReport,
    conversations: list[str] | None = None,
) -> Iterator[Pair]:
    """The pairs not in `seen`, and no pair of a conversation whose every pair is in `seen`.

    Why: a test split must not hold what the model trained on. Some corpora repeat whole
    dialogues across their own splits (DailyDialog's `validation/` shares dialogues with
    `train/`), so a held-out file scored as it comes rewards memorising: retrieval returns the
    reference itself. A conversation found whole in training goes entirely, so no context turn
    of it stays either; of the others only the pairs found there go (a common exchange such as
    "Thank you." -> "You're welcome." does not take its conversation with it). Pairs of one
    conversation arrive together, as every reader yields them, so one conversation is buffered
    at a time. Each dropped pair is counted in `report` by reason; the id of each conversation
    dropped whole is appended to `conversations`.
    """
    group: list[Pair] = []

    def flush() -> Iterator[Pair]:
        hits = [seen_key(pair) in seen for pair in group]
        if group and group[0].group and all(hits):
            for _ in group:
                report.count_skip(SEEN_CONVERSATION)
            if conversations is not None:
                conversations.append(group[0].group)
        else:
            for pair, hit in zip(group, hits, strict=True):
                if hit:
                    report.count_skip(SEEN_PAIR)
                else:
                    yield pair
        group.clear()

    for pair in pairs:
        if group and (not pair.group or pair.group != group[0].group):
            yield from flush()
        group.append(pair)
    yield from flush()


def _length_problem(source: str, target: str, options: PipelineOptions) -> str:
    """The reason a pair fails the length limits, or "" when it passes."""
    for side, text, low, high in (
        ("source", source, options.min_source_length, options.max_source_length),
        ("target", target, options.min_target_length, options.max_target_length),
    ):
        if not text:
            return EMPTY_SOURCE if side == "source" else EMPTY_TARGET
        length = measure(text, options.length_unit)
        if length < low:
            return f"{side} too short"
        if high and length > high:
            return f"{side} too long"
    return ""


def assign_split(pair: Pair, valid_fraction: float, seed: int, purpose: str = "") -> str:
    """TRAIN or VALID, decided by the pair's content (its conversation's, when it has one),
    the seed and the split's `purpose` alone.

    A pair that stands alone is placed by its own content, so identical pairs always land on
    the same side. Pairs cut from one conversation are placed by the conversation: the reply
    of one pair is the post of the next, so splitting a conversation would put the same
    utterance in training and in the held-out pairs. (Exact repeats across conversations are
    removed by `process` before the split.)

    `purpose` salts the hash apart from the seed: a split of pairs another split with the
    same seed chose (a run's held-out pairs, split again by `s2s retrain --old-holdout`)
    would otherwise put every pair on one side. The default, no purpose, is the
    training/validation split `s2s corpus convert` and `s2s train` share.
    """
    key = (GROUP_FIELD, pair.group) if pair.group else (pair.source, pair.target)
    salt = f"{purpose}:{seed}" if purpose else str(seed)
    position = pair_hash(*key, salt=salt) / 2.0**64
    return VALID if position < valid_fraction else TRAIN


def split_pairs(
    pairs: Iterable[Pair], valid_fraction: float, seed: int, purpose: str = ""
) -> Iterator[tuple[str, Pair]]:
    """(TRAIN | VALID, pair) for each pair, streaming; about `valid_fraction` are VALID
    (`assign_split`)."""
    if not 0.0 <= valid_fraction <= 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1], got {valid_fraction}")
    for pair in pairs:
        yield assign_split(pair, valid_fraction, seed, purpose), pair


class JsonlWriter:
    """Writes `{"source", "target"}` lines to a file that replaces `path` on success
    (`nlp.util.fsutil.atomic_file`).

    Why: an interrupted or failed conversion must never leave a truncated corpus that a later
    training run would silently use. On an exception `path` is left as it was.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        self._file: AbstractContextManager[IO[str]] | None = None
        self._handle: IO[str] | None = None

    def __enter__(self) -> JsonlWriter:
        self._file = atomic_file(self.path)
        self._handle = self._file.__enter__()
        return self

    def write(self, pair: Pair) -> None:
        assert self._handle is not None, "use JsonlWriter as a context manager"
        record = {"source": pair.source, "target": pair.target}
        if pair.group:
            record[GROUP_FIELD] = pair.group
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._file.__exit__(kind, error, traceback)


def write_jsonl(pairs: Iterable[Pair], path: str | os.PathLike[str]) -> int:
    """Write the pairs as JSONL atomically; returns how many were written."""
    with JsonlWriter(path) as writer:
        for pair in pairs:
            writer.write(pair)
    return writer.count
