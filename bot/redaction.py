"""Keeping the bot token (and the webhook secret) out of every log line.

The Bot API URL contains the token (`https://api.telegram.org/bot<TOKEN>/sendMessage`), HTTP
client libraries log request URLs (httpx at INFO), and exceptions from the network layer may
quote URLs in their messages and tracebacks. A filter on the *handlers* sees every record,
including those propagated from library loggers, so we redact there rather than on individual
loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "[REDACTED]"
NOISY_LOGGERS = ("httpx", "httpcore", "aiohttp")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack text with the secrets replaced."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # The token's secret half alone is also a credential; redact it wherever it appears.
        parts = {s for s in secrets if s} | {s.partition(":")[2] for s in secrets if ":" in s}
        self.secrets = sorted((p for p in parts if len(p) >= 8), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call; logging reports it itself when formatting
            message = str(record.msg)
        else:
            record.args = ()
        record.msg = redact(message, self.secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install_redaction(
    secrets: Iterable[str], root: logging.Logger | None = None
) -> RedactingFilter:
    """Redact `secrets` on every handler of the root logger and quiet the URL-logging libraries.

    Call after the handlers exist (after `logging.basicConfig`). Returns the filter installed.
    """
    root = root or logging.getLogger()
    log_filter = RedactingFilter(list(secrets))
    for handler in root.handlers:
        handler.addFilter(log_filter)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return log_filter
