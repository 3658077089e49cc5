"""Running the bot: long polling, or a webhook with a secret token, until SIGINT/SIGTERM
(or until Telegram refuses the token, which leaves nothing to serve).

One start/stop sequence (`running`) serves the CLI, the tests and the benchmark alike. On a
stop signal it stops fetching updates, waits for the updates being processed (our replies in
flight, including their decodes and send retries), shuts PTB down, then closes the responder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from telegram.error import TelegramError
from telegram.ext import Application

from bot.app import build_application
from bot.config import BotConfig
from bot.redaction import install_redaction
from bot.routing import ALLOWED_UPDATES
from nlp.chat.responder import ChatResponder

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(secrets: list[str], level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
    install_redaction(secrets)


def serve(config: BotConfig, responder: ChatResponder) -> int:
    """Run until SIGINT or SIGTERM (status 0), or until Telegram refuses the token (1)."""
    return asyncio.run(_serve_until_signal(config, responder))


async def _serve_until_signal(config: BotConfig, responder: ChatResponder) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    application = build_application(config, responder)
    refused = application.bot.token_refused
    async with running(application, config):
        log.info("bot running; stop with Ctrl-C or SIGTERM")
        await _either(stop, refused)
        if refused.is_set():
            log.error("Telegram refused the bot token (revoked?): stopping")
        else:
            log.info("stopping: finishing replies in flight")
    log.info("stopped")
    return 1 if refused.is_set() else 0


async def _either(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@contextlib.asynccontextmanager
async def running(application: Application, config: BotConfig) -> AsyncIterator[None]:
    """Receive updates (polling or webhook, per `config`) for the duration of the block.

    On exit: stop receiving, wait for the updates in flight, shut down, then run the
    post-shutdown hook that closes the responder (as PTB's `run_polling` would).
    """
    try:
        async with application:
            await application.start()
            try:
                async with _receiving(application, config):
                    yield
            finally:
                # also when receiving never started (a busy webhook port): a running
                # application refuses to shut down, and that error would hide the cause
                await application.stop()
    finally:
        if application.post_shutdown is not None:  # the responder closed whatever happened
            await application.post_shutdown(application)


@contextlib.asynccontextmanager
async def _receiving(application: Application, config: BotConfig) -> AsyncIterator[None]:
    """The updater receiving updates for the block; stopped after it, or after a start that
    failed half-way (`start_webhook` registers the webhook before it binds the port)."""
    updater = application.updater
    assert updater is not None
    try:
        hook = config.webhook
        if hook is not None:
            log.info("webhook mode: listening on %s:%d/%s", hook.listen, hook.port, hook.path)
            await updater.start_webhook(
                listen=hook.listen,
                port=hook.port,
                url_path=hook.path,
                webhook_url=hook.url,
                secret_token=hook.secret,
                allowed_updates=list(ALLOWED_UPDATES),
                bootstrap_retries=3,
            )
        else:
            log.info("long-polling %s", config.api_base_url)

            def polling_error(error: TelegramError) -> None:
                # to the error handlers, as `run_polling` does: PTB alone logs each retried
                # network hiccup as an ERROR with a traceback
                application.create_task(application.process_error(update=None, error=error))

            await updater.start_polling(
                poll_interval=0,
                timeout=int(config.timeouts.poll),
                allowed_updates=list(ALLOWED_UPDATES),
                bootstrap_retries=3,
                error_callback=polling_error,
            )
        yield
    finally:
        if updater.running:
            await updater.stop()
