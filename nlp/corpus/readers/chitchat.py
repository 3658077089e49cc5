"""The Chit-Chat Challenge conversations of the `chitchat-dataset` package (`dataset.json`).

The file is one JSON object, `{conversation_id: {"messages": [[{"text", "sender",
"timestamp"}, ...], ...], "ratings", "start", "prompt"}}`, 40 MB on a single line, so it is
streamed with `ijson` one conversation at a time (memory bounded by the largest
conversation). Conversations are numbered (1-based records) for problem locations.

Each inner list is one speaker's consecutive messages before the other speaker answered, so
it is one turn, and adjacent turns make pairs (`turns_to_pairs`, context as for the other
dialogue formats). A turn's messages are joined with a space: the reply answers all of them
together, and they are pieces of one utterance ("Hello" + "How are you doing today?"), not
turns, so the turn separator would tell the model that the other speaker spoke in between;
a space adds nothing the speaker did not write (a full stop would invent punctuation), and
it is what the package's own `ConversationDataset` uses. Empty messages (a few dozen) are
left out of the join. A conversation of one turn has no pair: counted, not a problem.

The package is the user's to install (`pip install chitchat-dataset`); this reader only
reads its file, whose path the package gives:
`python -c "import importlib.resources as r; print(r.files('chitchat_dataset') / 'dataset.json')"`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ijson

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.json_array import InvalidJson, numbered, open_json
from nlp.corpus.readers.jsonl import INVALID_JSON
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    TOO_FEW_TURNS,
    Turn,
    check_context_turns,
    turns_to_pairs,
)
from nlp.corpus.records import Pair

MESSAGE_JOINER = " "
NOT_CONVERSATION = "not a chitchat conversation"
NO_CONVERSATIONS = "no conversations"


def read_chitchat(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Adjacent turns of every conversation become pairs (see the module docstring)."""
    check_context_turns(src, context_turns)
    count = 0
    with open_json(src) as handle:
        for count, item in numbered(ijson.kvitems(handle, "", use_float=True)):
            if isinstance(item, InvalidJson):
                src.reject(count, INVALID_JSON, f"{item.reason}; rest lost")
                return
            key, value = item
            turns = _turns(src, count, key, value)
            if turns is None:
                continue
            if len(turns) < 2:
                src.drop(TOO_FEW_TURNS, count)
                continue
            yield from turns_to_pairs(src, turns, context_turns, turn_separator)
    if count == 0:
        src.reject(0, NO_CONVERSATIONS, 'expected {conversation_id: {"messages": ...}, ...}')


def _turns(src: RecordSource, record: int, key: str, value: Any) -> list[Turn] | None:
    """One (record, text) turn per inner message list, or None after reporting why not."""
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list):
        src.reject(record, NOT_CONVERSATION, f"{key}: no messages list")
        return None
    turns: list[Turn] = []
    for index, turn in enumerate(messages):
        texts = _texts(turn)
        if texts is None:
            src.reject(record, NOT_CONVERSATION, f"{key}: messages[{index}] is not a message list")
            return None
        turns.append((record, MESSAGE_JOINER.join(t.strip() for t in texts if t.strip())))
    return turns


def _texts(turn: Any) -> list[str] | None:
    """The texts of one speaker's messages, or None when `turn` is not a non-empty list of
    `{"text": str, ...}` objects."""
    if not isinstance(turn, list) or not turn:
        return None
    texts: list[str] = []
    for message in turn:
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str):
            return None
        texts.append(text)
    return texts
