"""`s2s bot --model DIR`: serve the chat responder on Telegram."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from telegram.error import TelegramError

from bot.config import (
    API_BASE_ENV,
    DEFAULT_LISTEN,
    DEFAULT_WEBHOOK_PORT,
    TOKEN_ENV,
    WEBHOOK_SECRET_ENV,
    BotConfigError,
    config_from_args,
)
from bot.redaction import redact
from bot.service import configure_logging, serve
from nlp.chat.setup import add_responder_arguments, build_responder, model_loader
from nlp.generation.loading import ModelLoader

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bot",
        help="serve a trained chat model as a Telegram bot",
        description=f"Serve a chat model on Telegram. The token comes from {TOKEN_ENV} or "
        "--token-file, never from a flag. Long polling unless --webhook-url is given.",
        epilog="In groups each member has their own conversation: context, settings (/beam, "
        "/sample, ...), /why, /good, /bad and /reset are per group member, so no one changes "
        "another member's. The bot answers group messages that mention it, reply to it or "
        "are its commands, and ignores commands for other bots; BotFather's privacy mode "
        "(on by default) sends it exactly those. A chat writing faster than the bot may "
        "reply (Telegram: 20 messages/min in a group) keeps at most --rate-burst messages "
        "waiting; the bot says once that it skipped the rest. Webhook mode serves plain "
        "HTTP: keep --listen on 127.0.0.1 behind a TLS proxy (see the README).",
    )
    add_responder_arguments(parser, state_name="bot.sqlite")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="file holding the bot token (instead of the environment)",
    )
    parser.add_argument(
        "--api-base-url",
        default=None,
        metavar="URL",
        help=f"a self-hosted Bot API server (or {API_BASE_ENV}); default https://api.telegram.org",
    )
    parser.add_argument(
        "--webhook-url",
        default=None,
        metavar="URL",
        help="public https URL Telegram posts updates to (webhook mode); "
        f"the secret token comes from {WEBHOOK_SECRET_ENV} or is random",
    )
    # None when not given: config_from_args refuses them without --webhook-url
    parser.add_argument(
        "--listen",
        default=None,
        help=f"webhook listen address (default {DEFAULT_LISTEN}; plain HTTP: keep it local, "
        "behind a TLS proxy)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"webhook listen port (default {DEFAULT_WEBHOOK_PORT})",
    )
    parser.add_argument(
        "--allow",
        action="append",
        metavar="IDS",
        help="only these chat or user ids may chat (repeatable, comma-separated; a list "
        "starting with a negative group id takes '=': --allow=-100123,-100456)",
    )
    parser.add_argument(
        "--admin",
        action="append",
        metavar="IDS",
        help="user ids that may /reload the model (repeatable, comma-separated)",
    )
    parser.add_argument(
        "--rate-burst",
        type=float,
        default=5.0,
        metavar="N",
        help="messages a chat may send at once, and how many may wait for replies "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--rate-per-minute",
        type=float,
        default=30.0,
        metavar="N",
        help="sustained messages per minute per chat (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_with_loader(args, model_loader(args))


def run_with_loader(args: argparse.Namespace, loader: ModelLoader) -> int:
    """`run` with the model loader injectable (tests serve a fake generator this way)."""
    try:
        config = config_from_args(args, os.environ)
    except BotConfigError as exc:
        print(f"s2s bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.secrets)
    try:
        responder = build_responder(args, loader)
    except (OSError, ValueError) as exc:
        print(
            f"s2s bot: cannot start: {redact(str(exc), config.secrets)}", file=sys.stderr
        )
        return 1
    try:
        return serve(config, responder)
    except (TelegramError, OSError) as exc:  # e.g. a token refused at start, a busy webhook port
        log.error("the bot stopped: %s: %s", type(exc).__name__, exc)  # redacted by the filter
        return 1
