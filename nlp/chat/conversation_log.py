"""Opt-in conversation logging in a form `s2s retrain` reads directly.

Design: the log FILE only ever contains pairs worth learning from, each a complete JSONL record
`{"source", "target", "context", "chat", "time", "rating"}` that the corpus JSONL reader loads
as a (source, target) pair (other fields are ignored). To make that possible, the newest reply
of each chat is held back until it is *settled*: by /good (written with rating "good"), by /bad
(written to the sibling file `<stem>.rejected<suffix>` instead, with rating "bad"), or by the
chat's next message, /reset or shutdown (written with rating null). So no rating record, no
join and no reader option is needed; the cost is that on a crash each chat loses at most its
one unsettled reply.

Chat ids are never written: `chat` is sha256(salt + ":" + chat id), with a salt kept in the
bot's state file so one chat hashes the same across restarts but the hash cannot be looked up.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

Rating = Literal["good", "bad"]


def rejected_path(path: Path) -> Path:
    """Where /bad pairs go: `talk.jsonl` -> `talk.rejected.jsonl`."""
    return path.with_name(f"{path.stem}.rejected{path.suffix or '.jsonl'}")


class ConversationLog:
    """Appends settled (source, target) pairs; see the module docstring for the format."""

    def __init__(self, path: Path, salt: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.rejected_path = rejected_path(path)
        self._salt = salt
        self._clock = clock
        self._pending: dict[str, dict[str, Any]] = {}
        self._files: dict[Path, TextIO] = {}

    def chat_hash(self, chat: str) -> str:
        return hashlib.sha256(f"{self._salt}:{chat}".encode()).hexdigest()

    def record(self, chat: str, source: str, target: str, context: list[str]) -> None:
        """Hold a new exchange as the chat's unsettled reply, settling the previous one."""
        self.settle(chat)
        stamp = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        self._pending[chat] = {
            "source": source,
            "target": target,
            "context": context,
            "chat": self.chat_hash(chat),
            "time": stamp,
            "rating": None,
        }

    def rate(self, chat: str, rating: Rating) -> bool:
        """Rate and write the chat's last reply; False when there is none to rate."""
        record = self._pending.pop(chat, None)
        if record is None:
            return False
        record["rating"] = rating
        self._write(self.rejected_path if rating == "bad" else self.path, record)
        return True

    def settle(self, chat: str) -> None:
        """Write the chat's unsettled reply, unrated, if it has one."""
        record = self._pending.pop(chat, None)
        if record is not None:
            self._write(self.path, record)

    def close(self) -> None:
        for chat in list(self._pending):
            self.settle(chat)
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        handle = self._files.get(path)
        if handle is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._files[path] = path.open("a", encoding="utf-8")
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
