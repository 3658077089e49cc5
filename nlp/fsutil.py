"""Atomic directory writes: build in a temporary sibling, then rename into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(directory: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces `directory` only if the block succeeds.

    The old directory is first renamed to `.NAME.old` and removed after the new one is in
    place; readers that find `directory` missing can fall back to that (see `recover`).
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _old(directory)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def recover(directory: Path) -> Path:
    """The directory, or its previous version if a crash hit between the two renames."""
    if not directory.exists() and _old(directory).exists():
        return _old(directory)
    return directory


def _old(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")
