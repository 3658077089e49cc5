"""The replies the bot would send, computed in batches without the event loop.

Why: `s2s tune-decoding` (chat) and `benchmarks/chat_quality.py` must score what people
actually get, not the decoder's first hypothesis: the bot widens the n-best list
(`ChatSettings.decode_options`), seeds sampling per chat and turn (`chat_seed`) and re-ranks
the candidates against echo and generic-reply penalties (`ReplyRanker`, remembering replies
across chats as a running bot does). Each post is the first message of a fresh chat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from nlp.chat.messages import Messages, chat_messages
from nlp.chat.rerank import ReplyRanker
from nlp.chat.responder import chat_seed, choose_reply, falls_back
from nlp.chat.settings import ChatSettings
from nlp.decoding import DecodeOptions
from nlp.generation.text_generator import Generation, TextGenerator
from nlp.text.cleaning import clean_message
from nlp.text.normalize import last_turn_text
from nlp.text.scripts import script_languages
from nlp.util.config import DataConfig


def bot_options(options: DecodeOptions) -> DecodeOptions:
    """The options the bot decodes with when `options` are the model's settings."""
    return ChatSettings.from_options(options).decode_options(options)


@dataclass(frozen=True)
class SentReply:
    """What the bot sends to one post and where it came from (`Generation.provenance`:
    generated, refined, retrieved, fallback, or "apology" where no candidate was usable;
    and the training pair of a retrieved or refined reply)."""

    text: str
    provenance: str = "generated"
    pair: str = ""
    post: str = ""  # the training post a retrieved reply answered


def bot_candidates(
    generator: TextGenerator,
    posts: Sequence[str],
    options: DecodeOptions,
    batch_size: int = 64,
) -> Iterator[tuple[str, str, list[Generation]]]:
    """For each post in order: the chat it is the first message of, the post as the bot
    reads it (`clean_message`), and the candidates the bot chooses among (decoded as the bot
    decodes, `bot_options`, sampling seeded per chat and turn as it seeds). The one path to
    them for `bot_choices` and for whatever rates the candidates themselves
    (`benchmarks/sense_sheet.py --pool`)."""
    decode = bot_options(options)
    for chats, batch, seeds in bot_batches(posts, decode, batch_size):
        yield from zip(chats, batch, generator.generate(batch, decode, seeds), strict=True)


def bot_batches(
    posts: Sequence[str], decode: DecodeOptions, batch_size: int = 64
) -> Iterator[tuple[list[str], list[str], list[int | None] | None]]:
    """The posts in batches as the bot reads them: each batch's chats (a post is the first
    message of a fresh chat), its posts (`clean_message`) and, when `decode` samples, each
    chat's seed (`chat_seed`). Shared with the tuner's calibration (`nlp.tuning.calibration`),
    which builds the candidates the bot ranks."""
    for start in range(0, len(posts), batch_size):
        batch = [clean_message(post) for post in posts[start : start + batch_size]]
        chats = [f"post-{start + i}" for i in range(len(batch))]
        seeds: list[int | None] | None = (
            [chat_seed(chat, 0, decode.seed) for chat in chats]
            if decode.strategy == "sample"
            else None
        )
        yield chats, batch, seeds


def bot_choices(
    generator: TextGenerator,
    posts: Sequence[str],
    options: DecodeOptions,
    batch_size: int = 64,
    ranker: ReplyRanker | None = None,
    separator: str | None = None,
) -> list[SentReply]:
    """What the bot sends to each post, in order (its apology where no candidate is usable),
    with each reply's provenance. A post may hold its earlier turns before `separator` (the
    model's input; None: the model's own separator): the bot's choice, its fallback line and
    its echo penalty read the message alone, as the chat does (`ChatResponder.respond`)."""
    decode = bot_options(options)
    ranker = ranker or ReplyRanker()
    if separator is None:  # the model's own (a test double has none: the default)
        bundle = getattr(generator, "bundle", None)
        separator = bundle.config.data.turn_separator if bundle else DataConfig.turn_separator
    replies: list[SentReply] = []
    for chat, post, n_best in bot_candidates(generator, posts, options, batch_size):
        message = last_turn_text(post, separator)
        fallback = (post_messages(message).fallback_reply(message, chat, 0)
                    if falls_back(decode) else None)
        chosen = choose_reply(ranker, chat, n_best, message,
                              threshold=decode.fallback_threshold, fallback=fallback,
                              retrieved_threshold=decode.retrieved_threshold)
        if chosen is None:
            replies.append(SentReply(post_messages(message).no_idea, "apology"))
        else:
            text, best = chosen
            replies.append(SentReply(text, best.provenance, best.pair, best.post))
    return replies


def post_messages(post: str) -> Messages:
    """The words a post's chat is answered in, offline where no model's languages are at
    hand: Chinese for a post with Han characters (a Chinese model's posts mix in Latin
    words), else the table of its letters' language (English by default)."""
    languages = script_languages(post)
    return chat_messages(["zh"] if "zh" in languages else sorted(languages))


def bot_replies(
    generator: TextGenerator,
    posts: Sequence[str],
    options: DecodeOptions,
    batch_size: int = 64,
    ranker: ReplyRanker | None = None,
) -> list[str]:
    """What the bot sends to each post, in order (`bot_choices`' texts)."""
    return [reply.text for reply in bot_choices(generator, posts, options, batch_size, ranker)]
