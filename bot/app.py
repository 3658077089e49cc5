"""Building the python-telegram-bot Application around a chat responder."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import Application, ApplicationBuilder, ExtBot, TypeHandler

from bot.config import BotConfig
from bot.delivery import Sender
from bot.flood import FloodControl
from bot.handlers import BotHandlers
from bot.transport import AiohttpRequest
from nlp.chat.responder import ChatResponder
from nlp.util.ratelimit import ChatRateLimiter


class ServiceBot(ExtBot[int]):
    """An `ExtBot` that notes Telegram refusing its token to getUpdates (a token revoked while
    the bot runs): PTB then ends its polling loop for good but leaves the application running,
    deaf, and its `error_callback` never sees that error. `token_refused` lets the service
    stop with a failure a supervisor can see instead."""

    __slots__ = ("_token_refused",)  # PTB freezes its bots' public attributes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token_refused = asyncio.Event()

    @property
    def token_refused(self) -> asyncio.Event:
        return self._token_refused

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        try:
            return await super().get_updates(*args, **kwargs)
        except InvalidToken:
            self._token_refused.set()
            raise


def build_application(
    config: BotConfig, responder: ChatResponder, *, flood: FloodControl | None = None
) -> Application[ServiceBot, Any, Any, Any, Any, Any]:
    """An Application that routes every update through `BotHandlers` and closes the responder
    (finishing decodes in flight and flushing logs) when it shuts down.

    Two HTTP clients, as PTB recommends: long polls must not wait behind replies, and replies
    must not wait behind a long poll. `flood` is the outgoing limiter, by default the one
    `config` describes; given, it replaces it (a subclass using `FloodControl.on_release`).
    """
    # PTB adds the long-poll duration (`timeouts.poll`) to `read` for getUpdates itself
    request = AiohttpRequest(
        connection_pool_size=config.max_in_flight + 4,  # + getMe, callback answers, ...
        timeouts=config.timeouts,
    )
    updates_request = AiohttpRequest(connection_pool_size=2, timeouts=config.timeouts)

    if flood is None:
        flood = FloodControl(config.flood, config.max_in_flight)

    async def close_responder(_: Application) -> None:
        await responder.aclose()

    bot = ServiceBot(
        config.token,
        base_url=config.bot_api_url,
        base_file_url=config.file_api_url,
        request=request,
        get_updates_request=updates_request,
        rate_limiter=flood,
    )
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(config.concurrency)
        .post_shutdown(close_responder)
        .build()
    )
    handlers = BotHandlers(
        responder,
        config.access,
        ChatRateLimiter(config.rate_burst, config.rate_per_minute / 60.0),
        Sender(config.retry, flood),
        config.queue_bound,
    )
    application.add_handler(TypeHandler(Update, handlers.on_update))
    application.add_error_handler(handlers.on_error)
    return application
