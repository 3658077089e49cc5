"""Mask numbers, dates, money, percentages, URLs and Latin words; restore them after decoding.

Why: a word-level model cannot spell "2.4亿元" or "37.5%" it has rarely seen, and numbers blow
up the vocabulary. The source article is masked (`mask`), the model learns to emit the
placeholder, and `restore` puts the exact original string back from the article's slots.

Placeholder shape: ``ph`` + kind + number, lowercase ASCII letters and digits only, e.g.
``phnum1``, ``phpct1``, ``phmoney2``, ``phdate1``, ``phurl1``, ``phlat3``. Why this shape:
- jieba keeps an ASCII alphanumeric run as one token (``jieba.lcut("增长phpct1达到")`` gives
  ``['增长', 'phpct1', '达到']``) but splits on ``_`` and ``<``/``>``, so ``ph_pct_1`` or
  ``<pct_1>`` would reach the vocabulary in pieces;
- an English word tokenizer (``\\w+`` or whitespace) keeps it whole, and lowercasing
  (`TokenizerConfig.lowercase`) does not change it;
- it cannot collide with a masked value, since digits and Latin words are what gets masked.
Because jieba also glues adjacent ASCII runs together, `mask` puts a space between a
placeholder and a neighbouring ASCII letter or digit ("phmoney1 phlat1", never
"phmoney1phlat1"). Sentencepiece should get `placeholder_tokens()` as user-defined symbols.

Conventions (documented choices):
- Input is assumed NFKC-normalised upstream ("２０２６" is already "2026").
- Percentages are digits with "%" / "percent" / "pct", plus Chinese "百分之" followed by
  Chinese or Arabic numerals ("百分之三十"); other Chinese-numeral numbers are not masked.
- Latin words are masked only in text that contains CJK characters ("iPhone" inside Chinese),
  not in English text, unless ``latin_everywhere=True``.
- A number glued to Latin letters ("COVID-19", "5G" in English text) is left alone: it is a name.
- A sign that starts a word belongs to its number ("-5", "气温-5度"; the tokenizers' rule), and a
  score or a range is one value ("3-1", "5-10%"): a time ("10:30") too.
- The same value gets the same placeholder; each kind is numbered from 1 in order of first
  appearance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from nlp.text.scripts import NUMBER_SIGN_PATTERN, has_han

KINDS: tuple[str, ...] = ("url", "date", "money", "pct", "num", "lat")
"""All kinds, in matching priority (a URL may contain a date, a date contains numbers...)."""

DEFAULT_KINDS: frozenset[str] = frozenset(KINDS)

_PREFIX = "ph"

# Building blocks (no capturing groups: the kind is found from the named outer group).
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NOT_AFTER_WORD = r"(?<![A-Za-z0-9_.])(?<![A-Za-z]-)"  # not "v1.2" nor "COVID-19"
_NOT_BEFORE_WORD = r"(?![A-Za-z0-9_])"
# Where a number may start: with its sign where the sign starts a word ("-5", "气温-5度": the
# sign masked apart came back "- 5"), else not inside a word.
_NUMBER_START = f"(?:{NUMBER_SIGN_PATTERN}|{_NOT_AFTER_WORD})"
# A range, a score or a fraction is one value ("5-10%", "3-1", "3/5"): "phnum1-phnum2" would
# be one word to the tokenizers, never in a vocabulary.
_NUMBER_OR_RANGE = f"(?:{_NUMBER})(?:[-/](?:{_NUMBER}))*"
_PERCENT_RANGE = f"(?:{_NUMBER})(?:%?-(?:{_NUMBER}))*"  # "5-10%", "5%-10%"
_MONTHS = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ZH_MULTIPLIER = r"[十百千万亿]*"
_ZH_CURRENCY = r"(?:美元|港元|港币|欧元|日元|英镑|韩元|人民币|元|块钱|美金)"
_EN_SCALE = r"(?:\s?(?i:million|billion|trillion|mln|bln|bn|m|k))?"
_EN_CURRENCY_WORD = r"(?i:dollars?|dlrs|yuan|euros?|pounds?|cents?|yen|rmb)"
_ZH_NUMERALS = r"[零〇一二两三四五六七八九十百千点]+"

_PATTERNS: dict[str, str] = {
    "url": r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]*[A-Za-z0-9/#=_\-~%&+]",
    "date": "|".join(
        (
            r"\d{4}年\d{1,2}月(?:\d{1,2}[日号])?",
            r"\d{1,2}月\d{1,2}[日号]",
            r"\d{4}年",
            rf"{_NOT_AFTER_WORD}\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}{_NOT_BEFORE_WORD}",
            rf"\b{_MONTHS}\.?\s\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s\d{{4}})?{_NOT_BEFORE_WORD}",
            rf"{_NOT_AFTER_WORD}\d{{1,2}}\s{_MONTHS}\.?,?\s\d{{4}}{_NOT_BEFORE_WORD}",
        )
    ),
    "money": "|".join(
        (
            rf"{_NUMBER_START}(?:{_NUMBER}){_ZH_MULTIPLIER}{_ZH_CURRENCY}",
            rf"(?:US|HK|A|C)?[$¥€£]\s?(?:{_NUMBER}){_ZH_MULTIPLIER}{_EN_SCALE}{_NOT_BEFORE_WORD}",
            rf"{_NOT_AFTER_WORD}(?:{_NUMBER}){_EN_SCALE}\s{_EN_CURRENCY_WORD}\b",
        )
    ),
    "pct": "|".join(
        (
            rf"{_NUMBER_START}{_PERCENT_RANGE}\s?%",
            rf"{_NUMBER_START}{_NUMBER_OR_RANGE}\s(?i:percent|pct)\b",
            rf"百分之(?:{_NUMBER}|{_ZH_NUMERALS})",
        )
    ),
    # a time or a score ("10:30", "3:2") whole: its parts restored apart came back "10: 30"
    "num": rf"{_NUMBER_START}(?:\d{{1,2}}:\d{{1,2}}(?::\d{{2}})?(?![\d:])"
    rf"|{_NUMBER_OR_RANGE}){_NOT_BEFORE_WORD}",
    # At least one ASCII letter, so "5G" and "iPhone15" are words and "2026" stays a number.
    "lat": r"(?<![A-Za-z0-9_])[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*(?:['\-.&+][A-Za-z0-9]+)*"
    r"(?![A-Za-z0-9_])",
}

PLACEHOLDER_RE = re.compile(rf"{_PREFIX}(?:{'|'.join(KINDS)})\d+", re.IGNORECASE)
"""Any placeholder token, known or not (what `restore` looks for in model output)."""


@dataclass(frozen=True)
class Masked:
    """Masked text and the placeholder -> original string map needed to undo it."""

    text: str
    slots: dict[str, str] = field(default_factory=dict)


def placeholder(kind: str, number: int) -> str:
    """The token for the `number`-th distinct value of `kind` (1-based)."""
    if kind not in KINDS:
        raise ValueError(f"unknown placeholder kind {kind!r}; expected one of {KINDS}")
    return f"{_PREFIX}{kind}{number}"


def placeholder_tokens(per_kind: int = 20) -> list[str]:
    """Every placeholder up to `per_kind` of each kind: for sentencepiece user-defined symbols
    or for reserving vocabulary entries, so that rare high numbers are not <unk>."""
    return [placeholder(kind, n) for kind in KINDS for n in range(1, per_kind + 1)]


def is_placeholder(token: str) -> bool:
    """True for a whole token shaped like a placeholder (e.g. to exempt it from lowercasing)."""
    return PLACEHOLDER_RE.fullmatch(token) is not None


def _compile(kinds: Collection[str]) -> re.Pattern[str]:
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown placeholder kinds {sorted(unknown)}; expected some of {KINDS}")
    return re.compile("|".join(f"(?P<{k}>{_PATTERNS[k]})" for k in KINDS if k in kinds))


_COMPILED: dict[frozenset[str], re.Pattern[str]] = {}


def _pattern(kinds: frozenset[str]) -> re.Pattern[str]:
    if kinds not in _COMPILED:
        _COMPILED[kinds] = _compile(kinds)
    return _COMPILED[kinds]


def mask(
    text: str, kinds: Collection[str] = DEFAULT_KINDS, *, latin_everywhere: bool = False
) -> Masked:
    """Replace each masked span by its placeholder; see the module docstring for conventions."""
    wanted = frozenset(kinds)
    if "lat" in wanted and not latin_everywhere and not has_han(text):
        wanted = wanted - {"lat"}
    by_value: dict[tuple[str, str], str] = {}
    counts: dict[str, int] = {}

    def token_for(kind: str, value: str) -> str:
        if (kind, value) not in by_value:
            counts[kind] = counts.get(kind, 0) + 1
            by_value[(kind, value)] = placeholder(kind, counts[kind])
        return by_value[(kind, value)]

    masked = _substitute(text, wanted, token_for)
    return Masked(masked, {token: value for (_, value), token in by_value.items()})


def mask_like(text: str, slots: Mapping[str, str]) -> str:
    """Mask `text` (a training target) with the placeholders of its source's `slots`.

    A span whose value the source does not have stays as text: the model could never restore
    it, so it must learn the words themselves (or fail visibly), not an orphan placeholder.
    Values match case-insensitively: an ALL-CAPS Reuters title uses the body's "March 5, 2026".
    """
    if not slots:
        return text
    token_by_value = {(_kind_of(t), v.casefold()): t for t, v in slots.items()}
    kinds = frozenset(kind for kind, _ in token_by_value)
    return _substitute(text, kinds, lambda k, value: token_by_value.get((k, value.casefold())))


_PLACEHOLDER_IN_TEXT = re.compile(rf"(?:{PLACEHOLDER_RE.pattern})(?!\d)", re.IGNORECASE)


def _kind_of(token: str) -> str:
    return token[len(_PREFIX) :].rstrip("0123456789").lower()


def _substitute(
    text: str, kinds: frozenset[str], token_for: Callable[[str, str], str | None]
) -> str:
    """Replace every span of `kinds` by ``token_for(kind, value)`` (None keeps the span)."""
    if not kinds:
        return text

    previous_end = -1  # where the last placeholder written ended

    def replace(match: re.Match[str]) -> str:
        nonlocal previous_end
        kind = match.lastgroup
        assert kind is not None
        token = token_for(kind, match.group())
        if token is None:
            return match.group()
        before = text[match.start() - 1] if match.start() > 0 else ""
        after = text[match.end()] if match.end() < len(text) else ""
        # right after another placeholder ("2019年-2023年": a date, then a signed number):
        # apart, or the two would read as one token no vocabulary holds
        first = match.group()[0]
        glued = match.start() == previous_end and not (first.isascii() and first.isalnum())
        previous_end = match.end()
        return (" " if glued else "") + _spaced(before, token, after)

    return _pattern(kinds).sub(replace, text)


def _spaced(before: str, token: str, after: str) -> str:
    """Keep a placeholder apart from an adjacent ASCII letter or digit (jieba would glue them)."""
    left = " " if before.isascii() and before.isalnum() else ""
    right = " " if after.isascii() and after.isalnum() else ""
    return f"{left}{token}{right}"


def restore(text: str, slots: Mapping[str, str], spaced: Callable[[str, str], bool]) -> str:
    """Put the original strings back; drop placeholders the source article does not have.

    A placeholder is read with all its digits ("phnum12" is placeholder 12, never "phnum1"
    followed by "2"): a prefix read as a known placeholder would print the wrong number.
    A dropped placeholder takes one neighbouring space with it, so no double space remains.

    `spaced(left, right)`: whether the tokenizer's canonical text writes a space between two
    texts (`Tokenizer.spaced`). Each space next to a restored value is decided by it on the
    value itself: the detokenizer spaced a placeholder as a Latin word, so "2024年1-5月",
    "999元 /吨" and "50亿元 (约…)" came back spaced where the values, written out, take none.
    """
    if not PLACEHOLDER_RE.search(text):
        return text
    lowered = {k.lower(): v for k, v in slots.items()}
    chunks: list[tuple[str, bool, bool]] = []  # text, starts / ends with a restored value
    for chunk in text.split(" "):
        pieces = _PLACEHOLDER_IN_TEXT.split(chunk)
        found = _PLACEHOLDER_IN_TEXT.findall(chunk)
        written = pieces[0] + "".join(lowered.get(token.lower(), "") + after
                                      for token, after in zip(found, pieces[1:], strict=True))
        if written:
            chunks.append((written, bool(found) and not pieces[0],
                           bool(found) and not pieces[-1]))
    out = ""
    for index, (written, starts, _) in enumerate(chunks):
        if index:
            before, _, ended = chunks[index - 1]
            touches = ended or starts
            out += " " if not touches or spaced(before, written) else ""
        out += written
    return out
