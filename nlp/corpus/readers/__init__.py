"""Corpus readers: every supported format streamed as `Pair`s through one entry point.

`read_pairs` resolves the format (or detects it), checks that the options belong to that
format before anything is read, expands corpus directories, and chains the per-file readers.
Each reader module handles one format family and normalises nothing (see `nlp.corpus.pipeline`).
"""

from __future__ import annotations

import codecs
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from nlp.corpus.readers.base import RecordSource, SidePattern, side_patterns
from nlp.corpus.readers.chatterbot import read_chatterbot
from nlp.corpus.readers.chitchat import read_chitchat
from nlp.corpus.readers.conv import read_conv
from nlp.corpus.readers.conversation_log import read_conversation_log
from nlp.corpus.readers.cornell import read_cornell
from nlp.corpus.readers.dailydialog import read_dailydialog
from nlp.corpus.readers.delimited import (
    read_csv,
    read_lccc,
    read_lcsts_tsv,
    read_tatoeba,
    read_tsv,
)
from nlp.corpus.readers.detect import LOG_FORMAT, Detection, detect, detect_format
from nlp.corpus.readers.json_array import read_json
from nlp.corpus.readers.jsonl import read_jsonl
from nlp.corpus.readers.lcsts_xml import read_lcsts_xml
from nlp.corpus.readers.reuters import read_reuters
from nlp.corpus.records import LINE, RECORD, FormatError, Pair, ReadReport

Reader = Callable[..., Iterator[Pair]]


@dataclass(frozen=True)
class Format:
    """A corpus format: its reader, default encoding and what it takes from a directory.

    `strip_html` is the default of the markup cleaning (on where text fields often carry
    HTML: web and feed exports); `unit` is what its problem locations count.
    """

    name: str
    read: Reader
    description: str
    encoding: str = "utf-8"
    patterns: tuple[str, ...] = ()  # files read from a directory given as the path
    whole_directory: bool = False  # the reader takes the directory itself
    strip_html: bool = False
    unit: str = LINE

    def cleaning(self, strip_html: bool | None) -> bool:
        """Whether markup is stripped when the user asked for `strip_html` (None: not asked)."""
        return self.strip_html if strip_html is None else strip_html


FORMATS: dict[str, Format] = {
    spec.name: spec
    for spec in (
        Format("jsonl", read_jsonl, '{"source": ..., "target": ...} per line'),
        Format(
            "json",
            read_json,
            "JSON array of records (or an object holding one), streamed",
            patterns=("*.json",),
            strip_html=True,
            unit=RECORD,
        ),
        Format("tsv", read_tsv, "tab-separated, columns chosen by index"),
        Format("csv", read_csv, "CSV, columns chosen by header name or index", strip_html=True),
        Format("lcsts-tsv", read_lcsts_tsv, "LCSTS title<TAB>content"),
        Format("lcsts-xml", read_lcsts_xml, "LCSTS original <doc> records"),
        Format("dailydialog", read_dailydialog, "one dialogue per line, __eou__ turns"),
        Format("lccc", read_lccc, "space-separated post<TAB>reply"),
        Format(
            LOG_FORMAT,
            read_conversation_log,
            "s2s chat/bot --log-conversations JSONL: what people wrote, replies rated /good",
        ),
        Format("chatterbot", read_chatterbot, "ChatterBot YAML", patterns=("*.yml", "*.yaml")),
        Format(
            "cornell", read_cornell, "Cornell Movie-Dialogs", "iso-8859-1", whole_directory=True
        ),
        Format("reuters", read_reuters, "Reuters-21578 SGML", "iso-8859-1", patterns=("*.sgm",)),
        Format("tatoeba", read_tatoeba, "Tatoeba english<TAB>chinese[<TAB>attribution]"),
        Format(
            "conv",
            read_conv,
            ".conv subtitle blocks: E starts one, M text is a line",
            patterns=("*.conv",),
        ),
        Format(
            "chitchat",
            read_chitchat,
            "chitchat-dataset's dataset.json: conversations of message lists, streamed",
            unit=RECORD,
        ),
    )
}


def format_options(fmt: str) -> list[str]:
    """The keyword options the reader of `fmt` accepts (besides `encoding`)."""
    parameters = list(inspect.signature(FORMATS[fmt].read).parameters.values())[1:]
    return [parameter.name for parameter in parameters]


