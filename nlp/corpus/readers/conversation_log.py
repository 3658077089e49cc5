"""Conversation logs written by `s2s chat` / `s2s bot --log-conversations` (format in
`nlp.chat.conversation_log`) as training pairs.

Which turns become targets, and why: only text a person stands behind. Every user turn
answers the turn before it (the bot's message, or the user's own previous message when the
bot did not answer), so (that turn -> user turn) is a pair; a bot reply is a target only when
a person rated it /good. Unrated and /bad bot replies are never targets: retraining on them
would teach the bot its own stock lines; the report counts them as skipped, with a
conversation of one turn, so it accounts for every turn that could have been a target.
Pairs, and the earlier turns their sources carry as context, are built as for the other
dialogue formats (`turns.replies_to_pairs`). Turns are grouped by conversation, so a log
holding many interleaved chats is read whole (logs are small next to training corpora).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from nlp.corpus.conversation_fields import (
    BOT,
    CONVERSATION,
    GOOD,
    RATING,
    SPEAKER,
    TEXT,
    TURN,
    USER,
)
from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    TOO_FEW_TURNS,
    Turn,
    check_context_turns,
    replies_to_pairs,
)
from nlp.corpus.records import Pair

INVALID_RECORD = "not a conversation-log record"
UNRATED = "bot reply not rated"
NOT_GOOD = "bot reply rated /bad"


def read_conversation_log(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Pairs whose target a person wrote or rated /good, conversation by conversation."""
    check_context_turns(src, context_turns)
    conversations: dict[tuple[str, str], dict[int, tuple[int, str, str]]] = {}
    ratings: dict[tuple[str, str, int], str] = {}
    for number, text in src.records():
        try:
            record = json.loads(text)
            key = (str(record["chat"]), str(record[CONVERSATION]))
            turn = int(record[TURN])
            if RATING in record:
                ratings[(*key, turn)] = str(record[RATING])
            elif record[SPEAKER] in (USER, BOT) and isinstance(record[TEXT], str):
                conversations.setdefault(key, {})[turn] = (number, record[SPEAKER], record[TEXT])
            else:
                raise ValueError(f"speaker {record[SPEAKER]!r}")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            src.reject(number, INVALID_RECORD, str(exc))
    for key, by_turn in conversations.items():
        numbers = sorted(by_turn)
        ordered = [by_turn[number] for number in numbers]
        if len(ordered) < 2:
            src.drop(TOO_FEW_TURNS, ordered[0][0])
            continue
        turns: list[Turn] = [(line, text) for line, _, text in ordered]
        wanted = []
        for index in range(1, len(ordered)):
            line, speaker, _ = ordered[index]
            rating = ratings.get((*key, numbers[index]))
            if speaker == USER or rating == GOOD:
                wanted.append(index)
            else:  # a candidate pair left out, counted so the report adds up
                src.drop(UNRATED if rating is None else NOT_GOOD, line)
        yield from replies_to_pairs(src, turns, wanted, context_turns, turn_separator)
