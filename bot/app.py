"""Building the python-telegram-bot Application around a chat responder."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, TypeHandler

from bot.config import BotConfig
from bot.delivery import Sender
from bot.flood import FloodControl
from bot.handlers import BotHandlers
from bot.transport import AiohttpRequest
from nlp.chat.responder import ChatResponder
from nlp.util.ratelimit import ChatRateLimiter


def build_application(
    config: BotConfig, responder: ChatResponder, *, flood: FloodControl | None = None
) -> Application:
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

    application = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.bot_api_url)
        .base_file_url(config.file_api_url)
        .request(request)
        .get_updates_request(updates_request)
        .concurrent_updates(config.concurrency)
        .rate_limiter(flood)
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
