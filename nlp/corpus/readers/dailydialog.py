"""DailyDialog: one dialogue per line, every turn terminated by `__eou__`."""

from __future__ import annotations

from collections.abc import Iterator

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    check_context_turns,
    turns_to_pairs,
)
from nlp.corpus.records import Pair

END_OF_UTTERANCE = "__eou__"


def read_dailydialog(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Adjacent turns of each dialogue line become pairs (see `turns_to_pairs`)."""
    check_context_turns(src, context_turns)
    for number, text in src.records():
        pieces = text.split(END_OF_UTTERANCE)
        if not pieces[-1].strip():  # the terminator after the last turn
            pieces.pop()
        turns = [(number, piece) for piece in pieces]
        yield from turns_to_pairs(src, turns, context_turns, turn_separator)
