"""Results out: one line per input record, JSONL or TSV, so output line N answers input N.

Why one line per record, always: `--resume` counts complete output lines to know how many
input records are done. Headlines are therefore sanitised of newlines (and tabs, for TSV).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

FORMATS: tuple[str, ...] = ("jsonl", "tsv")
_BREAKS = re.compile(r"[\t\r\n\u2028\u2029\x85]+")


@dataclass(frozen=True)
class Candidate:
    """One hypothesis as written out."""

    headline: str
    score: float


@dataclass(frozen=True)
class Result:
    """What the job learned about one input record: candidates best first, or an error."""

    id: object
    line: int
    candidates: Sequence[Candidate] = field(default_factory=tuple)
    error: str = ""


def detect_format(path: str, requested: str) -> str:
    """`requested`, or "tsv" for a .tsv path, else "jsonl" (stdout included)."""
    if requested != "auto":
        if requested not in FORMATS:
            raise ValueError(f"unknown output format {requested!r}; choose from {FORMATS}")
        return requested
    return "tsv" if path.lower().endswith(".tsv") else "jsonl"


def _one_line(text: str) -> str:
    return _BREAKS.sub(" ", text).strip()


def _score(value: float) -> float:
    return round(float(value), 4)


def jsonl_line(result: Result, n_best: int) -> str:
    """{"id","headline","score"} (+ "n_best" list when n_best > 1), or {"id","line","error"}."""
    if result.error:
        record: dict[str, object] = {"id": result.id, "line": result.line, "error": result.error}
    else:
        record = {"id": result.id, **candidates_record(result.candidates, n_best > 1)}
    return json.dumps(record, ensure_ascii=False)


def candidates_record(candidates: Sequence[Candidate], with_n_best: bool) -> dict[str, object]:
    """{"headline","score"} of the best candidate (+ "n_best": all of them): one line each,
    scores rounded to 4 places. Shared by the JSONL output and the HTTP server (`serve`), so
    both print the same headline and score for the same article."""
    best = candidates[0]
    record: dict[str, object] = {"headline": _one_line(best.headline), "score": _score(best.score)}
    if with_n_best:
        record["n_best"] = [
            {"headline": _one_line(c.headline), "score": _score(c.score)} for c in candidates
        ]
    return record


def tsv_line(result: Result, n_best: int) -> str:
    """id, headline, score, error: always four columns (error empty on good rows, headline and
    score empty on error rows), so a TSV reader sees a rectangular table. Only the best
    headline is written; use JSONL for n-best lists."""
    del n_best
    record_id = result.id if isinstance(result.id, str) else json.dumps(result.id)
    if result.error:
        fields = [record_id, "", "", result.error]
    else:
        best = result.candidates[0]
        fields = [record_id, best.headline, f"{_score(best.score)}", ""]
    return "\t".join(_one_line(f) for f in fields)


FORMATTERS: dict[str, Callable[[Result, int], str]] = {"jsonl": jsonl_line, "tsv": tsv_line}
