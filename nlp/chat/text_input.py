"""Making arbitrary user text safe to feed the model, and replies safe to send.

Telegram delivers anything: control characters, bidi overrides, 4,096-character walls of text,
emoji-only messages. The model was trained on short, clean sentences, so a message is cleaned
(`nlp.text.cleaning.clean_message`), then classified and trimmed here, once, for both the bot
and the terminal chat.
"""

from __future__ import annotations

import enum

from nlp.text.cleaning import has_words

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


class InputKind(enum.Enum):
    """What a cleaned message is, deciding whether it is worth a model call."""

    EMPTY = "empty"
    NO_WORDS = "no_words"  # emoji, punctuation or symbols only
    TEXT = "text"


def classify(text: str) -> InputKind:
    """EMPTY, NO_WORDS (nothing a word-level model can read) or TEXT. Expects cleaned text."""
    if not text:
        return InputKind.EMPTY
    if has_words(text):
        return InputKind.TEXT
    return InputKind.NO_WORDS


def keep_tail(text: str, max_chars: int) -> str:
    """The last `max_chars` characters, starting at a word boundary when there is one.

    Why the tail: in conversation the end of a long message is what a reply should follow
    up on, and the codec keeps the tail of a chat source too (`TextCodec._source_tokens`).
    """
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    space = tail.find(" ")
    if 0 <= space < max_chars // 4:
        tail = tail[space + 1 :]
    return tail


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def fit_reply(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """Cut a reply to `limit` Telegram characters at a word boundary, marking the cut with "…"."""
    if telegram_length(text) <= limit:
        return text
    head = text[: limit - 1]
    while telegram_length(head) > limit - 1:
        head = head[:-1]
    space = head.rfind(" ")
    if space > len(head) * 3 // 4:
        head = head[:space]
    return head.rstrip() + "…"
