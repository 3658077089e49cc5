"""Which format an articles input is: the corpus readers' detection, on a replayed sample.

Why a sample of the stream and not the path: the in-process job reads stdin and compressed
files, the Beam runner remote and compressed ones, and both must see the same decompressed
content to detect the same format (`nlp.corpus.readers.detect`, the one detection). The
sample read for it is given again (`Replay`), so nothing is read twice and stdin works.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable, Iterator
from io import BufferedIOBase, BytesIO
from pathlib import Path, PurePath
from typing import Protocol

from nlp.corpus.readers.detect import (
    LOG_FORMAT,
    SAMPLE_BYTES,
    Detection,
    detect_sample,
    sample_lines,
)
from nlp.corpus.records import FormatError

FORMATS: tuple[str, ...] = ("text", "jsonl", "json", "tsv", "csv")
# What the corpus formats that hold articles are read as; the others are refused.
_FROM_CORPUS = {
    "jsonl": "jsonl", LOG_FORMAT: "jsonl", "json": "json", "csv": "csv",
    "tsv": "tsv", "lcsts-tsv": "tsv", "lccc": "tsv", "tatoeba": "tsv",
}
# Decompressed by extension, as Beam's FileSystems.open does on the workers
COMPRESSIONS: dict[str, Callable[[str], BufferedIOBase]] = {
    ".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile, ".lzma": lzma.LZMAFile,
}


class HeadlineInputError(ValueError):
    """A record (or the input's layout) that cannot be used; str() is "path:line: reason"."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class Readable(Protocol):
    """A binary stream: a file, stdin, or what Beam's FileSystems.open returns."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self) -> bytes: ...


def open_input(path: str) -> BufferedIOBase:
    """The file's bytes, decompressed when its extension names a compression."""
    opener = COMPRESSIONS.get(PurePath(path).suffix.lower())
    return opener(path) if opener else Path(path).open("rb")


def uncompressed_name(path: str) -> str:
    """`path` without a compression extension: what its content is named."""
    suffix = PurePath(path).suffix
    return path.removesuffix(suffix) if suffix.lower() in COMPRESSIONS else path


def check_format(requested: str) -> None:
    """ValueError for a format name that is neither "auto" nor one of `FORMATS`."""
    if requested != "auto" and requested not in FORMATS:
        raise ValueError(f"unknown input format {requested!r}; choose from {FORMATS}")


def detect_input(path: str, sample: bytes, requested: str) -> Detection:
    """A format of `FORMATS` and why: `requested`, or the format the corpus readers detect
    from the name and the `sample` (content nothing else fits is plain text). Corpora of
    pairs or dialogues whose articles need their corpus reader (LCSTS XML, Reuters SGML ...)
    are refused, saying what to do."""
    check_format(requested)
    if requested != "auto":
        return Detection(requested, "as given")
    try:
        found = detect_sample(PurePath(uncompressed_name(path)).name, sample_lines(sample), path)
    except FormatError:
        return Detection("text", "no other format fits its content")
    if found.fmt in _FROM_CORPUS:
        return Detection(_FROM_CORPUS[found.fmt], f"detected: {found.why}")
    raise HeadlineInputError(
        path, 0, f"this is a {found.fmt} corpus ({found.why}), not a file of articles: take "
        f"its articles out with `s2s corpus convert --format {found.fmt} --input {path} "
        "--output pairs.jsonl` and give pairs.jsonl (each record's source is the article), "
        "or read it line by line with --input-format text")


class Replay:
    """A stream whose first `SAMPLE_BYTES` were read ahead (`sample`) and are read again."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.sample = stream.read(SAMPLE_BYTES)
        self._head = BytesIO(self.sample)

    def read(self, size: int = -1) -> bytes:
        return self._head.read(size) or self.stream.read(size)

    def readline(self) -> bytes:
        line = self._head.readline()
        return line if line.endswith(b"\n") else line + self.stream.readline()

    def lines(self) -> Iterator[bytes]:
        """Lines with their newlines (split at b"\\n" only, as a binary file is)."""
        return iter(self.readline, b"")

