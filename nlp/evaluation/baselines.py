"""Lead baselines for headline generation: what a model must beat to be worth anything.

Two classics: the article's first sentence, and its first N units with N the mean reference
length of the evaluation set (characters for Chinese, whitespace-separated words for English).
Units are counted as in `nlp.metrics.rouge` for characters (whitespace is not a unit); for
words, whitespace splitting keeps the baseline text readable ("U.S." stays one word).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlp.metrics.rouge import resolve_unit

# A point after a lone capital ("U.S.", "J. Smith") or a common title ends no sentence
_NOT_AN_END = "".join(rf"(?<!\b{word})" for word in (
    "[A-Z]", "Mr", "Mrs", "Ms", "Dr", "St", "Corp", "Inc", "Co", "Ltd", "Jr", "No", "vs"))
_SENTENCE_END = re.compile(
    rf"[。！？!?]+[”’」』\"')）]*|{_NOT_AN_END}(?<!\d)\.(?!\d)[\"')]*|\n")
"""A sentence ends at 。！？!? (with closing quotes), at "." not inside a number nor after an
abbreviation (the lead baseline was "The U." of "The U.S. Agriculture..."), or a newline."""


def split_sentences(text: str) -> list[str]:
    """Sentences with their final punctuation, stripped, empty ones dropped."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def first_sentence(text: str) -> str:
    """The lead sentence (the whole text when it has no sentence end)."""
    sentences = split_sentences(text)
    return sentences[0] if sentences else ""


def first_units(text: str, n: int, unit: str) -> str:
    """The first `n` non-whitespace characters (unit "char") or words (unit "word")."""
    if unit == "word":
        return " ".join(text.split()[:n])
    if unit != "char":
        raise ValueError(f"unit must be 'char' or 'word', not {unit!r}")
    kept = 0
    for end, char in enumerate(text):
        if not char.isspace():
            kept += 1
            if kept == n:
                return text[: end + 1].strip()
    return text.strip()


def unit_length(text: str, unit: str) -> int:
    """Length in baseline units: non-whitespace characters or whitespace-separated words."""
    return len(text.split()) if unit == "word" else sum(not c.isspace() for c in text)


def mean_reference_length(references: Sequence[str], unit: str) -> int:
    """Mean reference length in `unit`, rounded half up (not to even), at least 1."""
    if not references:
        return 1
    total = sum(unit_length(r, unit) for r in references)
    return max(1, int(total / len(references) + 0.5))


def lead_sentence_baseline(articles: Sequence[str]) -> list[str]:
    """First sentence of every article."""
    return [first_sentence(a) for a in articles]


def lead_n_baseline(
    articles: Sequence[str], references: Sequence[str], unit: str = "auto"
) -> list[str]:
    """First N units of every article, N = mean reference length ("auto" as in ROUGE)."""
    resolved = resolve_unit(references, unit)
    n = mean_reference_length(references, resolved)
    return [first_units(a, n, resolved) for a in articles]
