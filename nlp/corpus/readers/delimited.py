"""Line-per-pair delimited text: generic TSV and CSV, LCSTS TSV, LCCC and Tatoeba.

They differ only in which columns hold the pair and in how many columns a sound line has, so
they share one row splitter that reports wrong column counts with the line number.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from nlp.corpus.readers.base import RecordSource, known_pair
from nlp.corpus.records import Pair
from nlp.text.scripts import CJK_CLASS

WRONG_COLUMNS = "wrong column count"
CSV_ERROR = "invalid csv"

Column = int | str


def split_rows(
    src: RecordSource, min_fields: int, max_fields: int | None, sep: str = "\t"
) -> Iterator[tuple[int, list[str]]]:
    """Fields of each non-blank line; lines with a column count out of range are reported.

    `max_fields` None means no upper bound.
    """
    for number, text in src.records():
        fields = text.split(sep)
        if check_width(src, number, len(fields), min_fields, max_fields):
            yield number, fields


def check_width(
    src: RecordSource, line: int, width: int, min_fields: int, max_fields: int | None,
    last_line: int | None = None,
) -> bool:
    """True when `width` is in range; otherwise the record is reported and False returned.
    `last_line`: where a record that spans lines ends; a wrong width then most likely comes
    of a quote opened and never closed, which took every line up to there into one field, so
    the report says which lines went (they were one "skipped" record)."""
    if width >= min_fields and (max_fields is None or width <= max_fields):
        return True
    if max_fields is None:
        expected = f"at least {min_fields}"
    elif max_fields == min_fields:
        expected = str(min_fields)
    else:
        expected = f"{min_fields} to {max_fields}"
    spans = (f"; the record spans lines {line}-{last_line} (a quote never closed?), all of "
             "them lost" if last_line is not None and last_line > line else "")
    src.reject(line, WRONG_COLUMNS, f"expected {expected}, got {width}{spans}")
    return False


def read_tsv(
    src: RecordSource,
    *,
    source_column: int = 0,
    target_column: int = 1,
    columns: int | None = None,
) -> Iterator[Pair]:
    """Tab-separated columns; `columns` demands an exact width (catches stray tabs)."""
    if isinstance(source_column, str) or isinstance(target_column, str):
        raise src.fail("tsv columns are 0-based indexes; use format csv for named columns")
    needed = max(source_column, target_column) + 1
    if columns is not None and columns < needed:
        raise src.fail(f"columns={columns} but column {needed - 1} is selected")
    low = needed if columns is None else columns
    for number, fields in split_rows(src, low, columns):
        if pair := src.pair(number, fields[source_column], fields[target_column]):
            yield pair


def read_lcsts_tsv(src: RecordSource) -> Iterator[Pair]:
    """LCSTS subset: `title<TAB>content`; the content is the source, the title the target."""
    for number, (title, content) in split_rows(src, 2, 2):
        if pair := src.pair(number, content, title):
            yield pair


def read_tatoeba(src: RecordSource) -> Iterator[Pair]:
    """Tatoeba `english<TAB>chinese[<TAB>attribution]`: English is the source."""
    for number, fields in split_rows(src, 2, 3):
        if pair := src.pair(number, fields[0], fields[1]):
            yield pair


def read_lccc(src: RecordSource) -> Iterator[Pair]:
    """LCCC/STC `post<TAB>reply` with space-separated tokens, joined back to natural text."""
    for number, (post, reply) in split_rows(src, 2, 2):
        if pair := src.pair(number, join_spaced_tokens(post), join_spaced_tokens(reply)):
            yield pair


# What a token-separating space is removed next to: CJK letters and punctuation, plus (as
# LCCC/STC space them too) hangul, ideographic description characters and general punctuation.
_UNSPACED = re.compile(f"[{CJK_CLASS}\u2010-\u206f\u2fe0-\u2fff\uac00-\ud7af]")


def join_spaced_tokens(text: str) -> str:
    """Remove the token-separating spaces of LCCC/STC text, keeping spaces between words.

    A space goes when a CJK character or punctuation mark touches it. Between two Latin
    tokens it stays, except on character-tokenised lines (every token one character, as in
    the shared LCCC sample: `打 c a l l`), where spaces separate letters, not words.
    """
    tokens = text.split()
    if not tokens:
        return ""
    by_character = all(len(token) == 1 for token in tokens)
    parts = [tokens[0]]
    for previous, token in itertools.pairwise(tokens):
        joined = by_character or _UNSPACED.match(previous[-1]) or _UNSPACED.match(token[0])
        parts.append(token if joined else " " + token)
    return "".join(parts)


# An article may be longer than the csv module's default field limit (128 KiB), which made
# it an error and, inside quotes, cut it into records of its own. The limit is process-wide;
# it is raised (never lowered) here, once, for every reader of this module's records.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record: the lines it spans, and its fields or why it has none."""

    line: int  # where it starts
    last: int  # where it ends: past `line` when a quoted field spans lines
    fields: list[str]
    error: str = ""


