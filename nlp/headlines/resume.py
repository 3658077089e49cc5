"""Find where an interrupted run stopped: complete output lines = input records done.

A run killed at any moment (even SIGKILL in the middle of a write) leaves complete lines
followed by at most one partial line. Truncating to the last newline and counting lines gives
the number of input records to skip; appending then yields every record exactly once, in order.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHUNK = 1 << 20


def truncate_partial_line(path: Path) -> int:
    """Cut `path` after its last newline (a missing file counts as empty); return its size."""
    if not path.exists():
        return 0
    with path.open("r+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - _CHUNK)
            handle.seek(start)
            chunk = handle.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep != end:
            handle.truncate(keep)
        return keep


def count_lines(path: Path) -> int:
    """Number of newline characters in `path` (0 if it does not exist), read in chunks."""
    if not path.exists():
        return 0
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            count += chunk.count(b"\n")
    return count


def records_done(path: Path) -> int:
    """Prepare `path` for appending and return how many records it already holds."""
    truncate_partial_line(path)
    return count_lines(path)
