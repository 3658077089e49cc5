"""Dialogue turns to (context, reply) pairs, shared by every dialogue format.

Why one helper: DailyDialog, ChatterBot and Cornell differ only in how turns are stored; how
adjacent turns become pairs (and how earlier turns become context) must be the same for all,
and must match what `DataConfig.context_turns` / `turn_separator` mean at training time.
Conversation logs keep only some replies, through the same `replies_to_pairs`. No turn keeps
the separator's text (`nlp.text.normalize.without_separator`), so none can forge another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.records import Pair
from nlp.text.normalize import without_separator
from nlp.util.config import DataConfig

DEFAULT_TURN_SEPARATOR: str = DataConfig.turn_separator
TOO_FEW_TURNS = "fewer than 2 turns"

Turn = tuple[int, str]  # (line of the turn, text)


def check_context_turns(src: RecordSource, context_turns: int) -> None:
    """Reject a negative context size before any record is read."""
    if context_turns < 0:
        raise src.fail(f"context_turns must be >= 0, got {context_turns}")


def turns_to_pairs(
    src: RecordSource,
    turns: Sequence[Turn],
    context_turns: int = 0,
    separator: str = DEFAULT_TURN_SEPARATOR,
) -> Iterator[Pair]:
    """Each turn answers the one before it; up to `context_turns` earlier turns lead the source.

    The source is `earlier turns + the turn being answered`, joined with `separator`; empty
    earlier turns are left out of the context, an empty answered turn or reply is reported.
    """
    if len(turns) < 2:
        src.reject(turns[0][0] if turns else 0, TOO_FEW_TURNS)
        return
    yield from replies_to_pairs(src, turns, range(1, len(turns)), context_turns, separator)


def replies_to_pairs(
    src: RecordSource,
    turns: Sequence[Turn],
    replies: Iterable[int],
    context_turns: int,
    separator: str,
) -> Iterator[Pair]:
    """Pairs whose targets are `turns[i]` for each i (>= 1) in `replies`, sources as in
    `turns_to_pairs`. Apart from it for the formats where not every turn is a reply worth
    learning (conversation logs), so their pairs are still built the one way."""
    group = conversation_key(turns)
    for index in replies:
        line, reply = turns[index]
        source = source_of(turns, index, context_turns, separator)
        if pair := src.pair(line, source, without_separator(reply, separator), group):
            yield pair


def conversation_key(turns: Sequence[Turn]) -> str:
    """A name for the conversation drawn from its text alone (`Pair.group`), so that the
    split it decides is the same for the same conversation in any file, order or format."""
    text = "\x00".join(text for _, text in turns)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def source_of(
    turns: Sequence[Turn], index: int, context_turns: int, separator: str
) -> str:
    """The encoder input answered by `turns[index]`: the turn before it, led by up to
    `context_turns` earlier non-empty turns ("" when the answered turn is empty). No turn
    keeps the separator's text (`without_separator`, the chat's rule too): a turn holding it
    would read as two."""
    earlier = turns[max(0, index - 1 - context_turns) : index - 1]
    current = without_separator(turns[index - 1][1], separator).strip()
    context = [t for _, text in earlier if (t := without_separator(text, separator).strip())]
    return separator.join([*context, current]) if current else ""