def csv_records(lines: Iterable[tuple[int, str]], delimiter: str = ",") -> Iterator[CsvRecord]:
    """Every record of `lines` (numbered, without their newlines), blank ones included.

    Why errors are records rather than exceptions: `csv.reader` goes on after a record it
    cannot read (a stray carriage return), so that record costs only itself. A quote never
    closed takes every later line into one field; that shows only at the end of the file,
    where the record is reported as an error instead of being read as data.
    """
    consumed: list[int] = []
    ended: list[bool] = []  # the lines ran out while the reader still wanted more

    def feed() -> Iterator[str]:
        for number, text in lines:
            consumed.append(number)
            yield text + "\n"
        ended.append(True)

    reader = csv.reader(feed(), delimiter=delimiter)
    while True:
        try:
            fields, error = next(reader), ""
        except StopIteration:
            return
        except csv.Error as exc:
            fields, error = [], str(exc)
        line, last = (consumed[0], consumed[-1]) if consumed else (0, 0)
        consumed.clear()
        if not error and ended and last > line:
            fields, error = [], (f"a quote opened here is never closed: lines {line}-{last}, "
                                 "to the end of the file, were read as one field")
        yield CsvRecord(line, last, fields, error)


def read_csv(
    src: RecordSource,
    *,
    source_column: Column | None = None,
    target_column: Column | None = None,
    header: bool = True,
    delimiter: str = ",",
) -> Iterator[Pair]:
    """CSV with quoting (records may span lines); columns by header name or 0-based index.

    Without explicit columns a header naming a known pair (source/target, article/headline,
    post/reply) picks those, otherwise the first two columns are used.
    """
    indexes: tuple[int, int] | None = None
    min_fields, max_fields = 0, None
    if not header:
        indexes = _index_columns(src, source_column, target_column, None)
        min_fields = max(indexes) + 1
    for record in csv_records(src.lines(), delimiter):
        if record.error:
            src.reject(record.line, CSV_ERROR, record.error)
            continue
        fields, line = record.fields, record.line
        if not fields:
            continue
        if indexes is None:  # the header: every row must be as wide as it
            indexes = _index_columns(src, source_column, target_column, fields)
            min_fields = max_fields = len(fields)
            continue
        if not check_width(src, line, len(fields), min_fields, max_fields, record.last):
            continue
        if pair := src.pair(line, fields[indexes[0]], fields[indexes[1]]):
            yield pair


def _index_columns(
    src: RecordSource, source: Column | None, target: Column | None, names: Sequence[str] | None
) -> tuple[int, int]:
    """Resolve the selected columns to indexes, using the header names when there are any."""
    if source is None and target is None:
        if names is not None and (pair := known_pair(names)):
            return names.index(pair[0]), names.index(pair[1])
        return 0, 1
    if source is None or target is None:
        raise src.fail("select both the source and the target column")
    return _index_of(src, source, names), _index_of(src, target, names)


def _index_of(src: RecordSource, column: Column, names: Sequence[str] | None) -> int:
    if isinstance(column, int) or column.isdigit():
        index = int(column)
        if names is not None and index >= len(names):
            raise src.fail(f"column {index} but the header has {len(names)} columns", 1)
        return index
    if names is None:
        raise src.fail(f"column {column!r} given by name but the file has no header")
    if column not in names:
        raise src.fail(f"column {column!r} not in the header {list(names)}", 1)
    return names.index(column)
