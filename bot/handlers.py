"""The PTB callbacks: route an update, check access and rate, respond, send, in chat order."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections import Counter
from collections.abc import AsyncIterator

from telegram import Chat, Message, Update, User
from telegram.error import NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.access import AccessPolicy
from bot.delivery import Destination, Sender
from bot.routing import Action, route
from nlp.chat.messages import Messages
from nlp.chat.responder import ChatResponder, Reply
from nlp.chat.slash_commands import COMMAND_NAMES
from nlp.util.lru import LruDict
from nlp.util.ratelimit import ChatRateLimiter, Verdict

log = logging.getLogger(__name__)

REMEMBERED_IDS = 100_000
DROP = Reply("")  # sentinel from BotHandlers._gate: answer nothing


def app_language(user: User | None) -> str | None:
    """The user's Telegram app language ("zh-hans", "en"), when Telegram tells it."""
    return user.language_code if user is not None else None


def conversation_key(message: Message) -> str:
    """Whose conversation a message continues: the responder's key for context, settings,
    /why, /good, /bad and /reset.

    A private chat is one conversation (its key, the chat id, is what settings were stored
    under before groups had members' own). In a group each member has their own, keyed by
    group and member: someone who mentions the bot expects it to follow *their* thread, not
    a mix of everyone's, and one member's /beam or /reset must not change the others'.
    A message sent on behalf of a chat (`sender_chat`: the group itself for its anonymous
    admins, who then share one conversation, as Telegram does not say which admin wrote;
    a channel someone writes as) is keyed by that chat, not by the stand-in bot account
    Telegram puts in `from`, which every such sender shares.
    """
    if message.chat.type == Chat.PRIVATE:
        return str(message.chat_id)
    if message.sender_chat is not None:
        return f"{message.chat_id}:{message.sender_chat.id}"
    if message.from_user is None:
        return str(message.chat_id)
    return f"{message.chat_id}:{message.from_user.id}"


class Admission(enum.Enum):
    ANSWER = "answer"  # queue behind the chat's earlier messages and answer
    NOTICE = "notice"  # queue, but answer with Messages.backlog: the chat is too far behind
    DROP = "drop"  # answer nothing (the chat was told already)


class ChatQueues:
    """Per chat, the update being answered and those waiting behind it, in arrival order.

    Updates are processed concurrently (so many chats share model batches), but one chat's
    replies must come out in the order its messages came in. Handlers take their chat's lock
    before their first await, in the order PTB starts them (update order), and asyncio locks
    are granted first come, first served.

    Why a bound on the waiting: a group may send 30 messages a minute (the incoming rate
    limit) but get only 20 replies a minute (Telegram's limit), so its queue would grow
    without end, and every waiting update holds one of PTB's concurrent-update slots, which
    all other chats need too. At most `max_waiting` updates wait per chat; the first one
    beyond is answered with a notice (queued like the others), later ones are dropped until
    the queue is shorter again. Everything about a chat is forgotten once its queue is empty.
    """

    def __init__(self, max_waiting: int) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        self.max_waiting = max_waiting
        self._locks: dict[int, asyncio.Lock] = {}
        self._queued: Counter[int] = Counter()  # holding or waiting for the lock
        self._told: set[int] = set()  # chats that got the notice for this run of drops

    def admit(self, chat_id: int) -> Admission:
        """Whether a new update of `chat_id` is answered; call right before `hold`."""
        if self._queued[chat_id] <= self.max_waiting:  # the one answered + max_waiting
            self._told.discard(chat_id)
            return Admission.ANSWER
        if chat_id in self._told:
            return Admission.DROP
        self._told.add(chat_id)
        return Admission.NOTICE

    @contextlib.asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._queued[chat_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._queued[chat_id] -= 1
            if not self._queued[chat_id]:
                del self._queued[chat_id], self._locks[chat_id]
                self._told.discard(chat_id)


class BotHandlers:
    """State shared by all updates: who was refused, which updates were seen and answered."""

    def __init__(
        self,
        responder: ChatResponder,
        access: AccessPolicy,
        limiter: ChatRateLimiter,
        sender: Sender,
        max_waiting: int,
    ) -> None:
        self.responder = responder
        self.access = access
        self.limiter = limiter
        self.sender = sender
        self.queues = ChatQueues(max_waiting)
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
            query = update.callback_query
            words = self.responder.messages(str(query.from_user.id), app_language(query.from_user))
            try:
                await query.answer(words.stale_button)
            except TelegramError as exc:
                # "query is too old" after downtime: nobody waits for this answer any more,
                # and an apology (`on_error`) would land under the old message in the chat
                log.info("could not answer a button press: %s", exc)
            return
        message = update.effective_message
        if message is None:
            return
        chat_id = message.chat_id
        user_id = message.from_user.id if message.from_user else None
        language = app_language(message.from_user)
        key = conversation_key(message)
        words = self.responder.messages(key, language)
        reply = self._gate(decision.action, chat_id, user_id, words)
        if reply is DROP:
            return
        admission = self.queues.admit(chat_id)
        if admission is Admission.DROP:
            log.debug("update %d dropped: chat %d is too far behind", update.update_id, chat_id)
            return
        if admission is Admission.NOTICE:
            reply = Reply(words.backlog)
        to = Destination.answering(message)
        async with self.queues.hold(chat_id):  # no await between admit and hold
            if reply is None:
                private = message.chat.type == Chat.PRIVATE
                reply = await self._respond(
                    to, key, user_id, language, decision.text, context, private=private)
            if await self.sender.reply(bot, to, reply):
                self._answered[update.update_id] = True

    def _gate(
        self, action: Action, chat_id: int, user_id: int | None, words: Messages
    ) -> Reply | None:
        """Checked before any waiting: a reply that replaces the model's (refusal, rate-limit
        notice, text-only hint, in `words`), DROP to answer nothing, or None to go ahead."""
        if not self.access.allows(chat_id, user_id):
            if chat_id in self._refused:
                return DROP
            self._refused[chat_id] = True
            return Reply(words.private_bot)
        verdict = self.limiter.check(chat_id)
        if verdict is Verdict.REFUSE_SILENTLY:
            return DROP
        if verdict is Verdict.REFUSE_AND_TELL:
            return Reply(words.rate_limited)
        return Reply(words.text_only) if action is Action.UNSUPPORTED else None

    async def _respond(
        self,
        to: Destination,
        chat: str,
        user_id: int | None,
        language: str | None,
        text: str,
        context: ContextTypes.DEFAULT_TYPE,
        *,
        private: bool,
    ) -> Reply:
        """The responder's reply; `private`: a private chat, read by the sender alone."""
        respond = functools.partial(
            self.responder.respond, chat, text, is_admin=self.access.is_admin(user_id),
            language=language, private=private)
        if not self.responder.is_slow(text):
            return await respond()
        async with self.sender.typing(context.bot, to):
            return await respond()

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
        words = self.responder.messages(
            str(update.effective_chat.id), app_language(update.effective_user)
        )
        try:
            await self.sender.reply(context.bot, to, Reply(words.bot_error))
        except TelegramError as exc:  # never let the error handler raise
            log.warning("could not send the apology: %s", exc)
