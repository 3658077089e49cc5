"""The "words" tokenizer: English-style words, whole numbers, punctuation as separate tokens.

Choices (documented here because the vocabulary and every model inherit them):
- Contractions are split the Penn-Treebank way: "don't" -> "do n't", "it's" -> "it 's",
  "can't" -> "ca n't". The clitics ("n't", "'s", "'re", ...) are shared by every verb, which
  keeps a word-level vocabulary small; the detokenizer glues them back ("don't").
- Numbers stay whole: "3.14", "2,000", "37.5%", "10:30", "2015-03-14", and a sign directly
  before a digit at the start of a word ("-5"). So "3 . 14" can never appear in output.
- Hyphenated and apostrophe words stay whole: "well-known", "o'clock", "rock'n'roll", "and/or",
  "at&t"; a plural possessive keeps its apostrophe ("dogs'").
- URLs, e-mail addresses, dotted abbreviations ("e.g.", "u.s.") and reserved markers written
  as `__name__` (the turn separator `__eot__`, placeholders) are single tokens.
- Every other symbol is its own token; a run of the same symbol ("...", "!!!") is one token.
- Han characters: each character is a token here (a sensible fallback for Chinese);
  `nlp.tokenizers.chinese.JiebaTokenizer` overrides `segment_han` to cut words with jieba.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from nlp.text.scripts import CJK_CLASS, HAN_CLASS, NUMBER_SIGN_PATTERN
from nlp.tokenizers.base import clean_text
from nlp.tokenizers.detokenize import detokenize, spaced_between

_W = f"[^\\W_{CJK_CLASS}]"  # a letter or digit of a space-separated script
_L = f"[^\\W\\d_{CJK_CLASS}]"  # the same, letters only
_SIGN = NUMBER_SIGN_PATTERN  # "-5" is one token where the sign starts a word
_JOINER = r"(?:['’\-/&]|(?<=\d)[.,:](?=\d))"  # may sit between two runs of _W inside a word
# A reserved marker such as the turn separator `__eot__`: always one token, in every kind.
MARKER_PATTERN = r"__[A-Za-z0-9]+__"
_TOKEN_RE = re.compile(
    "|".join(
        (
            # URLs: ASCII URL characters only, so Chinese right after a link is not swallowed;
            # trailing punctuation belongs to the sentence.
            r"(?P<url>(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9\-_~/#=&%+@])",
            r"(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)",
            f"(?P<marker>{MARKER_PATTERN})",
            f"(?P<abbrev>(?:{_L}\\.){{2,}})",
            (
                f"(?P<word>{_SIGN}?{_W}+(?:{_JOINER}{_W}+)*"
                f"(?:(?<=\\d)%|(?<=[A-Za-z])(?:\\+\\+|#)(?!\\w)|(?<=[sS])['’](?!{_W}))?)"
            ),
            f"(?P<han>[{HAN_CLASS}]+)",
            r"(?P<symbols>(?P<symbol>[^\w\s])(?P=symbol)*)",
            r"(?P<other>\S)",
        )
    )
)
_CLITIC_RE = re.compile(r"(.+?)(n['’]t|['’](?:s|m|re|ve|ll|d))", re.IGNORECASE)


class WordTokenizer:
    """Rule-based word tokenizer; no training, no files."""

    name = "words"

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase

    def fit(self, texts: Iterable[str]) -> None:
        """Nothing to learn: the rules are fixed."""

    def tokenize(self, text: str) -> list[str]:
        return split_words(clean_text(text, self.lowercase), self.segment_han)

    def segment_han(self, run: str) -> list[str]:
        """Split a run of Han characters into tokens: one per character here."""
        return list(run)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, _split_keeping_han)

    def spaced(self, left: str, right: str) -> bool:
        """Whether the canonical text has a space between the texts `left` and `right`."""
        return spaced_between(left, right, _split_keeping_han)

    def save(self, directory: Path) -> None:
        """Nothing to write: the tokenizer is fully described by its config."""


def split_words(text: str, segment_han: Callable[[str], list[str]]) -> list[str]:
    """The word rules on cleaned text (see `clean_text`); Han runs go to `segment_han`."""
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "han":
            tokens.extend(segment_han(token))
        elif kind == "word":
            tokens.extend(_split_clitics(token))
        else:
            tokens.append(token)
    return tokens


def _split_keeping_han(text: str) -> list[str]:
    return split_words(text, lambda run: [run])


def _split_clitics(word: str) -> list[str]:
    """ "don't" -> ["do", "n't"]; repeatedly, so "he'd've" -> ["he", "'d", "'ve"]."""
    clitics: list[str] = []
    while match := _CLITIC_RE.fullmatch(word):
        word, clitic = match.groups()
        clitics.insert(0, clitic)
    return [word, *clitics]
