"""JSON Lines: one object per line, `{"source": ..., "target": ...}` by default.

Why per-record field fallback: corpora converted by other tools name the sides
`article`/`headline`, `post`/`reply` or (feed exports) `description`/`title`; accepting those
without options saves a conversion. `pair_from_record` is shared with the `json` reader, so
both take the same field options and report a bad record the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from nlp.corpus.readers.base import KNOWN_FIELD_PAIRS, RecordSource, known_pair
from nlp.corpus.records import GROUP_FIELD, Pair

INVALID_JSON = "invalid json"
NOT_OBJECT = "not a json object"
MISSING_FIELD = "missing field"
NOT_STRING = "not a string"

_MISSING = object()


def read_jsonl(
    src: RecordSource, *, source_field: str | None = None, target_field: str | None = None
) -> Iterator[Pair]:
    """Pairs from JSON objects; explicit field names turn the known-name fallback off."""
    for number, text in src.records():
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            src.reject(number, INVALID_JSON, f"{exc.msg} (column {exc.colno})")
            continue
        if pair := pair_from_record(src, number, record, source_field, target_field):
            yield pair


def pair_from_record(
    src: RecordSource,
    number: int,
    record: Any,
    source_field: str | None = None,
    target_field: str | None = None,
) -> Pair | None:
    """The pair held by one parsed JSON record, or None after reporting why there is none.

    Field names may be dotted paths into nested objects (`body.text`); a key that itself
    contains the dot wins. Giving only one field takes the other from the known pair that
    has it on the same side (`title` -> `description`), else from the default pair: feed
    exports hold a `source` field that is the feed URL, not the article. A `conversation`
    string (written by `s2s corpus convert` for dialogue formats) is the pair's group, so a
    second split keeps conversations whole too.
    """
    if (source_field is None) != (target_field is None):
        source_field, target_field = _completed_fields(source_field, target_field)
    if not isinstance(record, dict):
        src.reject(number, NOT_OBJECT, type(record).__name__)
        return None
    fields = _fields(record, source_field, target_field)
    values = [field_value(record, name) for name in fields]
    missing = [name for name, value in zip(fields, values, strict=True) if value is _MISSING]
    if missing:
        others = ", ".join("/".join(pair) for pair in KNOWN_FIELD_PAIRS[1:])
        tried = "" if source_field else f" (also tried {others})"
        src.reject(number, MISSING_FIELD, f"{', '.join(map(repr, missing))}{tried}")
        return None
    wrong = [name for name, value in zip(fields, values, strict=True) if not isinstance(value, str)]
    if wrong:
        src.reject(number, NOT_STRING, ", ".join(map(repr, wrong)))
        return None
    group = record.get(GROUP_FIELD)
    return src.pair(number, values[0], values[1], group if isinstance(group, str) else "")


def _completed_fields(source: str | None, target: str | None) -> tuple[str, str]:
    """Both field names when one may be missing: the known pair with the given name on its
    side, else the given name with the default pair's other side."""
    side = 0 if source is not None else 1
    given = source if source is not None else target
    pair = next((pair for pair in KNOWN_FIELD_PAIRS if pair[side] == given), None)
    if pair is not None:
        return pair
    default = KNOWN_FIELD_PAIRS[0]
    return (source or default[0], target or default[1])


def field_value(record: dict[str, Any], path: str) -> Any:
    """`record[path]`, else the value at the dotted `path` through nested objects."""
    if path in record:
        return record[path]
    value: Any = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _fields(record: dict[str, Any], source: str | None, target: str | None) -> tuple[str, str]:
    """The chosen field names, or the first known pair present (source/target if none is)."""
    if source is not None and target is not None:
        return source, target
    return known_pair(record) or KNOWN_FIELD_PAIRS[0]
