"""Articles in: plain text, JSONL, a JSON array, TSV or CSV, one record at a time, bad
records included.

Why bad records are yielded rather than skipped: the output must stay aligned with the input
(record N of the output answers record N of the input), so a bad record becomes an error
record downstream instead of disappearing. Only a wrong *configuration* (a header without
the requested column) raises, because then every record would be bad.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import ijson

from nlp.corpus.readers import FORMATS as CORPUS_FORMATS
from nlp.corpus.readers.base import KNOWN_FIELD_PAIRS, SIDES, SidePattern, known_pair, strip_side
from nlp.corpus.readers.delimited import CsvRecord, csv_records
from nlp.corpus.readers.detect import opens_array, sample_lines
from nlp.corpus.readers.json_array import BOM, InvalidJson, numbered
from nlp.headlines.input_format import HeadlineInputError, Readable, Replay, detect_input
from nlp.text.cleaning import undecodable
from nlp.text.html import html_to_text

ARTICLE_SIDE = SIDES[0]  # an article is what a corpus pair's source is

ARTICLE_FIELDS: tuple[str, ...] = (*(article for article, _ in KNOWN_FIELD_PAIRS), "text")
"""Where a record keeps its article when no field is named: the article side of the corpus
readers' field pairs, or `text` (a record that is an article alone)."""

_INDEX = re.compile(r"-?\d+")
# What a table's article column is called in its header row (`is_header`)
HEADER_NAMES = frozenset({*ARTICLE_FIELDS, "content", "body", "story", "document", "news",
                          "articles", "texts", "正文", "内容", "新闻"})


@dataclass(frozen=True)
class Article:
    """One input record: its text, or the reason it has none."""

    line: int  # 1-based line where the record starts (a JSON array's: its record number)
    id: object  # the record's id as the input has it (`_record_id`), else its line number
    text: str = ""
    error: str = ""


@dataclass(frozen=True)
class ReaderOptions:
    """Where the article (and its id) sit in a record.

    `column` / `id_column`: a 0-based index (negative counts from the end; the default -1 is
    the last column, where ``title<TAB>content`` files keep the article) or a header name; a
    name means the first row is a header.
    """

    format: str = "auto"  # auto (detected) or one of input_format.FORMATS
    field: str | None = None  # JSONL article field; None: `article_field` chooses
    id_field: str = "id"
    column: str = "-1"
    id_column: str | None = None
    strip_html: bool | None = None  # markup to visible text; None: as the corpus format does
    strip_patterns: tuple[SidePattern, ...] = ()  # `source=REGEX`: removed from each article

    def __post_init__(self) -> None:
        for rule in self.strip_patterns:
            if rule.side != ARTICLE_SIDE:
                raise ValueError(f"strip pattern {rule}: an article is a pair's {ARTICLE_SIDE}; "
                                 f"give {ARTICLE_SIDE}=REGEX")


FLAGS: dict[str, str] = {
    "format": "--input-format", "field": "--field", "id_field": "--id-field",
    "column": "--column", "id_column": "--id-column",
}
"""The `s2s headlines` flag of each `ReaderOptions` field (the parser is built with them)."""
# The formats each option is for: given for another, it would be silently ignored
_FORMATS_OF = {
    "field": ("jsonl", "json"), "id_field": ("jsonl", "json"),
    "column": ("tsv", "csv"), "id_column": ("tsv", "csv"),
}
_DEFAULTS = ReaderOptions()


def read_articles(stream: Readable, path: str, options: ReaderOptions) -> Iterator[Article]:
    """Lazily parse `stream` (bytes, so that one undecodable line costs only that record),
    in the format given or detected from its name (`path`) and first bytes."""
    replay = Replay(stream)
    found = detect_input(path, replay.sample, options.format)
    fmt = found.fmt
    foreign = [name for name, formats in _FORMATS_OF.items()
               if getattr(options, name) != getattr(_DEFAULTS, name) and fmt not in formats]
    if foreign:
        flags = " and ".join(FLAGS[name] for name in foreign)
        raise HeadlineInputError(path, 0, f"{flags} {'does' if len(foreign) == 1 else 'do'} not "
                                 f"apply to {fmt} input ({found.why}); {FLAGS['format']} "
                                 "gives the format")
    articles = _records(replay, path, fmt, options)
    spec = CORPUS_FORMATS.get(fmt)  # none for plain text
    strip_html = spec.cleaning(options.strip_html) if spec else bool(options.strip_html)
    if strip_html or options.strip_patterns:
        return (_cleaned(a, strip_html, options.strip_patterns) for a in articles)
    return articles


