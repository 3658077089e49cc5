"""A size-bounded dict, so per-chat memory cannot grow without limit in a busy bot."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

# Chats (or group members) whose in-memory state is kept: context, last reply, settings cache.
MAX_CHATS = 10_000

K = TypeVar("K")
V = TypeVar("V")


class LruDict(OrderedDict[K, V]):
    """Forgets the least recently *written* keys once it holds more than `max_size`."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.max_size:
            self.popitem(last=False)
