"""Multi-turn context: the last K turns of a chat joined into one encoder input.

The model was trained on inputs built the same way (`DataConfig.context_turns` previous turns
joined with `DataConfig.turn_separator`), so this mirrors that and nothing more.
"""

from __future__ import annotations

import re
from collections import deque

from nlp.text.normalize import normalize_text
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
        """Remove the separator from user text so a message cannot forge extra turns.

        Found as the model would read it, not as typed: the codec normalises (NFKC makes a
        full-width "＿＿ｅｏｔ＿＿" "__eot__") and the tokenizer lowercases ("__EOT__"), so the
        text is normalised here and the separator matched in any case.
        """
        marker = self.separator.strip()
        if not marker:
            return text
        forged = re.compile(re.escape(marker), re.IGNORECASE)
        return " ".join(forged.sub(" ", normalize_text(text)).split())

    def previous(self, chat: str) -> list[str]:
        return list(self._history.get(chat, ()))

    def encoder_input(self, chat: str, message: str) -> str:
        """The last K turns plus `message`, joined with the separator."""
        return self.separator.join([*self.previous(chat), message])

    def add_exchange(self, chat: str, message: str, reply: str) -> None:
        if self.turns == 0:
            return
        history = self._history.get(chat) or deque(maxlen=self.turns)
        history.extend((message, reply))
        self._history[chat] = history

    def reset(self, chat: str) -> None:
        self._history.pop(chat, None)
