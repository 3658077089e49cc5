"""Which conversations a model's responder remembers over HTTP: issued, bounded, expiring.

A conversation id is the only key to a conversation: whoever holds it continues it, resets
it, or draws its last reply's heatmap. So the server issues every id (`open`: 128 random bits,
`secrets.token_urlsafe`) and answers only to ids it issued and still remembers
(`UnknownConversation` otherwise): no one reaches another's conversation by guessing, and a
client cannot pick a weak id ("1", "alice") that someone else could guess.

The responder keeps context, settings and the last reply per chat, in LRU-bounded maps; a
web client never says goodbye, so here a conversation also expires after `ttl` seconds
without a message, and the least recently used is dropped once `max_size` are open. Each
client (`open`'s owner, its address) may hold `per_owner` of them: beyond, its own least
recently used one is dropped, so that a stranger opening thousands pushes out only its own,
never everyone else's. Either way the responder forgets all of it (`ChatResponder.forget`),
and the id is refused from then on. Each conversation also has a lock: the responder must
not answer two messages of one conversation at once (its context is updated after the reply
is chosen), so a client's second message waits for its first.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

ID_BYTES = 16  # 128 bits: guessing one open conversation among 10,000 stays hopeless


class UnknownConversation(KeyError):
    """An id this server did not issue, or one it has forgotten (expired or evicted)."""


@dataclass
class _Entry:
    last_used: float
    owner: Hashable
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Conversations:
    """Conversation id -> lock, in least-recently-used order; calls `forget(id)` on drop."""

    def __init__(
        self,
        forget: Callable[[str], None],
        *,
        max_size: int,
        ttl: float,
        per_owner: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._forget = forget
        self.max_size = max_size
        self.per_owner = per_owner or max_size
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # each owner's conversations, least recently used first
        self._owned: dict[Hashable, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, conversation: str) -> bool:
        self.expire()
        return conversation in self._entries

    def open(self, owner: Hashable = "") -> str:
        """A new conversation's id, unguessable, held by `owner`; if the owner holds its
        quota, its own least recently used idle conversation is forgotten to make room, and
        if the table is full, the least recently used idle one of anyone's."""
        self.expire()
        conversation = secrets.token_urlsafe(ID_BYTES)
        self._entries[conversation] = _Entry(self._clock(), owner)
        owned = self._owned.setdefault(owner, OrderedDict())
        owned[conversation] = None
        self._evict(owned, self.per_owner, conversation)
        self._evict(self._entries, self.max_size, conversation)
        return conversation

    def lock(self, conversation: str) -> asyncio.Lock:
        """The lock of a conversation this table issued and remembers, after forgetting the
        expired ones (UnknownConversation for any other id: a forgotten conversation is
        not silently started afresh under an id someone else may know)."""
        self.expire()
        entry = self._entries.pop(conversation, None)
        if entry is None:
            raise UnknownConversation(conversation)
        entry.last_used = self._clock()
        self._entries[conversation] = entry
        self._owned[entry.owner].move_to_end(conversation)
        return entry.lock

    def _evict(self, table: Mapping[str, object], size: int, conversation: str) -> None:
        """Drop `table`'s least recently used idle conversations until it holds `size`."""
        while len(table) > size:
            victim = next(
                (key for key in table if not self._entries[key].lock.locked()), None
            )
            if victim is None or victim == conversation:  # all busy: bounded by in-flight
                break
            self._drop(victim)

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
        owner = self._entries.pop(conversation).owner
        owned = self._owned[owner]
        del owned[conversation]
        if not owned:
            del self._owned[owner]
        self._forget(conversation)
