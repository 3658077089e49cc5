"""The PTB callbacks: route an update, check access and rate, respond, send, in chat order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from telegram import Chat, Message, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.access import REFUSAL_TEXT, AccessPolicy
from bot.delivery import Destination, Sender
from bot.ratelimit import RATE_LIMIT_TEXT, ChatRateLimiter, Verdict
from bot.routing import STALE_BUTTON_TEXT, UNSUPPORTED_TEXT, Action, route
from nlp.chat.commands import COMMAND_NAMES
from nlp.chat.lru import LruDict
from nlp.chat.responder import ChatResponder, Reply

log = logging.getLogger(__name__)

ERROR_TEXT = "Sorry, something went wrong on my side. Please try again in a moment."
REMEMBERED_IDS = 100_000
DROP = Reply("")  # sentinel from BotHandlers._gate: answer nothing


def conversation_key(message: Message) -> str:
    """Whose conversation a message continues: the responder's key for context, settings,
    /why, /good, /bad and /reset.

    A private chat is one conversation (its key, the chat id, is what settings were stored
    under before groups had members' own). In a group each member has their own, keyed by
    group and member: someone who mentions the bot expects it to follow *their* thread, not
    a mix of everyone's, and one member's /beam or /reset must not change the others'.
    """
    if message.chat.type == Chat.PRIVATE or message.from_user is None:
        return str(message.chat_id)
    return f"{message.chat_id}:{message.from_user.id}"


class ChatLocks:
    """One asyncio lock per chat, dropped when nobody holds or waits for it.

    Updates are processed concurrently (so many chats share model batches), but one chat's
    replies must come out in the order its messages came in. Handlers take their chat's lock
    before their first await, in the order PTB starts them (update order), and asyncio locks
    are granted first come, first served.
    """

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:
                del self._users[chat_id], self._locks[chat_id]


class BotHandlers:
    """State shared by all updates: who was refused, which updates were seen and answered."""

    def __init__(
        self,
        responder: ChatResponder,
        access: AccessPolicy,
        limiter: ChatRateLimiter,
        sender: Sender,
    ) -> None:
        self.responder = responder
        self.access = access
        self.limiter = limiter
        self.sender = sender
        self.locks = ChatLocks()
        # Telegram re-sends a webhook update it did not see acknowledged: seen ids are skipped.
        self._seen: LruDict[int, bool] = LruDict(REMEMBERED_IDS)
        self._answered: LruDict[int, bool] = LruDict(REMEMBERED_IDS)
        self._refused: LruDict[int, bool] = LruDict(REMEMBERED_IDS)

    async def on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        if update.update_id in self._seen:
            log.debug("update %d seen before, skipped", update.update_id)
            return
        self._seen[update.update_id] = True
        bot = context.bot
        decision = route(update, bot.username, bot.id, COMMAND_NAMES)
        if decision.action is Action.IGNORE:
            log.debug("update %d ignored: %s", update.update_id, decision.reason)
            return
        if decision.action is Action.CALLBACK and update.callback_query is not None:
            await update.callback_query.answer(STALE_BUTTON_TEXT)
            return
        message = update.effective_message
        if message is None:
            return
        chat_id = message.chat_id
        user_id = message.from_user.id if message.from_user else None
        reply = self._gate(decision.action, chat_id, user_id)
        if reply is DROP:
            return
        to = Destination.answering(message)
        async with self.locks.hold(chat_id):
            if reply is None:
                key = conversation_key(message)
                reply = await self._respond(to, key, user_id, decision.text, context)
            if await self.sender.reply(bot, to, reply):
                self._answered[update.update_id] = True

    def _gate(self, action: Action, chat_id: int, user_id: int | None) -> Reply | None:
        """Checked before any waiting: a reply that replaces the model's (refusal, rate-limit
        notice, text-only hint), DROP to answer nothing, or None to go ahead."""
        if not self.access.allows(chat_id, user_id):
            if chat_id in self._refused:
                return DROP
            self._refused[chat_id] = True
            return Reply(REFUSAL_TEXT)
        verdict = self.limiter.check(chat_id)
        if verdict is Verdict.REFUSE_SILENTLY:
            return DROP
        if verdict is Verdict.REFUSE_AND_TELL:
            return Reply(RATE_LIMIT_TEXT)
        return Reply(UNSUPPORTED_TEXT) if action is Action.UNSUPPORTED else None

    async def _respond(
        self,
        to: Destination,
        chat: str,
        user_id: int | None,
        text: str,
        context: ContextTypes.DEFAULT_TYPE,
    ) -> Reply:
        admin = self.access.is_admin(user_id)
        if not self.responder.is_slow(text):
            return await self.responder.respond(chat, text, is_admin=admin)
        async with self.sender.typing(context.bot, to):
            return await self.responder.respond(chat, text, is_admin=admin)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the error (the log handlers redact the token) and apologise once per update."""
        error = context.error
        if isinstance(error, NetworkError):  # polling hiccups: PTB retries on its own
            log.warning("Bot API network problem: %s: %s", type(error).__name__, error)
        else:
            log.error("error while handling an update", exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if update.update_id in self._answered:
            return
        self._answered[update.update_id] = True
        message = update.effective_message
        to = (
            Destination.answering(message)
            if message is not None
            else Destination(update.effective_chat.id)
        )
        try:
            await self.sender.reply(context.bot, to, Reply(ERROR_TEXT))
        except TelegramError as exc:  # never let the error handler raise
            log.warning("could not send the apology: %s", exc)
