"""The "chars" tokenizer: Chinese one character a token, for character-level models.

Two modes, picked by `TokenizerConfig.latin_chars`:

- default (`latin_chars=false`), for Chinese headlines and chat: every Han, kana or bopomofo
  character is one token; Latin words, numbers ("3.14", "37.5%"), URLs and punctuation follow
  the words tokenizer's rules exactly (`nlp.tokenizers.words`), and so does detokenization
  ("我爱 Python 编程", "价格是3.14元。"). Character input beats word input on LCSTS (Hu et al.
  2015) because a character vocabulary of a few thousand covers nearly all text, while a word
  vocabulary leaves many rare words as <unk>. These are the words tokenizer's rules with its
  one-character-per-Han fallback made the point of the kind; the kind exists so a config says
  what it means and so the switch below has a home.
- `latin_chars=true`, for character-level translation (the Keras `lstm_seq2seq` tutorial):
  every character is a token, Latin letters and digits included, and each space becomes the
  token "▁" (`SP_SPACE`, which clean text never contains), so detokenizing is concatenation
  and restores the spaces exactly. Reserved markers (`__eot__`) and, with
  `tokenizer.placeholders=true`, placeholders ("phnum1") stay whole: they stand for one thing
  and must reach `placeholders.restore` intact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlp.text.placeholders import PLACEHOLDER_RE
from nlp.tokenizers.base import SP_SPACE, clean_text
from nlp.tokenizers.words import MARKER_PATTERN, WordTokenizer

_PLACEHOLDER = f"(?<![A-Za-z0-9]){PLACEHOLDER_RE.pattern}(?![A-Za-z0-9])"
_MARKER_RE = re.compile(MARKER_PATTERN)
_MARKER_OR_PLACEHOLDER_RE = re.compile(f"{MARKER_PATTERN}|{_PLACEHOLDER}", re.IGNORECASE)


class CharTokenizer(WordTokenizer):
    """Han characters one a token; Latin words whole, or (latin_chars) one character a token."""

    name = "chars"

    def __init__(
        self, lowercase: bool = True, *, latin_chars: bool = False, placeholders: bool = False
    ) -> None:
        super().__init__(lowercase)
        self.latin_chars = latin_chars
        self._whole = _MARKER_OR_PLACEHOLDER_RE if placeholders else _MARKER_RE

    def tokenize(self, text: str) -> list[str]:
        if not self.latin_chars:
            return super().tokenize(text)
        cleaned = clean_text(text, self.lowercase)
        tokens: list[str] = []
        position = 0
        for match in self._whole.finditer(cleaned):
            tokens.extend(_characters(cleaned[position : match.start()]))
            tokens.append(match.group())
            position = match.end()
        tokens.extend(_characters(cleaned[position:]))
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        if not self.latin_chars:
            return super().detokenize(tokens)
        # Model output may start or end with a space token, or repeat one: natural text has
        # neither, and clean text (what a round trip must give back) has single spaces only.
        return " ".join("".join(tokens).replace(SP_SPACE, " ").split())


def _characters(text: str) -> list[str]:
    return [SP_SPACE if char == " " else char for char in text]
