"""Who may talk to the bot, and who may administer it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccessPolicy:
    """An optional allowlist of chat or user ids, and admin user ids (always allowed).

    Checking the chat id lets a whole group in; checking the user id lets a person in wherever
    they write to the bot.
    """

    allowed: frozenset[int] | None = None  # None: everyone may chat
    admins: frozenset[int] = frozenset()

    def allows(self, chat_id: int, user_id: int | None) -> bool:
        if self.allowed is None or chat_id in self.allowed:
            return True
        return user_id is not None and (user_id in self.allowed or user_id in self.admins)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admins
