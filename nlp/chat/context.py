"""Multi-turn context: the last K turns of a chat joined into one encoder input.

The model was trained on inputs built the same way (`DataConfig.context_turns` previous turns
joined with `DataConfig.turn_separator`), so this mirrors that and nothing more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from nlp.text.normalize import normalize_text, without_separator
from nlp.util.lru import MAX_CHATS, LruDict


class DialogueContext:
    """Recent turns (user and bot alike) per chat, for the chats seen most recently.

    Context lives in memory only: after a restart a conversation starts fresh, which is also
    what /reset does. At most `max_chats` chats are remembered (least recently used dropped),
    so a bot in thousands of chats has bounded memory.
    """

    def __init__(self, turns: int, separator: str, *, max_chats: int = MAX_CHATS) -> None:
        if turns < 0:
            raise ValueError(f"context turns must be >= 0, got {turns}")
        self.turns = turns
        self.separator = separator
        self._history: LruDict[str, deque[str]] = LruDict(max_chats)

    def sanitize(self, text: str) -> str:
        """`text` normalised as the codec will (so replies are chosen and logged against the
        text the model reads) and with the separator removed, so a message cannot forge
        extra turns (`nlp.text.normalize.without_separator`, the corpus readers' rule too)."""
        return without_separator(normalize_text(text), self.separator)

    def previous(self, chat: str) -> list[str]:
        return list(self._history.get(chat, ()))

    def encoder_input(self, chat: str, message: str) -> str:
        """The chat's last K turns plus `message`, as `join` joins them."""
        return self.join(self.previous(chat), message)

    def join(self, earlier: Sequence[str], message: str) -> str:
        """The last K of `earlier` turns (oldest first) plus `message`, joined with the
        separator: what the model reads after those turns, in a chat or anywhere else turns
        come from (a test file's conversation, the API's context). Every turn is sanitized,
        so the input holds exactly that many turns."""
        kept = list(earlier)[max(0, len(earlier) - self.turns):] if self.turns else []
        return self.separator.join([*map(self.sanitize, kept), self.sanitize(message)])

    def add_exchange(self, chat: str, message: str, reply: str) -> None:
        """Remember a message and its reply as two turns. Both are sanitized here: the reply
        is the model's text, which may hold the separator's token, and would otherwise count
        as two turns in every later input."""
        if self.turns == 0:
            return
        history = self._history.get(chat) or deque(maxlen=self.turns)
        history.extend((self.sanitize(message), self.sanitize(reply)))
        self._history[chat] = history

    def reset(self, chat: str) -> None:
        self._history.pop(chat, None)
