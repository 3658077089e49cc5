""".conv subtitle dialogues (dgk_lost_conv, used by many Chinese chatbot tutorials).

A line `E` starts a block and each `M text` line of the block is one subtitle line. The
files carry no speaker labels, so the tutorials' convention is kept: each line answers the
one before it in its block, and earlier lines of the block are the context
(`turns_to_pairs`, as for the other dialogue formats). Blocks are streamed one at a time.

Why a block of one line is counted, not listed as a problem: it is a sound subtitle with no
reply in the file (about one block in nine of dgk_lost_conv), not a broken record.
"""

from __future__ import annotations

from collections.abc import Iterator

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    TOO_FEW_TURNS,
    Turn,
    check_context_turns,
    turns_to_pairs,
)
from nlp.corpus.records import Pair

BLOCK_START = "E"
LINE_MARK = "M"
NOT_CONV_LINE = "not an E or M line"


def read_conv(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Adjacent `M` lines of each `E` block become pairs (lines before the first `E` form a
    block of their own: a file cut at the top still gives its pairs)."""
    check_context_turns(src, context_turns)
    block: list[Turn] = []
    for number, text in src.records():
        mark, rest = text[:1], text[1:]
        if mark == BLOCK_START and not rest.strip():
            yield from _block_pairs(src, block, context_turns, turn_separator)
            block = []
        elif mark == LINE_MARK and (not rest or rest[0].isspace()):
            block.append((number, rest))
        else:
            src.reject(number, NOT_CONV_LINE, text[:40])
    yield from _block_pairs(src, block, context_turns, turn_separator)


def _block_pairs(
    src: RecordSource, block: list[Turn], context_turns: int, separator: str
) -> Iterator[Pair]:
    """The pairs of one block; a lone line is counted as skipped, an empty block is nothing."""
    if len(block) == 1:
        src.drop(TOO_FEW_TURNS, block[0][0])
    elif block:
        yield from turns_to_pairs(src, block, context_turns, separator)