def _records(replay: Replay, path: str, fmt: str, options: ReaderOptions) -> Iterator[Article]:
    if fmt == "json":
        return _json_array_records(replay, path, options)
    lines = _decoded_lines(replay.lines())
    if fmt == "text":
        return (_text_record(n, text) for n, text in lines)
    if fmt == "jsonl":
        return (_json_record(n, text, options) for n, text in lines)
    return _table_records(lines, path, fmt, options)


def _cleaned(article: Article, strip_html: bool, rules: Iterable[SidePattern]) -> Article:
    """The article cleaned as a corpus reader cleans a pair's source (`RecordSource.pair`):
    markup to visible text, then the strip patterns; what is left may be empty."""
    if article.error:
        return article
    text = html_to_text(article.text) if strip_html else article.text
    return make_article(article.line, article.id, strip_side(text, ARTICLE_SIDE, rules))


_UNDECODABLE = "undecodable bytes (not UTF-8)"


def _decoded_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline); undecodable bytes become lone surrogates."""
    for number, raw in enumerate(stream, 1):
        text = raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n")
        yield number, text.removeprefix("\ufeff") if number == 1 else text


def make_article(line: int, record_id: object, text: str) -> Article:
    """The record for one article's text, or an error record saying why it has none (also
    how the HTTP server turns each posted article into a record)."""
    if undecodable(text):
        return Article(line, record_id, error=_UNDECODABLE)
    if not text.strip():
        return Article(line, record_id, error="empty article")
    return Article(line, record_id, text.strip())


def _record_id(record: dict[str, object], name: str, line: int) -> tuple[object, str]:
    """(the record's id, "") or (its line number, why its id cannot be used).

    The id is carried through as written, so that a join on it finds its own record: only a
    missing id is replaced by the line number (which may equal another record's id). A float
    with an integral value is the integer (pandas writes an integer column with gaps as
    3.0); a null stays null.
    """
    if name not in record:
        return line, ""
    value = record[name]
    if isinstance(value, float) and value.is_integer():
        return int(value), ""
    if isinstance(value, dict | list):
        return line, f"id is a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, str) and undecodable(value):
        return line, "id is not UTF-8 text (a lone surrogate escape)"
    return value, ""


def _text_record(line: int, text: str) -> Article:
    return make_article(line, line, text)


def _json_record(line: int, text: str, options: ReaderOptions) -> Article:
    if undecodable(text):
        return Article(line, line, error=_UNDECODABLE)
    if not text.strip():
        return Article(line, line, error="empty line")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Article(line, line, error=f"invalid JSON: {exc.msg} (column {exc.colno})")
    return _record_article(line, record, options)


def _json_array_records(stream: Replay, path: str, options: ReaderOptions) -> Iterator[Article]:
    """The records of a JSON array (`[{...}, ...]`, as feed readers export), streamed with
    `ijson` (such a file may be one line larger than memory), numbered from 1. A syntax error
    ends the array (a streaming parser cannot resynchronise): it is the next record's error."""
    if not opens_array(sample_lines(stream.sample)):
        raise HeadlineInputError(path, 1, "a JSON document that is not an array of records: "
                                 "give the array, or JSON Lines (one record a line)")
    if stream.sample.startswith(BOM):  # ijson takes it for a stray character
        stream.read(len(BOM))
    for number, record in numbered(ijson.items(stream, "item", use_float=True)):
        if isinstance(record, InvalidJson):
            yield Article(number, number, error=f"invalid JSON: {record.reason}; the rest is lost")
        else:
            yield _record_article(number, record, options)


def _record_article(line: int, record: object, options: ReaderOptions) -> Article:
    """The article of one parsed JSON record (a line of JSONL, an item of a JSON array)."""
    if not isinstance(record, dict):
        return Article(line, line, error="not a JSON object")
    record_id, problem = _record_id(record, options.id_field, line)
    if problem:
        return Article(line, record_id, error=problem)
    if options.field is not None:
        name, problem = options.field, "" if options.field in record else (
            f"missing field {options.field!r}")
    else:
        name, problem = article_field(record)
    if problem:
        return Article(line, record_id, error=problem)
    value = record[name]
    if not isinstance(value, str):
        return Article(line, record_id, error=f"field {name!r} is not a string")
    return make_article(line, record_id, value)


def article_field(names: Collection[str]) -> tuple[str, str]:
    """(the field holding the article, "") among a record's field `names`, or ("", why not).

    The corpus readers' rule first: the article side of the first known pair whose both
    fields are there (a feed item's `source` is its feed's URL: `source` is the article only
    beside a `target`). Otherwise the one `ARTICLE_FIELDS` name there; two of them (a feed
    item without a title has `source` and `description`) are ambiguous, not guessed.
    """
    if pair := known_pair(names):
        return pair[0], ""
    present = [name for name in ARTICLE_FIELDS if name in names]
    if len(present) == 1:
        return present[0], ""
    if present:
        return "", f"ambiguous fields {' / '.join(map(repr, present))}: give {FLAGS['field']}"
    return "", f"missing field {' / '.join(map(repr, ARTICLE_FIELDS))}"


def _table_records(
    lines: Iterable[tuple[int, str]], path: str, fmt: str, options: ReaderOptions
) -> Iterator[Article]:
    """TSV (plain tab split, no quoting: LCSTS-style files, so a stray carriage return or a
    long article is text like any other) or CSV (RFC 4180 quoting, where a quoted field may
    span lines: a record's line is the line where it starts)."""
    records = (
        (CsvRecord(n, n, text.split("\t")) for n, text in lines) if fmt == "tsv"
        else csv_records(lines)
    )
    specs = [options.column] + ([options.id_column] if options.id_column is not None else [])
    header: list[str] | None = None
    if any(not _INDEX.fullmatch(s) for s in specs):
        first = next(records, None)
        if first is None:
            return
        if first.error:
            raise HeadlineInputError(path, first.line, f"unreadable header: {first.error}")
        header = first.fields
    column = _column_index(options.column, header, path)
    id_column = (
        None if options.id_column is None else _column_index(options.id_column, header, path)
    )
    if header is None:
        first = next(records, None)
        if first is None:
            return
        named = _pair_column(first.fields) if options.column == ReaderOptions.column else None
        if named is not None and not first.error:
            column = named
        elif first.error or not is_header(first.fields, column):
            records = itertools.chain([first], records)
    for record in records:
        row, line = record.fields, record.line
        if record.error:  # one bad record costs that record, not the rest
            yield Article(line, line, error=f"unreadable {fmt.upper()} record: {record.error}")
            continue
        if any(undecodable(f) for f in row):
            yield Article(line, line, error=_UNDECODABLE)
            continue
        record_id: object = line
        if id_column is not None and -len(row) <= id_column < len(row):
            record_id = row[id_column]
        if not -len(row) <= column < len(row):
            yield Article(line, record_id, error=f"missing column {options.column}")
            continue
        yield make_article(line, record_id, row[column])


def is_header(row: list[str], column: int) -> bool:
    """Whether a table's first row is a header: its article cell one of the names an article
    column goes by (`HEADER_NAMES`, any case). Why guess: with columns given by index, a
    CSV's header (most have one) was read as an article and got a headline of its own; no
    article is a single such word."""
    cell = row[column].strip().lower() if -len(row) <= column < len(row) else ""
    return cell in HEADER_NAMES


def _pair_column(row: list[str]) -> int | None:
    """The article column of a header row that names the corpus readers' fields (`article_field`:
    `description` beside `title`, `source` beside `target`, ...), any case; None otherwise.
    Why: the default column, the last, is the headline in such tables (`source,target`)."""
    names = [cell.strip().lower() for cell in row]
    name = article_field(names)[0]
    return names.index(name) if name else None


def _column_index(spec: str, header: list[str] | None, path: str) -> int:
    if _INDEX.fullmatch(spec):
        return int(spec)
    assert header is not None
    if spec not in header:
        raise HeadlineInputError(path, 1, f"header has no column {spec!r} (columns: {header})")
    return header.index(spec)
