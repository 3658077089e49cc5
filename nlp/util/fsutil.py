"""Atomic writes, the one way the project replaces a file or a directory.

Everything is built in a temporary sibling (same file system, so the rename is atomic), made
durable with fsync, renamed into place, and the parent directory is fsynced so the rename
itself survives a power loss. Without the fsyncs a crash soon after the rename can leave the
new name with empty or truncated data (a file system may make the rename durable before the
data), which is what the temporary sibling was meant to prevent.

The sibling is created with the usual umask permissions (mode "x" or `mkdir`), unlike
`tempfile`'s private 0600/0700, so a published file or bundle is as readable as any other.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def fsync_directory(directory: Path) -> None:
    """Make the entries of `directory` (a rename into it) durable. A no-op where directories
    cannot be opened (Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root`, and `root` itself."""
    for current, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(current, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_directory(Path(current))


def same_path(first: str | Path, second: str | Path) -> bool:
    """Whether two names are one file or directory: `out.jsonl` and `./out.jsonl`, or a
    symlink and its target, are, so an output named either way would replace the other. Paths
    that exist are compared by identity (hard links too); otherwise the resolved paths are."""
    first, second = Path(first), Path(second)
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _sibling(path: Path) -> Path:
    """A fresh temporary name next to `path`, hidden, on the same file system."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _publish(temporary: Path, path: Path) -> None:
    """Rename the durable `temporary` to `path` and make the rename durable."""
    os.replace(temporary, path)
    fsync_directory(path.parent)


@contextmanager
def atomic_file(
    path: Path, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]:
    """A text handle whose content replaces `path` only if the block succeeds; on an exception
    `path` is untouched and the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _sibling(path)
    try:
        with temporary.open("x", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace `path` with `text`, atomically and durably."""
    with atomic_file(path, encoding) as handle:
        handle.write(text)


@contextmanager
def atomic_directory(directory: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces `directory` only if the block succeeds.

    The old directory is first renamed to `.NAME.old` and removed after the new one is in
    place; readers that find `directory` missing can fall back to that (see `recover`).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(directory)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _old(directory)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    _publish(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def link_or_copy_tree(source: Path, destination: Path, skip: Collection[str] = ()) -> None:
    """Fill `destination` with the files of `source` as hard links, or copies where the file
    system has no hard links; top-level files and directories named in `skip` are left out.

    Why links: changing one small file of a bundle must not copy its weights. A link shares
    the old file's data, so the caller must write only files it left out (writing through a
    link would change the old version too); the project never writes a published file in
    place, every change publishes a new directory.
    """
    for current, directories, files in os.walk(source):
        relative = Path(current).relative_to(source)
        target = destination / relative
        target.mkdir(parents=True, exist_ok=True)
        if relative == Path("."):
            directories[:] = [name for name in directories if name not in skip]
        for name in files:
            if relative == Path(".") and name in skip:
                continue
            link_or_copy(Path(current, name), target / name)


def link_or_copy(source: Path, destination: Path) -> None:
    """The file `source` at `destination` as `link_or_copy_tree` puts each of its files."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def recover(directory: Path) -> Path:
    """The directory, or its previous version if a crash hit between the two renames."""
    if not directory.exists() and _old(directory).exists():
        return _old(directory)
    return directory


def _old(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")
