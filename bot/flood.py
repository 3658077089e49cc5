"""Outgoing flood control: stay under Telegram's sending limits instead of collecting 429s,
without letting one chat's wait hold up any other chat.

Telegram allows a bot about 30 messages per second overall, about 1 per second in one chat
and 20 per minute in one group (https://core.telegram.org/bots/faq, "My bot is hitting
limits"). Every Bot API request except getUpdates passes `FloodControl.process_request`
(python-telegram-bot's rate-limiter hook), which, for a message send, waits in this order:

1. for its chat's turn: 1/s in a private chat, the slower of 1/s and 20/min in a group;
2. for one of `max_in_flight` request slots (the bound on requests on the wire);
3. for the whole bot's turn (30/s).

Why this order: a group's next reply may wait three seconds for its turn. Waiting while
holding a request slot (as when the slots were taken around the whole send) let 16 slow
groups take every slot and stall every private chat behind them; a chat's own wait now holds
nothing shared. The bot-wide wait comes last, so the spacing it makes is the spacing on the
wire. Chat actions ("typing...") and other requests take a slot only: they are best effort
or rare, and must neither wait for nor use up a chat's message budget.

Why a bound on requests in flight: a send queued in the HTTP client's pool counts down its pool
timeout, so hundreds of queued sends (a burst across many chats) would fail with TimedOut
while they wait for a connection (and in PTB's httpx client the pool also rescans every queued
request whenever a connection frees up). Waiting on our own semaphore keeps that queue short,
and the HTTP pool is sized above the bound (`bot.app`), so no send times out waiting for a
connection.

Every limit is a leaky bucket of capacity one (`AsyncLimiter(1, 1 / rate)`): sends are spaced
at least 1/rate apart, with no initial burst, so no one-second window holds more than about
`rate` sends (an `AsyncLimiter(30, 1)` lets 30 through at once and then 30 more within the
same second). Two such buckets on one chat (per chat, per group) allow exactly what the
slower one allows, so a group gets one bucket at the slower rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import BaseRateLimiter

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

    def chat_interval(self, chat_id: int) -> float:
        """Seconds between two messages to this chat. Negative ids are groups and channels
        (as python-telegram-bot's own rate limiter tells them apart)."""
        interval = 1 / self.per_chat_per_second
        if chat_id < 0:
            interval = max(interval, 60 / self.per_group_per_minute)
        return interval


def is_message_send(endpoint: str) -> bool:
    """Whether a Bot API method posts a message (and so uses up its chat's budget)."""
    return endpoint.startswith("send") and endpoint not in NOT_MESSAGES


class FloodControl(BaseRateLimiter[int]):
    """Telegram's limits per chat and per bot, and the bound on requests in flight."""

    def __init__(self, limits: FloodLimits | None = None, max_in_flight: int = 16) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.limits = limits or FloodLimits()
        self._bot = AsyncLimiter(1, 1 / self.limits.per_bot_per_second)
        self._chats: dict[int, AsyncLimiter] = {}
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def initialize(self) -> None:
        """Nothing to set up (the limiters are made as chats appear)."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    @property
    def saturated(self) -> bool:
        """Every request slot is taken: best-effort requests had better not queue now."""
        return self._in_flight.locked()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat = _chat_id(data.get("chat_id"))
        if not is_message_send(endpoint):
            async with self._in_flight:
                return await callback(*args, **kwargs)
        if chat is not None:
            await self._chat_limiter(chat).acquire()  # holds nothing shared while it waits
        async with self._in_flight, self._bot:
            self.on_release(chat, endpoint)
            return await callback(*args, **kwargs)

    def on_release(self, chat: int | None, endpoint: str) -> None:
        """Called once for each message send (every attempt), when the chat's limiter, a
        request slot and the bot-wide limiter have all let it through, right before it goes
        out. Does nothing here.

        Why a hook: these release times are what the limits promise (arrival times at the
        server also carry the network's and the event loop's delays), so a subclass that
        records or counts them can check or watch the limiter without reaching into it.
        Keep it quick and non-blocking: it runs while a request slot is held.
        """

    def _chat_limiter(self, chat: int) -> AsyncLimiter:
        if chat not in self._chats and len(self._chats) >= MAX_IDLE_LIMITERS:
            # Drop limiters with nothing pending (their chat could send at once anyway).
            for key, limiter in list(self._chats.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chats[key]
        if chat not in self._chats:
            self._chats[chat] = AsyncLimiter(1, self.limits.chat_interval(chat))
        return self._chats[chat]


def _chat_id(value: object) -> int | None:
    """The numeric chat id of a request (None for "@channelname" or no chat at all)."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
