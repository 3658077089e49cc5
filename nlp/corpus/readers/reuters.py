"""Reuters-21578 SGML: `<TITLE>` (inside `<TEXT>`) is the headline, `<BODY>` the article.

About 10% of the documents have no title or no body (BRIEF and UNPROC items): they are sound
documents without a pair in them, so they are counted by reason, not listed as problems.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterator

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.tagged import element_text, tagged_records
from nlp.corpus.records import Pair

NO_TITLE = "no title"
NO_BODY = "no body"

_START = re.compile(r"<REUTERS\b")
_END = "</REUTERS>"
_SIGNATURE = re.compile(r"\s*\bReuter\s*$", re.IGNORECASE)


def read_reuters(src: RecordSource, *, title_case: bool = False) -> Iterator[Pair]:
    """Headline pairs; entities unescaped, the closing `Reuter` signature removed.

    Titles are ALL CAPS in the original; `title_case=True` turns all-caps titles into
    `Title Case` (off by default: a lowercasing tokenizer makes it moot).
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
            title = string.capwords(title.lower())
        if pair := src.pair(record.line, body, title):
            yield pair


def _clean(raw: str | None) -> str:
    """Entities unescaped (`&lt;` -> `<`; the `&#3;` control markers vanish), edges stripped."""
    return "" if raw is None else html.unescape(raw).strip()
