"""`fmt="auto"`: pick a format from the path, then from the first lines of content.

Every guess comes with the evidence it rests on, so the report can say why a format was chosen
and a wrong guess is easy to spot and override.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from nlp.corpus.conversation_fields import CONVERSATION, RATING, SPEAKER, TURN
from nlp.corpus.readers.cornell import CONVERSATIONS_FILE, LINES_FILE
from nlp.corpus.records import FormatError
from nlp.text.scripts import has_han

# The format of `s2s chat` / `s2s bot --log-conversations` files: people's own words, which
# an index must not send to other people unless asked (`nlp.training.reply_index`)
LOG_FORMAT = "conversation-log"
SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 20

_BY_SUFFIX = {
    ".sgm": "reuters",
    ".yml": "chatterbot",
    ".yaml": "chatterbot",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".conv": "conv",
}
# The opening of chitchat-dataset's file: an object of conversations holding message lists.
_CHITCHAT = re.compile(r'\s*\{\s*"[^"]*"\s*:\s*\{\s*"messages"\s*:\s*\[\s*\[')
_CONV_LINE = re.compile(r"E\s*|M(\s.*)?")
# An array of records opens with `[` and then `{`, `]` or a line break; text that merely
# starts with a bracket ("[视频] ...", "[1] ...") does not.
_ARRAY_START = re.compile(r"\s*\[\s*(\{|\]|$)")


@dataclass(frozen=True)
class Detection:
    """A detected format, why, and the sampled first record (read once, for every question
    about the file that follows from its opening)."""

    fmt: str
    why: str
    first: object = None  # the first sampled line as JSON; None: not JSON, or not sampled

    @property
    def written_by_convert(self) -> bool:
        """A JSONL file whose first record has the fields `corpus convert` writes."""
        return (self.fmt == "jsonl" and isinstance(self.first, dict)
                and {"source", "target"} <= set(self.first))


def detect_format(path: Path) -> tuple[str, str]:
    """(format name, why) for a file or corpus directory; FormatError when nothing fits."""
    found = detect(path)
    return found.fmt, found.why


def detect(path: Path) -> Detection:
    """`detect_format` with the sampled first record kept (`Detection`)."""
    if path.is_dir():
        return Detection(*_detect_directory(path))
    if _suffix_decides(path.name):
        return detect_sample(path.name, [], str(path))
    return detect_sample(path.name, _sample_lines(path), str(path))


def detect_sample(name: str, lines: list[str], where: str) -> Detection:
    """The format of a file called `name` that begins with `lines` (`sample_lines`), for a
    stream that is no local file to open (stdin, a decompressed or remote file); `where`
    names it in a FormatError."""
    if name.lower() in (LINES_FILE, CONVERSATIONS_FILE):
        return Detection("cornell", f"file name {name}")
    extension = PurePath(name).suffix
    suffix = extension.lower()
    if _suffix_decides(name):
        return Detection(_BY_SUFFIX[suffix], f"extension {extension}")
    first = _first_record(lines)
    if suffix in _BY_SUFFIX:
        if _is_conversation_log(first):
            return Detection(LOG_FORMAT, f"extension {extension}, records with conversation/turn",
                             first)
        return Detection("jsonl", f"extension {extension}", first)
    if suffix == ".json":
        return Detection(*_detect_json(lines), first)
    return Detection(*_detect_content(where, lines, first), first)


def _suffix_decides(name: str) -> bool:
    """Whether the extension of `name` alone names its format: every one `_BY_SUFFIX` knows
    but JSON Lines', whose content tells a conversation log apart."""
    return _BY_SUFFIX.get(PurePath(name).suffix.lower(), "jsonl") != "jsonl"


def _detect_json(lines: list[str]) -> tuple[str, str]:
    """A `.json` file is either one JSON document (`json`, or `chitchat` when it is an object
    of conversations) or JSON Lines under that name."""
    if lines and _CHITCHAT.match(lines[0]):
        return "chitchat", "extension .json, an object of conversations with messages lists"
    if not lines or opens_array(lines):
        return "json", "extension .json, an array"
    if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines):
        return "jsonl", "extension .json, but every line is an object"
    if len(lines) == 1 and not _holds_array(lines[0]):
        return "jsonl", "extension .json, one object per line"
    return "json", "extension .json, one document"


def opens_array(lines: list[str]) -> bool:
    """Whether sampled lines (`sample_lines`) open with `[`: how a document known to be JSON
    shows it is an array. Content of unknown kind must match the stricter `_ARRAY_START`
    ("[视频] ..." is text)."""
    return bool(lines) and lines[0].lstrip().startswith("[")


