"""Outgoing flood control: stay under Telegram's sending limits instead of collecting 429s.

Telegram allows a bot about 30 messages per second overall, about 1 per second in one chat
and 20 per minute in one group (https://core.telegram.org/bots/faq, "My bot is hitting
limits"). python-telegram-bot's `AIORateLimiter` enforces the overall and the group limits
but applies no per-chat limit to private chats, so a user who sends five quick messages would
get five replies in the same second. `FloodControl` adds that limit in front of it, for
message sends only: chat actions ("typing...") are best effort and must neither wait for nor
use up a chat's message budget.

Every limit is a leaky bucket of capacity one (`AsyncLimiter(1, 1 / rate)`): sends are spaced
at least 1/rate apart, with no initial burst, so no one-second window holds more than about
`rate` sends (the `AsyncLimiter(30, 1)` PTB uses by default lets 30 through at once and then
30 more within the same second).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

MAX_IDLE_LIMITERS = 512  # per-chat limiters kept before idle ones are dropped
NOT_MESSAGES = frozenset({"sendChatAction"})  # "send..." endpoints that post no message


@dataclass(frozen=True)
class FloodLimits:
    """Outgoing message rates; the defaults are Telegram's limits."""

    per_bot_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0

    def __post_init__(self) -> None:
        for name in ("per_bot_per_second", "per_chat_per_second", "per_group_per_minute"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")


class FloodControl(AIORateLimiter):
    """`AIORateLimiter` (whole bot, groups) plus a limit per chat, for message sends."""

    def __init__(self, limits: FloodLimits | None = None) -> None:
        self.limits = limits or FloodLimits()
        super().__init__(
            overall_max_rate=1,
            overall_time_period=1 / self.limits.per_bot_per_second,
            group_max_rate=1,
            group_time_period=60 / self.limits.per_group_per_minute,
        )
        self._chats: dict[object, AsyncLimiter] = {}

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if not endpoint.startswith("send") or endpoint in NOT_MESSAGES:
            return await callback(*args, **kwargs)
        chat = data.get("chat_id")
        per_chat = self._chat_limiter(chat) if chat is not None else contextlib.nullcontext()
        async with per_chat:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )

    def _chat_limiter(self, chat: object) -> AsyncLimiter:
        if chat not in self._chats and len(self._chats) >= MAX_IDLE_LIMITERS:
            # Drop limiters with nothing pending (their chat could send at once anyway).
            for key, limiter in list(self._chats.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chats[key]
        if chat not in self._chats:
            self._chats[chat] = AsyncLimiter(1, 1 / self.limits.per_chat_per_second)
        return self._chats[chat]
