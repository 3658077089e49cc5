"""Sending replies reliably: retried until acknowledged, so every message is answered at least
once; duplicates are possible after a timed-out send.

Receiving: each update is handled once (getUpdates offsets, plus `BotHandlers` skipping update
ids it has already seen, e.g. webhook redeliveries), and each handled message produces exactly
one logical reply, sent as a *reply to* the user's message (`reply_parameters.message_id`). We
retry a send until the server acknowledges it:
- 429 with retry_after: wait as told, retry (Telegram did not send it).
- HTTP 5xx, connection errors: back off, retry (the server reported it did not send it).
- Read time-outs and unreadable 2xx bodies: *ambiguous*, the message may have been sent.
  We retry anyway (at-least-once), because an unanswered user is worse than a rare duplicate.
  The Telegram Bot API has no idempotency key, so a time-out after the server already sent
  the message shows the reply twice (tests/bot/test_faults.py counts exactly that). Generous
  read time-outs keep that case rare.
- 400/403/401/409 (bad request, bot blocked, bad token, conflict): give up, retrying can't help.
Outgoing flood limits are kept by `bot.flood.FloodControl`, before a send reaches the network.
Every text is cut to Telegram's length limit here, whoever wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.flood import FloodControl
from nlp.chat.responder import Reply
from nlp.chat.text_input import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, fit_reply

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 4.0  # Telegram shows "typing" for 5 s per sendChatAction
# "typing" only for a reply still not ready after this long: the Bot API's documentation asks
# for chat actions only when a response will take a noticeable time, and each one takes a
# request slot under the flood limits (bot/flood.py) that a reply could use
TYPING_DELAY_SECONDS = 0.3
FINAL_ERRORS = (BadRequest, Forbidden, InvalidToken, Conflict)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    first_delay: float = 0.5  # doubled after each failure ...
    max_delay: float = 15.0  # ... up to this
    max_retry_after: float = 120.0  # longest flood-control wait we accept


@dataclass(frozen=True)
class Destination:
    """Where a reply goes: the chat, the message it answers, and the forum topic, if any."""

    chat_id: int
    message_id: int | None = None  # quoted with reply_parameters
    thread_id: int | None = None  # message_thread_id: a forum topic

    @classmethod
    def answering(cls, message: Message) -> Destination:
        """The reply to `message`, in its topic. A message in a reply chain of an ordinary
        group has a message_thread_id too, but it is no topic and sendMessage refuses it."""
        thread = message.message_thread_id if message.is_topic_message else None
        return cls(message.chat_id, message.message_id, thread)


def retry_after_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class Sender:
    """Sends replies with the retry policy above.

    The flood limits and the bound on requests in flight are `FloodControl`'s, applied inside
    each Bot API call; a retry after a 429 sleeps here, holding nothing shared, so one chat's
    wait delays only that chat.
    """

    def __init__(self, policy: RetryPolicy, flood: FloodControl) -> None:
        self.policy = policy
        self.flood = flood

    async def reply(self, bot: Bot, to: Destination, reply: Reply) -> bool:
        """Send `reply` to `to`; True once the server acknowledged it.

        Every text is cut to Telegram's limit here, whoever wrote it: Telegram refuses a
        longer message (400, not retried), which would leave the user with no answer at all.
        """
        quote = (
            ReplyParameters(to.message_id, allow_sending_without_reply=True)
            if to.message_id is not None
            else None
        )
        thread = to.thread_id

        def send(chat: int) -> Awaitable[object]:
            if reply.photo is not None:
                caption = fit_reply(reply.text, TELEGRAM_CAPTION_LIMIT)
                return bot.send_photo(
                    chat, reply.photo, caption=caption, reply_parameters=quote,
                    message_thread_id=thread,
                )
            text = fit_reply(reply.text, TELEGRAM_TEXT_LIMIT)
            return bot.send_message(chat, text, reply_parameters=quote, message_thread_id=thread)

        return await self._with_retries(send, to.chat_id)

    async def _with_retries(self, send: Callable[[int], Awaitable[object]], chat_id: int) -> bool:
        delay = self.policy.first_delay
        for attempt in range(1, self.policy.attempts + 1):
            try:
                await send(chat_id)
                return True
            except RetryAfter as exc:
                wait = min(retry_after_seconds(exc), self.policy.max_retry_after)
            except ChatMigrated as exc:  # a group became a supergroup: same chat, new id
                chat_id, wait = exc.new_chat_id, 0.0
            except FINAL_ERRORS as exc:
                log.warning("giving up on a reply: %s: %s", type(exc).__name__, exc)
                return False
            except TelegramError as exc:  # network errors, time-outs, unreadable answers
                wait, delay = delay, min(delay * 2, self.policy.max_delay)
                log.info("send attempt %d failed (%s: %s)", attempt, type(exc).__name__, exc)
            if attempt < self.policy.attempts:
                await asyncio.sleep(wait)
        log.error("giving up on a reply after %d attempts", self.policy.attempts)
        return False

    @contextlib.asynccontextmanager
    async def typing(self, bot: Bot, to: Destination) -> AsyncIterator[None]:
        """Show "typing..." in the chat while the body runs, from `TYPING_DELAY_SECONDS` on:
        best effort, never retried, and skipped while every request slot is busy (replies
        matter more than the indicator)."""

        async def keep_typing() -> None:
            await asyncio.sleep(TYPING_DELAY_SECONDS)
            while True:
                if not self.flood.saturated:
                    try:
                        await bot.send_chat_action(
                            to.chat_id, ChatAction.TYPING, message_thread_id=to.thread_id
                        )
                    except TelegramError as exc:
                        log.debug("typing indicator failed: %s", exc)
                await asyncio.sleep(TYPING_REFRESH_SECONDS)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
