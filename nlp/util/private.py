"""Files only their owner may read: what people wrote to the bot (the conversation log) and
the salt that anonymises their chat ids (the state file).

Why not the umask's permissions: with the usual 022 both would be world-readable, and with
the salt readable a hashed chat id is one guess among ~1e10 Telegram ids away. Files and
directories are private only when this creates them: an existing one keeps the permissions
its owner gave it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def make_private_parents(path: Path) -> None:
    """Create the missing directories above `path`, each 0700 (`Path.mkdir(parents=True)`
    gives the ones above the last the umask's mode)."""
    missing = [parent for parent in path.parents if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIRECTORY_MODE, exist_ok=True)


def create_private(path: Path) -> None:
    """Create `path` empty and 0600 (with private parents) unless it exists, so a writer
    that creates files with its own mode (SQLite: 0644) opens it as it is."""
    make_private_parents(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def open_private_append(path: Path) -> TextIO:
    """`path` opened to append UTF-8 text, created 0600 (with private parents) if missing."""
    make_private_parents(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    return open(descriptor, "a", encoding="utf-8")
