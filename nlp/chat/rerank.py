"""Choosing a reply from the n-best list.

Seq2seq chat models love three failure modes: parroting the input, saying the same thing
twice in a row, and one safe generic line ("i don't know .") for everything. The model score
alone prefers all three, so we subtract penalties (in the same log-probability units as the
score) and pick the best candidate that is left.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from nlp.generation.text_generator import Generation
from nlp.text.normalize import words_only
from nlp.text.scripts import has_han
from nlp.util.lru import MAX_CHATS, LruDict


@dataclass(frozen=True)
class RerankWeights:
    """Penalties in nats (log-probability units, like `Generation.score`)."""

    echo: float = 3.0  # times the share of reply words copied from the message
    echo_threshold: float = 0.5  # below this share, copying is normal conversation
    repeat: float = 5.0  # identical to the bot's previous reply in the same chat
    chat_frequency: float = 1.0  # per earlier use in this chat's recent replies
    global_frequency: float = 0.5  # times log(1 + uses) in recent replies across all chats
    empty: float = 20.0  # a reply with no words at all


class _RecentReplies:
    """A sliding window of normalised replies with counts."""

    def __init__(self, size: int) -> None:
        self._window: deque[str] = deque()
        self._size = size
        self.counts: Counter[str] = Counter()

    def add(self, reply: str) -> None:
        self._window.append(reply)
        self.counts[reply] += 1
        if len(self._window) > self._size:
            old = self._window.popleft()
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]

    @property
    def last(self) -> str | None:
        return self._window[-1] if self._window else None


class ReplyRanker:
    """Remembers recent replies (per chat and overall) and re-ranks candidates against them."""

    def __init__(
        self,
        weights: RerankWeights | None = None,
        *,
        chat_window: int = 20,
        global_window: int = 500,
        max_chats: int = MAX_CHATS,
    ) -> None:
        self.weights = weights or RerankWeights()
        self._chat_window = chat_window
        self._chats: LruDict[str, _RecentReplies] = LruDict(max_chats)
        self._global = _RecentReplies(global_window)

    def penalty(self, chat: str, reply: str, message: str, *, written: bool = True) -> float:
        """The reply's penalty in this chat. The echo penalty is for a reply the decoder
        `written`: a person's retrieved reply that takes up the message's words ("Is he
        married?" -> "Yes, he's married.") answers it, and one that only repeats a turn of
        the conversation never becomes a candidate (`nlp.retrieval.turns.repeats_a_turn`)."""
        return self._penalty(chat, reply, _message_units(message), written)

    def choose(self, chat: str, candidates: Sequence[Generation], message: str) -> Generation:
        """The candidate with the best score minus penalty (earlier candidates win ties)."""
        if not candidates:
            raise ValueError("no candidates to choose from")
        heard = _message_units(message)
        return max(candidates, key=lambda c: float(c.score) - self._penalty(
            chat, c.text, heard, c.provenance != "retrieved"))

    def _penalty(self, chat: str, reply: str, heard: frozenset[str], written: bool) -> float:
        """`penalty`, with the message's units (`_message_units`) read once per message."""
        w = self.weights
        words = words_only(reply)
        if not words:
            return w.empty
        penalty = 0.0
        reply_words = _units(words)
        copied = sum(word in heard for word in reply_words) / max(len(reply_words), 1)
        if written and copied >= w.echo_threshold:
            penalty += w.echo * copied
        recent = self._chats.get(chat)
        if recent is not None:
            if recent.last == words:
                penalty += w.repeat
            penalty += w.chat_frequency * recent.counts[words]
        penalty += w.global_frequency * math.log1p(self._global.counts[words])
        return penalty

    def remember(self, chat: str, reply: str) -> None:
        words = words_only(reply)
        recent = self._chats.get(chat) or _RecentReplies(self._chat_window)
        recent.add(words)
        self._chats[chat] = recent
        self._global.add(words)

    def forget(self, chat: str) -> None:
        """Drop a chat's history (after /reset); the global frequencies stay."""
        self._chats.pop(chat, None)


def _units(words: str) -> list[str]:
    """What a reply copies from a message is counted in: words, and the characters of a Han
    run, which Chinese writes without spaces ("我喜欢看电影" is one "word" to a split on
    spaces, so a near-parrot of "你喜欢看电影吗" copied nothing)."""
    return [unit for word in words.split() for unit in (list(word) if has_han(word) else [word])]


def _message_units(message: str) -> frozenset[str]:
    """The units (`_units`) of a message that a reply's echo penalty looks for."""
    return frozenset(_units(words_only(message)))
