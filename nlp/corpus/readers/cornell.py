"""Cornell Movie-Dialogs: `movie_lines.txt` (utterances) + `movie_conversations.txt` (ids).

Fields are separated by ` +++$+++ `; the files are ISO-8859-1. The utterances are indexed in
memory (about 300k short lines) because conversations refer to them in any order; the
conversations are then streamed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.delimited import WRONG_COLUMNS
from nlp.corpus.readers.turns import (
    DEFAULT_TURN_SEPARATOR,
    Turn,
    check_context_turns,
    turns_to_pairs,
)
from nlp.corpus.records import Pair

LINES_FILE = "movie_lines.txt"
CONVERSATIONS_FILE = "movie_conversations.txt"
BAD_LINE_IDS = "invalid line id list"
UNKNOWN_LINE_ID = "unknown line id"

_SEPARATOR = re.compile(r" ?\+\+\+\$\+\+\+ ?")
_ID_LIST = re.compile(r"\[\s*(?:'[^']*'\s*(?:,\s*'[^']*'\s*)*)?\]")
_ID = re.compile(r"'([^']*)'")


def cornell_files(path: Path) -> tuple[Path, Path]:
    """The two files, from the corpus directory or either file's path."""
    directory = path if path.is_dir() else path.parent
    return directory / LINES_FILE, directory / CONVERSATIONS_FILE


def read_cornell(
    src: RecordSource, *, context_turns: int = 0, turn_separator: str = DEFAULT_TURN_SEPARATOR
) -> Iterator[Pair]:
    """Adjacent utterances of each conversation become pairs (see `turns_to_pairs`)."""
    check_context_turns(src, context_turns)
    lines_path, conversations_path = cornell_files(src.path)
    for needed in (lines_path, conversations_path):
        if not needed.is_file():
            raise src.fail(f"Cornell corpus needs {needed.name} beside it ({needed} missing)")
    utterances = _utterances(dataclasses.replace(src, path=lines_path))
    conversations = dataclasses.replace(src, path=conversations_path)
    for number, text in conversations.records():
        fields = _SEPARATOR.split(text, maxsplit=3)
        if len(fields) != 4:
            conversations.reject(number, WRONG_COLUMNS, f"expected 4, got {len(fields)}")
            continue
        id_list = fields[3].strip()
        if not _ID_LIST.fullmatch(id_list):
            conversations.reject(number, BAD_LINE_IDS, id_list[:40])
            continue
        ids = _ID.findall(id_list)
        unknown = [line_id for line_id in ids if line_id not in utterances]
        if unknown:
            conversations.reject(number, UNKNOWN_LINE_ID, ", ".join(unknown[:5]))
            continue
        turns: list[Turn] = [(number, utterances[line_id]) for line_id in ids]
        yield from turns_to_pairs(conversations, turns, context_turns, turn_separator)


def _utterances(src: RecordSource) -> dict[str, str]:
    """Line id -> text; malformed rows are reported with their line in movie_lines.txt."""
    utterances: dict[str, str] = {}
    for number, text in src.records():
        fields = _SEPARATOR.split(text, maxsplit=4)
        if len(fields) != 5:
            src.reject(number, WRONG_COLUMNS, f"expected 5, got {len(fields)}")
            continue
        utterances[fields[0].strip()] = fields[4]
    return utterances
