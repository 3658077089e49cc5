"""Corpus records and the bookkeeping of what a read kept and what it skipped.

Why a report object instead of logging: a corpus conversion must say, at the end, exactly how
many records were read, kept and skipped and why, with `path:line` for the first problems, so
that a user can fix the file instead of guessing why the model saw fewer pairs than expected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

DEFAULT_MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Pair:
    """One training example: encoder input and decoder output, plus where it came from."""

    source: str
    target: str
    origin: str = ""  # "path:line" of the record, for error messages
    # The conversation the pair was cut from ("" when it stands alone): a split keeps every
    # pair of one conversation on one side (`nlp.corpus.pipeline.assign_split`).
    group: str = ""


# The JSONL field that carries `Pair.group` from one conversion to the next, so that a corpus
# split twice (test, then validation) is split by conversation both times.
GROUP_FIELD = "conversation"


LINE, RECORD = "line", "record"


def location(path: str, line: int, unit: str = LINE) -> str:
    """`path:line` (or `path:record N` where records are counted instead of lines, as in a
    JSON array on one line), or just `path` for problems that concern the whole file (0)."""
    if line <= 0:
        return path
    return f"{path}:{line}" if unit == LINE else f"{path}:{unit} {line}"


class CorpusError(ValueError):
    """A corpus record or file that cannot be read; str() is `path:line: reason`."""

    def __init__(self, path: str, line: int, reason: str, unit: str = LINE) -> None:
        super().__init__(f"{location(path, line, unit)}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason
        self.unit = unit


class FormatError(CorpusError):
    """The request itself is unusable (missing file, unknown format, wrong options, a file
    that does not fit its format at all): fatal even when not strict."""


class Problem(NamedTuple):
    """A skipped record worth showing to the user."""

    path: str
    line: int
    reason: str
    unit: str = LINE  # what `line` counts: LINE, or RECORD (1-based index in a JSON array)

    def __str__(self) -> str:
        return f"{location(self.path, self.line, self.unit)}: {self.reason}"


@dataclass
class ReadReport:
    """Counts of a read (and of the pipeline after it) plus the first problems found.

    `read` counts candidate pairs (and broken records that never became pairs), every skip is
    counted by reason, and `kept` is what is left; so `read == kept + sum(skipped.values())`
    always holds, even while a stream is still being consumed.
    """

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # path -> "fmt (why)"
    html_cleaned: int = 0  # text fields whose markup was removed (see nlp.text.html)
    max_problems: int = DEFAULT_MAX_PROBLEMS
    first_dropped: dict[str, Problem] = field(default_factory=dict)  # reason -> where first

    @property
    def kept(self) -> int:
        return self.read - sum(self.skipped.values())

    def count_skip(self, reason: str, path: str = "", line: int = 0, unit: str = LINE) -> None:
        """A record dropped on purpose (duplicate, too long, below a threshold): counted, and
        where it is known, the first such record's location is kept for `details`.

        Why not a problem each: such records are sound (a one-line subtitle block, an item a
        user's `--skip-pattern` matched), and thousands of them would bury the malformed
        records; one location per reason still lets the user look at what was left out.
        """
        self.skipped[reason] += 1
        if path and reason not in self.first_dropped:
            self.first_dropped[reason] = Problem(path, line, reason, unit)

    def add_problem(
        self, path: str, line: int, reason: str, detail: str = "", unit: str = LINE
    ) -> Problem:
        """A broken record: counted under `reason`, and remembered while there is room."""
        self.skipped[reason] += 1
        self.problem_count += 1
        problem = Problem(path, line, f"{reason}: {detail}" if detail else reason, unit)
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)
        return problem

    def summary(self) -> str:
        """One line: `read N, kept M, skipped K (reason n, ...)`, biggest reasons first."""
        text = f"read {self.read}, kept {self.kept}, skipped {sum(self.skipped.values())}"
        if self.skipped:
            reasons = ", ".join(f"{reason} {n}" for reason, n in self.skipped.most_common())
            text += f" ({reasons})"
        if self.html_cleaned:
            text += f"; HTML removed from {self.html_cleaned} text fields"
        return text

    def details(self) -> str:
        """The summary, then the remembered problems as `path:line: reason` lines."""
        lines = [self.summary(), *(str(problem) for problem in self.problems)]
        hidden = self.problem_count - len(self.problems)
        if hidden > 0:
            lines.append(f"... and {hidden} more problems")
        lines += [
            f"{first} (first of {self.skipped[reason]} left out on purpose)"
            for reason, first in self.first_dropped.items()
        ]
        return "\n".join(lines)
