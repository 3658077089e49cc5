"""Which conversations a model's responder remembers over HTTP: bounded, and expiring.

The responder keeps context, settings and the last reply per chat, in LRU-bounded maps; a
web client never says goodbye, so here a conversation also expires after `ttl` seconds
without a message, and the least recently used is dropped once `max_size` are open. Either
way the responder forgets all of it (`ChatResponder.forget`). Each conversation also has a
lock: the responder must not answer two messages of one conversation at once (its context is
updated after the reply is chosen), so a client's second message waits for its first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Entry:
    last_used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Conversations:
    """Conversation id -> lock, in least-recently-used order; calls `forget(id)` on drop."""

    def __init__(
        self,
        forget: Callable[[str], None],
        *,
        max_size: int,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._forget = forget
        self.max_size = max_size
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, conversation: str) -> bool:
        self.expire()
        return conversation in self._entries

    def lock(self, conversation: str) -> asyncio.Lock:
        """The conversation's lock, after forgetting the expired ones (a conversation idle for
        longer than `ttl` starts afresh) and, if full, the least recently used idle one."""
        self.expire()
        entry = self._entries.pop(conversation, None) or _Entry(self._clock())
        entry.last_used = self._clock()
        self._entries[conversation] = entry
        while len(self._entries) > self.max_size:
            victim = next(
                (key for key, e in self._entries.items() if not e.lock.locked()), None
            )
            if victim is None or victim == conversation:  # all busy: bounded by in-flight
                break
            self._drop(victim)
        return entry.lock

    def expire(self) -> None:
        """Forget every conversation idle for longer than `ttl` (oldest first, so this stops
        at the first one still fresh)."""
        now = self._clock()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.last_used <= self.ttl or entry.lock.locked():
                break
            self._drop(key)

    def _drop(self, conversation: str) -> None:
        del self._entries[conversation]
        self._forget(conversation)
