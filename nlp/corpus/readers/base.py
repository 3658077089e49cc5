"""What every reader shares: the file being read, line decoding, and how problems are reported.

Why per-line decoding: one corrupt byte sequence must cost one record, not the whole file, and
the user must learn on which line it was. Files are opened in binary and each line is decoded
on its own, so memory stays bounded by the longest line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nlp.corpus.records import LINE, CorpusError, FormatError, Pair, ReadReport, location
from nlp.text.html import html_to_text

UNDECODABLE = "undecodable bytes"
EMPTY_SOURCE = "empty source"
EMPTY_TARGET = "empty target"

SIDES = ("source", "target")

# Field (or CSV header) names recognised without options, in order of preference.
KNOWN_FIELD_PAIRS: tuple[tuple[str, str], ...] = (
    ("source", "target"),
    ("article", "headline"),
    ("post", "reply"),
    ("description", "title"),  # RSS/Atom items as exported by feed readers
)


def known_pair(names: Collection[str]) -> tuple[str, str] | None:
    """The first `KNOWN_FIELD_PAIRS` pair whose both names are among `names`, else None."""
    return next((pair for pair in KNOWN_FIELD_PAIRS if pair[0] in names and pair[1] in names),
                None)


def decoded_lines(path: Path, encoding: str) -> Iterator[tuple[int, str | None]]:
    """(1-based line number, text without line ending), text None when it cannot be decoded."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                yield number, None
                continue
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


@dataclass(frozen=True)
class SidePattern:
    """A regular expression for one side of the pairs, given as `SIDE=REGEX`.

    Why per side and not per record field: every format builds a source and a target, so
    cleaning rules written against the sides (`target=^\\[视频\\]` strips a title prefix,
    `target=完整版` skips whole-programme items) work on any corpus, with no code that knows
    one corpus' boilerplate.
    """

    side: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> SidePattern:
        """`source=REGEX` or `target=REGEX`; ValueError naming what is wrong otherwise."""
        side, equals, pattern = text.partition("=")
        if not equals or side.strip() not in SIDES:
            raise ValueError(f"expected source=REGEX or target=REGEX, got {text!r}")
        if not pattern:
            raise ValueError(f"empty pattern in {text!r}")
        try:
            return cls(side.strip(), re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regular expression in {text!r}: {exc}") from exc

    def __str__(self) -> str:
        return f"{self.side}={self.regex.pattern}"


def side_patterns(texts: Iterable[str | SidePattern]) -> tuple[SidePattern, ...]:
    """Parsed patterns (already parsed ones pass through), in the order given."""
    return tuple(t if isinstance(t, SidePattern) else SidePattern.parse(t) for t in texts)


def strip_side(text: str, side: str, rules: Iterable[SidePattern]) -> str:
    """`text` (a `side` of a pair) without the matches of that side's rules, applied in order,
    each result stripped of surrounding space."""
    for rule in rules:
        if rule.side == side:
            text = rule.regex.sub("", text).strip()
    return text


@dataclass
class RecordSource:
    """One file being read: where its problems go and whether the first one is fatal.

    `unit` says what the record numbers given to `reject`/`pair` count (lines, or records of
    a JSON array); `strip_html` turns markup in both sides into their visible text;
    `strip_patterns` removes every match of each pattern from its side, and a pair with a
    side matched by one of `skip_patterns` is left out (counted by pattern).
    """

    path: Path
    report: ReadReport
    strict: bool = False
    encoding: str = "utf-8"
    unit: str = LINE
    strip_html: bool = False
    strip_patterns: tuple[SidePattern, ...] = ()
    skip_patterns: tuple[SidePattern, ...] = ()

    @property
    def name(self) -> str:
        return str(self.path)

    def reject(self, line: int, reason: str, detail: str = "") -> None:
        """A broken record: counted and reported with its line; raises in strict mode."""
        self.report.read += 1
        problem = self.report.add_problem(self.name, line, reason, detail, self.unit)
        if self.strict:
            raise CorpusError(problem.path, problem.line, problem.reason, problem.unit)

    def drop(self, reason: str, line: int = 0) -> None:
        """A sound record left out on purpose (a threshold the user chose): counted, not
        listed as a problem (the report keeps the first location of each reason)."""
        self.report.read += 1
        self.report.count_skip(reason, self.name, line, self.unit)

    def pair(self, line: int, source: str, target: str, group: str = "") -> Pair | None:
        """The record as a Pair, or None (reported) when a side is empty.

        Surrounding whitespace is format padding, not content, so it is stripped here, and
        markup is removed when asked, then the strip patterns (both before the emptiness
        check: a side that is only markup or boilerplate is empty). Skip patterns see the
        text as it would be kept, so `^` means the start of the cleaned side; they come
        before the emptiness check because a record the user chose to leave out is sound
        and should be counted as such (whole-programme news items have no transcript, and
        are not problems to list). Any other normalisation belongs to the pipeline.
        """
        if self.strip_html:
            source, target = self._visible(source), self._visible(target)
        sides = {
            side: strip_side(text.strip(), side, self.strip_patterns)
            for side, text in zip(SIDES, (source, target), strict=True)
        }
        for rule in self.skip_patterns:
            if rule.regex.search(sides[rule.side]):
                self.drop(f"skip pattern {rule}", line)
                return None
        source, target = sides["source"], sides["target"]
        if not source:
            self.reject(line, EMPTY_SOURCE)
            return None
        if not target:
            self.reject(line, EMPTY_TARGET)
            return None
        self.report.read += 1
        return Pair(source, target, location(self.name, line, self.unit), group)

    def _visible(self, text: str) -> str:
        """`text` without markup; a field that changed (beyond spacing) is counted."""
        visible = html_to_text(text)
        if visible != text and visible != " ".join(text.split()):
            self.report.html_cleaned += 1
        return visible

    def lines(self) -> Iterator[tuple[int, str]]:
        """Decoded lines; undecodable ones are reported as skipped records and left out."""
        for number, text in decoded_lines(self.path, self.encoding):
            if text is None:
                self.reject(number, UNDECODABLE, f"not valid {self.encoding}")
            else:
                yield number, text

    def records(self) -> Iterator[tuple[int, str]]:
        """Non-blank lines: in line-oriented formats a blank line is not a record."""
        for number, text in self.lines():
            if text.strip():
                yield number, text

    def fail(self, reason: str, line: int = 0) -> FormatError:
        """An error about the file as a whole, or options that do not fit it: always fatal."""
        return FormatError(self.name, line, reason)