def _first_record(lines: list[str]) -> object:
    """The first sampled line as JSON; None when there is none or it is not JSON."""
    try:
        return json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        return None


def _is_conversation_log(first: object) -> bool:
    """The first record is a `--log-conversations` turn or rating (fields conversation, turn,
    and speaker or rating): a rotated log's later piece may open with a rating."""
    return (isinstance(first, dict) and {CONVERSATION, TURN} <= set(first)
            and bool({SPEAKER, RATING} & set(first)))


def _holds_array(text: str) -> bool:
    """True unless `text` is a complete JSON object without any array value (a JSONL record)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:  # cut off by the sample: a long single-line document
        return True
    return not isinstance(value, dict) or any(isinstance(v, list) for v in value.values())


def _sample_lines(path: Path) -> list[str]:
    with path.open("rb") as handle:
        return sample_lines(handle.read(SAMPLE_BYTES))


def sample_lines(sample: bytes) -> list[str]:
    """The first non-blank lines of a file's first SAMPLE_BYTES (BOM removed)."""
    text = sample.decode("utf-8", errors="replace").lstrip("\ufeff")
    return [line for line in text.splitlines() if line.strip()][:SAMPLE_LINES]


def _detect_directory(path: Path) -> tuple[str, str]:
    names = {child.name.lower() for child in path.iterdir()}
    if LINES_FILE in names or CONVERSATIONS_FILE in names:
        return "cornell", f"directory holds {LINES_FILE}"
    suffixes = {Path(name).suffix for name in names}
    if ".sgm" in suffixes:
        return "reuters", "directory holds .sgm files"
    if suffixes & {".yml", ".yaml"}:
        return "chatterbot", "directory holds .yml files"
    if ".conv" in suffixes:
        return "conv", "directory holds .conv files"
    if next(path.rglob("*.json"), None) is not None:  # feed snapshots: one folder per day
        return "json", "directory holds .json files"
    raise FormatError(str(path), 0, "cannot detect the corpus format of this directory; give fmt")


def _detect_content(where: str, lines: list[str], first: object) -> tuple[str, str]:
    joined = "\n".join(lines)
    if "<REUTERS" in joined:
        return "reuters", "content has <REUTERS> records"
    if re.search(r"<doc\b", joined):
        return "lcsts-xml", "content has <doc> records"
    if "__eou__" in joined:
        return "dailydialog", "content has __eou__ turn markers"
    if (
        lines
        and lines[0].strip() == "E"
        and _majority(bool(_CONV_LINE.fullmatch(x)) for x in lines)
    ):
        return "conv", "content is E blocks of M lines"
    if lines and _ARRAY_START.match(lines[0]):
        return "json", "content is a JSON array"
    # Majorities, not unanimity: the sample may contain the malformed lines to be reported.
    if _majority(line.lstrip().startswith("{") for line in lines):
        if _is_conversation_log(first):  # `--log-conversations chats.log`: any name
            return LOG_FORMAT, "lines are conversation/turn records"
        return "jsonl", "lines are JSON objects"
    tabbed = [line for line in lines if "\t" in line]
    if _majority("\t" in line for line in lines):
        return _detect_tabular(tabbed)
    raise FormatError(where, 0, "cannot detect the corpus format from the content; give fmt")


def _detect_tabular(lines: list[str]) -> tuple[str, str]:
    """Tell the tab-separated corpora apart by script, spacing and side lengths."""
    rows = [line.split("\t") for line in lines]
    first = [row[0] for row in rows]
    second = [row[1] for row in rows]
    tokens = [token for row in rows for cell in row[:2] for token in cell.split()]
    if _majority(len(row) == 2 for row in rows) and _cjk_share(first + second) > 0.5:
        if tokens and sum(len(token) == 1 for token in tokens) / len(tokens) > 0.9:
            return "lccc", "two columns of space-separated CJK characters"
        if sum(map(len, first)) < sum(map(len, second)):
            return "lcsts-tsv", "two CJK columns, the first (title) shorter"
    if _cjk_share(first) < 0.1 and _cjk_share(second) > 0.5:
        return "tatoeba", "Latin first column, Chinese second column"
    return "tsv", "tab-separated columns"


def _majority(flags: Iterable[bool]) -> bool:
    values = list(flags)
    return sum(values) > len(values) / 2


def _cjk_share(cells: list[str]) -> float:
    """Fraction of the cells that contain CJK ideographs."""
    return sum(has_han(cell) for cell in cells) / len(cells) if cells else 0.0