def check_encoding(path: str, encoding: str) -> None:
    """A FormatError for an encoding the readers cannot read a file in: an unknown name, or
    one whose newline is not the byte 0x0a (UTF-16 and UTF-32: Excel's "Unicode Text"
    export), which the line-by-line readers split on."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise FormatError(path, 0, f"unknown encoding {encoding!r}") from None
    encoder = codecs.getincrementalencoder(name)()
    encoder.encode("a")  # past any byte-order mark
    if encoder.encode("\n") != b"\n":
        raise FormatError(path, 0, f"--encoding {encoding}: files are read line by line, and a "
                          f"{name} line does not end in the byte 0x0a; convert it to UTF-8 "
                          f"first (iconv -f {name} -t utf-8 FILE)")


def read_pairs(
    path: str | PathLike[str],
    fmt: str | Detection = "auto",
    *,
    report: ReadReport,
    strict: bool = False,
    encoding: str | None = None,
    strip_html: bool | None = None,
    strip_patterns: Iterable[str | SidePattern] = (),
    skip_patterns: Iterable[str | SidePattern] = (),
    **options: Any,
) -> Iterator[Pair]:
    """Stream the pairs of a corpus file (or corpus directory) in format `fmt`: a format's
    name, "auto", or the `Detection` already made for `path` (`options_for_file`).

    `strip_html` (None: the format's default) turns markup in the text into visible text
    (`nlp.text.html`); the report counts the fields it changed. `strip_patterns` and
    `skip_patterns` (`SIDE=REGEX`, any format) remove matches from a side and leave out
    pairs with a matching side (`RecordSource.pair`).

    Problems with single records are counted in `report` (with `path:line`) and skipped, or
    raised as `CorpusError` at the first one when `strict`. Problems that make the whole
    request unusable (missing path, unknown format, options of another format) raise
    `FormatError` at once, before iteration starts.
    """
    location = Path(path)
    if not location.exists():
        raise FormatError(str(location), 0, "no such file or directory")
    if fmt == "auto":
        fmt = detect(location)
    if isinstance(fmt, Detection):
        report.formats[str(location)] = f"{fmt.fmt} (detected: {fmt.why})"
        fmt = fmt.fmt
    elif fmt in FORMATS:
        report.formats[str(location)] = fmt
    else:
        raise FormatError(str(location), 0, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    try:
        strip, skip = side_patterns(strip_patterns), side_patterns(skip_patterns)
    except ValueError as exc:
        raise FormatError(str(location), 0, str(exc)) from exc
    unknown = sorted(set(options) - set(format_options(fmt)))
    if unknown:
        accepted = ", ".join(format_options(fmt)) or "none"
        raise FormatError(
            str(location),
            0,
            f"option(s) {', '.join(unknown)} do not apply to format {fmt} (it accepts: {accepted})",
        )
    if encoding is not None:
        check_encoding(str(location), encoding)
    files = _files(location, spec)
    sources = [
        RecordSource(
            file, report, strict, encoding or spec.encoding, spec.unit,
            spec.cleaning(strip_html), strip, skip,
        )
        for file in files
    ]
    return _chain(sources, spec, options)


def _files(path: Path, spec: Format) -> list[Path]:
    if not path.is_dir() or spec.whole_directory:
        return [path]
    if not spec.patterns:
        raise FormatError(str(path), 0, f"format {spec.name} reads files, not directories")
    files = sorted({file for pattern in spec.patterns for file in path.rglob(pattern)})
    if not files:
        raise FormatError(str(path), 0, f"no {' or '.join(spec.patterns)} files in directory")
    return files


def _chain(sources: list[RecordSource], spec: Format, options: dict[str, Any]) -> Iterator[Pair]:
    for src in sources:
        yield from spec.read(src, **options)


# The options `read_pairs` takes for a file of any format, read off its signature (the others
# are its format's own, `format_options`; `report` and `strict` are the call's, not options)
ANY_FORMAT_OPTIONS = tuple(
    name for name, parameter in inspect.signature(read_pairs).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("report", "strict"))

def options_for_file(
    path: str | PathLike[str], options: dict[str, Any]
) -> tuple[Detection | str, dict[str, Any]]:
    """The format detected for `path` (for `read_pairs`, which then need not detect it again)
    and the reader options given for a run's files that
    apply to it: the rest belong to other files of the run (a raw corpus's field names or
    encoding do not apply to a `corpus convert` output beside it, UTF-8 with source and
    target, which they made unreadable or mis-read). What `--exclude-corpus` and training's
    `--corpus` / `--valid` lists read each file with."""
    if not Path(path).exists():
        return "auto", options  # read_pairs says so, naming it
    found = detect(Path(path))
    own = {*format_options(found.fmt), *ANY_FORMAT_OPTIONS}
    if found.written_by_convert:
        own -= {"source_field", "target_field", "encoding"}
    return found, {name: value for name, value in options.items() if name in own}


__all__ = [
    "ANY_FORMAT_OPTIONS", "FORMATS", "LOG_FORMAT", "Detection", "Format", "detect",
    "detect_format", "format_options",
    "options_for_file", "read_pairs",
]
