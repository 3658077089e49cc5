"""Reuters-21578 SGML: `<TITLE>` (inside `<TEXT>`) is the headline, `<BODY>` the article.

About 10% of the documents have no title or no body (BRIEF and UNPROC items): they are sound
documents without a pair in them, so they are counted by reason, not listed as problems.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.tagged import element_text, tagged_records
from nlp.corpus.records import Pair

NO_TITLE = "no title"
NO_BODY = "no body"

_START = re.compile(r"<REUTERS\b")
_END = "</REUTERS>"
# The closing signature as the files write it: `Reuter`, `REUTER...`, `REUTER^M` (a literal
# caret-M), sometimes twice, or `REUTERS` on a line of its own (a sentence may end "told
# Reuters.", so `Reuters` counts only alone on its line).
_SIGNATURE = re.compile(
    r"(?:\s*(?:\bReuter\b(?:\^M|\W)*|^[ \t]*Reuters\s*))+\Z", re.IGNORECASE | re.MULTILINE
)
_TICKER = re.compile(r"(<[^>]*>)")
_JOINED_PART = re.compile(r"[^-/]+")  # BROWN-FORMAN, DUFF/PHELPS
_EDGE_PUNCTUATION = "\"'()[].,;:!?"


def read_reuters(src: RecordSource, *, title_case: bool = False) -> Iterator[Pair]:
    """Headline pairs; entities unescaped, the closing `Reuter` signature removed.

    Titles are ALL CAPS in the original; `title_case=True` turns all-caps titles into
    `Title Case` (`title_cased`; off by default: a lowercasing tokenizer makes it moot).
    """
    for record in tagged_records(src, _START, _END):
        text = element_text(record.text, "TEXT") or ""
        title = _clean(element_text(text, "TITLE"))
        body = _clean(element_text(text, "BODY"))
        if not title:
            src.drop(NO_TITLE, record.line)
            continue
        if not body:
            src.drop(NO_BODY, record.line)
            continue
        body = _SIGNATURE.sub("", body)
        if title_case and title.isupper():
            title = title_cased(title, body)
        if pair := src.pair(record.line, body, title):
            yield pair


def _clean(raw: str | None) -> str:
    """Entities unescaped (`&lt;` -> `<`; the `&#3;` control markers vanish), edges stripped."""
    return "" if raw is None else html.unescape(raw).strip()


def title_cased(title: str, body: str) -> str:
    """`title` (ALL CAPS) in Title Case, keeping what case would garble.

    An all-caps title cannot tell an acronym from a word, its body can: a word the body also
    writes in capitals (USX, USDA, OPEC) stays as written, as do tickers (`<SRD>`,
    `<FRANKLIN TAX-FREE FUND>`) and dotted abbreviations (U.S., N.Z.). Each part of the other
    words joined by `-` or `/` is capitalised (`BROWN-FORMAN` -> `Brown-Forman`, `4TH` -> `4th`).
    """
    capitals = {word for word in map(_bare, body.split()) if word.isupper()}
    parts = _TICKER.split(title)
    for index in range(0, len(parts), 2):  # odd indices are the tickers
        parts[index] = " ".join(
            word if _bare(word) in capitals or "." in word.rstrip(".")
            else _JOINED_PART.sub(lambda part: part[0].capitalize(), word)
            for word in parts[index].split(" ")
        )
    return "".join(parts)


def _bare(word: str) -> str:
    return word.strip(_EDGE_PUNCTUATION)
