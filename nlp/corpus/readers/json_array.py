"""JSON files holding an array of records: `[{...}, {...}]`, or `{"items": [{...}, ...]}`.

This is what feed readers, scrapers and web APIs export. Why `ijson`: such a file may be
larger than memory, and it is often one single line, so neither `json.load` nor a per-line
reader works; `ijson` yields one record at a time (its C backend keeps this fast), so memory
stays bounded by the largest record. Records are numbered (1-based) instead of lines. A syntax
error ends the file (a streaming parser cannot resynchronise): the records before it are kept,
the error is reported at the record where it happened, and the other files are still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TypeVar

import ijson

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.jsonl import INVALID_JSON, pair_from_record
from nlp.corpus.records import Pair

NO_RECORDS = "no records array"

BOM = b"\xef\xbb\xbf"

T = TypeVar("T")


@dataclass(frozen=True)
class InvalidJson:
    """Where a streamed document stops parsing: the parser's message (`json_error_message`)."""

    reason: str


def read_json(
    src: RecordSource,
    *,
    records_field: str | None = None,
    source_field: str | None = None,
    target_field: str | None = None,
) -> Iterator[Pair]:
    """Pairs from the records of the array at the top level or at `records_field` (dotted)."""
    prefix = f"{records_field}.item" if records_field else "item"
    count = 0
    with open_json(src) as handle:
        for count, record in numbered(ijson.items(handle, prefix, use_float=True)):
            if isinstance(record, InvalidJson):
                src.reject(count, INVALID_JSON, f"{record.reason}; rest of file lost")
                return
            if pair := pair_from_record(src, count, record, source_field, target_field):
                yield pair
    if count == 0 and (problem := _no_array(src, records_field)):
        src.reject(0, NO_RECORDS, problem)


def open_json(src: RecordSource) -> IO[bytes]:
    """The file positioned after any BOM. JSON exchanged between systems is UTF-8 (RFC 8259)
    and `ijson` reads bytes, so other encodings are refused rather than transcoded."""
    if src.encoding.replace("-", "").replace("_", "").lower() not in ("utf8", "utf8sig"):
        raise src.fail(f"json files are read as UTF-8, not {src.encoding}")
    handle = src.path.open("rb")
    if handle.read(len(BOM)) != BOM:
        handle.seek(0)
    return handle


def numbered(parsed: Iterator[T]) -> Iterator[tuple[int, T | InvalidJson]]:
    """(number from 1, item) for each item an `ijson` iterator parses; a syntax error,
    truncation or bytes that are not UTF-8 become the next number's `InvalidJson`, and end
    the items (a streaming parser cannot resynchronise)."""
    number = 0
    while True:
        try:
            item = next(parsed)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            yield number + 1, InvalidJson(json_error_message(exc))
            return
        number += 1
        yield number, item


def json_error_message(error: ijson.JSONError) -> str:
    """The first line of a parser error (the C backend gives bytes with a context excerpt)."""
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = str(text).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(error).__name__


def _no_array(src: RecordSource, records_field: str | None) -> str:
    """Why a file gave no records ("" when it holds an empty array): a second, short pass."""
    wanted = records_field or ""
    top_keys: list[str] = []
    top_kind = ""
    with open_json(src) as handle:  # the first pass read it to the end: it parses
        for prefix, event, value in ijson.parse(handle):
            if prefix == wanted and event == "start_array":
                return ""
            if prefix == "" and event in ("start_map", "start_array") and not top_kind:
                top_kind = "an object" if event == "start_map" else "an array"
            elif prefix == "" and event == "map_key" and len(top_keys) < 10:
                top_keys.append(str(value))
            elif prefix == "" and not top_kind:
                top_kind = f"a {event}"
    if records_field is None:
        fields = f" with fields {', '.join(top_keys)}" if top_keys else ""
        return f"the top level is {top_kind or 'empty'}{fields}; set --records-field"
    return f"no array at {records_field!r} (the top level is {top_kind or 'empty'})"
