"""Streaming of SGML-like records (`<REUTERS ...> ... </REUTERS>`, `<doc id=N> ... </doc>`).

Why not an XML parser: neither format is well-formed XML (unquoted attributes, bare `&`, no
root element in LCSTS), and files are large. Records are cut out line by line between a start
tag and an end tag, so memory is bounded by the largest record, and each record knows the line
it starts on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nlp.corpus.readers.base import UNDECODABLE, RecordSource, decoded_lines

UNTERMINATED = "unterminated record"


@dataclass(frozen=True)
class TaggedRecord:
    """The text of one record from its start tag to its end tag (inclusive)."""

    line: int  # 1-based line of the start tag
    text: str


def tagged_records(src: RecordSource, start: re.Pattern[str], end: str) -> Iterator[TaggedRecord]:
    """Complete, decodable records; broken ones are reported (at the bad line) and skipped.

    A record is unterminated when the next start tag or the end of the file comes before its
    end tag. Text outside records (headers, DOCTYPE) is ignored, except undecodable lines.
    """
    parts: list[str] = []
    line = 0  # start line of the open record; 0 when no record is open
    bad_line = 0  # first undecodable line inside the open record
    for number, text in decoded_lines(src.path, src.encoding):
        if text is None:
            if not line:
                src.reject(number, UNDECODABLE, f"not valid {src.encoding}")
            bad_line = bad_line or number
            continue
        text += "\n"
        position = 0
        while True:
            if not line:
                opened = start.search(text, position)
                if opened is None:
                    break
                line, bad_line, parts, position = number, 0, [], opened.start()
                scan_from = opened.end()
            else:
                scan_from = position
            closing = text.find(end, scan_from)
            following = start.search(text, scan_from)
            if following is not None and (closing < 0 or following.start() < closing):
                parts.append(text[position : following.start()])
                _reject_open(src, line, end)
                line, position = 0, following.start()
                continue
            if closing < 0:
                parts.append(text[position:])
                break
            parts.append(text[position : closing + len(end)])
            if bad_line:
                src.reject(bad_line, UNDECODABLE, f"not valid {src.encoding}")
            else:
                yield TaggedRecord(line, "".join(parts))
            line, position = 0, closing + len(end)
    if line:
        _reject_open(src, line, end)


def _reject_open(src: RecordSource, line: int, end: str) -> None:
    src.reject(line, UNTERMINATED, f"no {end}")


@functools.lru_cache(maxsize=32)
def _element(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<{tag}\b[^>]*>(.*?)</{tag}\s*>", re.DOTALL | re.IGNORECASE)


def element_text(record: str, tag: str) -> str | None:
    """The raw content of the first `<tag ...>...</tag>` in the record, None when absent."""
    found = _element(tag).search(record)
    return None if found is None else found.group(1)
