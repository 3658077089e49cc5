"""Text normalisation applied to every corpus side and, identically, to user input.

`normalize_text` does, in order:

1. Unicode NFKC: full-width ASCII (`１２３ＡＢＣ`, `％`) becomes ASCII, ligatures split,
   the ideographic space and NBSP become plain spaces, compatibility forms are unified.
2. EXCEPT for the Chinese sentence punctuation `，！？；：（）～` and the ellipsis `…`.
   NFKC would turn these into `,!?;:()~` and `...`, but `。、《》「」“”` have no ASCII
   compatibility mapping and would stay full-width, so Chinese text would end up with a mix of
   ASCII and full-width marks. We keep all of them in their Chinese form, deliberately: a
   Chinese sentence keeps consistent punctuation, and the tokenizer sees `，` as the Chinese
   comma it is. (English text rarely contains these code points, so it is unaffected.)
   ASCII punctuation already present in Chinese text is left as it is, too.
3. Control and format characters are removed (zero-width space and non-joiner, BOM, bidi
   marks, soft hyphen, stray C0/C1 controls such as the `\\x03` markers of SGML corpora), but
   not the zero-width joiner and tags that are parts of emoji ("👨‍👩‍👧").
4. Whitespace (tabs, newlines, any Unicode space) collapses to single spaces; edges stripped.

Case is not changed: lowercasing is a tokenizer setting.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from nlp.text.scripts import is_emoji_joining

# Chinese punctuation that NFKC would fold to ASCII; kept as is (see the module docstring).
KEPT_FULL_WIDTH = "，！？；：（）～…"

_KEPT = re.compile(f"([{re.escape(KEPT_FULL_WIDTH)}]+)")
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _in_emoji(text: str, index: int) -> bool:
    """Whether the format character at `index` is part of an emoji (kept: the joiner of
    sequences such as families and the tags of subdivision flags; removed, an emoji falls
    apart into its pieces): an emoji joiner or tag
    after a symbol (or after another part of the emoji), not a joiner between letters."""
    if not is_emoji_joining(text[index]):
        return False
    before = index - 1
    while before >= 0 and is_emoji_joining(text[before]):
        before -= 1
    return before >= 0 and unicodedata.category(text[before]) == "So"


_CURLY_APOSTROPHE = re.compile(r"(?<=[A-Za-z])[\u2018\u2019](?=[A-Za-z])")
# DailyDialog (and other tokenised English corpora) write contractions spaced out: "I ’ m",
# "don ’ t", "it ' s". Joined only before an English clitic, so a spaced quotation mark
# ("he said ‘ yes ’") is left alone, and not when a quote closes right after the clitic:
# "the letter 's' is silent" quotes a letter, it does not contract one.
_QUOTES = "'\u2018\u2019"
_SPACED_CONTRACTION = re.compile(
    f"(?<=[A-Za-z]) ?[{_QUOTES}] ?(?=(?:s|m|d|t|re|ve|ll)\\b(?![{_QUOTES}]))", re.IGNORECASE
)


def normalize_text(text: str) -> str:
    """NFKC except Chinese punctuation, no control/format chars, single spaces, stripped.

    A curly apostrophe between Latin letters ("I’ve", common in DailyDialog) becomes "'",
    so the word tokenizer sees one contraction instead of "i’" + "ve"; curly quotes used as
    quotation marks (Chinese ‘…’) are left alone. A contraction spaced out around its
    apostrophe ("I ’ m", "don ’ t", "it ' s") is joined the same way ("I'm"), so training
    data and user input both reach the tokenizer as one word; a quoted letter ("the letter
    's' is silent") is not a contraction and stays apart.
    """
    pieces = _KEPT.split(text)
    # re.split with one group alternates: unprotected, protected, unprotected, ...
    folded = "".join(
        piece if index % 2 else unicodedata.normalize("NFKC", piece)
        for index, piece in enumerate(pieces)
    )
    cleaned = "".join(
        " " if char.isspace() else char
        for index, char in enumerate(folded)
        if char.isspace()
        or unicodedata.category(char) not in _REMOVED_CATEGORIES
        or _in_emoji(folded, index)
    )
    spaced = " ".join(cleaned.split())
    return _CURLY_APOSTROPHE.sub("'", _SPACED_CONTRACTION.sub("'", spaced))


_WORD = re.compile(r"\w+")


def words_only(text: str) -> str:
    """The text's words, lower-cased and joined by single spaces, without punctuation: "I
    see." and "i see !" say the same thing. One definition for the chat's penalties on
    repeated replies (`nlp.chat.rerank`) and retrieval's replies that repeat a turn
    (`nlp.retrieval.turns`)."""
    return " ".join(_WORD.findall(text.lower()))


def without_separator(text: str, separator: str) -> str:
    """`text` unable to forge a dialogue turn: each occurrence of the turn separator's marker
    (`separator` without its spaces, e.g. "__eot__") replaced by a space.

    Why: a model with context reads earlier turns joined with the separator, so a message
    or a corpus turn holding its text would read as two turns. The corpus readers and the
    chat both call this, so training pairs and chat inputs follow the one rule. The marker is
    found as the model would read it, not as typed: the codec normalises (NFKC makes a
    full-width "＿＿ｅｏｔ＿＿" "__eot__") and the tokenizer may lowercase ("__EOT__"), so the
    match is on the normalised text, in any case. Text without the marker is returned
    unchanged (corpus readers normalise nothing themselves); text with it is returned
    normalised, which the codec would do anyway. A blank separator marks nothing.
    """
    pattern = _separator_pattern(separator)
    if pattern is None:
        return text
    normalized = normalize_text(text)
    if not pattern.search(normalized):
        return text
    return " ".join(pattern.sub(" ", normalized).split())


def last_turn_text(source: str, separator: str) -> str:
    """What follows a text's last turn separator, stripped: the message a source with
    earlier turns joined before it answers (`nlp.retrieval.turns.message_tokens` is the same
    in tokens); the whole text when it has none or the separator is blank. The separators
    are those `separator_count` counts (normalised, in any case), so a text with one has the
    message returned as the codec reads it. What a reader of the chat sees as the message
    (`nlp.evaluation.sense` shows the earlier turns apart)."""
    return split_turns(source, separator)[-1]


def split_turns(source: str, separator: str) -> list[str]:
    """A text's turns, oldest first, each stripped: the earlier turns a source joined before
    its message, then the message (`last_turn_text`); `[source]` when it has no separator or
    the separator is blank. The separators are those `separator_count` counts, and a text
    with one is split as the codec reads it (`_as_read`)."""
    pattern = _separator_pattern(separator)
    turns = pattern.split(_as_read(source)) if pattern is not None else [source]
    return [turn.strip() for turn in turns] if len(turns) > 1 else [source]


def separator_count(text: str, separator: str) -> int:
    """How many turn separators `text` holds, matched as `without_separator` matches them
    (normalised, in any case): the earlier turns a source joined before its message; 0 for a
    blank separator."""
    pattern = _separator_pattern(separator)
    return len(pattern.findall(_as_read(text))) if pattern is not None else 0


def _as_read(text: str) -> str:
    """`text` as far as a separator's marker goes, as the codec reads it (normalised)."""
    # printable ASCII is its own normal form as far as a marker goes (only spacing and
    # contractions change), so most of a corpus is not normalised text by text
    return text if text.isascii() and text.isprintable() else normalize_text(text)


@functools.lru_cache(maxsize=8)
def _separator_pattern(separator: str) -> re.Pattern[str] | None:
    """The separator's marker as it stands in normalised text, in any case; None for a blank
    separator. Cached: every message and every corpus source asks for it."""
    marker = normalize_text(separator)
    return re.compile(re.escape(marker), re.IGNORECASE) if marker else None
