"""JSON Lines: one object per line, `{"source": ..., "target": ...}` by default.

Why per-record field fallback: corpora converted by other tools name the sides
`article`/`headline` or `post`/`reply`; accepting those without options saves a conversion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from nlp.corpus.readers.base import KNOWN_FIELD_PAIRS, RecordSource
from nlp.corpus.records import Pair

INVALID_JSON = "invalid json"
NOT_OBJECT = "not a json object"
MISSING_FIELD = "missing field"
NOT_STRING = "not a string"


def read_jsonl(
    src: RecordSource, *, source_field: str | None = None, target_field: str | None = None
) -> Iterator[Pair]:
    """Pairs from JSON objects; explicit field names turn the known-name fallback off."""
    if (source_field is None) != (target_field is None):
        source_field = source_field or "source"
        target_field = target_field or "target"
    for number, text in src.records():
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            src.reject(number, INVALID_JSON, f"{exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            src.reject(number, NOT_OBJECT, type(record).__name__)
            continue
        fields = _fields(record, source_field, target_field)
        missing = [name for name in fields if name not in record]
        if missing:
            tried = "" if source_field else " (also tried article/headline, post/reply)"
            src.reject(number, MISSING_FIELD, f"{', '.join(map(repr, missing))}{tried}")
            continue
        wrong = [name for name in fields if not isinstance(record[name], str)]
        if wrong:
            src.reject(number, NOT_STRING, ", ".join(map(repr, wrong)))
            continue
        if pair := src.pair(number, record[fields[0]], record[fields[1]]):
            yield pair


def _fields(record: dict[str, Any], source: str | None, target: str | None) -> tuple[str, str]:
    """The chosen field names, or the first known pair present (source/target if none is)."""
    if source is not None and target is not None:
        return source, target
    for pair in KNOWN_FIELD_PAIRS:
        if pair[0] in record and pair[1] in record:
            return pair
    return KNOWN_FIELD_PAIRS[0]
