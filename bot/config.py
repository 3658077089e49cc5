"""Bot settings from command-line flags and the environment, the token above all.

The token is read from TELEGRAM_BOT_TOKEN or a file (never a flag: flags show up in `ps` and
shell history) and is never part of any message this module produces.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from bot.access import AccessPolicy
from bot.delivery import RetryPolicy
from bot.flood import FloodLimits

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
API_BASE_ENV = "TELEGRAM_API_BASE_URL"
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
DEFAULT_API_BASE = "https://api.telegram.org"
DEFAULT_LISTEN = "127.0.0.1"  # the webhook serves plain HTTP: local, behind a TLS proxy
DEFAULT_WEBHOOK_PORT = 8443
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts


class BotConfigError(ValueError):
    """A missing or malformed bot setting; the message never contains the token."""


@dataclass(frozen=True)
class Timeouts:
    """HTTP timeouts (seconds) for Bot API calls; long polls add `poll` to `read`."""

    connect: float = 5.0
    read: float = 10.0
    write: float = 10.0
    pool: float = 5.0
    poll: float = 30.0  # getUpdates long-poll duration


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    listen: str = DEFAULT_LISTEN
    port: int = DEFAULT_WEBHOOK_PORT
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def path(self) -> str:
        """The local path the webhook server answers on: the URL's path."""
        return urlparse(self.url).path.strip("/")


@dataclass(frozen=True)
class BotConfig:
    token: str = field(repr=False)
    api_base_url: str = DEFAULT_API_BASE
    webhook: WebhookConfig | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    rate_burst: float = 5.0
    rate_per_minute: float = 30.0
    concurrency: int = 256  # updates processed at once (replies of one chat stay in order)
    # A chat's updates waiting behind the one being answered (beyond: a notice, then dropped).
    # None: the rate burst, so a burst the rate limit lets in is answered in full and only
    # a sustained excess (a group writing faster than Telegram lets us reply) is cut.
    max_waiting: int | None = None
    max_in_flight: int = 16  # concurrent Bot API sends (Telegram allows ~30 messages/s anyway)
    flood: FloodLimits = field(default_factory=FloodLimits)  # outgoing: Telegram's limits
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def queue_bound(self) -> int:
        """`max_waiting`, or the rate burst when it is not set."""
        return int(self.rate_burst) if self.max_waiting is None else self.max_waiting

    @property
    def secrets(self) -> list[str]:
        """Everything the logs must never show."""
        return [self.token, *([self.webhook.secret] if self.webhook else [])]

    @property
    def bot_api_url(self) -> str:
        """`base_url` for PTB, which appends the token and method: `<api>/bot`."""
        return f"{self.api_base_url}/bot"

    @property
    def file_api_url(self) -> str:
        return f"{self.api_base_url}/file/bot"


def read_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BotConfigError(
                f"cannot read the token file {token_file}: {exc.strerror}"
            ) from None
    else:
        token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise BotConfigError(f"no bot token: set {TOKEN_ENV} or pass --token-file FILE")
    if any(ch.isspace() for ch in token) or ":" not in token:
        raise BotConfigError("the bot token looks malformed (expected <bot id>:<secret>)")
    return token


def normalize_api_base(url: str, source: str) -> str:
    """Accept `http://host:8081`, `.../` or `.../bot` alike; PTB wants the part before /bot.

    `source` names where `url` came from, for the error message: the user must find it.
    """
    url = url.strip().rstrip("/")
    url = url.removesuffix("/bot")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BotConfigError(f"{source} must be an http(s) URL, got {url!r}")
    return url


def parse_ids(values: list[str] | None) -> frozenset[int]:
    """Ids from repeated and/or comma-separated flags: `--allow 1,2 --allow -100123`."""
    ids: set[int] = set()
    for value in values or []:
        for part in value.split(","):
            if part.strip():
                try:
                    ids.add(int(part))
                except ValueError:
                    raise BotConfigError(f"not a chat or user id: {part.strip()!r}") from None
    return frozenset(ids)


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] = os.environ
) -> BotConfig:
    token = read_token(args.token_file, environ)
    if args.api_base_url:
        api_base = normalize_api_base(args.api_base_url, "--api-base-url")
    elif environ.get(API_BASE_ENV):
        api_base = normalize_api_base(environ[API_BASE_ENV], API_BASE_ENV)
    else:
        api_base = DEFAULT_API_BASE
    webhook = None
    if args.webhook_url:
        parsed = urlparse(args.webhook_url)
        if parsed.scheme != "https" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise BotConfigError("--webhook-url must be https (Telegram only calls https webhooks)")
        secret = environ.get(WEBHOOK_SECRET_ENV)
        if secret is not None and not SECRET_PATTERN.fullmatch(secret):
            raise BotConfigError(f"{WEBHOOK_SECRET_ENV} must be 1-256 of A-Z a-z 0-9 _ -")
        webhook = WebhookConfig(
            args.webhook_url,
            args.listen or DEFAULT_LISTEN,
            DEFAULT_WEBHOOK_PORT if args.port is None else args.port,
            **({"secret": secret} if secret else {}),
        )
    elif args.listen is not None or args.port is not None:
        raise BotConfigError("--listen and --port set up webhook mode: they need --webhook-url")
    allowed = parse_ids(args.allow)
    if args.allow is not None and not allowed:  # an empty allowlist must not mean "everyone"
        raise BotConfigError("--allow names no ids (leave it out to let everyone chat)")
    if args.rate_burst < 1 or args.rate_per_minute <= 0:
        raise BotConfigError("--rate-burst must be >= 1 and --rate-per-minute > 0")
    return BotConfig(
        token=token,
        api_base_url=api_base,
        webhook=webhook,
        access=AccessPolicy(allowed or None, parse_ids(args.admin)),
        rate_burst=args.rate_burst,
        rate_per_minute=args.rate_per_minute,
    )
