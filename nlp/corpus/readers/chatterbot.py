"""ChatterBot corpus YAML: `conversations:` is a list of conversations, each a list of turns.

Why the YAML node tree instead of `yaml.safe_load`: nodes carry line numbers, so a malformed
conversation is reported at its line; and scalars stay text (`- 1984` is a reply, not an int).
A YAML syntax error makes the whole file unreadable; it is reported with its line, and the
other files of a directory are still read.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from nlp.corpus.readers.base import UNDECODABLE, RecordSource
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    Turn,
    check_context_turns,
    turns_to_pairs,
)
from nlp.corpus.records import Pair

INVALID_YAML = "invalid yaml"
NO_CONVERSATIONS = "no conversations list"
NOT_A_CONVERSATION = "conversation is not a list of turns"
NOT_TEXT = "turn is not text"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_chatterbot(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Adjacent turns of every conversation become pairs (see `turns_to_pairs`)."""
    check_context_turns(src, context_turns)
    conversations = _conversations(src)
    if conversations is None:
        return
    for node in conversations.value:
        turns = _turns(src, node)
        if turns is not None:
            yield from turns_to_pairs(src, turns, context_turns, turn_separator)


def _conversations(src: RecordSource) -> yaml.SequenceNode | None:
    """The `conversations` sequence node, or None after reporting why there is none."""
    raw = src.path.read_bytes()
    try:
        text = raw.decode(src.encoding)
    except UnicodeDecodeError as exc:
        src.reject(raw.count(b"\n", 0, exc.start) + 1, UNDECODABLE, f"not valid {src.encoding}")
        return None
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        src.reject(line, INVALID_YAML, str(getattr(exc, "problem", None) or exc))
        return None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "conversations" and isinstance(value, yaml.SequenceNode):
                return value
    src.reject(root.start_mark.line + 1 if root is not None else 1, NO_CONVERSATIONS)
    return None


def _turns(src: RecordSource, node: yaml.Node) -> list[Turn] | None:
    """(line, text) of each turn, or None after reporting a malformed conversation."""
    if not isinstance(node, yaml.SequenceNode):
        src.reject(node.start_mark.line + 1, NOT_A_CONVERSATION)
        return None
    turns: list[Turn] = []
    for turn in node.value:
        if not isinstance(turn, yaml.ScalarNode):
            src.reject(turn.start_mark.line + 1, NOT_TEXT)
            return None
        turns.append((turn.start_mark.line + 1, turn.value))
    return turns
