"""Opt-in logging of whole conversations, in a form `s2s retrain` reads directly.

Why whole conversations and not (message, reply) pairs: retraining on the bot's own unrated
replies teaches it its own stock lines. What is worth learning is what PEOPLE wrote (a user's
answer to the bot's message) and the bot replies a person rated /good; to pick those out, the
log must keep who said what, in which order, and the ratings. The corpus reader
`conversation-log` (`nlp.corpus.readers.conversation_log`) turns the log into pairs.

One JSON object per line, written at once (a crash loses nothing already said), to the file
the path names at the time (it can be rotated by renaming it):
- a turn:   {"chat", "conversation", "turn", "speaker": "user"|"bot", "text", "time"}
- a rating: {"chat", "conversation", "turn", "rating": "good"|"bad", "time"} (of that bot turn)
`conversation` is a random id, new at a chat's first message and after /reset; `turn` counts
from 0 within it. Chat ids are never written: `chat` is sha256(salt + ":" + chat id), with a
salt kept in the bot's state file so one chat hashes the same across restarts but the hash
cannot be looked up. The log and the state file are created readable by their owner only
(`nlp.util.private`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from nlp.corpus.conversation_fields import (
    BOT,
    CONVERSATION,
    RATING,
    SPEAKER,
    TEXT,
    TURN,
    USER,
)
from nlp.util.lru import LruDict
from nlp.util.private import open_private_append

Rating = Literal["good", "bad"]
Speaker = Literal["user", "bot"]


@dataclass
class _Conversation:
    id: str
    turns: int = 0
    last_bot: int | None = None  # the bot turn a /good or /bad would rate (None: rated/none)


class ConversationLog:
    """Appends turns and ratings; see the module docstring for the format."""

    def __init__(
        self,
        path: Path,
        salt: str,
        clock: Callable[[], float] = time.time,
        max_chats: int = 100_000,
    ) -> None:
        self.path = path
        self._salt = salt
        self._clock = clock
        self._chats: LruDict[str, _Conversation] = LruDict(max_chats)
        # opened now: a path that cannot be written fails the command at start-up, not the
        # first message of a chat (which ended `s2s chat` and made the bot apologise to all)
        self._file: TextIO | None = self._open()

    def chat_hash(self, chat: str) -> str:
        return hashlib.sha256(f"{self._salt}:{chat}".encode()).hexdigest()

    def user(self, chat: str, text: str) -> None:
        """A message the person wrote (as the model saw it, cleaned). It ends the rating of
        the bot's previous reply: a /good now means the reply to this message, and when
        none is sent (no candidate, a failure) an old reply must not become its target."""
        self._turn(chat, USER, text).last_bot = None

    def bot(self, chat: str, text: str) -> None:
        """The reply the bot sent; it can be rated until the person's next message."""
        conversation = self._turn(chat, BOT, text)
        conversation.last_bot = conversation.turns - 1

    def rate(self, chat: str, rating: Rating) -> bool:
        """Rate the chat's last bot reply; False when there is none not yet rated."""
        conversation = self._chats.get(chat)
        if conversation is None or conversation.last_bot is None:
            return False
        self._write(chat, conversation, {TURN: conversation.last_bot, RATING: rating})
        conversation.last_bot = None
        return True

    def reset(self, chat: str) -> None:
        """The chat starts a new conversation (after /reset)."""
        self._chats.pop(chat, None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _turn(self, chat: str, speaker: Speaker, text: str) -> _Conversation:
        conversation = self._chats.get(chat) or _Conversation(secrets.token_hex(8))
        self._write(chat, conversation, {TURN: conversation.turns, SPEAKER: speaker, TEXT: text})
        conversation.turns += 1
        self._chats[chat] = conversation
        return conversation

    def _write(self, chat: str, conversation: _Conversation, fields: dict[str, Any]) -> None:
        stamp = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        record = {"chat": self.chat_hash(chat), CONVERSATION: conversation.id, **fields,
                  "time": stamp}
        if self._file is not None and not _names(self.path, self._file):
            self._file.close()  # rotated (renamed, or removed): go on in a file at the path
            self._file = None
        if self._file is None:  # closed or rotated
            self._file = self._open()
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def _open(self) -> TextIO:
        return open_private_append(self.path)


def _names(path: Path, file: TextIO) -> bool:
    """Whether `path` still names the open `file`: logrotate renames the log and creates a
    new one, and a log that kept writing to the renamed file could never be rotated. The rule
    of `logging.handlers.WatchedFileHandler`: the same device and inode."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(file.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
